-- Primary keys, unique constraints and foreign keys. Every key of a
-- tenant-owned table leads with tenant_id and every foreign key between them
-- carries it, so the schema can be distributed by tenant (Citus).

ALTER TABLE crm.currencies ADD PRIMARY KEY (code);
ALTER TABLE crm.tenants    ADD PRIMARY KEY (id);
ALTER TABLE crm.tenants    ADD CONSTRAINT tenants_slug_key UNIQUE (slug);
ALTER TABLE crm.tenants    ADD CONSTRAINT tenants_currency_fkey FOREIGN KEY (currency) REFERENCES crm.currencies (code);

ALTER TABLE crm.stores             ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE crm.staff              ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE crm.customers          ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE crm.categories         ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE crm.suppliers          ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE crm.products           ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE crm.product_variants   ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE crm.inventory          ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE crm.orders             ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE crm.order_items        ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE crm.payments           ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE crm.pipeline_stages    ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE crm.deals              ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE crm.deal_stage_history ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE crm.interactions       ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE crm.audit_log          ADD PRIMARY KEY (tenant_id, id);

ALTER TABLE crm.stores           ADD CONSTRAINT stores_tenant_code_key          UNIQUE (tenant_id, code);
ALTER TABLE crm.staff            ADD CONSTRAINT staff_tenant_email_key          UNIQUE (tenant_id, email);
ALTER TABLE crm.customers        ADD CONSTRAINT customers_tenant_email_key      UNIQUE (tenant_id, email);
ALTER TABLE crm.categories       ADD CONSTRAINT categories_tenant_slug_key      UNIQUE (tenant_id, slug);
ALTER TABLE crm.products         ADD CONSTRAINT products_tenant_sku_key         UNIQUE (tenant_id, sku);
ALTER TABLE crm.product_variants ADD CONSTRAINT product_variants_tenant_sku_key UNIQUE (tenant_id, sku);
ALTER TABLE crm.inventory        ADD CONSTRAINT inventory_tenant_store_variant_key UNIQUE (tenant_id, store_id, variant_id);
ALTER TABLE crm.orders           ADD CONSTRAINT orders_tenant_number_key        UNIQUE (tenant_id, order_number);
ALTER TABLE crm.pipeline_stages  ADD CONSTRAINT pipeline_stages_tenant_position_key UNIQUE (tenant_id, position);

-- Foreign keys to tenants.
ALTER TABLE crm.stores             ADD CONSTRAINT stores_tenant_fkey             FOREIGN KEY (tenant_id) REFERENCES crm.tenants (id);
ALTER TABLE crm.staff              ADD CONSTRAINT staff_tenant_fkey              FOREIGN KEY (tenant_id) REFERENCES crm.tenants (id);
ALTER TABLE crm.customers          ADD CONSTRAINT customers_tenant_fkey          FOREIGN KEY (tenant_id) REFERENCES crm.tenants (id);
ALTER TABLE crm.categories         ADD CONSTRAINT categories_tenant_fkey         FOREIGN KEY (tenant_id) REFERENCES crm.tenants (id);
ALTER TABLE crm.suppliers          ADD CONSTRAINT suppliers_tenant_fkey          FOREIGN KEY (tenant_id) REFERENCES crm.tenants (id);
ALTER TABLE crm.products           ADD CONSTRAINT products_tenant_fkey           FOREIGN KEY (tenant_id) REFERENCES crm.tenants (id);
ALTER TABLE crm.product_variants   ADD CONSTRAINT product_variants_tenant_fkey   FOREIGN KEY (tenant_id) REFERENCES crm.tenants (id);
ALTER TABLE crm.inventory          ADD CONSTRAINT inventory_tenant_fkey          FOREIGN KEY (tenant_id) REFERENCES crm.tenants (id);
ALTER TABLE crm.orders             ADD CONSTRAINT orders_tenant_fkey             FOREIGN KEY (tenant_id) REFERENCES crm.tenants (id);
ALTER TABLE crm.order_items        ADD CONSTRAINT order_items_tenant_fkey        FOREIGN KEY (tenant_id) REFERENCES crm.tenants (id);
ALTER TABLE crm.payments           ADD CONSTRAINT payments_tenant_fkey           FOREIGN KEY (tenant_id) REFERENCES crm.tenants (id);
ALTER TABLE crm.pipeline_stages    ADD CONSTRAINT pipeline_stages_tenant_fkey    FOREIGN KEY (tenant_id) REFERENCES crm.tenants (id);
ALTER TABLE crm.deals              ADD CONSTRAINT deals_tenant_fkey              FOREIGN KEY (tenant_id) REFERENCES crm.tenants (id);
ALTER TABLE crm.deal_stage_history ADD CONSTRAINT deal_stage_history_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES crm.tenants (id);
ALTER TABLE crm.interactions       ADD CONSTRAINT interactions_tenant_fkey       FOREIGN KEY (tenant_id) REFERENCES crm.tenants (id);
ALTER TABLE crm.audit_log          ADD CONSTRAINT audit_log_tenant_fkey          FOREIGN KEY (tenant_id) REFERENCES crm.tenants (id);

-- Foreign keys between tenant-owned tables, all carrying tenant_id.
-- Deliberately without supporting indexes: that is what a typical ORM ships.
ALTER TABLE crm.staff ADD CONSTRAINT staff_store_fkey
    FOREIGN KEY (tenant_id, store_id) REFERENCES crm.stores (tenant_id, id);
