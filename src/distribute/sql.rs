//! The statements that distribute the CRM with Citus, in dependency order:
//! shared lookups and the tenants table as reference tables (every node has
//! a copy, so a tenant table's foreign key into one stays local; the
//! tenants cannot be distributed by id, since `tenants_slug_key` is a
//! uniqueness across tenants that Citus could not enforce, which the stubs
//! in the tests caught), then every tenant-owned table distributed by
//! `tenant_id`, all co-located with the first (a tenant's rows, whatever
//! the table, on one node: joins and foreign keys inside a tenant stay on
//! it). Tables come in `tables.sql`'s order, which creates what a key
//! references first — Citus refuses a foreign key into a table it does not
//! yet distribute. The signatures are Citus's own (see
//! fixtures/citus/stubs.sql, whose stubs the tests run this SQL against).

use crate::schema::tables::{META_TABLE, TABLES, TableKind};

/// The SQL, with a header saying what it needs; `isolate` are tenant ids to
/// put on shards of their own (`isolate_tenant_to_new_shard`, cascading to
/// every co-located table).
pub fn statements(database: &str, shards: u32, isolate: &[String]) -> String {
    let mut sql = format!(
        "-- Distribute the CRM with Citus ({shards} shards per distributed table), \
         written by crmbench {}.\n\
         -- Run on the coordinator, as the schema's owner, with the citus extension \
         created, before loading data (or on loaded tables: Citus copies them).\n\
         -- The tenant frame: Citus propagates SET LOCAL to the workers when \
         citus.propagate_set_commands = 'local'; set_config(…, true) is not a SET \
         command and is not propagated — run the workload with --tenant-frame set-local.\n\
         ALTER DATABASE {} SET citus.propagate_set_commands = 'local';\n\
         BEGIN;\n",
        env!("CARGO_PKG_VERSION"),
        crate::pg::quote_ident(database)
    );
    let first = anchor();
    for table in TABLES {
        let name = format!("crm.{}", table.name);
        sql.push_str(&match table.kind {
            TableKind::Lookup | TableKind::Tenants => {
                format!("SELECT create_reference_table('{name}');\n")
            }
            TableKind::TenantOwned if table.name == first => format!(
                "SELECT create_distributed_table('{name}', 'tenant_id', colocate_with => 'none', \
                 shard_count => {shards});\n"
            ),
            TableKind::TenantOwned => format!(
                "SELECT create_distributed_table('{name}', 'tenant_id', \
                 colocate_with => 'crm.{first}');\n"
            ),
        });
    }
    sql.push_str(&format!(
        "-- crm.{META_TABLE} (crmbench's marker) stays a local table on the coordinator.\n\
         COMMIT;\n"
    ));
    for id in isolate {
        sql.push_str(&format!(
            "SELECT isolate_tenant_to_new_shard('crm.{first}', '{}'::uuid, \
             cascade_option => 'CASCADE');\n",
            id.replace('\'', "''")
        ));
    }
    sql
}

/// The tenant table every other one is co-located with: the first in
/// dependency order.
fn anchor() -> &'static str {
    TABLES
        .iter()
        .find(|t| t.kind == TableKind::TenantOwned)
        .map_or("stores", |t| t.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_tables_and_the_tenants_come_before_the_tables_that_reference_them() {
        let sql = statements(
            "crm db",
            32,
            &["00000000-0000-0000-0000-000000000001".into()],
        );
        let at = |needle: &str| sql.find(needle).unwrap_or_else(|| panic!("{needle}"));
        assert!(at("create_reference_table('crm.currencies')") < at("'crm.stores', 'tenant_id'"));
        assert!(at("create_reference_table('crm.tenants')") < at("'crm.stores', 'tenant_id'"));
        assert!(sql.contains("colocate_with => 'crm.stores'"));
        assert!(at("'crm.orders', 'tenant_id'") < at("'crm.order_items', 'tenant_id'"));
        assert!(sql.contains("shard_count => 32"));
        assert!(sql.contains("ALTER DATABASE \"crm db\" SET citus.propagate_set_commands"));
        assert!(sql.contains("isolate_tenant_to_new_shard('crm.stores', '00000000"));
        assert!(!sql.contains(&format!("crm.{META_TABLE}')")));
    }
}
