//! The run folder, the contract between stages: every stage reads and writes
//! plain files in one folder (`--out DIR`, default a new folder
//! `reports/<UTC stamp>-<stage>` with `reports/latest` pointing at the
//! newest). [`RunFolder`] creates such a folder exclusively (two runs never
//! share one) or opens an existing one; every versioned JSON file (a
//! [`RunFile`]) goes through one reader ([`RunFolder::read`], [`read_file`])
//! and one writer ([`RunFolder::write`]), and every other file through
//! [`RunFolder::write_text`]. Writes are atomic (temp file in the same folder,
//! fsync, rename, fsync of the folder), so a crash or a full disk never leaves
//! a half-written file or a stray temp file; [`check_room`] says before long
//! work whether a folder can take its files, and [`write_fallback`] keeps a
//! file the folder could not take after all. Folders and files are private
//! (0700 / 0600) unless the folder is [`Access::Shareable`]: results, plans
//! and reports hold data (sampled values, server settings).
//!
//! Compatibility, because CI users keep yesterday's results as a baseline: a
//! reader accepts its type's [`RunFile::FORMAT_VERSION`] and the one before;
//! fields added since are `#[serde(default)]`, so an older file reads as the
//! current version; a version is bumped only for a breaking change, and a
//! newer or unknown one is refused naming the file.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// Where runs go by default.
pub const REPORTS: &str = "reports";

/// The link under [`REPORTS`] to the newest default run folder.
pub const LATEST: &str = "latest";

/// Most default folders one stage may create within one second before
/// creation gives up (a bound, not a limit anyone meets).
const MAX_SUFFIX: u32 = 10_000;

/// Who may read a run folder's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Access {
    /// Folders 0700, files 0600: only the owner reads results, plans
    /// (sampled values) and reports. The default.
    #[default]
    Private,
    /// Folders 0755, files 0644: a report meant to be published.
    Shareable,
}

impl Access {
    /// Mode of the folders crmbench creates.
    pub fn dir_mode(self) -> u32 {
        match self {
            Access::Private => 0o700,
            Access::Shareable => 0o755,
        }
    }

    /// Mode of the files crmbench writes.
    pub fn file_mode(self) -> u32 {
        match self {
            Access::Private => 0o600,
            Access::Shareable => 0o644,
        }
    }
}

/// A versioned JSON file of a run folder: its name, its format version and
/// the command that writes it (named in errors). The type itself carries a
/// `format_version` field, written as [`RunFile::FORMAT_VERSION`].
pub trait RunFile: Serialize + DeserializeOwned {
    /// File name inside the run folder, e.g. `results.json`.
    const FILE: &'static str;
    /// Version this crmbench writes; it also reads the one before.
    const FORMAT_VERSION: u32;
    /// The command that writes it, e.g. `crmbench run`.
    const MADE_BY: &'static str;
}

// Every versioned file crmbench writes, in one place.

impl RunFile for crate::export::Manifest {
    const FILE: &'static str = "manifest.json";
    const FORMAT_VERSION: u32 = crate::export::FORMAT_VERSION;
    const MADE_BY: &'static str = "crmbench export";
}

impl RunFile for crate::generate::GenerateReport {
    const FILE: &'static str = "generate.json";
    // generate fills `format_version: 1` itself; keep the two equal.
    const FORMAT_VERSION: u32 = 1;
    const MADE_BY: &'static str = "crmbench generate";
}

impl RunFile for crate::results::Results {
    const FILE: &'static str = "results.json";
    const FORMAT_VERSION: u32 = crate::results::FORMAT_VERSION;
    const MADE_BY: &'static str = "crmbench run";
}

impl RunFile for crate::explain::PlansFile {
    const FILE: &'static str = "plans.json";
    const FORMAT_VERSION: u32 = crate::explain::FORMAT_VERSION;
    const MADE_BY: &'static str = "crmbench explain";
}

impl RunFile for crate::advise::Advice {
    const FILE: &'static str = "advice.json";
    const FORMAT_VERSION: u32 = crate::advise::FORMAT_VERSION;
    const MADE_BY: &'static str = "crmbench advise";
}

impl RunFile for crate::report::json::ReportSummary {
    const FILE: &'static str = "report.json";
    const FORMAT_VERSION: u32 = crate::report::json::FORMAT_VERSION;
    const MADE_BY: &'static str = "crmbench report";
}

/// One run folder and who may read what is written into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFolder {
    dir: PathBuf,
    access: Access,
}

