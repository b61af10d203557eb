//! What `rehearse` is given: a `.sql` file, a folder of ordered `.sql`
//! files, a Prisma `migrations/` folder (each `<name>/migration.sql` in
//! order) or `advise`'s own `migration.sql` — read into files of text, with
//! how the statements reach the server (`--apply-as`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How a migration's statements are sent, because it changes what fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplyAs {
    /// One statement at a time, each in its own implicit transaction unless
    /// the file says `BEGIN` (psql's default).
    Statement,
    /// Each file as one multi-statement simple query: PostgreSQL runs it as
    /// one implicit transaction, so `CREATE INDEX CONCURRENTLY` next to any
    /// other statement fails with 25001.
    File,
    /// Prisma Migrate's way: each `migration.sql` sent as one query, as
    /// Prisma has historically done (the same as `File`; newer Prisma
    /// versions are unverified here).
    Prisma,
}

impl ApplyAs {
    /// Whether a whole file goes to the server as one query.
    pub fn whole_file(self) -> bool {
        matches!(self, ApplyAs::File | ApplyAs::Prisma)
    }

    /// The name as `--apply-as` spells it.
    pub fn name(self) -> &'static str {
        match self {
            ApplyAs::Statement => "statement",
            ApplyAs::File => "file",
            ApplyAs::Prisma => "prisma",
        }
    }
}

/// One file of a migration, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationFile {
    /// The name findings and records use: the path relative to what the user
    /// gave (`20240101_add_index/migration.sql`), or the file name.
    pub name: String,
    /// Where it was read from.
    pub path: PathBuf,
    /// Its text.
    pub text: String,
}

/// A migration: its files in the order they are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// Files in order.
    pub files: Vec<MigrationFile>,
    /// Whether it was read as a Prisma `migrations/` folder.
    pub prisma: bool,
}

impl Migration {
    /// `--apply-as` when the user gave none: Prisma's way for a Prisma
    /// folder, one statement at a time otherwise.
    pub fn default_apply_as(&self) -> ApplyAs {
        if self.prisma {
            ApplyAs::Prisma
        } else {
            ApplyAs::Statement
        }
    }
}

/// Read a migration from a file or folder.
pub fn read_migration(path: &Path) -> Result<Migration> {
    let meta = std::fs::metadata(path).map_err(|e| Error::Usage {
        message: format!("cannot read migration {}: {e}", path.display()),
        fix: "give a .sql file, a folder of .sql files or a Prisma migrations/ folder".into(),
    })?;
    if meta.is_file() {
        let file = read_one(path, display_name(path))?;
        return Ok(Migration {
            files: vec![file],
            prisma: false,
        });
    }
    let mut entries = list_dir(path)?;
    entries.sort();
    let prisma_dirs: Vec<&PathBuf> = entries
        .iter()
        .filter(|p| p.is_dir() && p.join("migration.sql").is_file())
        .collect();
    let files = if !prisma_dirs.is_empty() {
        // Prisma names folders `<timestamp>_<name>`, so name order is apply order.
        prisma_dirs
            .into_iter()
            .map(|dir| {
                let name = format!("{}/migration.sql", display_name(dir));
                read_one(&dir.join("migration.sql"), name)
            })
            .collect::<Result<Vec<_>>>()?
    } else {
        entries
            .iter()
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "sql"))
            .map(|p| read_one(p, display_name(p)))
            .collect::<Result<Vec<_>>>()?
    };
    if files.is_empty() {
        return Err(Error::Usage {
            message: format!(
                "{} holds no .sql files and no Prisma migration folders (<name>/migration.sql)",
                path.display()
            ),
            fix: "give a .sql file, a folder of .sql files or a Prisma migrations/ folder".into(),
        });
    }
    let prisma = files.iter().any(|f| f.name.ends_with("/migration.sql"));
    Ok(Migration { files, prisma })
}

/// The rollback to use when none is given: `rollback.sql` beside `advise`'s
/// `migration.sql`, if there is one.
pub fn default_rollback(migration: &Path) -> Option<PathBuf> {
    if migration.file_name()? != "migration.sql" {
        return None;
    }
    let candidate = migration.with_file_name("rollback.sql");
    candidate.is_file().then_some(candidate)
}

fn list_dir(path: &Path) -> Result<Vec<PathBuf>> {
    let read = std::fs::read_dir(path).map_err(|e| Error::Usage {
        message: format!("cannot list migration folder {}: {e}", path.display()),
        fix: "check the folder's permissions".into(),
    })?;
    let mut out = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| Error::Usage {
            message: format!("cannot list migration folder {}: {e}", path.display()),
            fix: "check the folder's permissions".into(),
        })?;
        out.push(entry.path());
    }
    Ok(out)
}

fn read_one(path: &Path, name: String) -> Result<MigrationFile> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Usage {
        message: format!("cannot read migration file {}: {e}", path.display()),
        fix: "check the file exists, is readable and is UTF-8 text".into(),
    })?;
    Ok(MigrationFile {
        name,
        path: path.to_path_buf(),
        text,
    })
}

fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
