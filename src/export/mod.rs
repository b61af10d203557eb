//! `crmbench export`: a customer's or a tenant's rows written out, one file
//! per table, with a manifest of counts and checksums (GDPR Art. 15 access
//! requests; moving a tenant to another server).
//!
//! The rows are the erasure's own (one definition of "the subject's data"):
//! for a customer, its row, every row reaching it through the foreign keys
//! and the policy's declared references; for a tenant, every row carrying
//! the tenant column, and the tenant's row. All are read in one
//! REPEATABLE READ snapshot, checksums included ([`checksum`]: order-free),
//! so the manifest describes exactly the files. A tenant's CSV is written by
//! `COPY`, at the server's speed, and [`import`] loads it into another
//! schema of the same shape and proves the checksums equal.

pub mod checksum;
pub mod files;
pub mod import;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::audit::catalog::Catalog;
use crate::erase::plan::Subject;
use crate::erase::{Policy, pg_err, resolve, statements};
use crate::error::Result;
use crate::pg::{self, Target, quote_ident};
use crate::runfolder::{Access, RunFolder};
use checksum::Checksum;

/// Version of `manifest.json`.
pub const FORMAT_VERSION: u32 = 1;

/// How rows are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One JSON object per line (`row_to_json`).
    Jsonl,
    /// CSV with a header, by `COPY` (what [`import`] reads).
    Csv,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
        }
    }
}

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Schema.
    pub schema: String,
    /// A customer's key, or None for a tenant.
    pub customer: Option<String>,
    /// The tenant (required for a tenant export; found for a customer).
    pub tenant: Option<String>,
    /// The erasure policy (subject table, declared references).
    pub policy: Option<PathBuf>,
    /// Output folder.
    pub out: PathBuf,
    /// Row format (default: JSON lines for a customer, CSV for a tenant).
    pub format: Option<Format>,
    /// The tenant column.
    pub column: String,
}

/// One table's file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableFile {
    /// Table.
    pub table: String,
    /// File in the folder.
    pub file: String,
    /// The column holding the tenant (the key, on the tenants table).
    pub tenant_column: String,
    /// Rows and their checksum, read in the export's snapshot.
    pub checksum: Checksum,
    /// Bytes written.
    pub bytes: u64,
}

/// `manifest.json`: what an export holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Schema exported.
    pub schema: String,
    /// `customer <id>` or `tenant`.
    pub subject: String,
    /// The tenant.
    pub tenant: String,
    /// Row format.
    pub format: Format,
    /// Per table, parents before the tables referencing them (the order an
    /// import loads them in).
    pub tables: Vec<TableFile>,
    /// Seconds the export took.
    pub seconds: f64,
}

impl Manifest {
    /// What `export` prints.
    pub fn render(&self, out: &std::path::Path) -> String {
        let mut s = format!(
            "export of {} in tenant {} to {}:\n",
            self.subject,
            self.tenant,
            out.display()
        );
        for t in &self.tables {
            s.push_str(&format!(
                "  {:<24} {:>8} rows {:>10} bytes  {}\n",
                t.table, t.checksum.rows, t.bytes, t.file
            ));
        }
        let rows: i64 = self.tables.iter().map(|t| t.checksum.rows).sum();
        s.push_str(&format!(
            "{rows} rows in {:.2} s; manifest.json holds the checksums\n",
            self.seconds
        ));
        s
    }
}

/// Export the subject's rows into `opts.out`.
pub async fn export(target: &Target, opts: &ExportOptions) -> Result<Manifest> {
    let policy = match &opts.policy {
        Some(p) => Policy::load(p)?,
        None => Policy::default(),
    };
    let named = (opts.customer.as_deref(), opts.tenant.as_deref());
    let (tenant, subject) = resolve(target, &opts.schema, &opts.column, &policy, named).await?;
    let format = opts.format.unwrap_or(match subject {
        Subject::Row { .. } => Format::Jsonl,
        Subject::Tenant => Format::Csv,
    });
    let folder = RunFolder::open_or_create(&opts.out, Access::Private)?;
    let started = Instant::now();
    let mut client = pg::connect(&target.admin()).await?;
    let cat = Catalog::load(&client, &opts.schema, "").await?;
    // One predicate per table: the union of every path reaching it.
    let mut tables: Vec<(String, String, Vec<String>)> = Vec::new();
    for s in statements(&cat, &opts.column, &policy, &tenant, &subject).1 {
        match tables.iter_mut().find(|(t, _, _)| *t == s.table) {
            Some((_, _, preds)) => preds.push(s.predicate),
            None => tables.push((s.table, s.tenant_column, vec![s.predicate])),
        }
    }
    tables.reverse(); // the erasure goes leaves first; an import parents first
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(pg_err("BEGIN"))?;
    let mut written = Vec::new();
    for (table, tenant_column, preds) in tables {
        let predicate = preds
            .iter()
            .map(|p| format!("({p})"))
            .collect::<Vec<_>>()
            .join(" OR ");
        let relation = format!("{}.{}", quote_ident(&opts.schema), quote_ident(&table));
        let file = format!("{table}.{}", format.extension());
        let bytes = files::write(&tx, &folder, &file, &relation, &predicate, format).await?;
        let checksum = checksum::table(&tx, &opts.schema, &table, &predicate).await?;
        written.push(TableFile {
            table,
            file,
            tenant_column,
            checksum,
            bytes,
        });
    }
    tx.commit().await.map_err(pg_err("COMMIT"))?;
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        schema: opts.schema.clone(),
        subject: match &subject {
            Subject::Row { table, id, .. } => format!("{table} {id}"),
            Subject::Tenant => "tenant".into(),
        },
        tenant,
        format,
        tables: written,
        seconds: started.elapsed().as_secs_f64(),
    };
    folder.write(&manifest)?;
    Ok(manifest)
}

/// Rows per table of a manifest, for tests and reports.
pub fn rows(manifest: &Manifest) -> BTreeMap<String, i64> {
    manifest
        .tables
        .iter()
        .map(|t| (t.table.clone(), t.checksum.rows))
        .collect()
}
