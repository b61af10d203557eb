//! Orders, their items and payments. Totals are consistent by construction:
//! an order's total is the sum of its items' line totals, and the captured
//! payments of a paid order add up to its total.

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use tokio_postgres::types::Type;

use super::catalog::{VARIANTS_PER_PRODUCT, product_price, variant_price_from};
use super::people::{customer_created, is_online_store};
use super::{TableSpec, micros, money, rng};
use crate::generate::calendar::{Calendar, epoch_end, stratified};
use crate::generate::domain;
use crate::generate::plan::{Plan, TenantPlan};
use crate::rng::{power_law_rank, scatter};

/// Exponent of customers' share of orders: the top 1% place about a quarter.
pub const CUSTOMER_SKEW: f64 = 0.7;
/// Exponent of products' popularity.
pub const PRODUCT_SKEW: f64 = 0.8;

/// What an order is, before its rows are written.
#[derive(Debug, Clone)]
pub struct OrderCore {
    /// Customer index within the tenant.
    pub customer: u64,
    /// When it was placed.
    pub placed_at: DateTime<Utc>,
    /// Order status.
    pub status: &'static str,
    /// Sales channel.
    pub channel: &'static str,
    /// Store index within the tenant.
    pub store: u64,
    /// Staff index within the tenant, for store and phone sales.
    pub staff: Option<u64>,
    /// Number of items.
    pub items: u64,
    /// Number of payments.
    pub payments: u64,
}

/// The core of order `i` of the tenant.
pub fn order_core(seed: u64, cal: &Calendar, t: &TenantPlan, i: u64) -> OrderCore {
    let mut r = rng(seed, "orders.core", t, i);
    let rank = power_law_rank(r.unit(), t.n.customers, CUSTOMER_SKEW);
    let customer = scatter(rank, t.n.customers, t.idx ^ seed);
    let channel = ["store", "online", "phone"][r.weighted(&[0.65, 0.28, 0.07])];
    let mut placed_at = cal.timestamp(
        stratified(i, t.n.orders, r.unit()),
        r.unit(),
        channel == "online",
    );
    let joined = customer_created(seed, cal, t, customer);
    if placed_at < joined {
        placed_at =
            (joined + Duration::minutes(30 + r.below(60 * 24 * 30) as i64)).min(epoch_end());
    }
    let age_days = (epoch_end() - placed_at).num_days();
    let status = if age_days < 2 {
        ["pending", "paid"][r.weighted(&[0.45, 0.55])]
    } else if age_days < 14 {
        ["paid", "shipped", "delivered", "cancelled"][r.weighted(&[0.25, 0.45, 0.25, 0.05])]
    } else {
        ["delivered", "cancelled", "refunded", "paid"][r.weighted(&[0.88, 0.06, 0.04, 0.02])]
    };
    let store = if channel == "online" {
        if t.n.stores >= 3 { t.n.stores - 1 } else { 0 }
    } else if r.chance(0.4) || t.n.stores == 1 {
        0 // the flagship
    } else {
        let physical = t.n.stores - u64::from(is_online_store(t, t.n.stores - 1));
        r.below(physical.max(1))
    };
    let staff = (channel != "online").then(|| r.below(t.n.staff));
    let items = 1 + r.weighted(&[0.2, 0.3, 0.3, 0.2]) as u64;
    let payments = match status {
        "pending" => u64::from(r.chance(0.5)),
        "cancelled" => u64::from(r.chance(0.4)),
        "refunded" => 1,
        _ => {
            if r.chance(0.15) {
                2
            } else {
                1
            }
        }
    };
    OrderCore {
        customer,
        placed_at,
        status,
        channel,
        store,
        staff,
        items,
        payments,
    }
}

/// One line of an order.
#[derive(Debug, Clone)]
pub struct Line {
    /// Variant index within the tenant.
    pub variant: u64,
    /// Quantity.
    pub quantity: i32,
    /// Unit price in cents.
    pub unit_cents: i64,
    /// Line discount in cents.
    pub discount_cents: i64,
    /// Engraving text, for rings.
    pub engraving: Option<&'static str>,
}

impl Line {
    /// quantity × unit price − discount.
    pub fn total_cents(&self) -> i64 {
        i64::from(self.quantity) * self.unit_cents - self.discount_cents
    }
}

const ENGRAVINGS: [&str; 6] = [
    "Forever",
    "Always",
    "A & J",
    "14.02.2025",
    "Mo anam cara",
    "Toujours",
];

