//! The conversion proven on the data: `old EXCEPT ALL new` (and the other
//! way), per-tenant counts and checksums, the catalog audit of the
//! converted table against the original's, and the expired partitions
//! holding exactly the expired rows.

use tokio_postgres::Client;

use super::convert::{Plan, partition_name};
use crate::error::{Error, Result};
use crate::pg::Target;

fn q(context: &'static str) -> impl Fn(tokio_postgres::Error) -> Error {
    move |e| Error::from_pg(context, e)
}

async fn count(client: &Client, sql: &str, context: &'static str) -> Result<i64> {
    Ok(client.query_one(sql, &[]).await.map_err(q(context))?.get(0))
}

/// Rows of `old EXCEPT ALL new` and of `new EXCEPT ALL old`, after the swap.
pub async fn except_all(client: &Client, plan: &Plan) -> Result<(i64, i64)> {
    let new = plan.table.qualified(&plan.table.name);
    let old = plan.table.qualified(&format!("{}_old", plan.table.name));
    let a = count(
        client,
        &format!("SELECT count(*) FROM (SELECT * FROM {old} EXCEPT ALL SELECT * FROM {new}) d"),
        "comparing the old table with the new",
    )
    .await?;
    let b = count(
        client,
        &format!("SELECT count(*) FROM (SELECT * FROM {new} EXCEPT ALL SELECT * FROM {old}) d"),
        "comparing the new table with the old",
    )
    .await?;
    Ok((a, b))
}

/// Tenants whose row count and order-free checksum agree between the old
/// and the new table, and all tenants (one tenant: the whole table).
pub async fn tenants(client: &Client, plan: &Plan) -> Result<(i64, i64)> {
    let new = plan.table.qualified(&plan.table.name);
    let old = plan.table.qualified(&format!("{}_old", plan.table.name));
    let key = plan
        .table
        .tenant
        .as_deref()
        .map_or("0".to_string(), crate::pg::quote_ident);
    let side = |t: &str| {
        format!(
            "SELECT {key} AS k, count(*) AS c, sum(hashtextextended(r::text, 0)::numeric) AS h \
             FROM {t} r GROUP BY 1"
        )
    };
    let r = client
        .query_one(
            &format!(
                "WITH o AS ({}), n AS ({}) SELECT count(*) FILTER (WHERE o.c = n.c AND o.h = n.h), \
                 count(*) FROM o FULL JOIN n USING (k)",
                side(&old),
                side(&new)
            ),
            &[],
        )
        .await
        .map_err(q("comparing counts and checksums per tenant"))?;
    Ok((r.get(0), r.get(1)))
}

/// Rows before the cutoff.
pub async fn before_cutoff(client: &Client, plan: &Plan) -> Result<i64> {
    let t = plan.table.qualified(&plan.table.name);
    count(
        client,
        &format!(
            "SELECT count(*) FROM {t} WHERE {} < '{}'",
            crate::pg::quote_ident(&plan.column),
            plan.cutoff
        ),
        "counting the expired rows",
    )
    .await
}

/// Rows in the partitions that expire, and rows before the cutoff.
pub async fn expired(client: &Client, plan: &Plan) -> Result<(i64, i64)> {
    let before = before_cutoff(client, plan).await?;
    let mut in_parts = 0;
    for m in plan.expired() {
        let p = plan.table.qualified(&partition_name(&plan.table.name, m));
        in_parts += count(
            client,
            &format!("SELECT count(*) FROM {p}"),
            "counting an expired partition's rows",
        )
        .await?;
    }
    Ok((in_parts, before))
}

/// Catalog audit findings (rule and object) touching the table.
pub async fn audit_findings(target: &Target, plan: &Plan) -> Result<Vec<String>> {
    let opts = crate::audit::AuditOptions {
        schema: plan.table.schema.clone(),
        app_role: crate::pg::roles::APP.into(),
        ..Default::default()
    };
    let report = crate::audit::audit_database(target, &opts).await?;
    let name = &plan.table.name;
    Ok(report
        .findings
        .iter()
        .filter(|f| f.object.contains(name.as_str()))
        .map(|f| format!("{:?} {}: {}", f.rule, f.object, f.message))
        .collect())
}

/// Findings of `after` that `before` did not have, the object names of the
/// old table mapped to the new (`_old` suffix removed).
pub fn new_findings(before: &[String], after: &[String], plan: &Plan) -> Vec<String> {
    let old = format!("{}_old", plan.table.name);
    let before: Vec<String> = before
        .iter()
        .map(|b| b.replace(&old, &plan.table.name))
        .collect();
    after
        .iter()
        .filter(|a| !a.contains(&old) && !before.contains(a))
        .cloned()
        .collect()
}
