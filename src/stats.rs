//! Latency histograms in microseconds (HdrHistogram, 3 significant digits,
//! 1 µs to 1 hour): record, merge, summarize, and encode as base64 of the
//! compressed V2 format any HdrHistogram library can read and merge.

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

/// Highest trackable latency, µs (one hour).
pub const MAX_MICROS: u64 = 3_600_000_000;

/// A latency histogram in µs.
pub type Hist = Histogram<u64>;

/// An empty histogram with crmbench's bounds.
pub fn new_hist() -> Hist {
    // Constant bounds that hdrhistogram accepts: this cannot fail.
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid constant histogram bounds")
}

/// Record one latency (clamped into the trackable range).
pub fn record(h: &mut Hist, micros: u64) {
    let _ = h.record(micros.clamp(1, MAX_MICROS));
}

/// Add `from` into `into` (exact: same bounds).
pub fn merge(into: &mut Hist, from: &Hist) {
    let _ = into.add(from);
}

/// Base64 of the compressed V2 encoding.
pub fn encode(h: &Hist) -> String {
    let mut buf = Vec::new();
    if V2DeflateSerializer::new().serialize(h, &mut buf).is_err() {
        return String::new();
    }
    base64::engine::general_purpose::STANDARD.encode(buf)
}

/// Decode [`encode`]'s output.
pub fn decode(text: &str) -> Result<Hist, String> {
    if text.is_empty() {
        return Ok(new_hist());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("histogram is not base64: {e}"))?;
    let h: Hist = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("histogram does not decode: {e:?}"))?;
    Ok(h)
}

/// Percentiles of a histogram, µs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 95th percentile.
    pub p95_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest.
    pub max_us: u64,
}

/// Summarize a histogram.
pub fn summarize(h: &Hist) -> Summary {
    if h.is_empty() {
        return Summary::default();
    }
    Summary {
        count: h.len(),
        mean_us: h.mean(),
        p50_us: h.value_at_quantile(0.50),
        p90_us: h.value_at_quantile(0.90),
        p95_us: h.value_at_quantile(0.95),
        p99_us: h.value_at_quantile(0.99),
        p999_us: h.value_at_quantile(0.999),
        max_us: h.max(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Prng;

    #[test]
    fn merge_equals_histogram_of_the_union() {
        let mut rng = Prng::for_parts(&[9]);
        let (mut a, mut b, mut union) = (new_hist(), new_hist(), new_hist());
        for i in 0..50_000u64 {
            let v = 50 + rng.below(if i % 97 == 0 { 2_000_000 } else { 5_000 });
            if i % 3 == 0 {
                record(&mut a, v);
            } else {
                record(&mut b, v);
            }
            record(&mut union, v);
        }
        merge(&mut a, &b);
        assert_eq!(summarize(&a), summarize(&union));
        assert_eq!(a, union);
    }

    #[test]
    fn encoding_round_trips() {
        let mut h = new_hist();
        for v in [1, 10, 100, 1_000, 10_000, 123_456, MAX_MICROS + 5] {
            record(&mut h, v);
        }
        let back = decode(&encode(&h)).unwrap();
        assert_eq!(back, h);
        assert_eq!(summarize(&back).max_us, h.max());
        assert!(decode("not base64!").is_err());
    }
}
