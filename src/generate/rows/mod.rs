//! Row generators, one module per part of the business. Each table's rows for
//! a tenant are a pure function of (seed, tenant, row index), produced lazily
//! as an iterator: nothing is collected, so memory stays flat in scale.

/// `impl CopyRow` for a row struct: its fields in the table's column order,
/// and its merge key — none (0), `at FIELD` (a timestamp, in microseconds)
/// or `key FIELD` (an i64 already in microseconds).
macro_rules! copy_row {
    ($row:ty, [$($field:ident),+ $(,)?]) => {
        copy_row!(@impl $row, |_r| 0, [$($field),+]);
    };
    ($row:ty, at $at:ident, [$($field:ident),+ $(,)?]) => {
        copy_row!(@impl $row, |r| $crate::generate::rows::micros(&r.$at), [$($field),+]);
    };
    ($row:ty, key $key:ident, [$($field:ident),+ $(,)?]) => {
        copy_row!(@impl $row, |r| r.$key, [$($field),+]);
    };
    (@impl $row:ty, |$r:ident| $key:expr, [$($field:ident),+]) => {
        impl $crate::generate::rows::CopyRow for $row {
            fn key(&self) -> i64 {
                let $r = self;
                $key
            }
            fn encode(
                &self,
                out: &mut $crate::generate::encode::CopyEncoder,
            ) -> $crate::error::Result<()> {
                out.begin_row();
                $(out.field(&self.$field)?;)+
                out.end_row()
            }
        }
    };
}

pub mod catalog;
pub mod people;
pub mod pipeline;
pub mod sales;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tokio_postgres::types::Type;

use super::plan::{Plan, TenantPlan};
use crate::rng::{Prng, tag};

/// A value list for binary COPY, plus a key to merge tenants' streams by time.
pub trait CopyRow: Send {
    /// Microseconds since the Unix epoch of the row's main timestamp, or 0.
    fn key(&self) -> i64;
    /// Append the row, its fields in the table's column order, to a COPY.
    fn encode(&self, out: &mut super::encode::CopyEncoder) -> crate::error::Result<()>;
}

/// A table's name and the columns COPY fills, with their types.
#[derive(Debug, Clone, Copy)]
pub struct TableSpec {
    /// Table name in schema `crm`.
    pub name: &'static str,
    /// (column, type) in COPY order.
    pub columns: &'static [(&'static str, Type)],
}

impl TableSpec {
    /// `COPY crm.t (a, b, …) FROM STDIN (FORMAT binary[, FREEZE])`.
    pub fn copy_sql(&self, freeze: bool) -> String {
        let cols: Vec<&str> = self.columns.iter().map(|c| c.0).collect();
        format!(
            "COPY crm.{} ({}) FROM STDIN (FORMAT binary{})",
            self.name,
            cols.join(", "),
            if freeze { ", FREEZE" } else { "" }
        )
    }
}

/// Money from cents, as `numeric(12,2)`.
pub fn money(cents: i64) -> Decimal {
    Decimal::new(cents, 2)
}

/// The generator for one entity: (seed, table, tenant, index).
pub fn rng(seed: u64, table: &str, t: &TenantPlan, i: u64) -> Prng {
    Prng::for_parts(&[seed, tag(table), t.idx, i])
}

/// Microseconds since 1970, for merge keys.
pub fn micros(ts: &DateTime<Utc>) -> i64 {
    ts.timestamp_micros()
}

/// The `tenants` table.
pub mod tenants {
    use super::*;
    use serde_json::json;
    use uuid::Uuid;

    /// COPY columns.
    pub const SPEC: TableSpec = TableSpec {
        name: "tenants",
        columns: &[
            ("id", Type::UUID),
            ("name", Type::TEXT),
            ("slug", Type::TEXT),
            ("plan", Type::TEXT),
            ("country", Type::BPCHAR),
            ("currency", Type::BPCHAR),
            ("settings", Type::JSONB),
            ("created_at", Type::TIMESTAMPTZ),
        ],
    };

    /// One tenant row.
    #[allow(missing_docs)]
    pub struct Row {
        pub id: Uuid,
        pub name: String,
        pub slug: String,
        pub plan: String,
        pub country: String,
        pub currency: String,
        pub settings: serde_json::Value,
        pub created_at: DateTime<Utc>,
    }

    copy_row!(
        Row,
        [
            id, name, slug, plan, country, currency, settings, created_at
        ]
    );

