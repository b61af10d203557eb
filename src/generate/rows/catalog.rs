//! The catalogue: categories, suppliers, products, their variants (sizes,
//! lengths, finishes) and stock per store.

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde_json::json;
use tokio_postgres::types::Type;

use super::{TableSpec, money, rng};
use crate::generate::domain::{self, CATEGORIES, GEMSTONES, METALS};
use crate::generate::plan::{Plan, TenantPlan};
use crate::rng::{Prng, derive, tag};

/// Every product comes in this many variants (ring sizes, lengths, finishes).
pub const VARIANTS_PER_PRODUCT: u64 = 3;

/// COPY columns of `categories`.
pub const CATEGORIES_SPEC: TableSpec = TableSpec {
    name: "categories",
    columns: &[
        ("tenant_id", Type::UUID),
        ("id", Type::INT8),
        ("parent_id", Type::INT8),
        ("name", Type::TEXT),
        ("slug", Type::TEXT),
    ],
};

/// A category.
#[allow(missing_docs)]
pub struct CategoryRow {
    pub tenant_id: uuid::Uuid,
    pub id: i64,
    pub parent_id: Option<i64>,
    pub name: &'static str,
    pub slug: &'static str,
}

copy_row!(CategoryRow, [tenant_id, id, parent_id, name, slug,]);

/// The category tree of a tenant (the same shape for every jeweller).
pub fn categories<'a>(
    _plan: &'a Plan,
    t: &'a TenantPlan,
) -> impl Iterator<Item = CategoryRow> + 'a {
    CATEGORIES
        .iter()
        .enumerate()
        .map(move |(i, c)| CategoryRow {
            tenant_id: t.id,
            id: TenantPlan::id(t.first.categories, i as u64),
            parent_id: c.2.map(|p| TenantPlan::id(t.first.categories, p as u64)),
            name: c.1,
            slug: c.0,
        })
}

/// COPY columns of `suppliers`.
pub const SUPPLIERS: TableSpec = TableSpec {
    name: "suppliers",
    columns: &[
        ("tenant_id", Type::UUID),
        ("id", Type::INT8),
        ("name", Type::TEXT),
        ("country", Type::BPCHAR),
        ("email", Type::TEXT),
        ("phone", Type::TEXT),
        ("lead_time_days", Type::INT4),
        ("created_at", Type::TIMESTAMPTZ),
    ],
};

/// A supplier.
#[allow(missing_docs)]
pub struct SupplierRow {
    pub tenant_id: uuid::Uuid,
    pub id: i64,
    pub name: String,
    pub country: &'static str,
    pub email: String,
    pub phone: String,
    pub lead_time_days: i32,
    pub created_at: DateTime<Utc>,
}

copy_row!(
    SupplierRow,
    [
        tenant_id,
        id,
        name,
        country,
        email,
        phone,
        lead_time_days,
        created_at,
    ]
);

const SUPPLIER_COUNTRIES: [&str; 12] = [
    "BE", "GB", "IN", "GB", "IT", "TH", "PF", "IN", "DE", "DE", "LK", "CH",
];

/// Suppliers of a tenant.
pub fn suppliers<'a>(plan: &'a Plan, t: &'a TenantPlan) -> impl Iterator<Item = SupplierRow> + 'a {
    (0..t.n.suppliers).map(move |i| {
        let mut r = rng(plan.seed, "suppliers", t, i);
        let base = (i as usize) % domain::SUPPLIERS.len();
        let round = i as usize / domain::SUPPLIERS.len();
        let name = if round == 0 {
            domain::SUPPLIERS[base].to_string()
        } else {
            format!("{} ({})", domain::SUPPLIERS[base], round + 1)
        };
        let id = TenantPlan::id(t.first.suppliers, i);
        SupplierRow {
            tenant_id: t.id,
            id,
            email: format!("orders{id}@{}.example", domain::slugify(&name)),
            phone: format!("+32 3 555 {:04}", r.below(10_000)),
            name,
            country: SUPPLIER_COUNTRIES[base],
            lead_time_days: 5 + r.below(50) as i32,
            created_at: t.created_at + Duration::days(r.below(400) as i64),
        }
    })
}

