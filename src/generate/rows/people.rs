//! Stores, staff and customers.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use fake::Fake;
use fake::faker::address::en::{BuildingNumber, CityName, StreetName, ZipCode};
use fake::faker::name::en::{FirstName, LastName};
use rust_decimal::Decimal;
use tokio_postgres::types::Type;

use super::{TableSpec, money, rng};
use crate::generate::calendar::{Calendar, stratified};
use crate::generate::domain::{self, slugify};
use crate::generate::plan::{Plan, TenantPlan};
use crate::rng::Prng;

/// COPY columns of `stores`.
pub const STORES: TableSpec = TableSpec {
    name: "stores",
    columns: &[
        ("tenant_id", Type::UUID),
        ("id", Type::INT8),
        ("code", Type::TEXT),
        ("name", Type::TEXT),
        ("city", Type::TEXT),
        ("country", Type::BPCHAR),
        ("timezone", Type::TEXT),
        ("is_online", Type::BOOL),
        ("opened_on", Type::DATE),
        ("created_at", Type::TIMESTAMPTZ),
    ],
};

/// A store.
#[allow(missing_docs)]
pub struct StoreRow {
    pub tenant_id: uuid::Uuid,
    pub id: i64,
    pub code: String,
    pub name: String,
    pub city: String,
    pub country: String,
    pub timezone: String,
    pub is_online: bool,
    pub opened_on: NaiveDate,
    pub created_at: DateTime<Utc>,
}

copy_row!(
    StoreRow,
    [
        tenant_id, id, code, name, city, country, timezone, is_online, opened_on, created_at,
    ]
);

/// Whether store `i` of the tenant is its online shop (the last of three or more).
pub fn is_online_store(t: &TenantPlan, i: u64) -> bool {
    t.n.stores >= 3 && i == t.n.stores - 1
}

/// Stores of a tenant.
pub fn stores<'a>(plan: &'a Plan, t: &'a TenantPlan) -> impl Iterator<Item = StoreRow> + 'a {
    let (country, _, timezone, _) = t.locale();
    let brand = t
        .name
        .split_whitespace()
        .next()
        .unwrap_or("Store")
        .to_string();
    (0..t.n.stores).map(move |i| {
        let mut r = rng(plan.seed, "stores", t, i);
        let online = is_online_store(t, i);
        let city: String = if online {
            "Online".into()
        } else {
            CityName().fake_with_rng(&mut r)
        };
        let opened = t.created_at + Duration::days(30 + (i as i64) * 45 + r.below(30) as i64);
        StoreRow {
            tenant_id: t.id,
            id: TenantPlan::id(t.first.stores, i),
            code: format!("S{:03}", i + 1),
            name: if online {
                format!("{brand} Online")
            } else {
                format!("{brand} {city}")
            },
            city,
            country: country.into(),
            timezone: timezone.into(),
            is_online: online,
            opened_on: opened.date_naive(),
            created_at: opened,
        }
    })
}

/// COPY columns of `staff`.
pub const STAFF: TableSpec = TableSpec {
    name: "staff",
    columns: &[
        ("tenant_id", Type::UUID),
        ("id", Type::INT8),
        ("store_id", Type::INT8),
        ("first_name", Type::TEXT),
        ("last_name", Type::TEXT),
        ("email", Type::TEXT),
        ("role", Type::TEXT),
        ("is_active", Type::BOOL),
        ("hired_on", Type::DATE),
        ("created_at", Type::TIMESTAMPTZ),
    ],
};

/// A member of staff.
#[allow(missing_docs)]
pub struct StaffRow {
    pub tenant_id: uuid::Uuid,
    pub id: i64,
    pub store_id: Option<i64>,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub role: &'static str,
    pub is_active: bool,
    pub hired_on: NaiveDate,
    pub created_at: DateTime<Utc>,
}

copy_row!(
    StaffRow,
    [
        tenant_id, id, store_id, first_name, last_name, email, role, is_active, hired_on,
        created_at,
    ]
);

