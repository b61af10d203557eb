//! A schema fingerprint: every table, column (type, default, nullability),
//! constraint, index (definition and validity), policy and grant of the
//! user schemas, one line each. Taken before the migration and after the
//! rollback, the two must be identical; the difference names what the
//! rollback forgot (or left behind).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use crate::error::{Error, Result};

/// The schema as sorted lines, e.g. `column crm.customers.email text NOT NULL`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Fingerprint {
    /// One line per object, sorted.
    pub lines: BTreeSet<String>,
}

/// What differs between two fingerprints.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Difference {
    /// In the first, not the second (the rollback dropped too much, or an
    /// object changed).
    pub missing: Vec<String>,
    /// In the second, not the first (the rollback forgot to remove it).
    pub extra: Vec<String>,
}

impl Difference {
    /// Whether the fingerprints are identical.
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty()
    }

    /// `- line` / `+ line`, one per difference.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for l in &self.missing {
            out.push_str(&format!("- {l}\n"));
        }
        for l in &self.extra {
            out.push_str(&format!("+ {l}\n"));
        }
        out
    }
}

impl Fingerprint {
    /// Lines of `self` not in `after`, and lines of `after` not in `self`.
    pub fn diff(&self, after: &Fingerprint) -> Difference {
        Difference {
            missing: self.lines.difference(&after.lines).cloned().collect(),
            extra: after.lines.difference(&self.lines).cloned().collect(),
        }
    }
}

/// User schemas only: not the catalogs, not TOAST, not extension-owned.
const USER_SCHEMAS: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'";

/// Each query returns one text column: the object's line.
fn queries() -> [(&'static str, String); 6] {
    [
        (
            "tables",
            format!(
                "SELECT format('table %I.%I kind=%s rls=%s force=%s', n.nspname, c.relname, c.relkind, \
                 c.relrowsecurity, c.relforcerowsecurity) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r','p','v','m','S','f') AND {USER_SCHEMAS}"
            ),
        ),
        (
            "columns",
            format!(
                "SELECT format('column %I.%I.%I %s%s%s%s', n.nspname, c.relname, a.attname, \
                 format_type(a.atttypid, a.atttypmod), CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END, \
                 coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), ''), \
                 CASE WHEN a.attgenerated <> '' THEN ' GENERATED' ELSE '' END) \
                 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
                 LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
                 WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r','p','v','m','f') AND {USER_SCHEMAS}"
            ),
        ),
        (
            "constraints",
            format!(
                "SELECT format('constraint %I.%I.%I %s%s', n.nspname, c.relname, k.conname, \
                 pg_get_constraintdef(k.oid), CASE WHEN k.convalidated THEN '' ELSE ' (not validated)' END) \
                 FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE {USER_SCHEMAS}"
            ),
        ),
        (
            "indexes",
            format!(
                "SELECT format('index %s%s', pg_get_indexdef(i.indexrelid), \
                 CASE WHEN i.indisvalid THEN '' ELSE ' (INVALID)' END) \
                 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE {USER_SCHEMAS}"
            ),
        ),
        (
            "policies",
            "SELECT format('policy %I.%I.%I %s %s roles=%s using=%s check=%s', schemaname, tablename, policyname, \
             permissive, cmd, roles::text, coalesce(qual, ''), coalesce(with_check, '')) FROM pg_policies"
                .to_string(),
        ),
        (
            "grants",
            format!(
                "SELECT format('grant %I.%I %s', n.nspname, c.relname, c.relacl::text) \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relacl IS NOT NULL AND c.relkind IN ('r','p','v','m','S','f') AND {USER_SCHEMAS}"
            ),
        ),
    ]
}

/// Take the fingerprint of the database `client` is connected to.
pub async fn take(client: &Client) -> Result<Fingerprint> {
    let mut lines = BTreeSet::new();
    for (what, sql) in queries() {
        let rows = client.query(sql.as_str(), &[]).await.map_err(|e| {
            Error::from_pg(
                format!("reading the schema's {what} for its fingerprint"),
                e,
            )
        })?;
        for row in rows {
            let line: Option<String> = row.get(0);
            lines.extend(line);
        }
    }
    Ok(Fingerprint { lines })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_what_the_rollback_forgot_and_what_it_dropped() {
        let before = Fingerprint {
            lines: ["column crm.a.x integer", "index ix"]
                .into_iter()
                .map(String::from)
                .collect(),
        };
        let after = Fingerprint {
            lines: ["column crm.a.x integer", "column crm.a.y text"]
                .into_iter()
                .map(String::from)
                .collect(),
        };
        let d = before.diff(&after);
        assert_eq!(d.missing, vec!["index ix".to_string()]);
        assert_eq!(d.extra, vec!["column crm.a.y text".to_string()]);
        assert_eq!(d.render(), "- index ix\n+ column crm.a.y text\n");
        assert!(before.diff(&before).is_empty());
    }
}
