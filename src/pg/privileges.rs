//! Least privilege: what a command needs on the target, checked before it
//! starts, so a role that lacks something fails at once with the privilege
//! named and the GRANT that fixes it — not minutes later, halfway through a
//! run, with a bare "permission denied". The README's table "What each
//! command needs on an external server" is the contract this module checks.
//!
//! - the workload's statements (`run`, `explain`, advise's verification):
//!   CONNECT on the database for the role they run as, membership in the
//!   `[context] role` for the connecting user (crmbench reaches it with
//!   `SET ROLE`), USAGE on each schema and SELECT / INSERT / UPDATE / DELETE
//!   on each table the statements read or write, found by PostgreSQL's own
//!   parser (the rolled-back check of every statement still follows and
//!   catches the rest, e.g. column privileges);
//! - `capture`: `pg_read_all_stats` (without it the other roles' rows of
//!   `pg_stat_statements` read `<insufficient privilege>`).

use tokio_postgres::Client;

use super::target::Target;
use crate::audit::rules::ident as quote_ident;
use crate::error::{Error, Result};
use crate::workload::Workload;

/// One privilege the role lacks, with the statement that grants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// The privilege, as PostgreSQL names it, and on what.
    pub privilege: String,
    /// The GRANT an administrator runs.
    pub grant: String,
}

/// `Ok` when nothing is missing, else one error naming every missing
/// privilege and every GRANT (fixing one at a time would take as many tries).
pub fn into_result(missing: Vec<Missing>) -> Result<()> {
    if missing.is_empty() {
        return Ok(());
    }
    let mut privileges: Vec<String> = Vec::new();
    let mut grants: Vec<String> = Vec::new();
    for m in missing {
        if !privileges.contains(&m.privilege) {
            privileges.push(m.privilege);
        }
        if !grants.contains(&m.grant) {
            grants.push(m.grant);
        }
    }
    Err(Error::MissingPrivilege {
        privilege: privileges.join("; "),
        fix: format!("have an administrator run: {};", grants.join("; ")),
    })
}

