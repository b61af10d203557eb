//! The HDR histogram decoder on arbitrary bytes (base64-encoded, as they
//! sit in results.json): an error or a histogram, never a panic. Run with
//! `-rss_limit_mb` low (e.g. 256) to catch an allocation the input's size
//! does not justify.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = base64::engine::general_purpose::STANDARD.encode(data);
    if let Ok(h) = crmbench::stats::decode(&text) {
        let _ = crmbench::stats::summarize(&h);
        let mut merged = crmbench::stats::new_hist();
        crmbench::stats::merge(&mut merged, &h);
    }
    // The raw bytes as text too (not base64, or base64 of anything).
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crmbench::stats::decode(text);
    }
});
