//! The sales pipeline (stages, deals, their stage history), interactions with
//! customers, and the audit log.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;
use tokio_postgres::types::Type;

use super::{TableSpec, money, rng};
use crate::generate::calendar::{epoch_end, stratified};
use crate::generate::domain::{self, STAGES};
use crate::generate::encode::JsonText;
use crate::generate::plan::{Plan, TenantPlan};
use crate::rng::{power_law_rank, scatter};

/// COPY columns of `pipeline_stages`.
pub const STAGES_SPEC: TableSpec = TableSpec {
    name: "pipeline_stages",
    columns: &[
        ("tenant_id", Type::UUID),
        ("id", Type::INT8),
        ("name", Type::TEXT),
        ("position", Type::INT2),
        ("probability", Type::INT2),
        ("is_won", Type::BOOL),
        ("is_lost", Type::BOOL),
    ],
};

/// A pipeline stage.
#[allow(missing_docs)]
pub struct StageRow {
    pub tenant_id: uuid::Uuid,
    pub id: i64,
    pub name: &'static str,
    pub position: i16,
    pub probability: i16,
    pub is_won: bool,
    pub is_lost: bool,
}

copy_row!(
    StageRow,
    [tenant_id, id, name, position, probability, is_won, is_lost,]
);

/// The tenant's pipeline.
pub fn stages<'a>(_plan: &'a Plan, t: &'a TenantPlan) -> impl Iterator<Item = StageRow> + 'a {
    STAGES.iter().enumerate().map(move |(i, s)| StageRow {
        tenant_id: t.id,
        id: TenantPlan::id(t.first.pipeline_stages, i as u64),
        name: s.0,
        position: i as i16,
        probability: s.1,
        is_won: s.2,
        is_lost: s.3,
    })
}

const WON: usize = 5;
const LOST: usize = 6;

/// A deal, before its rows are written.
#[derive(Debug, Clone)]
pub struct DealCore {
    /// Stages passed through, in order; the last is the current one.
    pub path: Vec<usize>,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// Days between stage changes.
    pub step_days: i64,
}

impl DealCore {
    /// The current stage.
    pub fn stage(&self) -> usize {
        self.path.last().copied().unwrap_or(0)
    }

    /// When the `j`-th stage change happened.
    pub fn changed_at(&self, j: usize) -> DateTime<Utc> {
        (self.created_at
            + Duration::days(self.step_days * j as i64)
            + Duration::minutes(j as i64 * 7))
        .min(epoch_end())
    }
}

/// The core of deal `d`: a funnel (many deals early, few won), sometimes with
/// a step back and forth.
pub fn deal_core(
    seed: u64,
    plan_cal: &crate::generate::calendar::Calendar,
    t: &TenantPlan,
    d: u64,
) -> DealCore {
    let mut r = rng(seed, "deals.core", t, d);
    let stage = r.weighted(&STAGES.map(|s| s.4));
    let mut path: Vec<usize> = match stage {
        WON => (0..=WON).collect(),
        LOST => {
            let lost_at = r.below(4) as usize;
            (0..=lost_at).chain(std::iter::once(LOST)).collect()
        }
        s => (0..=s).collect(),
    };
    let current = *path.last().unwrap_or(&0);
    if (1..WON).contains(&current) && r.chance(0.35) {
        path.push(current - 1);
        path.push(current);
    }
    let created_at = plan_cal.timestamp(stratified(d, t.n.deals, r.unit()), r.unit(), false);
    DealCore {
        path,
        created_at,
        step_days: 1 + r.below(20) as i64,
    }
}

/// Stage-history rows of a tenant.
pub fn count_history(seed: u64, cal: &crate::generate::calendar::Calendar, t: &TenantPlan) -> u64 {
    (0..t.n.deals)
        .map(|d| deal_core(seed, cal, t, d).path.len() as u64)
        .sum()
}

/// COPY columns of `deals`.
pub const DEALS: TableSpec = TableSpec {
    name: "deals",
    columns: &[
        ("tenant_id", Type::UUID),
        ("id", Type::INT8),
        ("customer_id", Type::INT8),
        ("owner_id", Type::INT8),
        ("stage_id", Type::INT8),
        ("title", Type::TEXT),
        ("value", Type::NUMERIC),
        ("currency", Type::BPCHAR),
        ("status", Type::TEXT),
        ("source", Type::TEXT),
        ("expected_close_date", Type::DATE),
        ("created_at", Type::TIMESTAMPTZ),
        ("updated_at", Type::TIMESTAMPTZ),
        ("closed_at", Type::TIMESTAMPTZ),
    ],
};

