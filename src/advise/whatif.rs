//! What-if costing with HypoPG on one dedicated connection (hypothetical
//! indexes live in the session that made them and are seen only by plain
//! EXPLAIN). Indexes are created as the connecting user; every EXPLAIN runs
//! inside the workload's tenant frame with `SET LOCAL ROLE` to the workload's
//! role, because an index the owner can use may be useless under row-level
//! security; the frame is rolled back, so the role and tenant end with it.
//! Every (statement, tenant, index set) cost is cached; calls are counted;
//! the session is reset (`hypopg_reset()`) when done.

use std::collections::HashMap;

use tokio_postgres::Client;

use super::candidates::IndexDef;
use crate::error::{Error, Result};
use crate::explain::plan::Explained;
use crate::pg::{self, Target};
use crate::schema::clone::{Purpose, WorkingCopy};
use crate::workload::frame::TenantFrame;
use crate::workload::params::Value;

/// Where candidate indexes live while they are costed.
enum Mode {
    /// HypoPG hypothetical indexes in this session, each made once and
    /// dropped when a configuration leaves it out: (oid, size) by index.
    HypoPg { made: HashMap<IndexDef, (u32, i64)> },
    /// Real indexes built on a clone of the database (no HypoPG), dropped
    /// with the clone at the end; `built` holds those that exist now.
    Real {
        copy: Box<WorkingCopy>,
        built: Vec<IndexDef>,
    },
}

/// A what-if session.
pub struct WhatIf {
    mode: Mode,
    client: Client,
    frame: TenantFrame,
    schema: String,
    cache: HashMap<(String, String, Vec<IndexDef>), f64>,
    current: Vec<IndexDef>,
    /// EXPLAIN calls made (cache misses).
    pub calls: u64,
}