/// Role of staff member `i`: the owner, a manager per store, then the floor.
pub fn staff_role(t: &TenantPlan, i: u64, r: &mut Prng) -> &'static str {
    if i == 0 {
        "owner"
    } else if i <= t.n.stores {
        "manager"
    } else {
        ["sales", "sales", "sales", "goldsmith", "support"][r.below(5) as usize]
    }
}

/// Staff of a tenant.
pub fn staff<'a>(plan: &'a Plan, t: &'a TenantPlan) -> impl Iterator<Item = StaffRow> + 'a {
    let domain_name = t.domain();
    (0..t.n.staff).map(move |i| {
        let mut r = rng(plan.seed, "staff", t, i);
        let first: String = FirstName().fake_with_rng(&mut r);
        let last: String = LastName().fake_with_rng(&mut r);
        let id = TenantPlan::id(t.first.staff, i);
        let hired = t.created_at + Duration::days(r.below(365 * 5) as i64);
        StaffRow {
            tenant_id: t.id,
            id,
            store_id: (i > 0).then(|| TenantPlan::id(t.first.stores, i % t.n.stores)),
            email: format!("{}.{}.{id}@{domain_name}", slugify(&first), slugify(&last)),
            first_name: first,
            last_name: last,
            role: staff_role(t, i, &mut r),
            is_active: !r.chance(0.08),
            hired_on: hired.date_naive(),
            created_at: hired,
        }
    })
}

/// COPY columns of `customers`.
pub const CUSTOMERS: TableSpec = TableSpec {
    name: "customers",
    columns: &[
        ("tenant_id", Type::UUID),
        ("id", Type::INT8),
        ("first_name", Type::TEXT),
        ("last_name", Type::TEXT),
        ("email", Type::TEXT),
        ("phone", Type::TEXT),
        ("birth_date", Type::DATE),
        ("anniversary_date", Type::DATE),
        ("ring_size", Type::NUMERIC),
        ("preferred_metal", Type::TEXT),
        ("status", Type::TEXT),
        ("marketing_opt_in", Type::BOOL),
        ("lifetime_value", Type::NUMERIC),
        ("home_store_id", Type::INT8),
        ("assigned_staff_id", Type::INT8),
        ("address_line1", Type::TEXT),
        ("city", Type::TEXT),
        ("postcode", Type::TEXT),
        ("country", Type::BPCHAR),
        ("tags", Type::TEXT_ARRAY),
        ("notes", Type::TEXT),
        ("created_at", Type::TIMESTAMPTZ),
        ("updated_at", Type::TIMESTAMPTZ),
    ],
};

