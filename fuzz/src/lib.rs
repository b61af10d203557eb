//! Shared code of the fuzz targets: a scratch run folder (a copy of
//! `fixtures/runs/complete`, made once per process) into which a target
//! writes its input as one file, and everything that reads run folders.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The complete run folder the scratch folder starts as.
const COMPLETE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/runs/complete");

/// The process's scratch run folder (removed with the process's temp dir).
fn scratch() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let folder = dir.path().join("run");
        std::fs::create_dir(&folder).expect("scratch folder");
        for entry in std::fs::read_dir(COMPLETE).expect("fixtures/runs/complete") {
            let entry = entry.expect("fixture entry");
            if entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
                std::fs::copy(entry.path(), folder.join(entry.file_name())).expect("copy");
            }
        }
        (dir, folder)
    })
    .1
}

/// Put `data` as `file` into the scratch folder (the other files as in the
/// fixture) and run every reader of run folders on it: the typed readers,
/// report (model, plots, all formats) and compare (both sides, paired).
/// Each may answer an error; a panic is the finding.
pub fn run_folder_with(file: &str, data: &[u8]) {
    let folder = scratch();
    for name in ["results.json", "plans.json", "advice.json"] {
        let from = Path::new(COMPLETE).join(name);
        let bytes: Vec<u8> = if name == file {
            data.to_vec()
        } else {
            std::fs::read(from).expect("fixture")
        };
        std::fs::write(folder.join(name), bytes).expect("write scratch file");
    }
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
        return;
    }
    let pristine = Path::new(COMPLETE);
    for (base, current) in [
        (folder, None),
        (folder, Some(pristine)),
        (pristine, Some(folder)),
    ] {
        let opts = crmbench::compare::CompareOptions {
            base: base.to_path_buf(),
            current: current.map(Path::to_path_buf),
            threshold: None,
            metric: crmbench::compare::Metric::P95,
            max_error_rate: 0.01,
            fail_on_plan_change: true,
            candidate_plans: None,
            seed: 1,
        };
        if let Ok(c) = crmbench::compare::compare(&opts) {
            let _ = crmbench::compare::render::markdown(&c);
        }
    }
}
