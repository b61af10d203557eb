//! Property tests (issue 17, "keep it that way"): what crmbench reads from
//! files a user hands it never panics, whatever the bytes. The HDR histogram
//! decoder also never allocates beyond a bound set by its input's size; the
//! run-folder readers (results, plans, advice) and what is computed from
//! them (report, compare) answer a mutated file with an error or a result.
//!
//! Cases are bounded in code so the binary takes seconds in CI;
//! `PROPTEST_CASES=100000` runs more by hand (the fuzz targets in fuzz/ go
//! further).

#![allow(clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

use base64::Engine as _;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::Value;

// ---- allocation accounting -------------------------------------------------

/// The system allocator, counting each thread's live bytes and their peak,
/// so a property can bound what one call allocates (tests run on threads of
/// their own, so other tests do not disturb the count).
struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn note_alloc(size: usize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get().saturating_add(size);
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn note_free(size: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(size)));
}

// SAFETY: every call is passed to the system allocator unchanged; the
// bookkeeping only touches const-initialised thread-locals without
// destructors, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note_alloc(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note_alloc(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        note_free(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Both blocks may be live during the move: count the new one first.
            note_alloc(new_size);
            note_free(layout.size());
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// `f`'s result and the most bytes it had allocated at once on this thread.
fn peak_of<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let r = f();
    (r, PEAK.with(Cell::get).saturating_sub(start))
}

/// Cases of a property: `default`, or `PROPTEST_CASES` when set.
fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        // Shrinking a failure is worth a few seconds, not minutes.
        max_shrink_time: 30_000,
        ..ProptestConfig::default()
    }
}

// ---- the HDR histogram decoder ---------------------------------------------

const V2_COOKIE: u32 = 0x1c84_9313;
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9314;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// What decoding `text` may allocate at most: a fixed part for one crmbench
/// histogram (its counts array and the longest encoding of it, each in a
/// couple of buffers) plus a few times the input.
fn decode_bound(text: &str) -> usize {
    (2 << 20) + 4 * text.len()
}

/// Decode `text`: never a panic, and allocation within [`decode_bound`].
fn check_decode(text: &str) -> Result<(), TestCaseError> {
    let (decoded, peak) = peak_of(|| crmbench::stats::decode(text));
    prop_assert!(
        peak <= decode_bound(text),
        "decoding {} base64 chars allocated {peak} bytes",
        text.len()
    );
    if let Ok(h) = decoded {
        // What compare and report do with a decoded histogram.
        let _ = crmbench::stats::summarize(&h);
        let mut merged = crmbench::stats::new_hist();
        crmbench::stats::merge(&mut merged, &h);
    }
    Ok(())
}

/// A V2 header: mostly crmbench's bounds, sometimes anything.
fn v2_header() -> impl Strategy<Value = (u32, u32, u64, u64)> {
    (
        prop_oneof![Just(None), any::<u32>().prop_map(Some)],
        prop_oneof![4 => Just(3u32), 1 => any::<u32>()],
        prop_oneof![4 => Just(1u64), 1 => any::<u64>()],
        prop_oneof![4 => Just(3_600_000_000u64), 1 => any::<u64>()],
    )
        .prop_map(|(len, digits, low, high)| (len.unwrap_or(u32::MAX), digits, low, high))
}

/// An uncompressed V2 encoding: a header (with a claimed payload length
/// that is right, or anything) and arbitrary counts bytes.
fn v2_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        v2_header(),
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 0..400),
    )
        .prop_map(|((claimed, digits, low, high), honest, payload)| {
            let len = if honest {
                payload.len() as u32
            } else {
                claimed
            };
            let mut b = Vec::new();
            b.extend(V2_COOKIE.to_be_bytes());
            b.extend(len.to_be_bytes());
            b.extend(0u32.to_be_bytes());
            b.extend(digits.to_be_bytes());
            b.extend(low.to_be_bytes());
            b.extend(high.to_be_bytes());
            b.extend(1.0f64.to_be_bytes());
            b.extend(payload);
            b
        })
}