/// A deal.
#[allow(missing_docs)]
pub struct DealRow {
    pub tenant_id: uuid::Uuid,
    pub id: i64,
    pub customer_id: i64,
    pub owner_id: i64,
    pub stage_id: i64,
    pub title: &'static str,
    pub value: Decimal,
    pub currency: &'static str,
    pub status: &'static str,
    pub source: &'static str,
    pub expected_close_date: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

copy_row!(DealRow, at created_at, [
    tenant_id,
    id,
    customer_id,
    owner_id,
    stage_id,
    title,
    value,
    currency,
    status,
    source,
    expected_close_date,
    created_at,
    updated_at,
    closed_at,
]);

/// Deals of a tenant.
pub fn deals<'a>(plan: &'a Plan, t: &'a TenantPlan) -> impl Iterator<Item = DealRow> + 'a {
    let (_, currency, _, _) = t.locale();
    (0..t.n.deals).map(move |d| {
        let core = deal_core(plan.seed, &plan.calendar, t, d);
        let mut r = rng(plan.seed, "deals", t, d);
        let stage = core.stage();
        let last_change = core.changed_at(core.path.len() - 1);
        let status = match stage {
            WON => "won",
            LOST => "lost",
            _ => "open",
        };
        DealRow {
            tenant_id: t.id,
            id: TenantPlan::id(t.first.deals, d),
            customer_id: TenantPlan::id(t.first.customers, r.below(t.n.customers)),
            owner_id: TenantPlan::id(t.first.staff, r.below(t.n.staff)),
            stage_id: TenantPlan::id(t.first.pipeline_stages, stage as u64),
            title: r.pick::<&str>(&domain::DEAL_TITLES),
            value: money((500 + r.below(24_500) as i64) * 100),
            currency,
            status,
            source: [
                "walk_in",
                "referral",
                "website",
                "instagram",
                "event",
                "phone",
            ][r.weighted(&[0.3, 0.2, 0.2, 0.15, 0.08, 0.07])],
            expected_close_date: r
                .chance(0.9)
                .then(|| (core.created_at + Duration::days(30 + r.below(120) as i64)).date_naive()),
            created_at: core.created_at,
            updated_at: last_change,
            closed_at: (status != "open").then_some(last_change),
        }
    })
}

/// COPY columns of `deal_stage_history`.
pub const HISTORY: TableSpec = TableSpec {
    name: "deal_stage_history",
    columns: &[
        ("tenant_id", Type::UUID),
        ("id", Type::INT8),
        ("deal_id", Type::INT8),
        ("from_stage_id", Type::INT8),
        ("to_stage_id", Type::INT8),
        ("changed_by", Type::INT8),
        ("changed_at", Type::TIMESTAMPTZ),
    ],
};

/// A stage change.
#[allow(missing_docs)]
pub struct HistoryRow {
    pub tenant_id: uuid::Uuid,
    pub id: i64,
    pub deal_id: i64,
    pub from_stage_id: Option<i64>,
    pub to_stage_id: i64,
    pub changed_by: Option<i64>,
    pub changed_at: DateTime<Utc>,
}

copy_row!(HistoryRow, at changed_at, [
    tenant_id,
    id,
    deal_id,
    from_stage_id,
    to_stage_id,
    changed_by,
    changed_at,
]);

/// Stage history of a tenant's deals, deal by deal.
pub fn history<'a>(plan: &'a Plan, t: &'a TenantPlan) -> impl Iterator<Item = HistoryRow> + 'a {
    (0..t.n.deals)
        .flat_map(move |d| {
            let core = deal_core(plan.seed, &plan.calendar, t, d);
            let mut r = rng(plan.seed, "deals", t, d);
            let _customer = r.below(t.n.customers);
            let owner = r.below(t.n.staff);
            (0..core.path.len()).map(move |j| {
                (
                    d,
                    (j > 0).then(|| core.path[j - 1]),
                    core.path[j],
                    owner,
                    core.changed_at(j),
                )
            })
        })
        .enumerate()
        .map(move |(n, (d, from, to, owner, at))| HistoryRow {
            tenant_id: t.id,
            id: TenantPlan::id(t.first.deal_stage_history, n as u64),
            deal_id: TenantPlan::id(t.first.deals, d),
            from_stage_id: from.map(|s| TenantPlan::id(t.first.pipeline_stages, s as u64)),
            to_stage_id: TenantPlan::id(t.first.pipeline_stages, to as u64),
            changed_by: Some(TenantPlan::id(t.first.staff, owner)),
            changed_at: at,
        })
}

/// COPY columns of `interactions`.
pub const INTERACTIONS: TableSpec = TableSpec {
    name: "interactions",
    columns: &[
        ("tenant_id", Type::UUID),
        ("id", Type::INT8),
        ("customer_id", Type::INT8),
        ("staff_id", Type::INT8),
        ("deal_id", Type::INT8),
        ("kind", Type::TEXT),
        ("direction", Type::TEXT),
        ("subject", Type::TEXT),
        ("body", Type::TEXT),
        ("occurred_at", Type::TIMESTAMPTZ),
    ],
};

/// An interaction.
#[allow(missing_docs)]
pub struct InteractionRow {
    pub tenant_id: uuid::Uuid,
    pub id: i64,
    pub customer_id: i64,
    pub staff_id: Option<i64>,
    pub deal_id: Option<i64>,
    pub kind: &'static str,
    pub direction: &'static str,
    pub subject: &'static str,
    pub body: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

copy_row!(InteractionRow, at occurred_at, [
    tenant_id,
    id,
    customer_id,
    staff_id,
    deal_id,
    kind,
    direction,
    subject,
    body,
    occurred_at,
]);

/// Interactions of a tenant: engaged customers get more of them.
pub fn interactions<'a>(
    plan: &'a Plan,
    t: &'a TenantPlan,
) -> impl Iterator<Item = InteractionRow> + 'a {
    (0..t.n.interactions).map(move |i| {
        let mut r = rng(plan.seed, "interactions", t, i);
        let rank = power_law_rank(r.unit(), t.n.customers, 0.5);
        let customer = scatter(rank, t.n.customers, t.idx ^ plan.seed ^ 0xA11CE);
        let kind = ["call", "email", "visit", "sms", "whatsapp", "note"]
            [r.weighted(&[0.2, 0.3, 0.15, 0.1, 0.15, 0.1])];
        let subject = r.pick(&domain::SUBJECTS);
        InteractionRow {
            tenant_id: t.id,
            id: TenantPlan::id(t.first.interactions, i),
            customer_id: TenantPlan::id(t.first.customers, customer),
            staff_id: r
                .chance(0.85)
                .then(|| TenantPlan::id(t.first.staff, r.below(t.n.staff))),
            deal_id: r
                .chance(0.1)
                .then(|| TenantPlan::id(t.first.deals, r.below(t.n.deals))),
            kind,
            direction: if kind == "note" || r.chance(0.55) {
                "outbound"
            } else {
                "inbound"
            },
            subject,
            body: r
                .chance(0.6)
                .then(|| format!("{subject}: discussed options, next step agreed.")),
            occurred_at: plan.calendar.timestamp(
                stratified(i, t.n.interactions, r.unit()),
                r.unit(),
                kind == "email",
            ),
        }
    })
}