/// What determines a product's price and shape, cheap to recompute anywhere.
#[derive(Debug, Clone, Copy)]
pub struct ProductCore {
    /// Index into [`CATEGORIES`].
    pub category: usize,
    /// Index into [`METALS`].
    pub metal: usize,
    /// Index into [`GEMSTONES`].
    pub gem: usize,
    /// Carat weight in hundredths, for gem-set pieces.
    pub carat_x100: Option<i64>,
    /// Base price in cents (whole currency units, a jeweller's round prices).
    pub base_cents: i64,
}

/// The core of product `p` of the tenant.
pub fn product_core(seed: u64, t: &TenantPlan, p: u64) -> ProductCore {
    let mut r = rng(seed, "products.core", t, p);
    let category = r.weighted(&CATEGORIES.map(|c| c.3));
    let metal = r.weighted(&METALS.map(|m| m.2));
    let gem = if category == 17 || category == 8 {
        0 // watches and chains: no stones
    } else {
        r.weighted(&GEMSTONES.map(|g| g.1))
    };
    let grams = match category {
        1..=5 => 3.0 + r.unit() * 4.0,
        7 | 9 => 2.0 + r.unit() * 4.0,
        8 => 4.0 + r.unit() * 16.0,
        11..=13 => 1.5 + r.unit() * 3.0,
        15 | 16 => 8.0 + r.unit() * 18.0,
        _ => 40.0 + r.unit() * 80.0,
    };
    let carat_x100 = (gem != 0).then(|| {
        let c = match category {
            1 => 30 + r.below(170),
            3 | 16 => 30 + r.below(270),
            _ => 3 + r.below(60),
        };
        c as i64
    });
    let metal_value = grams * 58.0 * METALS[metal].3;
    let stone_value = carat_x100
        .map(|c| {
            let carat = c as f64 / 100.0;
            GEMSTONES[gem].2 * carat * (1.0 + carat * 0.6)
        })
        .unwrap_or(0.0);
    let labour = if category == 17 {
        1500.0 + r.unit() * 9000.0
    } else {
        120.0 + r.unit() * 600.0
    };
    let units = ((metal_value + stone_value + labour) * 1.6).round() as i64;
    // Round to a retail price point (…9 or …0).
    let price = if units > 1000 {
        (units / 50) * 50 - 1
    } else {
        (units / 10) * 10 + 9
    };
    ProductCore {
        category,
        metal,
        gem,
        carat_x100,
        base_cents: price.max(19) * 100,
    }
}

/// Price of variant `k` of product `p`, in cents: bigger sizes cost a little more.
pub fn variant_price_cents(core: &ProductCore, k: u64) -> i64 {
    variant_price_from(core.base_cents, k)
}

/// [`variant_price_cents`] from the base price alone.
pub fn variant_price_from(base_cents: i64, k: u64) -> i64 {
    base_cents + (base_cents / 100) * 4 * k as i64
}

/// What an order line needs of its product's [`ProductCore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProductPrice {
    /// [`ProductCore::base_cents`].
    pub base_cents: i64,
    /// [`ProductCore::category`].
    pub category: usize,
}

/// Every product's [`ProductPrice`] for tenant `t`, computed once per tenant
/// (16 bytes a product: 16 MB at scale 10). Order lines drew a product core
/// each — a seeded generator and three weighted draws — three times per line
/// (orders, items, payments): a fifth of the loader's CPU.
pub fn product_prices(seed: u64, t: &TenantPlan) -> &[ProductPrice] {
    t.prices.get_or_init(|| {
        (0..t.n.products)
            .map(|p| {
                let core = product_core(seed, t, p);
                ProductPrice {
                    base_cents: core.base_cents,
                    category: core.category,
                }
            })
            .collect()
    })
}