/// The compressed form of `plain` (as crmbench writes it), with a claimed
/// length that is right or anything.
fn compressed(plain: &[u8], claimed: Option<u32>) -> Vec<u8> {
    use std::io::Write as _;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(plain).unwrap();
    let deflated = z.finish().unwrap();
    let mut b = V2_COMPRESSED_COOKIE.to_be_bytes().to_vec();
    b.extend(claimed.unwrap_or(deflated.len() as u32).to_be_bytes());
    b.extend(deflated);
    b
}

/// A real histogram's encoding (crmbench's own, base64-decoded).
fn real_histogram_bytes(seed: u64) -> Vec<u8> {
    let mut h = crmbench::stats::new_hist();
    let mut x = seed | 1;
    for _ in 0..200 {
        // xorshift: a spread of latencies from 1 µs up.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        crmbench::stats::record(&mut h, 1 + x % (1 + (x >> 40) % 5_000_000));
    }
    let text = crmbench::stats::encode(&h);
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

proptest! {
    #![proptest_config(config(1500))]

    #[test]
    fn hdr_decoder_takes_arbitrary_text(text in "[A-Za-z0-9+/=]{0,200}|\\PC{0,50}") {
        check_decode(&text)?;
    }

    #[test]
    fn hdr_decoder_takes_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        check_decode(&b64(&bytes))?;
    }

    #[test]
    fn hdr_decoder_takes_mangled_v2_encodings(
        plain in v2_bytes(),
        wrap in any::<bool>(),
        claimed in prop_oneof![Just(None), any::<u32>().prop_map(Some)],
    ) {
        let bytes = if wrap { compressed(&plain, claimed) } else { plain };
        check_decode(&b64(&bytes))?;
    }

    #[test]
    fn hdr_decoder_takes_mutated_real_histograms(
        seed in any::<u64>(),
        flips in proptest::collection::vec((any::<Index>(), any::<u8>()), 1..6),
        cut in proptest::option::of(any::<Index>()),
        inner in any::<bool>(),
    ) {
        let mut bytes = real_histogram_bytes(seed);
        if inner {
            // Mutate the V2 bytes inside the deflate stream, then re-wrap them.
            let mut plain = Vec::new();
            std::io::Read::read_to_end(
                &mut flate2::read::ZlibDecoder::new(&bytes[8..]),
                &mut plain,
            )
            .unwrap();
            for (at, b) in &flips {
                let i = at.index(plain.len());
                plain[i] = *b;
            }
            bytes = compressed(&plain, None);
        } else {
            for (at, b) in &flips {
                let i = at.index(bytes.len());
                bytes[i] = *b;
            }
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        check_decode(&b64(&bytes))?;
    }
}

#[test]
fn hdr_decoder_bound_holds_for_what_crmbench_writes() {
    // The bound is not so tight that real histograms break it.
    for seed in 1..20 {
        check_decode(&b64(&real_histogram_bytes(seed))).unwrap();
        assert!(crmbench::stats::decode(&b64(&real_histogram_bytes(seed))).is_ok());
    }
}

// ---- the run-folder readers ------------------------------------------------

/// A complete run folder: results, plans and advice.
const COMPLETE: &str = "fixtures/runs/complete";
/// A paired run, with its plans.
const PAIRED: &str = "fixtures/compare/paired-aa";

/// One change to a JSON document, aimed at a node picked by `at`.
#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the node with one of [`ODD_VALUES`].
    Replace(Index, usize),
    /// Remove the node from its object or array.
    Remove(Index),
    /// Replace the node with a copy of another node (a plausible shape in
    /// the wrong place).
    Transplant(Index, Index),
    /// Empty the node when it is an array, object or string.
    Empty(Index),
    /// Repeat an array's elements.
    Double(Index),
}

