//! What-if costing with HypoPG on one dedicated connection (hypothetical
//! indexes live in the session that made them and are seen only by plain
//! EXPLAIN). Indexes are created as the connecting user; every EXPLAIN runs
//! after `SET ROLE` to the workload's role with the tenant set, because an
//! index the owner can use may be useless under row-level security. Every
//! (statement, tenant, index set) cost is cached; calls are counted; the
//! session is reset (`hypopg_reset()`, `RESET ROLE`) when done.

use std::collections::HashMap;

use tokio_postgres::Client;

use super::candidates::IndexDef;
use crate::error::{Error, Result};
use crate::explain::plan::Explained;
use crate::pg::{self, Target, quote_ident};
use crate::workload::params::Value;

/// A what-if session.
pub struct WhatIf {
    client: Client,
    role: Option<String>,
    setting: Option<String>,
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
            return Err(Error::Usage {
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
            client,
            role: role.map(str::to_string),
            setting: setting.map(str::to_string),
            schema: schema.to_string(),
            cache: HashMap::new(),
            current: Vec::new(),
            calls: 0,
        })
    }

    /// Make exactly `defs` the hypothetical indexes of the session; returns
    /// HypoPG's size estimate of each, bytes.
    pub async fn set_indexes(&mut self, defs: &[IndexDef]) -> Result<Vec<i64>> {
        self.client
            .batch_execute("RESET ROLE; SELECT hypopg_reset()")
            .await
            .map_err(|e| Error::from_pg("hypopg_reset()", e))?;
        let mut sizes = Vec::with_capacity(defs.len());
        for d in defs {
            let sql = d.create_sql(&self.schema);
            let row = self
                .client
                .query_one(
                    "SELECT hypopg_relation_size(indexrelid) FROM hypopg_create_index($1)",
                    &[&sql],
                )
                .await
                .map_err(|e| Error::from_pg(format!("hypopg_create_index({sql})"), e))?;
            sizes.push(row.get(0));
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
        if let Some(role) = &self.role {
            self.client
                .batch_execute(&format!("SET ROLE {}", quote_ident(role)))
                .await
                .map_err(|e| Error::from_pg(format!("SET ROLE {role}"), e))?;
        }
        if let Some(setting) = &self.setting {
            self.client
                .query("SELECT set_config($1, $2, false)", &[setting, &tenant])
                .await
                .map_err(|e| Error::from_pg("set_config", e))?;
        }
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|v| v as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        let result = self
            .client
            .query_one(&format!("EXPLAIN (FORMAT JSON) {sql}"), &refs)
            .await;
        self.client
            .batch_execute("RESET ROLE")
            .await
            .map_err(|e| Error::from_pg("RESET ROLE", e))?;
        let row = result.map_err(|e| Error::from_pg(format!("EXPLAIN {sql}"), e))?;
        let json: serde_json::Value = row.get(0);
        let plan = Explained::parse(&json).map_err(|m| Error::Usage {
            message: m,
            fix: String::new(),
        })?;
        self.calls += 1;
        let cost = plan.plan.total_cost;
        self.cache.insert(key, cost);
        Ok(cost)
    }

    /// Leave nothing behind in the session.
    pub async fn close(self) -> Result<()> {
        self.client
            .batch_execute("RESET ROLE; SELECT hypopg_reset()")
            .await
            .map_err(|e| Error::from_pg("hypopg_reset()", e))
    }
}
