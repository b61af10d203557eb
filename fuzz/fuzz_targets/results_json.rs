//! results.json as a user may hand it: the readers, report and compare answer
//! with an error or a result, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    crmbench_fuzz::run_folder_with("results.json", data);
});