fn odd_values() -> Vec<Value> {
    serde_json::from_str(
        r#"[null, true, false, 0, 1, -1, 2, 0.5, -0.0, 1e308, -1e308, 18446744073709551615,
            -9223372036854775808, 4294967296, "", "x", "p95", "\u0000\u001b[31m<b>",
            [], {}, [0], {"": null}]"#,
    )
    .unwrap()
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), any::<Index>())
            .prop_map(|(at, v)| Mutation::Replace(at, v.index(odd_values().len()))),
        2 => any::<Index>().prop_map(Mutation::Remove),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Transplant(a, b)),
        1 => any::<Index>().prop_map(Mutation::Empty),
        1 => any::<Index>().prop_map(Mutation::Double),
    ]
}

/// JSON pointers of every node below the root.
fn pointers(v: &Value, here: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = format!("{here}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(child, &p, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let p = format!("{here}/{i}");
                out.push(p.clone());
                pointers(child, &p, out);
            }
        }
        _ => {}
    }
}

fn apply(doc: &mut Value, m: &Mutation) {
    let mut all = Vec::new();
    pointers(doc, "", &mut all);
    if all.is_empty() {
        return;
    }
    let pick = |i: &Index| all[i.index(all.len())].clone();
    match m {
        Mutation::Replace(at, v) => {
            if let Some(node) = doc.pointer_mut(&pick(at)) {
                *node = odd_values()[*v].clone();
            }
        }
        Mutation::Remove(at) => {
            let p = pick(at);
            let (parent, key) = p.rsplit_once('/').unwrap();
            let key = key.replace("~1", "/").replace("~0", "~");
            match doc.pointer_mut(parent) {
                Some(Value::Object(o)) => {
                    o.remove(&key);
                }
                Some(Value::Array(a)) => {
                    if let Ok(i) = key.parse::<usize>() {
                        a.remove(i);
                    }
                }
                _ => {}
            }
        }
        Mutation::Transplant(to, from) => {
            let copy = doc.pointer(&pick(from)).cloned();
            if let (Some(copy), Some(node)) = (copy, doc.pointer_mut(&pick(to))) {
                *node = copy;
            }
        }
        Mutation::Empty(at) => match doc.pointer_mut(&pick(at)) {
            Some(Value::Array(a)) => a.clear(),
            Some(Value::Object(o)) => o.clear(),
            Some(Value::String(s)) => s.clear(),
            _ => {}
        },
        Mutation::Double(at) => {
            if let Some(Value::Array(a)) = doc.pointer_mut(&pick(at)) {
                let copy = a.clone();
                a.extend(copy);
            }
        }
    }
}

/// A copy of the run folder `from` in `to` with `file` replaced by `text`.
fn folder_with(from: &str, to: &Path, file: &str, text: &str) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
    std::fs::write(to.join(file), text).unwrap();
}

/// Everything that reads a run folder, on `folder`: each answers Ok or an
/// error; a panic fails the property.
fn read_everything(folder: &Path, file: &str, pristine: &str) {
    use crmbench::runfolder::read_file;
    let _ = read_file::<crmbench::results::Results>(folder);
    let _ = read_file::<crmbench::explain::PlansFile>(folder);
    let _ = read_file::<crmbench::advise::Advice>(folder);
    if let Ok(model) = crmbench::report::load(folder) {
        let plots = crmbench::report::plots::render_all(&model).unwrap_or_default();
        let _ = crmbench::report::markdown::render(&model, &plots);
        let _ = crmbench::report::html::render(&model, &plots);
        let _ = crmbench::report::json::summary(&model);
    }
    if file == "advice.json" {
        // compare reads results and plans only.
        return;
    }
    let opts = |base: &Path, current: Option<&Path>| crmbench::compare::CompareOptions {
        base: base.to_path_buf(),
        current: current.map(Path::to_path_buf),
        threshold: None,
        metric: crmbench::compare::Metric::P95,
        max_error_rate: 0.01,
        fail_on_plan_change: true,
        candidate_plans: None,
        seed: 1,
        inconclusive: Default::default(),
    };
    let pristine = Path::new(pristine);
    // A separate-run comparison bootstraps every query (tens of ms): plans
    // need one direction only, results are read as either side.
    let runs = if file == "plans.json" {
        vec![opts(folder, Some(pristine))]
    } else {
        vec![
            opts(folder, None),
            opts(folder, Some(pristine)),
            opts(pristine, Some(folder)),
        ]
    };
    for o in runs {
        if let Ok(c) = crmbench::compare::compare(&o) {
            let _ = crmbench::compare::render::markdown(&c);
        }
    }
}