impl RunFolder {
    /// The folder of a stage: `out` (opened, or created when missing), or a
    /// new `reports/<UTC stamp>-<stage>` with `reports/latest` re-pointed at it.
    pub fn prepare(out: Option<&Path>, stage: &str, access: Access) -> Result<RunFolder> {
        match out {
            Some(dir) => RunFolder::open_or_create(dir, access),
            None => RunFolder::create_new(Path::new(REPORTS), stage, access),
        }
    }

    /// The folder of a stage that adds to a run: `out`, else `reports/latest`
    /// when it exists (the newest run, whose results and plans it reads),
    /// else a new folder.
    pub fn prepare_or_latest(out: Option<&Path>, stage: &str, access: Access) -> Result<RunFolder> {
        let latest = Path::new(REPORTS).join(LATEST);
        match out {
            Some(dir) => RunFolder::open_or_create(dir, access),
            None if latest.is_dir() => RunFolder::open_or_create(&latest, access),
            None => RunFolder::create_new(Path::new(REPORTS), stage, access),
        }
    }

    /// A new folder `<reports>/<UTC stamp>-<stage>`, created exclusively: when
    /// another run took that name in the same second, `-2`, `-3` … is added.
    /// `<reports>/latest` is re-pointed at it atomically.
    pub fn create_new(reports: &Path, stage: &str, access: Access) -> Result<RunFolder> {
        let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string();
        let folder = RunFolder::create_stamped(reports, &stamp, stage, access)?;
        if let Some(name) = folder.dir.file_name() {
            point_latest(reports, Path::new(name))?;
        }
        Ok(folder)
    }

    /// [`RunFolder::create_new`] with a given stamp and without the link.
    fn create_stamped(
        reports: &Path,
        stamp: &str,
        stage: &str,
        access: Access,
    ) -> Result<RunFolder> {
        std::fs::create_dir_all(reports).map_err(|e| Error::io("creating", reports, e))?;
        for n in 1..=MAX_SUFFIX {
            let name = match n {
                1 => format!("{stamp}-{stage}"),
                n => format!("{stamp}-{stage}-{n}"),
            };
            let dir = reports.join(name);
            match make_dir(&dir, access) {
                Ok(()) => return Ok(RunFolder { dir, access }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io("creating run folder", &dir, e)),
            }
        }
        Err(Error::State {
            message: format!(
                "{}: {MAX_SUFFIX} run folders named {stamp}-{stage} already exist",
                reports.display()
            ),
            fix: "pass --out DIR, or clean up the reports folder".into(),
        })
    }

    /// An existing folder (`report --in`, `compare`); files written into it
    /// get [`Access::Private`] modes unless [`RunFolder::with_access`] says
    /// otherwise.
    pub fn open(dir: &Path) -> Result<RunFolder> {
        let meta = std::fs::metadata(dir).map_err(|e| Error::io("opening run folder", dir, e))?;
        if !meta.is_dir() {
            return Err(Error::io(
                "opening run folder",
                dir,
                std::io::ErrorKind::NotADirectory.into(),
            ));
        }
        Ok(RunFolder {
            dir: dir.to_path_buf(),
            access: Access::default(),
        })
    }

