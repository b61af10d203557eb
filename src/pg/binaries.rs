//! Finding the PostgreSQL server binaries (`initdb`, `pg_ctl`, `postgres`).
//!
//! Order: an explicit directory (`--pg-bindir` / `CRMBENCH_PG_BINDIR`), then
//! `pg_config --bindir`, then `PATH`, then `/usr/lib/postgresql/*/bin` where the
//! newest version that has HypoPG installed wins (else the newest).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};

/// Programs a directory must hold to run a private server.
pub const REQUIRED: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

/// A directory of server binaries, with the version they report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Binaries {
    /// Directory holding `initdb`, `pg_ctl`, `postgres`.
    pub bindir: PathBuf,
    /// Major version (e.g. 15), from the directory name or `postgres --version`.
    pub major: u32,
}

impl Binaries {
    /// Full path to one program in the directory.
    pub fn program(&self, name: &str) -> PathBuf {
        self.bindir.join(name)
    }
}

/// Where to look for Debian-style versioned installs and their extensions.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Holds `<major>/bin` folders (Debian: `/usr/lib/postgresql`).
    pub lib_root: PathBuf,
    /// Holds `<major>/extension` folders (Debian: `/usr/share/postgresql`).
    pub share_root: PathBuf,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            lib_root: PathBuf::from("/usr/lib/postgresql"),
            share_root: PathBuf::from("/usr/share/postgresql"),
        }
    }
}

/// Find server binaries. `explicit` comes from `--pg-bindir` or the environment.
pub fn discover(explicit: Option<&Path>) -> Result<Binaries> {
    let mut searched = Vec::new();
    if let Some(dir) = explicit {
        return check_dir(dir).ok_or_else(|| Error::Usage {
            message: format!(
                "--pg-bindir {} does not hold {}",
                dir.display(),
                REQUIRED.join(", ")
            ),
            fix: "point --pg-bindir (or CRMBENCH_PG_BINDIR) at the folder with initdb, e.g. \
                  /usr/lib/postgresql/15/bin"
                .into(),
        });
    }
    if let Some(dir) = pg_config_bindir() {
        if let Some(found) = check_dir(&dir) {
            return Ok(found);
        }
        searched.push(format!("pg_config --bindir ({})", dir.display()));
    } else {
        searched.push("pg_config --bindir".into());
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if let Some(found) = check_dir(&dir) {
                return Ok(found);
            }
        }
    }
    searched.push("PATH".into());
    let layout = Layout::default();
    if let Some(found) = newest_versioned(&layout) {
        return Ok(found);
    }
    searched.push(format!("{}/*/bin", layout.lib_root.display()));
    Err(Error::BinariesNotFound {
        searched: searched.join(", "),
    })
}

/// Among `<lib_root>/<major>/bin`, the newest major with HypoPG installed, else
/// the newest.
pub fn newest_versioned(layout: &Layout) -> Option<Binaries> {
    let entries = std::fs::read_dir(&layout.lib_root).ok()?;
    let mut found: Vec<(bool, Binaries)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let major: u32 = e.file_name().to_str()?.parse().ok()?;
            let mut bins = check_dir(&e.path().join("bin"))?;
            bins.major = major;
            let hypopg = layout
                .share_root
                .join(major.to_string())
                .join("extension")
                .join("hypopg.control")
                .exists();
            Some((hypopg, bins))
        })
        .collect();
    found.sort_by_key(|(hypopg, b)| (*hypopg, b.major));
    found.pop().map(|(_, b)| b)
}

fn pg_config_bindir() -> Option<PathBuf> {
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let dir = text.trim();
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

/// `Some` when `dir` holds every required program.
fn check_dir(dir: &Path) -> Option<Binaries> {
    if !REQUIRED.iter().all(|p| is_executable(&dir.join(p))) {
        return None;
    }
    let major = version_from_dir_name(dir).or_else(|| version_from_binary(dir))?;
    Some(Binaries {
        bindir: dir.to_path_buf(),
        major,
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// `/usr/lib/postgresql/15/bin` → 15.
fn version_from_dir_name(dir: &Path) -> Option<u32> {
    dir.parent()?.file_name()?.to_str()?.parse().ok()
}

fn version_from_binary(dir: &Path) -> Option<u32> {
    let out = Command::new(dir.join("postgres"))
        .arg("--version")
        .output()
        .ok()?;
    parse_major(&String::from_utf8_lossy(&out.stdout))
}

/// "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)" → 15.
pub fn parse_major(version_line: &str) -> Option<u32> {
    let after = version_line.split(')').nth(1)?.trim();
    let number = after.split_whitespace().next()?;
    number.split('.').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn fake_install(root: &Path, major: u32, hypopg: bool) {
        let bin = root.join("lib").join(major.to_string()).join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for p in REQUIRED {
            let f = bin.join(p);
            std::fs::write(&f, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        if hypopg {
            let ext = root.join("share").join(major.to_string()).join("extension");
            std::fs::create_dir_all(&ext).unwrap();
            std::fs::write(ext.join("hypopg.control"), "").unwrap();
        }
    }

    fn layout(root: &Path) -> Layout {
        Layout {
            lib_root: root.join("lib"),
            share_root: root.join("share"),
        }
    }

    #[test]
    fn prefers_newest_version_with_hypopg() {
        let dir = tempfile::tempdir().unwrap();
        fake_install(dir.path(), 13, false);
        fake_install(dir.path(), 15, true);
        fake_install(dir.path(), 16, false);
        let found = newest_versioned(&layout(dir.path())).unwrap();
        assert_eq!(found.major, 15);
        assert!(found.bindir.ends_with("15/bin"));
    }

    #[test]
    fn falls_back_to_newest_without_hypopg() {
        let dir = tempfile::tempdir().unwrap();
        fake_install(dir.path(), 13, false);
        fake_install(dir.path(), 16, false);
        assert_eq!(newest_versioned(&layout(dir.path())).unwrap().major, 16);
    }

    #[test]
    fn skips_incomplete_installs() {
        let dir = tempfile::tempdir().unwrap();
        fake_install(dir.path(), 14, false);
        fake_install(dir.path(), 17, false);
        std::fs::remove_file(dir.path().join("lib/17/bin/pg_ctl")).unwrap();
        assert_eq!(newest_versioned(&layout(dir.path())).unwrap().major, 14);
    }

    #[test]
    fn explicit_dir_without_programs_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = discover(Some(dir.path())).unwrap_err();
        assert!(matches!(err, Error::Usage { .. }), "{err:?}");
        assert!(err.to_string().contains("initdb"));
    }

    #[test]
    fn parses_version_lines() {
        assert_eq!(
            parse_major("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"),
            Some(15)
        );
        assert_eq!(parse_major("postgres (PostgreSQL) 17devel"), None);
        assert_eq!(parse_major("postgres (PostgreSQL) 16.2"), Some(16));
    }
}
