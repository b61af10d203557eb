//! A workload file as a user may write it: `Workload::parse` answers Ok or
//! a workload error naming the file, a line within the text and a
//! non-empty message; never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.toml");
    match crmbench::workload::Workload::parse(text, path) {
        Ok(w) => {
            for st in w.queries.iter().flat_map(|q| &q.statements) {
                let _ = crmbench::workload::placeholders(&st.sql);
                let _ = crmbench::workload::substitute(&st.sql, |n| format!("'{n}'"));
            }
        }
        Err(crmbench::error::Error::Workload {
            file,
            line,
            message,
            ..
        }) => {
            assert_eq!(file, path);
            assert!(!message.trim().is_empty(), "no message at line {line}");
            assert!(line <= text.lines().count() + 1, "line {line} past the end");
        }
        Err(other) => panic!("not a workload error: {other}"),
    }
});