/// The lines of order `i` (its core says how many).
pub fn order_lines(seed: u64, t: &TenantPlan, i: u64, count: u64) -> Vec<Line> {
    let mut r = rng(seed, "order_items.lines", t, i);
    let t_products = t.n.products;
    let salt = t.idx.wrapping_mul(31) ^ seed;
    (0..count)
        .map(|_| {
            let rank = power_law_rank(r.unit(), t_products, PRODUCT_SKEW);
            let product = scatter(rank, t_products, salt);
            let k = r.weighted(&[0.3, 0.45, 0.25]) as u64;
            let core = product_price(seed, t, product);
            let unit_cents = variant_price_from(core.base_cents, k);
            let quantity = if r.chance(0.08) { 2 } else { 1 };
            let discount_cents = if r.chance(0.12) {
                (unit_cents * i64::from(quantity)) / 10
            } else {
                0
            };
            Line {
                variant: product * VARIANTS_PER_PRODUCT + k,
                quantity,
                unit_cents,
                discount_cents,
                engraving: (domain::is_ring(core.category) && r.chance(0.2))
                    .then(|| *r.pick(&ENGRAVINGS)),
            }
        })
        .collect()
}

/// Items and payments of a tenant, counted the way the generators emit them.
pub fn count_items_and_payments(seed: u64, cal: &Calendar, t: &TenantPlan) -> (u64, u64) {
    (0..t.n.orders).fold((0, 0), |(items, payments), i| {
        let core = order_core(seed, cal, t, i);
        (items + core.items, payments + core.payments)
    })
}

/// COPY columns of `orders`.
pub const ORDERS: TableSpec = TableSpec {
    name: "orders",
    columns: &[
        ("tenant_id", Type::UUID),
        ("id", Type::INT8),
        ("order_number", Type::TEXT),
        ("customer_id", Type::INT8),
        ("store_id", Type::INT8),
        ("staff_id", Type::INT8),
        ("status", Type::TEXT),
        ("channel", Type::TEXT),
        ("currency", Type::BPCHAR),
        ("subtotal", Type::NUMERIC),
        ("discount", Type::NUMERIC),
        ("tax", Type::NUMERIC),
        ("total", Type::NUMERIC),
        ("placed_at", Type::TIMESTAMPTZ),
        ("created_at", Type::TIMESTAMPTZ),
        ("updated_at", Type::TIMESTAMPTZ),
    ],
};

/// An order.
#[allow(missing_docs)]
pub struct OrderRow {
    pub tenant_id: uuid::Uuid,
    pub id: i64,
    pub order_number: String,
    pub customer_id: i64,
    pub store_id: i64,
    pub staff_id: Option<i64>,
    pub status: &'static str,
    pub channel: &'static str,
    pub currency: &'static str,
    pub subtotal: Decimal,
    pub discount: Decimal,
    pub tax: Decimal,
    pub total: Decimal,
    pub placed_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

copy_row!(OrderRow, at placed_at, [
    tenant_id,
    id,
    order_number,
    customer_id,
    store_id,
    staff_id,
    status,
    channel,
    currency,
    subtotal,
    discount,
    tax,
    total,
    placed_at,
    created_at,
    updated_at,
]);

/// Order number prefix of a tenant.
pub fn order_prefix(t: &TenantPlan) -> String {
    t.slug.chars().take(3).collect::<String>().to_uppercase()
}

/// Orders of a tenant, in time order.
pub fn orders<'a>(plan: &'a Plan, t: &'a TenantPlan) -> impl Iterator<Item = OrderRow> + 'a {
    let (_, currency, _, _) = t.locale();
    let prefix = order_prefix(t);
    (0..t.n.orders).map(move |i| {
        let core = order_core(plan.seed, &plan.calendar, t, i);
        let (mut subtotal, mut discount) = (0i64, 0i64);
        for line in order_lines(plan.seed, t, i, core.items) {
            subtotal += i64::from(line.quantity) * line.unit_cents;
            discount += line.discount_cents;
        }
        let updated = match core.status {
            "pending" | "paid" => core.placed_at,
            _ => (core.placed_at + Duration::days(2 + (i % 5) as i64)).min(epoch_end()),
        };
        OrderRow {
            tenant_id: t.id,
            id: TenantPlan::id(t.first.orders, i),
            order_number: format!("{prefix}-{:07}", i + 1),
            customer_id: TenantPlan::id(t.first.customers, core.customer),
            store_id: TenantPlan::id(t.first.stores, core.store),
            staff_id: core.staff.map(|s| TenantPlan::id(t.first.staff, s)),
            status: core.status,
            channel: core.channel,
            currency,
            subtotal: money(subtotal),
            discount: money(discount),
            tax: money(0), // prices include VAT/sales tax, as jewellers display them
            total: money(subtotal - discount),
            placed_at: core.placed_at,
            created_at: core.placed_at,
            updated_at: updated,
        }
    })
}

/// COPY columns of `order_items`.
pub const ORDER_ITEMS: TableSpec = TableSpec {
    name: "order_items",
    columns: &[
        ("tenant_id", Type::UUID),
        ("id", Type::INT8),
        ("order_id", Type::INT8),
        ("variant_id", Type::INT8),
        ("quantity", Type::INT4),
        ("unit_price", Type::NUMERIC),
        ("discount", Type::NUMERIC),
        ("line_total", Type::NUMERIC),
        ("engraving", Type::TEXT),
    ],
};

/// An order line.
#[allow(missing_docs)]
pub struct OrderItemRow {
    pub tenant_id: uuid::Uuid,
    pub id: i64,
    pub order_id: i64,
    pub variant_id: i64,
    pub quantity: i32,
    pub unit_price: Decimal,
    pub discount: Decimal,
    pub line_total: Decimal,
    pub engraving: Option<&'static str>,
    /// Merge key: the order's time.
    pub placed_micros: i64,
}

copy_row!(OrderItemRow, key placed_micros, [
    tenant_id,
    id,
    order_id,
    variant_id,
    quantity,
    unit_price,
    discount,
    line_total,
    engraving,
]);

/// Order lines of a tenant, order by order.
pub fn order_items<'a>(
    plan: &'a Plan,
    t: &'a TenantPlan,
) -> impl Iterator<Item = OrderItemRow> + 'a {
    (0..t.n.orders)
        .flat_map(move |i| {
            let core = order_core(plan.seed, &plan.calendar, t, i);
            let key = micros(&core.placed_at);
            order_lines(plan.seed, t, i, core.items)
                .into_iter()
                .map(move |l| (i, key, l))
        })
        .enumerate()
        .map(move |(n, (i, key, line))| OrderItemRow {
            tenant_id: t.id,
            id: TenantPlan::id(t.first.order_items, n as u64),
            order_id: TenantPlan::id(t.first.orders, i),
            variant_id: TenantPlan::id(t.first.product_variants, line.variant),
            quantity: line.quantity,
            unit_price: money(line.unit_cents),
            discount: money(line.discount_cents),
            line_total: money(line.total_cents()),
            engraving: line.engraving,
            placed_micros: key,
        })
}