/// The [`ProductPrice`] of product `p`: from the tenant's table, or worked
/// out if `p` lies beyond it.
pub fn product_price(seed: u64, t: &TenantPlan, p: u64) -> ProductPrice {
    match product_prices(seed, t).get(p as usize) {
        Some(price) => *price,
        None => {
            let core = product_core(seed, t, p);
            ProductPrice {
                base_cents: core.base_cents,
                category: core.category,
            }
        }
    }
}

/// COPY columns of `products`.
pub const PRODUCTS: TableSpec = TableSpec {
    name: "products",
    columns: &[
        ("tenant_id", Type::UUID),
        ("id", Type::INT8),
        ("category_id", Type::INT8),
        ("supplier_id", Type::INT8),
        ("sku", Type::TEXT),
        ("name", Type::TEXT),
        ("description", Type::TEXT),
        ("metal", Type::TEXT),
        ("purity", Type::TEXT),
        ("gemstone", Type::TEXT),
        ("carat", Type::NUMERIC),
        ("base_price", Type::NUMERIC),
        ("currency", Type::BPCHAR),
        ("attributes", Type::JSONB),
        ("status", Type::TEXT),
        ("created_at", Type::TIMESTAMPTZ),
        ("updated_at", Type::TIMESTAMPTZ),
    ],
};

