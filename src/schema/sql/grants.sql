-- What the application role may do: read and write CRM rows (RLS decides
-- which), read the shared lookups and its own tenant row, append to the audit
-- log (never rewrite it). No DDL, no TRUNCATE, no BYPASSRLS.

GRANT USAGE ON SCHEMA crm TO crmbench_app;
GRANT SELECT ON crm.currencies, crm.tenants, crm.crmbench_meta TO crmbench_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON
    crm.stores, crm.staff, crm.customers, crm.categories, crm.suppliers,
    crm.products, crm.product_variants, crm.inventory, crm.orders,
    crm.order_items, crm.payments, crm.pipeline_stages, crm.deals,
    crm.deal_stage_history, crm.interactions
    TO crmbench_app;
GRANT SELECT, INSERT ON crm.audit_log TO crmbench_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA crm TO crmbench_app;

-- Tenant discovery and sampling read every tenant's rows (BYPASSRLS) and
-- nothing else: SELECT on the CRM tables, no writes, no other schema.
GRANT USAGE ON SCHEMA crm TO crmbench_sampler;
GRANT SELECT ON ALL TABLES IN SCHEMA crm TO crmbench_sampler;