/// A customer.
#[allow(missing_docs)]
pub struct CustomerRow {
    pub tenant_id: uuid::Uuid,
    pub id: i64,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub phone: Option<String>,
    pub birth_date: Option<NaiveDate>,
    pub anniversary_date: Option<NaiveDate>,
    pub ring_size: Option<Decimal>,
    pub preferred_metal: Option<&'static str>,
    pub status: &'static str,
    pub marketing_opt_in: bool,
    pub lifetime_value: Decimal,
    pub home_store_id: Option<i64>,
    pub assigned_staff_id: Option<i64>,
    pub address_line1: Option<String>,
    pub city: Option<String>,
    pub postcode: Option<String>,
    pub country: String,
    pub tags: Vec<String>,
    pub notes: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

copy_row!(CustomerRow, at created_at, [
    tenant_id,
    id,
    first_name,
    last_name,
    email,
    phone,
    birth_date,
    anniversary_date,
    ring_size,
    preferred_metal,
    status,
    marketing_opt_in,
    lifetime_value,
    home_store_id,
    assigned_staff_id,
    address_line1,
    city,
    postcode,
    country,
    tags,
    notes,
    created_at,
    updated_at,
]);

/// Customer statuses and their shares: most are active.
pub const CUSTOMER_STATUS: [(&str, f64); 5] = [
    ("active", 0.70),
    ("vip", 0.04),
    ("inactive", 0.15),
    ("lead", 0.10),
    ("blocked", 0.01),
];

const TAGS: [&str; 6] = [
    "bridal",
    "vip-event",
    "watch-collector",
    "repair",
    "trade",
    "gift-buyer",
];

/// When customer `i` of the tenant signed up (time order follows ids).
pub fn customer_created(seed: u64, cal: &Calendar, t: &TenantPlan, i: u64) -> DateTime<Utc> {
    let mut r = rng(seed, "customers.created", t, i);
    cal.timestamp(
        stratified(i, t.n.customers, r.unit()),
        r.unit(),
        r.chance(0.3),
    )
}

/// Customers of a tenant. Emails are unique per tenant by construction: the
/// local part is letters only, with a pattern-specific number of dots, ending
/// in the customer's id.
pub fn customers<'a>(plan: &'a Plan, t: &'a TenantPlan) -> impl Iterator<Item = CustomerRow> + 'a {
    let (country, _, _, phone_prefix) = t.locale();
    (0..t.n.customers).map(move |i| {
        let mut r = rng(plan.seed, "customers", t, i);
        let id = TenantPlan::id(t.first.customers, i);
        let first: String = FirstName().fake_with_rng(&mut r);
        let last: String = LastName().fake_with_rng(&mut r);
        let (f, l) = (slugify(&first), slugify(&last));
        let local = match r.below(3) {
            0 => format!("{f}.{l}.{id}"),
            1 => format!("{f}{id}"),
            _ => format!("{}.{l}{id}", &f[..f.len().min(1)]),
        };
        let email = format!("{local}@{}", r.pick(&domain::EMAIL_DOMAINS));
        let created_at = customer_created(plan.seed, &plan.calendar, t, i);
        let status = CUSTOMER_STATUS[r.weighted(&CUSTOMER_STATUS.map(|s| s.1))].0;
        let birth = NaiveDate::from_ymd_opt(
            1950 + r.below(56) as i32,
            1 + r.below(12) as u32,
            1 + r.below(28) as u32,
        );
        let spend_cents = match status {
            "lead" => 0,
            "vip" => 500_000 + r.below(5_000_000) as i64,
            _ => r.below(600_000) as i64,
        };
        let updated_at = created_at
            + Duration::seconds(
                r.below(
                    (crate::generate::calendar::epoch_end() - created_at)
                        .num_seconds()
                        .max(1) as u64,
                ) as i64,
            );
        let n_tags = r.weighted(&[0.55, 0.3, 0.12, 0.03]);
        let mut tags: Vec<String> = Vec::with_capacity(n_tags);
        for _ in 0..n_tags {
            let tag = r.pick(&TAGS).to_string();
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        CustomerRow {
            tenant_id: t.id,
            id,
            phone: r
                .chance(0.85)
                .then(|| format!("{phone_prefix}{:04}", r.below(10_000))),
            birth_date: birth.filter(|_| r.chance(0.6)),
            anniversary_date: r
                .chance(0.35)
                .then(|| plan.calendar.day(r.unit()) - Duration::days(365 * r.below(20) as i64)),
            ring_size: r
                .chance(0.5)
                .then(|| Decimal::new(40 + 5 * r.below(16) as i64, 1)),
            preferred_metal: r.chance(0.6).then(|| r.pick(&domain::METALS).0),
            status,
            marketing_opt_in: r.chance(0.55),
            lifetime_value: money(spend_cents),
            home_store_id: Some(TenantPlan::id(t.first.stores, r.below(t.n.stores))),
            assigned_staff_id: r
                .chance(0.6)
                .then(|| TenantPlan::id(t.first.staff, r.below(t.n.staff))),
            address_line1: r.chance(0.8).then(|| {
                let number: String = BuildingNumber().fake_with_rng(&mut r);
                let street: String = StreetName().fake_with_rng(&mut r);
                format!("{number} {street}")
            }),
            city: Some(CityName().fake_with_rng(&mut r)),
            postcode: Some(ZipCode().fake_with_rng(&mut r)),
            country: country.into(),
            tags,
            notes: r
                .chance(0.1)
                .then(|| "Prefers appointments on Saturdays; allergic to nickel.".to_string()),
            first_name: first,
            last_name: last,
            email,
            created_at,
            updated_at,
        }
    })
}
