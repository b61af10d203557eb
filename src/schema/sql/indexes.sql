-- The baseline secondary indexes: what a typical Prisma app ships
-- (@@index([tenantId]) on every model, plus email and status), nothing more.
-- Foreign keys stay without supporting indexes; finding what is missing is
-- the advisor's job, not the generator's.

CREATE INDEX stores_tenant_id_idx             ON crm.stores (tenant_id);
CREATE INDEX staff_tenant_id_idx              ON crm.staff (tenant_id);
CREATE INDEX customers_tenant_id_idx          ON crm.customers (tenant_id);
CREATE INDEX categories_tenant_id_idx         ON crm.categories (tenant_id);
CREATE INDEX suppliers_tenant_id_idx          ON crm.suppliers (tenant_id);
CREATE INDEX products_tenant_id_idx           ON crm.products (tenant_id);
CREATE INDEX product_variants_tenant_id_idx   ON crm.product_variants (tenant_id);
CREATE INDEX inventory_tenant_id_idx          ON crm.inventory (tenant_id);
CREATE INDEX orders_tenant_id_idx             ON crm.orders (tenant_id);
CREATE INDEX order_items_tenant_id_idx        ON crm.order_items (tenant_id);
CREATE INDEX payments_tenant_id_idx           ON crm.payments (tenant_id);
CREATE INDEX pipeline_stages_tenant_id_idx    ON crm.pipeline_stages (tenant_id);
CREATE INDEX deals_tenant_id_idx              ON crm.deals (tenant_id);
CREATE INDEX deal_stage_history_tenant_id_idx ON crm.deal_stage_history (tenant_id);
CREATE INDEX interactions_tenant_id_idx       ON crm.interactions (tenant_id);
CREATE INDEX audit_log_tenant_id_idx          ON crm.audit_log (tenant_id);

CREATE INDEX customers_email_idx  ON crm.customers (email);
CREATE INDEX staff_email_idx      ON crm.staff (email);

CREATE INDEX customers_status_idx ON crm.customers (status);
CREATE INDEX products_status_idx  ON crm.products (status);
CREATE INDEX orders_status_idx    ON crm.orders (status);
CREATE INDEX payments_status_idx  ON crm.payments (status);
CREATE INDEX deals_status_idx     ON crm.deals (status);
