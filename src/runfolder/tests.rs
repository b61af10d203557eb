//! The run-folder contract: versions read, folders unique, modes private,
//! writes atomic.

use std::os::unix::fs::PermissionsExt;

use serde::{Deserialize, Serialize};

use super::*;

/// A file at version 2 that gained `added` since version 1.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct V2 {
    format_version: u32,
    a: u32,
    #[serde(default)]
    added: Vec<String>,
}

impl RunFile for V2 {
    const FILE: &'static str = "v.json";
    const FORMAT_VERSION: u32 = 2;
    const MADE_BY: &'static str = "crmbench test";
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Names in `dir` that look like a writer's temp files.
fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect()
}

fn new_folder(access: Access) -> (tempfile::TempDir, RunFolder) {
    let tmp = tempfile::tempdir().unwrap();
    let folder = RunFolder::open_or_create(&tmp.path().join("run"), access).unwrap();
    (tmp, folder)
}

#[test]
fn a_written_file_reads_back_identically() {
    let (_tmp, folder) = new_folder(Access::Private);
    let v = V2 {
        format_version: 2,
        a: 7,
        added: vec!["x".into()],
    };
    let path = folder.write(&v).unwrap();
    assert_eq!(path, folder.join("v.json"));
    assert!(std::fs::read_to_string(&path).unwrap().ends_with("}\n"));
    assert_eq!(folder.read::<V2>().unwrap(), v);
    assert_eq!(read_file::<V2>(folder.path()).unwrap(), v);
    assert_eq!(read_file::<V2>(&path).unwrap(), v);
    assert!(temp_files(folder.path()).is_empty());
}