fn mutated_folder_never_panics(
    from: &str,
    file: &str,
    mutations: &[Mutation],
) -> Result<(), TestCaseError> {
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(Path::new(from).join(file)).unwrap())
            .unwrap();
    for m in mutations {
        apply(&mut doc, m);
    }
    let dir = tempfile::tempdir().unwrap();
    folder_with(from, dir.path(), file, &doc.to_string());
    read_everything(dir.path(), file, from);
    Ok(())
}

proptest! {
    #![proptest_config(config(250))]

    #[test]
    fn mutated_results_never_panic(
        paired in any::<bool>(),
        mutations in proptest::collection::vec(mutation(), 1..5),
    ) {
        let from = if paired { PAIRED } else { COMPLETE };
        mutated_folder_never_panics(from, "results.json", &mutations)?;
    }
}

proptest! {
    // Each case compares two runs (a bootstrap per query): fewer cases.
    #![proptest_config(config(100))]

    #[test]
    fn mutated_plans_never_panic(
        paired in any::<bool>(),
        mutations in proptest::collection::vec(mutation(), 1..5),
    ) {
        let from = if paired { PAIRED } else { COMPLETE };
        mutated_folder_never_panics(from, "plans.json", &mutations)?;
    }
}

proptest! {
    #![proptest_config(config(250))]

    #[test]
    fn mutated_advice_never_panics(mutations in proptest::collection::vec(mutation(), 1..5)) {
        mutated_folder_never_panics(COMPLETE, "advice.json", &mutations)?;
    }

    #[test]
    fn damaged_json_text_never_panics(
        file in prop_oneof![Just("results.json"), Just("plans.json"), Just("advice.json")],
        cut in any::<Index>(),
        flips in proptest::collection::vec((any::<Index>(), any::<u8>()), 0..4),
    ) {
        let mut bytes = std::fs::read(Path::new(COMPLETE).join(file)).unwrap();
        for (at, b) in &flips {
            let i = at.index(bytes.len());
            bytes[i] = *b;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        let dir = tempfile::tempdir().unwrap();
        folder_with(COMPLETE, dir.path(), file, "");
        std::fs::write(dir.path().join(file), &bytes).unwrap();
        read_everything(dir.path(), file, COMPLETE);
    }
}

// ---- the workload parser -----------------------------------------------------

/// The built-in workload, the starting point of the mutations.
const CRM_TOML: &str = include_str!("../workloads/crm.toml");

/// Parse `text`: Ok, or a workload error that names the file, a line within
/// it (0: the file as a whole) and says something. Never a panic.
fn check_workload(text: &str) -> Result<(), TestCaseError> {
    let path = Path::new("mutated.toml");
    match crmbench::workload::Workload::parse(text, path) {
        Ok(w) => {
            // The pure helpers a run applies to every statement.
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
            prop_assert_eq!(file.as_path(), path);
            prop_assert!(!message.trim().is_empty(), "no message (line {})", line);
            prop_assert!(
                line <= text.lines().count() + 1,
                "line {} of {}: {}",
                line,
                text.lines().count(),
                message
            );
        }
        Err(other) => prop_assert!(false, "not a workload error: {}", other),
    }
    Ok(())
}

/// The built-in workload as a JSON tree (parsed once).
fn crm_tree() -> &'static Value {
    static TREE: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    TREE.get_or_init(|| {
        let tree: toml::Value = toml::from_str(CRM_TOML).unwrap();
        serde_json::to_value(&tree).unwrap()
    })
}

