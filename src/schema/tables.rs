//! The CRM's tables, named once. `tables.sql` creates them, the generator
//! loads them, the audit and `schema create` count them: all read this list,
//! and a unit test holds `tables.sql` to it (same tables, same order).

/// What a table holds, which decides how it is loaded and protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// Shared lookup rows every tenant reads, filled by `lookups.sql`.
    Lookup,
    /// The tenants themselves (row-level security by `id`).
    Tenants,
    /// Rows owned by one tenant: `tenant_id`, row-level security by tenant,
    /// an identity `id`.
    TenantOwned,
}

/// One table of schema `crm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    /// Name in schema `crm`.
    pub name: &'static str,
    /// What it holds.
    pub kind: TableKind,
}

impl Table {
    /// Whether the generator writes its rows (lookups come from the schema).
    pub fn is_generated(&self) -> bool {
        self.kind != TableKind::Lookup
    }
}

const fn lookup(name: &'static str) -> Table {
    Table {
        name,
        kind: TableKind::Lookup,
    }
}

const fn owned(name: &'static str) -> Table {
    Table {
        name,
        kind: TableKind::TenantOwned,
    }
}

/// Every table `tables.sql` creates, in its order (dependencies first).
pub const TABLES: [Table; 18] = [
    lookup("currencies"),
    Table {
        name: "tenants",
        kind: TableKind::Tenants,
    },
    owned("stores"),
    owned("staff"),
    owned("customers"),
    owned("categories"),
    owned("suppliers"),
    owned("products"),
    owned("product_variants"),
    owned("inventory"),
    owned("orders"),
    owned("order_items"),
    owned("payments"),
    owned("pipeline_stages"),
    owned("deals"),
    owned("deal_stage_history"),
    owned("interactions"),
    owned("audit_log"),
];

/// The marker table `meta.sql` creates: crmbench's, not the CRM's.
pub const META_TABLE: &str = "crmbench_meta";

/// Tables every tenant-owned row lives in (all carry `tenant_id`), in
/// [`TABLES`] order.
pub const TENANT_TABLES: [&str; 16] = tenant_owned_names();

/// Derived at compile time: a count that disagrees with [`TABLES`] fails the build.
const fn tenant_owned_names<const N: usize>() -> [&'static str; N] {
    let mut out = [""; N];
    let (mut i, mut n) = (0, 0);
    while i < TABLES.len() {
        if matches!(TABLES[i].kind, TableKind::TenantOwned) {
            out[n] = TABLES[i].name;
            n += 1;
        }
        i += 1;
    }
    assert!(n == N, "TENANT_TABLES' length differs from TABLES");
    out
}

/// Whether `name` is a table without `tenant_id` that crmbench creates: the
/// tenants, a shared lookup, or the marker.
pub fn is_shared(name: &str) -> bool {
    name == META_TABLE
        || TABLES
            .iter()
            .any(|t| t.name == name && t.kind != TableKind::TenantOwned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Step;

    /// Names of `CREATE TABLE crm.<name>` statements, in file order.
    fn created(sql: &str) -> Vec<&str> {
        sql.lines()
            .filter_map(|l| l.trim_start().strip_prefix("CREATE TABLE crm."))
            .map(|rest| rest.split([' ', '(']).next().unwrap_or_default())
            .collect()
    }

    #[test]
    fn tables_sql_creates_exactly_the_listed_tables_in_order() {
        let listed: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
        assert_eq!(created(Step::Tables.sql()), listed);
        assert_eq!(created(Step::Meta.sql()), [META_TABLE]);
    }

    #[test]
    fn tenant_tables_are_the_owned_ones_and_shared_ones_the_rest() {
        assert_eq!(TENANT_TABLES[0], "stores");
        assert_eq!(TENANT_TABLES[15], "audit_log");
        for t in TABLES {
            assert_eq!(
                TENANT_TABLES.contains(&t.name),
                !is_shared(t.name),
                "{}",
                t.name
            );
        }
        assert!(is_shared(META_TABLE) && is_shared("tenants") && is_shared("currencies"));
        assert!(!is_shared("orders") && !is_shared("not_a_table"));
    }
}
