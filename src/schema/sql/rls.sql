-- Row-level security: every tenant-owned table is ENABLEd and FORCEd (the owner
-- is subject to it too) with one policy for reads and writes. current_setting()
-- without missing_ok fails when no tenant is set: the policy fails closed.
-- The application sets the tenant per transaction:
--   SELECT set_config('app.current_tenant_id', '<uuid>', true);

ALTER TABLE crm.tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON crm.tenants
    USING (id = current_setting('app.current_tenant_id')::uuid)
    WITH CHECK (id = current_setting('app.current_tenant_id')::uuid);

ALTER TABLE crm.stores ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.stores FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON crm.stores
    USING (tenant_id = current_setting('app.current_tenant_id')::uuid)
    WITH CHECK (tenant_id = current_setting('app.current_tenant_id')::uuid);

ALTER TABLE crm.staff ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.staff FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON crm.staff
    USING (tenant_id = current_setting('app.current_tenant_id')::uuid)
    WITH CHECK (tenant_id = current_setting('app.current_tenant_id')::uuid);

ALTER TABLE crm.customers ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.customers FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON crm.customers
    USING (tenant_id = current_setting('app.current_tenant_id')::uuid)
    WITH CHECK (tenant_id = current_setting('app.current_tenant_id')::uuid);

ALTER TABLE crm.categories ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.categories FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON crm.categories
    USING (tenant_id = current_setting('app.current_tenant_id')::uuid)
    WITH CHECK (tenant_id = current_setting('app.current_tenant_id')::uuid);

ALTER TABLE crm.suppliers ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.suppliers FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON crm.suppliers
    USING (tenant_id = current_setting('app.current_tenant_id')::uuid)
    WITH CHECK (tenant_id = current_setting('app.current_tenant_id')::uuid);

ALTER TABLE crm.products ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.products FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON crm.products
    USING (tenant_id = current_setting('app.current_tenant_id')::uuid)
    WITH CHECK (tenant_id = current_setting('app.current_tenant_id')::uuid);

ALTER TABLE crm.product_variants ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.product_variants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON crm.product_variants
    USING (tenant_id = current_setting('app.current_tenant_id')::uuid)
    WITH CHECK (tenant_id = current_setting('app.current_tenant_id')::uuid);

ALTER TABLE crm.inventory ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.inventory FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON crm.inventory
    USING (tenant_id = current_setting('app.current_tenant_id')::uuid)
    WITH CHECK (tenant_id = current_setting('app.current_tenant_id')::uuid);

ALTER TABLE crm.orders ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.orders FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON crm.orders
    USING (tenant_id = current_setting('app.current_tenant_id')::uuid)
    WITH CHECK (tenant_id = current_setting('app.current_tenant_id')::uuid);

ALTER TABLE crm.order_items ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.order_items FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON crm.order_items
    USING (tenant_id = current_setting('app.current_tenant_id')::uuid)
    WITH CHECK (tenant_id = current_setting('app.current_tenant_id')::uuid);

ALTER TABLE crm.payments ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.payments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON crm.payments
    USING (tenant_id = current_setting('app.current_tenant_id')::uuid)
    WITH CHECK (tenant_id = current_setting('app.current_tenant_id')::uuid);

ALTER TABLE crm.pipeline_stages ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.pipeline_stages FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON crm.pipeline_stages
    USING (tenant_id = current_setting('app.current_tenant_id')::uuid)
    WITH CHECK (tenant_id = current_setting('app.current_tenant_id')::uuid);

ALTER TABLE crm.deals ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.deals FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON crm.deals
    USING (tenant_id = current_setting('app.current_tenant_id')::uuid)
    WITH CHECK (tenant_id = current_setting('app.current_tenant_id')::uuid);

ALTER TABLE crm.deal_stage_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.deal_stage_history FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON crm.deal_stage_history
    USING (tenant_id = current_setting('app.current_tenant_id')::uuid)
    WITH CHECK (tenant_id = current_setting('app.current_tenant_id')::uuid);

ALTER TABLE crm.interactions ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.interactions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON crm.interactions
    USING (tenant_id = current_setting('app.current_tenant_id')::uuid)
    WITH CHECK (tenant_id = current_setting('app.current_tenant_id')::uuid);

ALTER TABLE crm.audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON crm.audit_log
    USING (tenant_id = current_setting('app.current_tenant_id')::uuid)
    WITH CHECK (tenant_id = current_setting('app.current_tenant_id')::uuid);