    /// The single row of a tenant.
    pub fn rows<'a>(_plan: &'a Plan, t: &'a TenantPlan) -> impl Iterator<Item = Row> + 'a {
        let (country, currency, timezone, _) = t.locale();
        std::iter::once(Row {
            id: t.id,
            name: t.name.clone(),
            slug: t.slug.clone(),
            plan: t.tier.to_string(),
            country: country.into(),
            currency: currency.into(),
            settings: json!({
                "timezone": timezone,
                "loyalty_programme": t.tier != "boutique",
                "engraving_fonts": ["Script", "Roman", "Block"],
            }),
            created_at: t.created_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::generate::plan::Plan;

    fn plan() -> Plan {
        Plan::new(5, 0.005)
    }

    #[test]
    fn emails_are_unique_per_tenant_and_ids_in_range() {
        let plan = plan();
        for t in &plan.tenants {
            let mut emails = HashSet::new();
            for c in people::customers(&plan, t) {
                assert!(emails.insert(c.email.clone()), "duplicate {}", c.email);
                let home = c.home_store_id.unwrap();
                assert!(
                    home > t.first.stores as i64 && home <= (t.first.stores + t.n.stores) as i64
                );
            }
            assert_eq!(emails.len() as u64, t.n.customers);
        }
    }

    #[test]
    fn customer_statuses_have_realistic_shares() {
        let plan = Plan::new(5, 0.02);
        let mut counts = std::collections::BTreeMap::new();
        let mut total = 0.0;
        for t in &plan.tenants {
            for c in people::customers(&plan, t) {
                *counts.entry(c.status).or_insert(0.0) += 1.0;
                total += 1.0;
            }
        }
        for (status, share) in people::CUSTOMER_STATUS {
            let got = counts.get(status).copied().unwrap_or(0.0) / total;
            assert!((got - share).abs() < 0.02, "{status}: {got} vs {share}");
        }
    }

    #[test]
    fn order_totals_are_sums_of_lines_and_payments_cover_them() {
        let plan = plan();
        let t = &plan.tenants[0];
        let items: Vec<_> = sales::order_items(&plan, t).collect();
        let mut by_order = std::collections::HashMap::<i64, i64>::new();
        for i in &items {
            let cents = (i.line_total * rust_decimal::Decimal::from(100)).trunc();
            *by_order.entry(i.order_id).or_default() += i64::try_from(cents).unwrap();
            let v = i.variant_id - t.first.product_variants as i64;
            assert!(
                v >= 1 && v as u64 <= t.n.product_variants,
                "variant id out of tenant range"
            );
        }
        let mut captured = std::collections::HashMap::<i64, rust_decimal::Decimal>::new();
        for p in sales::payments(&plan, t) {
            if p.status == "captured" {
                *captured.entry(p.order_id).or_default() += p.amount;
            }
        }
        let mut orders = 0;
        for o in sales::orders(&plan, t) {
            orders += 1;
            let total = (o.total * rust_decimal::Decimal::from(100)).trunc();
            assert_eq!(
                i64::try_from(total).unwrap(),
                by_order[&o.id],
                "order {}",
                o.id
            );
            let c = o.customer_id - t.first.customers as i64;
            assert!(c >= 1 && c as u64 <= t.n.customers);
            if let Some(paid) = captured.get(&o.id) {
                assert_eq!(*paid, o.total, "payments of order {}", o.id);
            }
        }
        assert_eq!(orders, t.n.orders);
        assert_eq!(items.len() as u64, t.n.order_items);
    }

    #[test]
    fn a_few_customers_place_most_orders() {
        let plan = Plan::new(5, 0.01);
        let t = &plan.tenants[0];
        let mut per_customer = vec![0u64; t.n.customers as usize];
        for o in sales::orders(&plan, t) {
            per_customer[(o.customer_id - t.first.customers as i64 - 1) as usize] += 1;
        }
        per_customer.sort_unstable_by(|a, b| b.cmp(a));
        let top_decile: u64 = per_customer[..per_customer.len() / 10].iter().sum();
        let share = top_decile as f64 / t.n.orders as f64;
        assert!(
            share > 0.3,
            "top 10% of customers place {share:.2} of orders"
        );
    }

    #[test]
    fn planned_counts_match_what_generators_emit() {
        let plan = plan();
        for t in plan.tenants.iter().take(4) {
            assert_eq!(catalog::inventory(&plan, t).count() as u64, t.n.inventory);
            assert_eq!(sales::payments(&plan, t).count() as u64, t.n.payments);
            assert_eq!(
                pipeline::history(&plan, t).count() as u64,
                t.n.deal_stage_history
            );
            assert_eq!(
                catalog::variants(&plan, t).count() as u64,
                t.n.product_variants
            );
            assert_eq!(pipeline::audit(&plan, t).count() as u64, t.n.audit_log);
        }
    }

    #[test]
    fn deals_follow_a_funnel() {
        let plan = Plan::new(5, 0.02);
        let mut by_stage = [0u64; 7];
        for t in &plan.tenants {
            for d in pipeline::deals(&plan, t) {
                by_stage[(d.stage_id - t.first.pipeline_stages as i64 - 1) as usize] += 1;
                assert_eq!(d.status == "open", d.closed_at.is_none());
            }
        }
        assert!(
            by_stage[0] > by_stage[2] && by_stage[2] > by_stage[4],
            "{by_stage:?}"
        );
        assert!(by_stage[0] > 3 * by_stage[5], "{by_stage:?}");
    }
}
