//! From (seed, scale) to every tenant's row counts and id ranges, before any
//! row is generated. Tenant sizes follow a Zipf law (a few large chains, a long
//! tail of boutiques); ids are global (one sequence per table, as an app's
//! identity columns give) and contiguous per tenant.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::calendar::{self, Calendar};
use super::domain;
use super::rows;
use crate::rng::{Prng, tag};

/// Scale-1 sizes; every count is proportional to the scale.
pub const TENANTS_AT_SCALE_1: f64 = 1000.0;
/// Customers at scale 1.
pub const CUSTOMERS_AT_SCALE_1: f64 = 1_000_000.0;
/// Products at scale 1.
pub const PRODUCTS_AT_SCALE_1: f64 = 100_000.0;
/// Fewest tenants at any scale (so skew exists even at tiny scales).
pub const MIN_TENANTS: u64 = 20;
/// Exponent of the tenant-size law.
pub const TENANT_SKEW: f64 = 1.0;

/// Rows per table for one tenant (or a whole dataset).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[allow(missing_docs)]
pub struct Counts {
    pub stores: u64,
    pub staff: u64,
    pub customers: u64,
    pub categories: u64,
    pub suppliers: u64,
    pub products: u64,
    pub product_variants: u64,
    pub inventory: u64,
    pub orders: u64,
    pub order_items: u64,
    pub payments: u64,
    pub pipeline_stages: u64,
    pub deals: u64,
    pub deal_stage_history: u64,
    pub interactions: u64,
    pub audit_log: u64,
}

impl Counts {
    /// The count for a tenant-owned table, by name.
    pub fn get(&self, table: &str) -> u64 {
        match table {
            "stores" => self.stores,
            "staff" => self.staff,
            "customers" => self.customers,
            "categories" => self.categories,
            "suppliers" => self.suppliers,
            "products" => self.products,
            "product_variants" => self.product_variants,
            "inventory" => self.inventory,
            "orders" => self.orders,
            "order_items" => self.order_items,
            "payments" => self.payments,
            "pipeline_stages" => self.pipeline_stages,
            "deals" => self.deals,
            "deal_stage_history" => self.deal_stage_history,
            "interactions" => self.interactions,
            "audit_log" => self.audit_log,
            _ => 0,
        }
    }

    fn add(&mut self, o: &Counts) {
        self.stores += o.stores;
        self.staff += o.staff;
        self.customers += o.customers;
        self.categories += o.categories;
        self.suppliers += o.suppliers;
        self.products += o.products;
        self.product_variants += o.product_variants;
        self.inventory += o.inventory;
        self.orders += o.orders;
        self.order_items += o.order_items;
        self.payments += o.payments;
        self.pipeline_stages += o.pipeline_stages;
        self.deals += o.deals;
        self.deal_stage_history += o.deal_stage_history;
        self.interactions += o.interactions;
        self.audit_log += o.audit_log;
    }
}

/// One tenant: identity, size, and where its ids start.
#[derive(Debug, Clone)]
pub struct TenantPlan {
    /// Rank by size: 0 is the largest.
    pub idx: u64,
    /// The tenant's uuid.
    pub id: Uuid,
    /// Trading name.
    pub name: String,
    /// URL slug (unique).
    pub slug: String,
    /// Subscription tier.
    pub tier: &'static str,
    /// Index into [`domain::COUNTRIES`].
    pub country: usize,
    /// When the tenant signed up.
    pub created_at: DateTime<Utc>,
    /// Rows per table.
    pub n: Counts,
    /// Id offsets per table: this tenant's ids are `first + 1 ..= first + n`.
    pub first: Counts,
    /// Each product's price and category, worked out on first use (see
    /// [`rows::catalog::product_prices`]): every order line needs its
    /// product's, and orders, items and payments each draw the lines again.
    pub prices: std::sync::OnceLock<Vec<rows::catalog::ProductPrice>>,
}

impl TenantPlan {
    /// Global id of the tenant's `i`-th row of a table whose offset is `first`.
    pub fn id(first: u64, i: u64) -> i64 {
        (first + i + 1) as i64
    }

    /// Country code, currency, timezone, phone prefix.
    pub fn locale(&self) -> (&'static str, &'static str, &'static str, &'static str) {
        let c = domain::COUNTRIES[self.country];
        (c.0, c.1, c.2, c.3)
    }

    /// The tenant's own email domain (staff addresses).
    pub fn domain(&self) -> String {
        format!("{}.example", self.slug)
    }
}

/// The whole dataset's plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `--seed`.
    pub seed: u64,
    /// `--scale`.
    pub scale: f64,
    /// Dates and seasonality.
    pub calendar: Calendar,
    /// Tenants by size rank.
    pub tenants: Vec<TenantPlan>,
    /// Sum over tenants.
    pub totals: Counts,
}