    /// `dir` as it is, or created (with its missing parents) when missing.
    /// A folder that exists keeps its mode: it is the user's.
    pub fn open_or_create(dir: &Path, access: Access) -> Result<RunFolder> {
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::io("creating", parent, e))?;
        }
        match make_dir(dir, access) {
            Ok(()) => Ok(RunFolder {
                dir: dir.to_path_buf(),
                access,
            }),
            // An explicit --out is shared on purpose (demo, explain after run).
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                RunFolder::open(dir).map(|f| f.with_access(access))
            }
            Err(e) => Err(Error::io("creating run folder", dir, e)),
        }
    }

    /// The same folder, writing with `access` from now on.
    pub fn with_access(self, access: Access) -> RunFolder {
        RunFolder { access, ..self }
    }

    /// The folder's path.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Who may read what is written.
    pub fn access(&self) -> Access {
        self.access
    }

    /// The path of `name` inside the folder.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.dir.join(name)
    }

    /// Read and check `T`'s file, which must exist.
    pub fn read<T: RunFile>(&self) -> Result<T> {
        read_path(&self.dir.join(T::FILE))
    }

    /// Read and check `T`'s file: `None` when absent; any other problem
    /// (unreadable, malformed, a version this crmbench does not read) is an
    /// error naming it.
    pub fn read_optional<T: RunFile>(&self) -> Result<Option<T>> {
        let path = self.dir.join(T::FILE);
        if !path.exists() {
            return Ok(None);
        }
        read_path(&path).map(Some)
    }

    /// Write `value` as `T`'s file (pretty JSON and a newline), atomically.
    pub fn write<T: RunFile>(&self, value: &T) -> Result<PathBuf> {
        self.write_serialized(T::FILE, value)
    }

    fn write_serialized<S: Serialize>(&self, name: &str, value: &S) -> Result<PathBuf> {
        let text = serde_json::to_string_pretty(value).map_err(|e| Error::Json {
            action: "serializing",
            path: self.dir.join(name),
            source: e,
        })?;
        self.write_text(name, &(text + "\n"))
    }

    /// Write a text file (`.sql`, `.prisma`, `.md`, `.svg` …), atomically;
    /// `name` may name a subfolder (`report-files/x.svg`), created as needed.
    pub fn write_text(&self, name: impl AsRef<Path>, text: &str) -> Result<PathBuf> {
        let name = name.as_ref();
        let path = self.inside(name)?;
        if let Some(sub) = name.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.create_dir(sub)?;
        }
        atomic_write(&path, text.as_bytes(), self.access.file_mode())?;
        Ok(path)
    }

    /// Create the subfolder `name` (and its missing parents) with the
    /// folder's mode; one that exists is left as it is.
    pub fn create_dir(&self, name: impl AsRef<Path>) -> Result<PathBuf> {
        let path = self.inside(name.as_ref())?;
        let mut dir = self.dir.clone();
        for part in name.as_ref().components() {
            dir.push(part);
            match make_dir(&dir, self.access) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {}
                Err(e) => return Err(Error::io("creating", &dir, e)),
            }
        }
        Ok(path)
    }

    /// `name` joined to the folder, when it stays inside it.
    fn inside(&self, name: &Path) -> Result<PathBuf> {
        let plain = name.components().all(|c| matches!(c, Component::Normal(_)));
        if !plain || name.as_os_str().is_empty() {
            return Err(Error::Internal {
                message: format!(
                    "{}: not a file name inside the run folder {}",
                    name.display(),
                    self.dir.display()
                ),
                fix: "this is a bug in crmbench: please report it".into(),
            });
        }
        Ok(self.dir.join(name))
    }

    /// The path, giving up the folder.
    pub fn into_path(self) -> PathBuf {
        self.dir
    }
}

/// Free space every run folder keeps in reserve beyond the estimate of what
/// its files take (the estimate is rough; a report and plots come later).
pub const RESERVE_BYTES: u64 = 2 << 20;

/// Check, before hours of work, that `dir` can take about `bytes` more: the
/// folder (or, when it does not exist yet, its nearest existing parent) is
/// writable and its file system has `bytes` plus [`RESERVE_BYTES`] free.
pub fn check_room(dir: &Path, bytes: u64) -> Result<()> {
    let existing = dir
        .ancestors()
        .find(|a| a.as_os_str().is_empty() || a.exists())
        .filter(|a| !a.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fix = "free space there, or pass --out DIR on a disk with room";
    if let Err(e) = nix::unistd::access(existing, nix::unistd::AccessFlags::W_OK) {
        return Err(Error::Usage {
            message: format!("{}: cannot write there: {e}", existing.display()),
            fix: fix.into(),
        });
    }
    let stat = nix::sys::statvfs::statvfs(existing)
        .map_err(|e| Error::io("checking free space on", existing, e.into()))?;
    let free = stat.blocks_available().saturating_mul(stat.fragment_size());
    let needed = bytes.saturating_add(RESERVE_BYTES);
    if free < needed {
        return Err(Error::Usage {
            message: format!(
                "{}: only {} free on {}, and the run folder needs about {}",
                dir.display(),
                human_bytes(free),
                existing.display(),
                human_bytes(needed)
            ),
            fix: fix.into(),
        });
    }
    Ok(())
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / f64::from(1u32 << 30)),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / f64::from(1u32 << 20)),
        n => format!("{:.0} KiB", n as f64 / 1024.0),
    }
}

