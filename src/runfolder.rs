//! The run folder: every stage reads and writes plain files in one folder
//! (`--out DIR`, default a new timestamped folder under `reports/`, with
//! `reports/latest` pointing at the newest).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};

/// Where runs go by default.
pub const REPORTS: &str = "reports";

/// Create (if needed) the run folder: `out`, or `reports/<UTC timestamp>-<stage>`
/// with `reports/latest` re-pointed at it.
pub fn prepare(out: Option<&Path>, stage: &str) -> Result<PathBuf> {
    let dir = match out {
        Some(dir) => dir.to_path_buf(),
        None => {
            let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
            PathBuf::from(REPORTS).join(format!("{stamp}-{stage}"))
        }
    };
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating run folder", &dir, e))?;
    if out.is_none() {
        let latest = PathBuf::from(REPORTS).join("latest");
        let _ = std::fs::remove_file(&latest);
        if let Some(name) = dir.file_name() {
            // A relative link keeps working when the checkout moves.
            std::os::unix::fs::symlink(name, &latest)
                .map_err(|e| Error::io("linking", &latest, e))?;
        }
    }
    Ok(dir)
}

/// Write `value` as pretty JSON to `dir/name`, atomically (temp file + rename),
/// so a crash never leaves a half-written results file.
pub fn write_json<T: Serialize>(dir: &Path, name: &str, value: &T) -> Result<PathBuf> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Json {
        action: "serializing",
        path: path.clone(),
        source: e,
    })?;
    std::fs::write(&tmp, text + "\n").map_err(|e| Error::io("writing", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io("renaming into", &path, e))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_json_atomically_into_given_folder() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run1");
        let folder = prepare(Some(&out), "generate").unwrap();
        let path = write_json(&folder, "x.json", &serde_json::json!({"a": 1})).unwrap();
        let back: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(back["a"], 1);
        assert!(!folder.join(".x.json.tmp").exists());
    }
}
