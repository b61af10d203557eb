//! Row generators, one module per part of the business. Each table's rows for
//! a tenant are a pure function of (seed, tenant, row index), produced lazily
//! as an iterator: nothing is collected, so memory stays flat in scale.

pub mod catalog;
pub mod people;
pub mod pipeline;
pub mod sales;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tokio_postgres::types::{ToSql, Type};

use super::plan::{Plan, TenantPlan};
use super::rng::{Prng, tag};

/// A value list for binary COPY, plus a key to merge tenants' streams by time.
pub trait CopyRow: Send {
    /// Microseconds since the Unix epoch of the row's main timestamp, or 0.
    fn key(&self) -> i64;
    /// The row's values, in the table's column order.
    fn values(&self) -> Vec<&(dyn ToSql + Sync)>;
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

    /// Column types, for `BinaryCopyInWriter`.
    pub fn types(&self) -> Vec<Type> {
        self.columns.iter().map(|c| c.1.clone()).collect()
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

    impl CopyRow for Row {
        fn key(&self) -> i64 {
            0
        }
        fn values(&self) -> Vec<&(dyn ToSql + Sync)> {
            vec![
                &self.id,
                &self.name,
                &self.slug,
                &self.plan,
                &self.country,
                &self.currency,
                &self.settings,
                &self.created_at,
            ]
        }
    }

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