ALTER TABLE crm.customers ADD CONSTRAINT customers_home_store_fkey
    FOREIGN KEY (tenant_id, home_store_id) REFERENCES crm.stores (tenant_id, id);
ALTER TABLE crm.customers ADD CONSTRAINT customers_assigned_staff_fkey
    FOREIGN KEY (tenant_id, assigned_staff_id) REFERENCES crm.staff (tenant_id, id);
ALTER TABLE crm.categories ADD CONSTRAINT categories_parent_fkey
    FOREIGN KEY (tenant_id, parent_id) REFERENCES crm.categories (tenant_id, id);
ALTER TABLE crm.products ADD CONSTRAINT products_category_fkey
    FOREIGN KEY (tenant_id, category_id) REFERENCES crm.categories (tenant_id, id);
ALTER TABLE crm.products ADD CONSTRAINT products_supplier_fkey
    FOREIGN KEY (tenant_id, supplier_id) REFERENCES crm.suppliers (tenant_id, id);
ALTER TABLE crm.product_variants ADD CONSTRAINT product_variants_product_fkey
    FOREIGN KEY (tenant_id, product_id) REFERENCES crm.products (tenant_id, id);
ALTER TABLE crm.inventory ADD CONSTRAINT inventory_store_fkey
    FOREIGN KEY (tenant_id, store_id) REFERENCES crm.stores (tenant_id, id);
ALTER TABLE crm.inventory ADD CONSTRAINT inventory_variant_fkey
    FOREIGN KEY (tenant_id, variant_id) REFERENCES crm.product_variants (tenant_id, id);
ALTER TABLE crm.orders ADD CONSTRAINT orders_customer_fkey
    FOREIGN KEY (tenant_id, customer_id) REFERENCES crm.customers (tenant_id, id);
ALTER TABLE crm.orders ADD CONSTRAINT orders_store_fkey
    FOREIGN KEY (tenant_id, store_id) REFERENCES crm.stores (tenant_id, id);
ALTER TABLE crm.orders ADD CONSTRAINT orders_staff_fkey
    FOREIGN KEY (tenant_id, staff_id) REFERENCES crm.staff (tenant_id, id);
ALTER TABLE crm.order_items ADD CONSTRAINT order_items_order_fkey
    FOREIGN KEY (tenant_id, order_id) REFERENCES crm.orders (tenant_id, id);
ALTER TABLE crm.order_items ADD CONSTRAINT order_items_variant_fkey
    FOREIGN KEY (tenant_id, variant_id) REFERENCES crm.product_variants (tenant_id, id);
ALTER TABLE crm.payments ADD CONSTRAINT payments_order_fkey
    FOREIGN KEY (tenant_id, order_id) REFERENCES crm.orders (tenant_id, id);
ALTER TABLE crm.deals ADD CONSTRAINT deals_customer_fkey
    FOREIGN KEY (tenant_id, customer_id) REFERENCES crm.customers (tenant_id, id);
ALTER TABLE crm.deals ADD CONSTRAINT deals_owner_fkey
    FOREIGN KEY (tenant_id, owner_id) REFERENCES crm.staff (tenant_id, id);
ALTER TABLE crm.deals ADD CONSTRAINT deals_stage_fkey
    FOREIGN KEY (tenant_id, stage_id) REFERENCES crm.pipeline_stages (tenant_id, id);
ALTER TABLE crm.deal_stage_history ADD CONSTRAINT deal_stage_history_deal_fkey
    FOREIGN KEY (tenant_id, deal_id) REFERENCES crm.deals (tenant_id, id);
ALTER TABLE crm.deal_stage_history ADD CONSTRAINT deal_stage_history_from_stage_fkey
    FOREIGN KEY (tenant_id, from_stage_id) REFERENCES crm.pipeline_stages (tenant_id, id);
ALTER TABLE crm.deal_stage_history ADD CONSTRAINT deal_stage_history_to_stage_fkey
    FOREIGN KEY (tenant_id, to_stage_id) REFERENCES crm.pipeline_stages (tenant_id, id);
ALTER TABLE crm.deal_stage_history ADD CONSTRAINT deal_stage_history_changed_by_fkey
    FOREIGN KEY (tenant_id, changed_by) REFERENCES crm.staff (tenant_id, id);
ALTER TABLE crm.interactions ADD CONSTRAINT interactions_customer_fkey
    FOREIGN KEY (tenant_id, customer_id) REFERENCES crm.customers (tenant_id, id);
ALTER TABLE crm.interactions ADD CONSTRAINT interactions_staff_fkey
    FOREIGN KEY (tenant_id, staff_id) REFERENCES crm.staff (tenant_id, id);
ALTER TABLE crm.interactions ADD CONSTRAINT interactions_deal_fkey
    FOREIGN KEY (tenant_id, deal_id) REFERENCES crm.deals (tenant_id, id);
-- Shared lookup: currencies.
ALTER TABLE crm.products ADD CONSTRAINT products_currency_fkey FOREIGN KEY (currency) REFERENCES crm.currencies (code);
ALTER TABLE crm.orders   ADD CONSTRAINT orders_currency_fkey   FOREIGN KEY (currency) REFERENCES crm.currencies (code);
ALTER TABLE crm.payments ADD CONSTRAINT payments_currency_fkey FOREIGN KEY (currency) REFERENCES crm.currencies (code);
ALTER TABLE crm.deals    ADD CONSTRAINT deals_currency_fkey    FOREIGN KEY (currency) REFERENCES crm.currencies (code);