impl Plan {
    /// Plan a dataset. `scale` must be positive and finite (checked by the caller).
    pub fn new(seed: u64, scale: f64) -> Plan {
        let calendar = Calendar::new();
        let n_tenants = ((TENANTS_AT_SCALE_1 * scale).round() as u64).max(MIN_TENANTS);
        let weights: Vec<f64> = (0..n_tenants)
            .map(|i| 1.0 / ((i + 1) as f64).powf(TENANT_SKEW))
            .collect();
        let w_sum: f64 = weights.iter().sum();
        let sqrt_sum: f64 = weights.iter().map(|w| w.sqrt()).sum();
        let customers_total = CUSTOMERS_AT_SCALE_1 * scale;
        let products_total = PRODUCTS_AT_SCALE_1 * scale;

        let mut tenants = Vec::with_capacity(n_tenants as usize);
        let mut offsets = Counts::default();
        let mut used_slugs = std::collections::HashSet::new();
        for (i, w) in weights.iter().enumerate() {
            let idx = i as u64;
            let mut rng = Prng::for_parts(&[seed, tag("tenants"), idx]);
            let mut bytes = [0u8; 16];
            rand::RngCore::fill_bytes(&mut rng, &mut bytes);
            let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
            let country = rng.weighted(&domain::COUNTRIES.map(|c| c.4));
            let surname: String =
                fake::Fake::fake_with_rng(&fake::faker::name::en::LastName(), &mut rng);
            let pattern = rng.pick(&domain::TENANT_PATTERNS);
            let name = pattern.replace("{}", &surname);
            let mut slug = domain::slugify(&name);
            if !used_slugs.insert(slug.clone()) {
                slug = format!("{slug}{idx}");
                used_slugs.insert(slug.clone());
            }
            let share = idx as f64 / n_tenants as f64;
            let tier = if share < 0.05 {
                "enterprise"
            } else if share < 0.25 {
                "growth"
            } else {
                "boutique"
            };
            // The bigger the tenant, the earlier it signed up.
            let days_before_window = 30 + rng.below(700) as i64;
            let created_at = midnight(calendar.first_day()) - Duration::days(days_before_window);

            let customers = ((customers_total * w / w_sum).round() as u64).max(8);
            let products = ((products_total * w.sqrt() / sqrt_sum).round() as u64).max(24);
            let stores = (1 + customers / 4000).min(60);
            let mut n = Counts {
                stores,
                staff: 2 + 3 * stores,
                customers,
                categories: domain::CATEGORIES.len() as u64,
                suppliers: (3 + products / 400).min(40),
                products,
                product_variants: products * rows::catalog::VARIANTS_PER_PRODUCT,
                inventory: 0,
                orders: 2 * customers,
                order_items: 0,
                payments: 0,
                pipeline_stages: domain::STAGES.len() as u64,
                deals: (customers * 3).div_ceil(10),
                deal_stage_history: 0,
                interactions: 3 * customers,
                audit_log: 5 * customers,
            };
            let mut t = TenantPlan {
                idx,
                id,
                name,
                slug,
                tier,
                country,
                created_at,
                n,
                first: offsets,
                prices: std::sync::OnceLock::new(),
            };
            // Counts that depend on per-row draws: the same pure functions
            // the generators use, evaluated once here.
            n.inventory = rows::catalog::count_inventory(seed, &t);
            let (items, payments) = rows::sales::count_items_and_payments(seed, &calendar, &t);
            n.order_items = items;
            n.payments = payments;
            n.deal_stage_history = rows::pipeline::count_history(seed, &calendar, &t);
            t.n = n;
            offsets.add(&n);
            tenants.push(t);
        }
        Plan {
            seed,
            scale,
            calendar,
            tenants,
            totals: offsets,
        }
    }

    /// Rows a table will get in total (tenants and currencies included).
    pub fn rows(&self, table: &str) -> u64 {
        match table {
            "tenants" => self.tenants.len() as u64,
            other => self.totals.get(other),
        }
    }

    /// The dataset's epoch (its "today").
    pub fn epoch(&self) -> chrono::NaiveDate {
        calendar::epoch_date()
    }
}

fn midnight(d: chrono::NaiveDate) -> DateTime<Utc> {
    use chrono::TimeZone;
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_sizes_are_skewed_at_scale_001() {
        let plan = Plan::new(7, 0.01);
        assert!(plan.tenants.len() >= 20);
        let mut sizes: Vec<u64> = plan.tenants.iter().map(|t| t.n.customers).collect();
        sizes.sort_unstable();
        let median = sizes[sizes.len() / 2];
        let largest = *sizes.last().unwrap();
        assert!(largest >= 5 * median, "largest {largest}, median {median}");
    }

    #[test]
    fn totals_are_proportional_to_scale() {
        let small = Plan::new(1, 0.02);
        let big = Plan::new(1, 0.04);
        let ratio = big.totals.customers as f64 / small.totals.customers as f64;
        assert!((1.8..2.2).contains(&ratio), "customers ratio {ratio}");
        assert_eq!(small.totals.orders, 2 * small.totals.customers);
        let per_order = small.totals.order_items as f64 / small.totals.orders as f64;
        assert!(
            (2.2..2.8).contains(&per_order),
            "items per order {per_order}"
        );
    }

    #[test]
    fn id_ranges_do_not_overlap_and_slugs_are_unique() {
        let plan = Plan::new(3, 0.005);
        for pair in plan.tenants.windows(2) {
            assert_eq!(
                pair[1].first.orders,
                pair[0].first.orders + pair[0].n.orders
            );
        }
        let mut slugs: Vec<&str> = plan.tenants.iter().map(|t| t.slug.as_str()).collect();
        slugs.sort_unstable();
        slugs.dedup();
        assert_eq!(slugs.len(), plan.tenants.len());
    }

    #[test]
    fn same_seed_same_plan() {
        let a = Plan::new(9, 0.003);
        let b = Plan::new(9, 0.003);
        assert_eq!(a.totals, b.totals);
        assert_eq!(a.tenants[3].id, b.tenants[3].id);
        assert_ne!(Plan::new(10, 0.003).tenants[3].id, a.tenants[3].id);
    }
}