/// Text a mutation may insert: TOML syntax, odd numbers and characters,
/// and pieces of workload syntax in the wrong place.
const SNIPPETS: &[&str] = &[
    "\"",
    "'",
    "[",
    "]",
    "]]",
    "[[query]]\n",
    "[[query.statements]]\n",
    "[context]\n",
    "=",
    "\n",
    "#",
    "\u{1}",
    "\u{0}",
    "\u{7f}",
    "\t",
    "é",
    "\u{feff}",
    "\r",
    "$",
    "$0",
    "$1",
    "$99999999999999999999",
    "$$",
    "nan",
    "inf",
    "-inf",
    "-1",
    "0",
    "1e400",
    "-0.0",
    "9223372036854775808",
    "{",
    "}",
    ",",
    "\\u0000",
    "\"\"\"",
    "'''",
    "ref = \"x\"",
    "tenant = true",
    "{ int = [5, 1] }",
    "{ float = [nan, 1] }",
    "{ days_ago = [1e300, 1e308] }",
    "weight = 0",
    "weight = -1",
    "kind = \"sideways\"",
    "version = 99",
    "sample = \"a.b.c\"",
    "miss_rate = 2",
    "params = []",
    "name = \"\"",
    "sql = \"\"",
    "dist = \"zipf\"",
];

/// One edit of the text at a position picked by `at`.
#[derive(Debug, Clone)]
enum TextEdit {
    Insert(Index, Index),
    Delete(Index, usize),
    DuplicateLine(Index),
    DeleteLine(Index),
    Truncate(Index),
}

fn text_edit() -> impl Strategy<Value = TextEdit> {
    prop_oneof![
        4 => (any::<Index>(), any::<Index>()).prop_map(|(a, s)| TextEdit::Insert(a, s)),
        2 => (any::<Index>(), 1usize..40).prop_map(|(a, n)| TextEdit::Delete(a, n)),
        1 => any::<Index>().prop_map(TextEdit::DuplicateLine),
        2 => any::<Index>().prop_map(TextEdit::DeleteLine),
        1 => any::<Index>().prop_map(TextEdit::Truncate),
    ]
}

/// The char boundary at or before `i`.
fn boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn edit_text(text: &mut String, edit: &TextEdit) {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    match edit {
        TextEdit::Insert(at, s) => {
            let i = boundary(text, at.index(text.len() + 1));
            text.insert_str(i, SNIPPETS[s.index(SNIPPETS.len())]);
        }
        TextEdit::Delete(at, n) => {
            let i = boundary(text, at.index(text.len() + 1));
            let j = boundary(text, i + n);
            text.replace_range(i..j, "");
        }
        TextEdit::DuplicateLine(at) if !lines.is_empty() => {
            let k = at.index(lines.len());
            let mut out: Vec<&str> = lines[..=k].to_vec();
            out.extend(&lines[k..]);
            *text = out.concat();
        }
        TextEdit::DeleteLine(at) if !lines.is_empty() => {
            let k = at.index(lines.len());
            let mut out = lines.clone();
            out.remove(k);
            *text = out.concat();
        }
        TextEdit::Truncate(at) => {
            let i = boundary(text, at.index(text.len() + 1));
            text.truncate(i);
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn workload_parser_takes_edited_workloads(
        edits in proptest::collection::vec(text_edit(), 1..6),
    ) {
        let mut text = CRM_TOML.to_string();
        for e in &edits {
            edit_text(&mut text, e);
        }
        check_workload(&text)?;
    }

    #[test]
    fn workload_parser_takes_arbitrary_text(text in "\\PC{0,300}|[\\[\\]a-z=\"'\\n #${}.,0-9]{0,300}") {
        check_workload(&text)?;
    }
}

proptest! {
    // Each case parses and validates a whole workload (~8 ms in a debug build).
    #![proptest_config(config(500))]

    #[test]
    fn workload_parser_takes_mutated_values(
        mutations in proptest::collection::vec(mutation(), 1..5),
    ) {
        // The workload as a tree, mutated like the JSON files, written back.
        let mut doc = crm_tree().clone();
        for m in &mutations {
            apply(&mut doc, m);
        }
        // TOML has no null: such a mutation has no TOML form.
        let Ok(text) = toml::to_string(&doc) else {
            return Ok(());
        };
        check_workload(&text)?;
    }
}