#[test]
fn an_absent_optional_file_is_none_and_a_foreign_version_an_error() {
    let (_tmp, folder) = new_folder(Access::Private);
    assert!(folder.read_optional::<V2>().unwrap().is_none());
    std::fs::write(folder.join("v.json"), r#"{"format_version": 7, "a": 1}"#).unwrap();
    let text = folder.read_optional::<V2>().unwrap_err().to_string();
    assert!(
        text.contains("v.json")
            && text.contains("format_version 7 is not one this crmbench reads (1 or 2)"),
        "{text}"
    );
}

#[test]
fn the_version_before_reads_as_the_current_one_with_defaults() {
    let (_tmp, folder) = new_folder(Access::Private);
    std::fs::write(folder.join("v.json"), r#"{"format_version": 1, "a": 3}"#).unwrap();
    let v = folder.read::<V2>().unwrap();
    assert_eq!(
        v,
        V2 {
            format_version: 2,
            a: 3,
            added: Vec::new()
        }
    );
}

#[test]
fn newer_older_and_missing_versions_are_refused_naming_the_file() {
    let (_tmp, folder) = new_folder(Access::Private);
    let path = folder.join("v.json");
    for version in ["0", "3", "99", "\"2\""] {
        std::fs::write(&path, format!(r#"{{"format_version": {version}, "a": 3}}"#)).unwrap();
        let err = folder.read::<V2>().unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(err.fix().unwrap().contains("crmbench test"), "{text}");
    }
    std::fs::write(&path, r#"{"format_version": 3, "a": 3}"#).unwrap();
    let text = folder.read::<V2>().unwrap_err().to_string();
    assert!(text.contains("format_version 3"), "{text}");
    std::fs::write(&path, r#"{"a": 3}"#).unwrap();
    let text = folder.read::<V2>().unwrap_err().to_string();
    assert!(text.contains("no format_version"), "{text}");
}

#[test]
fn a_malformed_or_missing_required_file_is_an_error_naming_it() {
    let (_tmp, folder) = new_folder(Access::Private);
    let text = folder.read::<V2>().unwrap_err().to_string();
    assert!(text.contains("v.json"), "{text}");
    std::fs::write(folder.join("v.json"), "not json at all").unwrap();
    let text = folder.read::<V2>().unwrap_err().to_string();
    assert!(
        text.starts_with("parsing") && text.contains("v.json"),
        "{text}"
    );
    std::fs::write(folder.join("v.json"), r#"{"format_version": 2}"#).unwrap();
    let text = folder.read::<V2>().unwrap_err().to_string();
    assert!(
        text.contains("v.json") && text.contains("missing field"),
        "{text}"
    );
}

/// Issue 17 item 3: two runs in the same second shared one folder and one
/// results.json overwrote the other.
#[test]
fn two_creates_in_the_same_second_give_two_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let reports = tmp.path().join("reports");
    let a = RunFolder::create_stamped(&reports, "20260101-000000", "run", Access::Private).unwrap();
    let b = RunFolder::create_stamped(&reports, "20260101-000000", "run", Access::Private).unwrap();
    let c = RunFolder::create_stamped(&reports, "20260101-000000", "run", Access::Private).unwrap();
    assert_eq!(a.path(), reports.join("20260101-000000-run"));
    assert_eq!(b.path(), reports.join("20260101-000000-run-2"));
    assert_eq!(c.path(), reports.join("20260101-000000-run-3"));
}

#[test]
fn default_folders_are_new_and_latest_follows_the_newest() {
    let tmp = tempfile::tempdir().unwrap();
    let reports = tmp.path().join("reports");
    let a = RunFolder::create_new(&reports, "run", Access::Private).unwrap();
    let b = RunFolder::create_new(&reports, "run", Access::Private).unwrap();
    assert_ne!(a.path(), b.path());
    let latest = reports.join(LATEST);
    let target = std::fs::read_link(&latest).unwrap();
    assert_eq!(Some(target.as_os_str()), b.path().file_name());
    assert!(target.is_relative());
    assert!(
        temp_files(&reports).is_empty(),
        "{:?}",
        temp_files(&reports)
    );
}

/// Issue 21 item 3: run folders and their files were world-readable.
#[test]
fn private_folders_are_0700_and_their_files_0600() {
    let (_tmp, folder) = new_folder(Access::Private);
    assert_eq!(mode(folder.path()), 0o700);
    let v = V2 {
        format_version: 2,
        a: 1,
        added: Vec::new(),
    };
    assert_eq!(mode(&folder.write(&v).unwrap()), 0o600);
    assert_eq!(
        mode(&folder.write_text("migration.sql", "x").unwrap()),
        0o600
    );
    let svg = folder.write_text("report-files/a/p.svg", "<svg/>").unwrap();
    assert_eq!(mode(&svg), 0o600);
    assert_eq!(mode(&folder.join("report-files")), 0o700);
    assert_eq!(mode(&folder.join("report-files/a")), 0o700);
    // Rewriting a file keeps it private.
    assert_eq!(
        mode(&folder.write_text("migration.sql", "y").unwrap()),
        0o600
    );
}

#[test]
fn shareable_folders_are_0755_and_their_files_0644() {
    let (_tmp, folder) = new_folder(Access::Shareable);
    assert_eq!(mode(folder.path()), 0o755);
    assert_eq!(mode(&folder.write_text("report.html", "x").unwrap()), 0o644);
    let svg = folder.write_text("report-files/p.svg", "<svg/>").unwrap();
    assert_eq!(mode(&svg), 0o644);
    assert_eq!(mode(&folder.join("report-files")), 0o755);
    let tmp = tempfile::tempdir().unwrap();
    let reports = tmp.path().join("reports");
    let d = RunFolder::create_new(&reports, "run", Access::Shareable).unwrap();
    assert_eq!(mode(d.path()), 0o755);
}

#[test]
fn default_folders_are_private() {
    let tmp = tempfile::tempdir().unwrap();
    let d = RunFolder::create_new(&tmp.path().join("reports"), "run", Access::default()).unwrap();
    assert_eq!(mode(d.path()), 0o700);
}

/// A folder given with --out is private too, and so is what is written in
/// it (these failed before: 0755-by-umask folders, 0644 files).
#[test]
fn a_given_out_folder_and_its_files_are_private() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run1");
    let folder = RunFolder::prepare(Some(&out), "generate", Access::Private).unwrap();
    assert_eq!(mode(folder.path()), 0o700);
    let path = folder.write_text("x.json", "{\"a\": 1}").unwrap();
    assert_eq!(mode(&path), 0o600);
    let back: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(back["a"], 1);
    assert!(temp_files(folder.path()).is_empty());
}

#[test]
fn an_existing_folder_is_opened_as_it_is() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mine");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, Permissions::from_mode(0o750)).unwrap();
    let folder = RunFolder::open_or_create(&dir, Access::Private).unwrap();
    assert_eq!(folder.path(), dir);
    assert_eq!(mode(&dir), 0o750);
    // A file is not a folder.
    let file = dir.join("f");
    std::fs::write(&file, "").unwrap();
    let text = RunFolder::open_or_create(&file, Access::Private)
        .unwrap_err()
        .to_string();
    assert!(text.contains(&file.display().to_string()), "{text}");
    let text = RunFolder::open(&dir.join("missing"))
        .unwrap_err()
        .to_string();
    assert!(text.contains("missing"), "{text}");
}

/// A write that fails half-way left `.results.json.tmp` behind (issue 10).
#[test]
fn a_failed_write_names_the_path_and_leaves_no_temp_file() {
    let (_tmp, folder) = new_folder(Access::Private);
    // The target is a directory: the rename over it fails after the temp
    // file was written.
    std::fs::create_dir(folder.join("results.json")).unwrap();
    let err = folder.write_text("results.json", "{}").unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&folder.join("results.json").display().to_string()),
        "{text}"
    );
    assert!(text.to_lowercase().contains("directory"), "{text}");
    assert!(
        temp_files(folder.path()).is_empty(),
        "{:?}",
        temp_files(folder.path())
    );
    // The same through the text writer, in a subfolder.
    std::fs::create_dir_all(folder.join("report-files/p.svg")).unwrap();
    let err = folder
        .write_text("report-files/p.svg", "<svg/>")
        .unwrap_err();
    assert!(err.to_string().contains("p.svg"), "{err}");
    assert!(temp_files(&folder.join("report-files")).is_empty());
}

/// A read-only folder refuses the temp file; root ignores the mode bits, so
/// this case only runs as another user (the case above runs for everyone).
#[test]
fn a_write_into_a_read_only_folder_names_the_path() {
    if nix::unistd::geteuid().is_root() {
        return;
    }
    let (_tmp, folder) = new_folder(Access::Private);
    std::fs::set_permissions(folder.path(), Permissions::from_mode(0o500)).unwrap();
    let err = folder.write_text("report.md", "x").unwrap_err();
    std::fs::set_permissions(folder.path(), Permissions::from_mode(0o700)).unwrap();
    let text = err.to_string();
    assert!(
        text.contains(&folder.join("report.md").display().to_string()),
        "{text}"
    );
    assert!(temp_files(folder.path()).is_empty());
}

#[test]
fn names_outside_the_folder_are_refused() {
    let (tmp, folder) = new_folder(Access::Private);
    for name in ["../escape.txt", "/tmp/abs.txt", "", "a/../../b"] {
        assert!(folder.write_text(name, "x").is_err(), "{name}");
    }
    assert!(!tmp.path().join("escape.txt").exists());
}

#[test]
fn a_folder_without_room_is_refused_naming_it_and_the_space() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("not/yet");
    assert!(check_room(&missing, 0).is_ok());
    let e = check_room(&missing, u64::MAX / 2).unwrap_err().to_string();
    assert!(
        e.contains(&missing.display().to_string()) && e.contains("free"),
        "{e}"
    );
}

#[test]
fn the_fallback_file_is_private_and_reads_back() {
    let value = V2 {
        format_version: 2,
        a: 7,
        added: vec!["x".into()],
    };
    let path = write_fallback(&value).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("crmbench-v-") && name.ends_with(".json"),
        "{name}"
    );
    assert_eq!(mode(&path), 0o600);
    let back: V2 = read_file(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(back, value);
}