/// COPY columns of `audit_log`.
pub const AUDIT: TableSpec = TableSpec {
    name: "audit_log",
    columns: &[
        ("tenant_id", Type::UUID),
        ("id", Type::INT8),
        ("actor_staff_id", Type::INT8),
        ("entity", Type::TEXT),
        ("entity_id", Type::INT8),
        ("action", Type::TEXT),
        ("changes", Type::JSONB),
        ("created_at", Type::TIMESTAMPTZ),
    ],
};

/// An audit entry.
#[allow(missing_docs)]
pub struct AuditRow {
    pub tenant_id: uuid::Uuid,
    pub id: i64,
    pub actor_staff_id: Option<i64>,
    pub entity: &'static str,
    pub entity_id: i64,
    pub action: &'static str,
    pub changes: JsonText,
    pub created_at: DateTime<Utc>,
}

copy_row!(AuditRow, at created_at, [
    tenant_id,
    id,
    actor_staff_id,
    entity,
    entity_id,
    action,
    changes,
    created_at,
]);

/// Audit entries of a tenant.
pub fn audit<'a>(plan: &'a Plan, t: &'a TenantPlan) -> impl Iterator<Item = AuditRow> + 'a {
    (0..t.n.audit_log).map(move |i| {
        let mut r = rng(plan.seed, "audit_log", t, i);
        let entity = ["customer", "order", "deal", "product", "inventory"]
            [r.weighted(&[0.35, 0.3, 0.15, 0.1, 0.1])];
        let (first, n) = match entity {
            "customer" => (t.first.customers, t.n.customers),
            "order" => (t.first.orders, t.n.orders),
            "deal" => (t.first.deals, t.n.deals),
            "product" => (t.first.products, t.n.products),
            _ => (t.first.inventory, t.n.inventory.max(1)),
        };
        let action = ["create", "update", "delete"][r.weighted(&[0.4, 0.55, 0.05])];
        let changes = match (entity, action) {
            (_, "delete") => JsonText("{}"),
            ("customer", _) => JsonText(r#"{"status": {"from": "lead", "to": "active"}}"#),
            ("order", _) => JsonText(r#"{"status": {"from": "paid", "to": "shipped"}}"#),
            ("deal", _) => JsonText(r#"{"stage": {"from": "Consultation", "to": "Design"}}"#),
            ("product", _) => JsonText(r#"{"base_price": {"from": "1249.00", "to": "1299.00"}}"#),
            _ => JsonText(r#"{"quantity": {"from": 3, "to": 2}}"#),
        };
        AuditRow {
            tenant_id: t.id,
            id: TenantPlan::id(t.first.audit_log, i),
            actor_staff_id: r
                .chance(0.9)
                .then(|| TenantPlan::id(t.first.staff, r.below(t.n.staff))),
            entity,
            entity_id: TenantPlan::id(first, r.below(n)),
            action,
            changes,
            created_at: plan.calendar.timestamp(
                stratified(i, t.n.audit_log, r.unit()),
                r.unit(),
                true,
            ),
        }
    })
}