impl WhatIf {
    /// Open a session on `target` (admin connection). Fails with a clear
    /// error when HypoPG is not installed in the database.
    pub async fn open(
        target: &Target,
        role: Option<&str>,
        setting: Option<&str>,
        schema: &str,
    ) -> Result<WhatIf> {
        let client = pg::connect(&target.admin()).await?;
        let has: bool = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'hypopg')",
                &[],
            )
            .await
            .map_err(|e| Error::from_pg("checking for hypopg", e))?
            .get(0);
        if !has {
            return Err(Error::State {
                message: format!("HypoPG is not installed in database {}", target.database()),
                fix: "apt-get install postgresql-15-hypopg and `crmbench schema create`/`generate` again \
                      (or --allow-ddl on an external server), or advise with real indexes"
                    .into(),
            });
        }
        client
            .batch_execute("SELECT hypopg_reset()")
            .await
            .map_err(|e| Error::from_pg("hypopg_reset()", e))?;
        Ok(WhatIf {
            mode: Mode::HypoPg {
                made: HashMap::new(),
            },
            client,
            frame: TenantFrame::new(setting).with_role(role),
            schema: schema.to_string(),
            cache: HashMap::new(),
            current: Vec::new(),
            calls: 0,
        })
    }

    /// Without HypoPG: a clone of the database where candidates are built
    /// for real (slower: each index is built; the clone is dropped at close).
    /// Nobody may be connected to the database while it is cloned.
    pub async fn open_real(
        target: &Target,
        role: Option<&str>,
        setting: Option<&str>,
        schema: &str,
    ) -> Result<WhatIf> {
        let copy = WorkingCopy::create(target, Purpose::WhatIf).await?;
        let client = match pg::connect(&copy.target().admin()).await {
            Ok(c) => c,
            Err(e) => {
                copy.remove_or_warn().await;
                return Err(e);
            }
        };
        Ok(WhatIf {
            mode: Mode::Real {
                copy: Box::new(copy),
                built: Vec::new(),
            },
            client,
            frame: TenantFrame::new(setting).with_role(role),
            schema: schema.to_string(),
            cache: HashMap::new(),
            current: Vec::new(),
            calls: 0,
        })
    }

    /// (HypoPG's size or the real size, crmbench's estimate) of `def`, bytes.
    /// The estimate counts btree deduplication, which HypoPG ignores; with
    /// real indexes the real size is exact and used for both.
    pub async fn sizes(&mut self, def: &IndexDef) -> Result<(i64, i64)> {
        let raw = self
            .set_indexes(std::slice::from_ref(def))
            .await?
            .first()
            .copied()
            .unwrap_or(8192);
        match self.mode {
            Mode::HypoPg { .. } => Ok((
                raw,
                super::size::estimate(&self.client, &self.schema, def).await?,
            )),
            Mode::Real { .. } => Ok((raw, raw)),
        }
    }

    /// "HypoPG" or "real indexes on a clone".
    pub fn method(&self) -> &'static str {
        match self.mode {
            Mode::HypoPg { .. } => "HypoPG hypothetical indexes",
            Mode::Real { .. } => "real indexes built on a clone (no HypoPG)",
        }
    }

    /// Make exactly `defs` the candidate indexes; returns each one's size,
    /// bytes (HypoPG's estimate, or the real size).
    pub async fn set_indexes(&mut self, defs: &[IndexDef]) -> Result<Vec<i64>> {
        if let Mode::Real { built, .. } = &mut self.mode {
            for old in built.iter().filter(|b| !defs.contains(b)) {
                let sql = format!(
                    "DROP INDEX IF EXISTS {}.{}",
                    super::candidates::sql_ident(&self.schema),
                    old.name()
                );
                self.client
                    .batch_execute(&sql)
                    .await
                    .map_err(|e| Error::from_pg(sql.clone(), e))?;
            }
            built.retain(|b| defs.contains(b));
            let mut sizes = Vec::with_capacity(defs.len());
            for d in defs {
                if !built.contains(d) {
                    // Visible progress: each build can take a while.
                    crate::console::err_line(format!(
                        "advise: building candidate {} on the clone ({} built now)",
                        d.name(),
                        built.len()
                    ));
                    let sql = d.create_sql(&self.schema);
                    self.client
                        .batch_execute(&sql)
                        .await
                        .map_err(|e| Error::from_pg(sql.clone(), e))?;
                    built.push(d.clone());
                }
                let size: i64 = self
                    .client
                    .query_one(
                        "SELECT pg_relation_size(format('%I.%I', $1::text, $2::text)::regclass)",
                        &[&self.schema, &d.name()],
                    )
                    .await
                    .map_err(|e| Error::from_pg("sizing a candidate", e))?
                    .get(0);
                sizes.push(size);
            }
            self.current = defs.to_vec();
            self.current.sort();
            return Ok(sizes);
        }
        let Mode::HypoPg { made } = &mut self.mode else {
            return Ok(Vec::new());
        };
        // Only the difference from the indexes in place: one round trip
        // drops what goes, one per index makes what comes (a reset and a
        // rebuild of the whole set per configuration cost a round trip per
        // index every time the statement or its relevant set changed).
        let gone: Vec<u32> = made
            .iter()
            .filter(|(d, _)| !defs.contains(d))
            .map(|(_, (oid, _))| *oid)
            .collect();
        if !gone.is_empty() {
            self.client
                .execute(
                    "SELECT hypopg_drop_index(x) FROM unnest($1::oid[]) x",
                    &[&gone],
                )
                .await
                .map_err(|e| Error::from_pg("hypopg_drop_index()", e))?;
            made.retain(|d, _| defs.contains(d));
        }
        let mut sizes = Vec::with_capacity(defs.len());
        for d in defs {
            if let Some((_, size)) = made.get(d) {
                sizes.push(*size);
                continue;
            }
            let sql = d.create_sql(&self.schema);
            let row = self
                .client
                .query_one(
                    "SELECT indexrelid, hypopg_relation_size(indexrelid) FROM hypopg_create_index($1)",
                    &[&sql],
                )
                .await
                .map_err(|e| Error::from_pg(format!("hypopg_create_index({sql})"), e))?;
            let (oid, size): (u32, i64) = (row.get(0), row.get(1));
            made.insert(d.clone(), (oid, size));
            sizes.push(size);
        }
        self.current = defs.to_vec();
        self.current.sort();
        Ok(sizes)
    }

    /// Estimated total cost of `sql` with `params` for `tenant` with exactly
    /// `indexes` as hypothetical indexes (pass only those on tables the
    /// statement touches: the cache is keyed by them), as the workload's role.
    pub async fn cost(
        &mut self,
        sql: &str,
        params: &[Value],
        tenant: &str,
        indexes: &[IndexDef],
    ) -> Result<f64> {
        let mut indexes = indexes.to_vec();
        indexes.sort();
        let key = (
            sql.to_string(),
            format!("{tenant}|{params:?}"),
            indexes.clone(),
        );
        if let Some(c) = self.cache.get(&key) {
            return Ok(*c);
        }
        if indexes != self.current {
            self.set_indexes(&indexes).await?;
        }
        self.frame
            .begin(&self.client, tenant, "what-if costing")
            .await?;
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|v| v as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        let result = self
            .client
            .query_one(&format!("EXPLAIN (FORMAT JSON) {sql}"), &refs)
            .await;
        self.frame.rollback(&self.client, "what-if costing").await?;
        let row = result.map_err(|e| Error::from_pg(format!("EXPLAIN {sql}"), e))?;
        let json: serde_json::Value = row.get(0);
        let plan = Explained::parse(&json).map_err(|m| Error::Internal {
            message: m,
            fix: String::new(),
        })?;
        self.calls += 1;
        let cost = plan.plan.total_cost;
        self.cache.insert(key, cost);
        Ok(cost)
    }

    /// Leave nothing behind: reset the session, or drop the clone.
    pub async fn close(self) -> Result<()> {
        match self.mode {
            Mode::HypoPg { .. } => self
                .client
                .batch_execute("SELECT hypopg_reset()")
                .await
                .map_err(|e| Error::from_pg("hypopg_reset()", e)),
            Mode::Real { copy, .. } => {
                drop(self.client);
                copy.remove().await
            }
        }
    }
}