/// COPY columns of `payments`.
pub const PAYMENTS: TableSpec = TableSpec {
    name: "payments",
    columns: &[
        ("tenant_id", Type::UUID),
        ("id", Type::INT8),
        ("order_id", Type::INT8),
        ("amount", Type::NUMERIC),
        ("currency", Type::BPCHAR),
        ("method", Type::TEXT),
        ("status", Type::TEXT),
        ("provider_ref", Type::TEXT),
        ("paid_at", Type::TIMESTAMPTZ),
        ("created_at", Type::TIMESTAMPTZ),
    ],
};

/// A payment.
#[allow(missing_docs)]
pub struct PaymentRow {
    pub tenant_id: uuid::Uuid,
    pub id: i64,
    pub order_id: i64,
    pub amount: Decimal,
    pub currency: &'static str,
    pub method: &'static str,
    pub status: &'static str,
    pub provider_ref: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

copy_row!(PaymentRow, at created_at, [
    tenant_id,
    id,
    order_id,
    amount,
    currency,
    method,
    status,
    provider_ref,
    paid_at,
    created_at,
]);

/// Payments of a tenant, order by order: a paid order's captured payments
/// (one, or a 30% deposit and the balance) add up to its total.
pub fn payments<'a>(plan: &'a Plan, t: &'a TenantPlan) -> impl Iterator<Item = PaymentRow> + 'a {
    let (_, currency, _, _) = t.locale();
    (0..t.n.orders)
        .flat_map(move |i| {
            let core = order_core(plan.seed, &plan.calendar, t, i);
            let total: i64 = order_lines(plan.seed, t, i, core.items)
                .iter()
                .map(|l| l.total_cents())
                .sum();
            let mut r = rng(plan.seed, "payments", t, i);
            let method = ["card", "cash", "bank_transfer", "gift_card", "financing"]
                [r.weighted(&[0.62, 0.08, 0.15, 0.05, 0.10])];
            let (status, amounts): (&'static str, Vec<i64>) = match (core.status, core.payments) {
                (_, 0) => ("none", vec![]),
                ("pending", _) => ("pending", vec![total]),
                ("cancelled", _) => ("failed", vec![total]),
                ("refunded", _) => ("refunded", vec![total]),
                (_, 2) => {
                    let deposit = total * 30 / 100;
                    ("captured", vec![deposit, total - deposit])
                }
                _ => ("captured", vec![total]),
            };
            let placed = core.placed_at;
            let step = r.below(20) as i64 + 1;
            let reference = r.below(u64::MAX >> 8);
            amounts.into_iter().enumerate().map(move |(k, amount)| {
                let at =
                    (placed + Duration::minutes(2 + k as i64 * step * 24 * 60)).min(epoch_end());
                (i, amount, status, method, at, reference + k as u64)
            })
        })
        .enumerate()
        .map(
            move |(n, (i, amount, status, method, at, reference))| PaymentRow {
                tenant_id: t.id,
                id: TenantPlan::id(t.first.payments, n as u64),
                order_id: TenantPlan::id(t.first.orders, i),
                amount: money(amount),
                currency,
                method,
                status,
                provider_ref: (method == "card").then(|| format!("pi_{reference:014x}")),
                paid_at: matches!(status, "captured" | "refunded").then_some(at),
                created_at: at,
            },
        )
}