/// The table privileges one statement needs: (table as written, privilege).
/// Tables read need SELECT; the table an INSERT, UPDATE or DELETE writes
/// needs that privilege. A statement that does not parse needs nothing here
/// (the workload check reports it with the parser's message).
pub fn table_privileges(sql: &str) -> Vec<(String, &'static str)> {
    let Ok(tree) = crate::sql::parse(sql) else {
        return Vec::new();
    };
    let write = match tree.statement_types().first().copied() {
        Some("InsertStmt") => "INSERT",
        Some("UpdateStmt") => "UPDATE",
        Some("DeleteStmt") => "DELETE",
        _ => "SELECT",
    };
    let mut out: Vec<(String, &'static str)> = Vec::new();
    for (table, context) in &tree.tables {
        let privilege = match context {
            pg_query::Context::DML => write,
            pg_query::Context::Select => "SELECT",
            _ => continue,
        };
        let item = (table.clone(), privilege);
        if !out.contains(&item) {
            out.push(item);
        }
    }
    // pg_query collects tables in a hash set: sorted, messages are stable.
    out.sort();
    out
}

/// Check, as the admin connection, what `workload`'s statements need on
/// `target`; one error lists everything missing.
pub async fn check_workload(target: &Target, admin: &Client, workload: &Workload) -> Result<()> {
    let me = current_user(admin).await?;
    let mut missing = Vec::new();
    let runs_as = match workload.context.role.as_deref() {
        Some(role) => {
            if target.is_external() && !member_of(admin, &me, role).await? {
                missing.push(Missing {
                    privilege: format!(
                        "membership in {role} (the workload's [context] role, reached with SET ROLE)"
                    ),
                    grant: format!("GRANT {} TO {}", quote_ident(role), quote_ident(&me)),
                });
                // Its own grants are checked once the membership is there.
                return into_result(missing);
            }
            role.to_string()
        }
        None if target.is_external() => me.clone(),
        None => super::roles::APP.to_string(),
    };
    missing.extend(connect_privilege(admin, &runs_as).await?);
    let mut wanted: Vec<(String, &'static str)> = Vec::new();
    for query in &workload.queries {
        for statement in &query.statements {
            for item in table_privileges(&statement.sql) {
                if !wanted.contains(&item) {
                    wanted.push(item);
                }
            }
        }
    }
    for (table, privilege) in wanted {
        missing.extend(table_privilege(admin, &runs_as, &table, privilege).await?);
    }
    into_result(missing)
}

/// CONNECT on the current database for `role`.
async fn connect_privilege(admin: &Client, role: &str) -> Result<Option<Missing>> {
    let row = admin
        .query_one(
            "SELECT has_database_privilege($1, current_database(), 'CONNECT'), current_database()::text",
            &[&role],
        )
        .await
        .map_err(|e| Error::from_pg("checking CONNECT on the database", e))?;
    let (ok, db): (bool, String) = (row.get(0), row.get(1));
    Ok((!ok).then(|| Missing {
        privilege: format!("CONNECT on database {db} for {role}"),
        grant: format!(
            "GRANT CONNECT ON DATABASE {} TO {}",
            quote_ident(&db),
            quote_ident(role)
        ),
    }))
}

/// USAGE on the table's schema and `privilege` on the table for `role`;
/// a table the catalog does not know is left to the statement check. The
/// name is looked up in `pg_class` (readable by everyone), not with
/// `to_regclass`, which fails on a schema the connected user may not use —
/// the very thing to report. An unqualified name is searched along the
/// search path, as the statement will be.
async fn table_privilege(
    admin: &Client,
    role: &str,
    table: &str,
    privilege: &str,
) -> Result<Vec<Missing>> {
    let (schema, name) = table.split_once('.').unwrap_or(("", table));
    let row = admin
        .query_opt(
            "SELECT n.nspname::text, c.relname::text, \
                    has_schema_privilege($1, n.oid, 'USAGE'), \
                    has_table_privilege($1, c.oid, $4) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relname = $3 AND c.relkind IN ('r', 'p', 'v', 'm', 'f') \
               AND CASE WHEN $2 = '' THEN n.nspname = ANY (current_schemas(true)) \
                        ELSE n.nspname = $2 END \
             ORDER BY array_position(current_schemas(true), n.nspname) NULLS LAST LIMIT 1",
            &[&role, &schema, &name, &privilege],
        )
        .await
        .map_err(|e| Error::from_pg(format!("checking {privilege} on {table}"), e))?;
    let Some(row) = row else {
        return Ok(Vec::new());
    };
    let (schema, name, usage, allowed): (String, String, bool, bool) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let mut out = Vec::new();
    if !usage {
        out.push(Missing {
            privilege: format!("USAGE on schema {schema} for {role}"),
            grant: format!(
                "GRANT USAGE ON SCHEMA {} TO {}",
                quote_ident(&schema),
                quote_ident(role)
            ),
        });
    }
    if !allowed {
        let qualified = format!("{}.{}", quote_ident(&schema), quote_ident(&name));
        out.push(Missing {
            privilege: format!("{privilege} on {qualified} for {role}"),
            grant: format!("GRANT {privilege} ON {qualified} TO {}", quote_ident(role)),
        });
    }
    Ok(out)
}

/// What `capture` needs: `pg_read_all_stats`, unless the connecting user is
/// a superuser or captures only its own statements (`--role` = itself).
pub async fn check_capture(admin: &Client, role: Option<&str>) -> Result<()> {
    let me = current_user(admin).await?;
    if role == Some(me.as_str()) || member_of(admin, &me, "pg_read_all_stats").await? {
        return Ok(());
    }
    into_result(vec![Missing {
        privilege: format!(
            "pg_read_all_stats for {me} (pg_stat_statements shows other roles' statements only \
             to it; or capture your own with --role {me})"
        ),
        grant: format!("GRANT pg_read_all_stats TO {}", quote_ident(&me)),
    }])
}

/// The connected user.
async fn current_user(client: &Client) -> Result<String> {
    Ok(client
        .query_one("SELECT current_user::text", &[])
        .await
        .map_err(|e| Error::from_pg("reading the connected user", e))?
        .get(0))
}

/// Whether `user` may use `role`'s privileges (superusers may use any).
async fn member_of(client: &Client, user: &str, role: &str) -> Result<bool> {
    let row = client
        .query_one(
            "SELECT coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = $1), false) \
                    OR coalesce(pg_has_role($1, r.oid, 'USAGE'), false) \
             FROM (SELECT (SELECT oid FROM pg_roles WHERE rolname = $2) AS oid) r",
            &[&user, &role],
        )
        .await
        .map_err(|e| Error::from_pg(format!("checking membership in {role}"), e))?;
    Ok(row.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_by_the_parser() {
        let p = table_privileges(
            "UPDATE crm.\"Customer\" c SET name = $1 FROM crm.orders o WHERE o.id = c.id",
        );
        assert_eq!(
            p,
            vec![
                ("crm.Customer".to_string(), "UPDATE"),
                ("crm.orders".to_string(), "SELECT")
            ]
        );
        let p = table_privileges("INSERT INTO notes (id) SELECT id FROM customers");
        assert!(p.contains(&("notes".to_string(), "INSERT")), "{p:?}");
        assert!(p.contains(&("customers".to_string(), "SELECT")), "{p:?}");
        assert_eq!(
            table_privileges("DELETE FROM t WHERE id = $1"),
            vec![("t".to_string(), "DELETE")]
        );
        assert!(table_privileges("SELEC nonsense").is_empty());
    }

    #[test]
    fn one_error_names_every_missing_privilege_and_grant() {
        let m = |p: &str, g: &str| Missing {
            privilege: p.into(),
            grant: g.into(),
        };
        let e = into_result(vec![
            m(
                "USAGE on schema crm for app",
                "GRANT USAGE ON SCHEMA crm TO app",
            ),
            m("SELECT on crm.t for app", "GRANT SELECT ON crm.t TO app"),
            m(
                "USAGE on schema crm for app",
                "GRANT USAGE ON SCHEMA crm TO app",
            ),
        ])
        .unwrap_err();
        let text = format!("{e} {}", e.fix().unwrap_or_default());
        assert!(
            text.contains("USAGE on schema crm for app; SELECT on crm.t"),
            "{text}"
        );
        assert_eq!(text.matches("GRANT USAGE").count(), 1, "{text}");
        assert!(into_result(Vec::new()).is_ok());
    }
}