/// A product.
#[allow(missing_docs)]
pub struct ProductRow {
    pub tenant_id: uuid::Uuid,
    pub id: i64,
    pub category_id: Option<i64>,
    pub supplier_id: Option<i64>,
    pub sku: String,
    pub name: String,
    pub description: Option<String>,
    pub metal: &'static str,
    pub purity: &'static str,
    pub gemstone: Option<&'static str>,
    pub carat: Option<Decimal>,
    pub base_price: Decimal,
    pub currency: &'static str,
    pub attributes: serde_json::Value,
    pub status: &'static str,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

copy_row!(
    ProductRow,
    [
        tenant_id,
        id,
        category_id,
        supplier_id,
        sku,
        name,
        description,
        metal,
        purity,
        gemstone,
        carat,
        base_price,
        currency,
        attributes,
        status,
        created_at,
        updated_at,
    ]
);

fn sku_prefix(core: &ProductCore) -> String {
    let cat = CATEGORIES[core.category].0;
    let metal = METALS[core.metal];
    let m: String = metal
        .0
        .split_whitespace()
        .map(|w| &w[..1])
        .collect::<String>()
        .to_uppercase();
    format!(
        "{}-{}{}",
        cat[..3].to_uppercase(),
        metal.1.to_uppercase().replace(' ', ""),
        m
    )
}

/// Products of a tenant.
pub fn products<'a>(plan: &'a Plan, t: &'a TenantPlan) -> impl Iterator<Item = ProductRow> + 'a {
    let (_, currency, _, _) = t.locale();
    (0..t.n.products).map(move |p| {
        let core = product_core(plan.seed, t, p);
        let mut r = rng(plan.seed, "products", t, p);
        let metal = METALS[core.metal];
        let gem = GEMSTONES[core.gem].0;
        let collection = r.pick(&domain::COLLECTIONS);
        let carat = core.carat_x100.map(|c| Decimal::new(c, 2));
        let name = match (gem, carat) {
            (Some(g), Some(c)) => {
                format!(
                    "{collection} {} {} {} {}ct",
                    metal.1,
                    title(metal.0),
                    title(g),
                    c
                ) + &format!(" {}", domain::noun(core.category))
            }
            _ => format!(
                "{collection} {} {} {}",
                metal.1,
                title(metal.0),
                domain::noun(core.category)
            ),
        };
        let mut attributes = json!({
            "finish": r.pick(&domain::FINISHES),
            "hallmarked": true,
        });
        if let Some(obj) = attributes.as_object_mut() {
            if gem.is_some() {
                obj.insert("setting".into(), json!(r.pick(&domain::SETTINGS)));
            }
            if matches!(gem, Some("diamond") | Some("lab-grown diamond")) {
                obj.insert("cut".into(), json!(r.pick(&domain::CUTS)));
                obj.insert("clarity".into(), json!(r.pick(&domain::CLARITY)));
                obj.insert("colour".into(), json!(r.pick(&domain::COLOUR)));
                obj.insert("certified".into(), json!(r.chance(0.7)));
            }
            if domain::is_ring(core.category) {
                obj.insert("band_width_mm".into(), json!(2 + r.below(5)));
                obj.insert("resizable".into(), json!(core.metal != 10));
            }
            if r.chance(0.15) {
                obj.insert("ethically_sourced".into(), json!(true));
            }
        }
        let created_at = t.created_at + Duration::days(r.below(365 * 6) as i64);
        ProductRow {
            tenant_id: t.id,
            id: TenantPlan::id(t.first.products, p),
            category_id: Some(TenantPlan::id(t.first.categories, core.category as u64)),
            supplier_id: Some(TenantPlan::id(t.first.suppliers, r.below(t.n.suppliers))),
            sku: format!("{}-{:06}", sku_prefix(&core), p + 1),
            description: r.chance(0.7).then(|| {
                format!(
                    "Handcrafted in {} {}{}.",
                    metal.1,
                    metal.0,
                    gem.map(|g| format!(" with {g}")).unwrap_or_default()
                )
            }),
            name,
            metal: metal.0,
            purity: metal.1,
            gemstone: gem,
            carat,
            base_price: money(core.base_cents),
            currency,
            attributes,
            status: [
                "active",
                "active",
                "active",
                "active",
                "active",
                "active",
                "active",
                "draft",
                "discontinued",
                "discontinued",
            ][r.below(10) as usize],
            updated_at: created_at + Duration::days(r.below(200) as i64),
            created_at,
        }
    })
}

fn title(s: &str) -> String {
    s.split_whitespace()
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// COPY columns of `product_variants`.
pub const VARIANTS: TableSpec = TableSpec {
    name: "product_variants",
    columns: &[
        ("tenant_id", Type::UUID),
        ("id", Type::INT8),
        ("product_id", Type::INT8),
        ("sku", Type::TEXT),
        ("ring_size", Type::NUMERIC),
        ("length_mm", Type::INT4),
        ("price", Type::NUMERIC),
        ("weight_grams", Type::NUMERIC),
        ("certificate_number", Type::TEXT),
        ("is_active", Type::BOOL),
    ],
};

/// A variant.
#[allow(missing_docs)]
pub struct VariantRow {
    pub tenant_id: uuid::Uuid,
    pub id: i64,
    pub product_id: i64,
    pub sku: String,
    pub ring_size: Option<Decimal>,
    pub length_mm: Option<i32>,
    pub price: Decimal,
    pub weight_grams: Decimal,
    pub certificate_number: Option<String>,
    pub is_active: bool,
}

copy_row!(
    VariantRow,
    [
        tenant_id,
        id,
        product_id,
        sku,
        ring_size,
        length_mm,
        price,
        weight_grams,
        certificate_number,
        is_active,
    ]
);

/// Variants of a tenant's products (three per product).
pub fn variants<'a>(plan: &'a Plan, t: &'a TenantPlan) -> impl Iterator<Item = VariantRow> + 'a {
    (0..t.n.products).flat_map(move |p| {
        let core = product_core(plan.seed, t, p);
        let prefix = sku_prefix(&core);
        (0..VARIANTS_PER_PRODUCT).map(move |k| {
            let v = p * VARIANTS_PER_PRODUCT + k;
            let mut r = rng(plan.seed, "product_variants", t, v);
            let (ring_size, length_mm, suffix) = if domain::is_ring(core.category) {
                let tenths = [55i64, 65, 75][k as usize];
                (Some(Decimal::new(tenths, 1)), None, format!("S{tenths}"))
            } else if domain::has_length(core.category) {
                let mm = if matches!(core.category, 15 | 16) {
                    [170, 180, 190][k as usize]
                } else {
                    [400, 450, 500][k as usize]
                };
                (None, Some(mm), format!("L{mm}"))
            } else {
                (None, None, ["P", "B", "M"][k as usize].to_string())
            };
            let certified = matches!(core.gem, 1 | 2) && core.carat_x100.unwrap_or(0) >= 30;
            VariantRow {
                tenant_id: t.id,
                id: TenantPlan::id(t.first.product_variants, v),
                product_id: TenantPlan::id(t.first.products, p),
                sku: format!("{prefix}-{:06}-{suffix}", p + 1),
                ring_size,
                length_mm,
                price: money(variant_price_cents(&core, k)),
                weight_grams: Decimal::new(150 + r.below(2500) as i64, 2),
                certificate_number: certified.then(|| {
                    format!(
                        "{} {}",
                        r.pick(&domain::LABS),
                        1_000_000_000 + r.below(8_999_999_999)
                    )
                }),
                is_active: !r.chance(0.05),
            }
        })
    })
}

/// Whether store `s` stocks variant `v`: the flagship (store 0) and the online
/// shop stock everything, other stores about 30%.
pub fn stocked(seed: u64, t: &TenantPlan, s: u64, v: u64) -> bool {
    if s == 0 || super::people::is_online_store(t, s) {
        return true;
    }
    derive(&[seed, tag("inventory.stocked"), t.idx, s, v]) % 10 < 3
}

/// Inventory rows of a tenant (one per stocked store × variant).
pub fn count_inventory(seed: u64, t: &TenantPlan) -> u64 {
    let variants = t.n.products * VARIANTS_PER_PRODUCT;
    (0..t.n.stores)
        .map(|s| (0..variants).filter(|&v| stocked(seed, t, s, v)).count() as u64)
        .sum()
}

/// COPY columns of `inventory`.
pub const INVENTORY: TableSpec = TableSpec {
    name: "inventory",
    columns: &[
        ("tenant_id", Type::UUID),
        ("id", Type::INT8),
        ("store_id", Type::INT8),
        ("variant_id", Type::INT8),
        ("quantity", Type::INT4),
        ("reserved", Type::INT4),
        ("reorder_level", Type::INT4),
        ("updated_at", Type::TIMESTAMPTZ),
    ],
};

/// A stock level.
#[allow(missing_docs)]
pub struct InventoryRow {
    pub tenant_id: uuid::Uuid,
    pub id: i64,
    pub store_id: i64,
    pub variant_id: i64,
    pub quantity: i32,
    pub reserved: i32,
    pub reorder_level: i32,
    pub updated_at: DateTime<Utc>,
}

copy_row!(
    InventoryRow,
    [
        tenant_id,
        id,
        store_id,
        variant_id,
        quantity,
        reserved,
        reorder_level,
        updated_at,
    ]
);

/// Stock levels of a tenant: store by store, variant by variant.
pub fn inventory<'a>(plan: &'a Plan, t: &'a TenantPlan) -> impl Iterator<Item = InventoryRow> + 'a {
    let variants = t.n.products * VARIANTS_PER_PRODUCT;
    let end = crate::generate::calendar::epoch_end();
    (0..t.n.stores)
        .flat_map(move |s| (0..variants).map(move |v| (s, v)))
        .filter(move |&(s, v)| stocked(plan.seed, t, s, v))
        .enumerate()
        .map(move |(i, (s, v))| {
            let mut r: Prng = rng(plan.seed, "inventory", t, i as u64);
            let quantity = if r.chance(0.12) {
                0
            } else {
                1 + r.below(12) as i32
            };
            InventoryRow {
                tenant_id: t.id,
                id: TenantPlan::id(t.first.inventory, i as u64),
                store_id: TenantPlan::id(t.first.stores, s),
                variant_id: TenantPlan::id(t.first.product_variants, v),
                quantity,
                reserved: if quantity > 0 && r.chance(0.1) { 1 } else { 0 },
                reorder_level: 1 + r.below(3) as i32,
                updated_at: end - Duration::minutes(r.below(60 * 24 * 120) as i64),
            }
        })
}