/// The last resort when a run folder could not take `value` (a full disk):
/// a new private file (0600) `crmbench-<stem>-<UTC stamp>-<pid>.json` in
/// the system's temp folder (`$TMPDIR`, else `/tmp`); its path. A file that
/// could not be written whole is removed.
pub fn write_fallback<T: RunFile>(value: &T) -> Result<PathBuf> {
    let stem = Path::new(T::FILE)
        .file_stem()
        .map_or("file".into(), |s| s.to_string_lossy());
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    let path =
        std::env::temp_dir().join(format!("crmbench-{stem}-{stamp}-{}.json", unique_suffix()));
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Json {
        action: "serializing",
        path: path.clone(),
        source: e,
    })? + "\n";
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(Access::Private.file_mode())
        .open(&path)
        .map_err(|e| Error::io("creating", &path, e))?;
    if let Err(e) = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
    {
        let _ = std::fs::remove_file(&path);
        return Err(Error::io("writing", &path, e));
    }
    Ok(path)
}

/// Read and check a `T` at `path`: a file, or a run folder holding
/// [`RunFile::FILE`].
pub fn read_file<T: RunFile>(path: &Path) -> Result<T> {
    if path.is_dir() {
        read_path(&path.join(T::FILE))
    } else {
        read_path(path)
    }
}

fn read_path<T: RunFile>(file: &Path) -> Result<T> {
    let text = std::fs::read_to_string(file).map_err(|e| Error::io("reading", file, e))?;
    let mut value: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Json {
        action: "parsing",
        path: file.to_path_buf(),
        source: e,
    })?;
    check_version::<T>(file, &mut value)?;
    serde_json::from_value(value).map_err(|e| Error::Json {
        action: "reading",
        path: file.to_path_buf(),
        source: e,
    })
}

/// Accept `T`'s version and the one before; an older file is read as the
/// current version (the fields added since take their serde defaults).
fn check_version<T: RunFile>(file: &Path, value: &mut serde_json::Value) -> Result<()> {
    let newest = T::FORMAT_VERSION;
    let oldest = newest.saturating_sub(1).max(1);
    let found = value
        .get("format_version")
        .and_then(serde_json::Value::as_u64);
    match found {
        Some(v) if (u64::from(oldest)..=u64::from(newest)).contains(&v) => {}
        Some(v) => {
            let reads = if oldest < newest {
                format!("{oldest} or {newest}")
            } else {
                newest.to_string()
            };
            return Err(Error::RunFile {
                message: format!(
                    "{}: format_version {v} is not one this crmbench reads ({reads})",
                    file.display()
                ),
                fix: format!(
                    "re-run `{}` with this crmbench, or use the crmbench that wrote it",
                    T::MADE_BY
                ),
            });
        }
        None => {
            return Err(Error::RunFile {
                message: format!(
                    "{}: no format_version: not a crmbench {} file",
                    file.display(),
                    T::FILE
                ),
                fix: format!("pass a {} written by `{}`", T::FILE, T::MADE_BY),
            });
        }
    }
    if let Some(v) = value.get_mut("format_version") {
        *v = newest.into();
    }
    Ok(())
}

/// Create one folder with `access`'s mode, failing if it exists. The mode is
/// set at creation; the chmod after only undoes what the umask removed
/// (Shareable asks for exactly 0755), it never opens a private folder.
fn make_dir(dir: &Path, access: Access) -> std::io::Result<()> {
    DirBuilder::new().mode(access.dir_mode()).create(dir)?;
    std::fs::set_permissions(dir, Permissions::from_mode(access.dir_mode()))
}

/// A name no other writer (thread or process) uses at the same time.
fn unique_suffix() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Temp file beside `path` (created with `mode`), write, fsync, rename over
/// `path`, fsync the folder. On failure the temp file is removed and the
/// error names `path` and the cause.
fn atomic_write(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp-{}", unique_suffix()));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.set_permissions(Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io("writing", path, e));
    }
    // The rename is durable only once the folder's entry is on disk.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("syncing the folder of", path, e))
}

/// Re-point `<reports>/latest` at `name` atomically: a new link under a temp
/// name renamed over the old one, so a reader never finds it missing. A
/// relative link keeps working when the checkout moves.
fn point_latest(reports: &Path, name: &Path) -> Result<()> {
    let latest = reports.join(LATEST);
    let tmp = reports.join(format!(".{LATEST}.tmp-{}", unique_suffix()));
    std::os::unix::fs::symlink(name, &tmp).map_err(|e| Error::io("linking", &latest, e))?;
    std::fs::rename(&tmp, &latest).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io("linking", &latest, e)
    })
}

#[cfg(test)]
mod tests;
