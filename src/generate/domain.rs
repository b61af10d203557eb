//! What a jeweller's data looks like: metals and purities, gemstones and their
//! grading, categories, pipeline stages, and the words staff type into a CRM.

/// (metal, purity, weight, price factor per gram relative to 18k gold).
pub const METALS: [(&str, &str, f64, f64); 12] = [
    ("yellow gold", "18k", 0.20, 1.00),
    ("yellow gold", "14k", 0.08, 0.78),
    ("yellow gold", "9k", 0.07, 0.50),
    ("white gold", "18k", 0.16, 1.05),
    ("white gold", "14k", 0.06, 0.80),
    ("rose gold", "18k", 0.08, 1.00),
    ("rose gold", "9k", 0.04, 0.50),
    ("platinum", "950", 0.11, 1.40),
    ("silver", "925", 0.14, 0.05),
    ("palladium", "950", 0.02, 0.90),
    ("titanium", "grade 2", 0.02, 0.10),
    ("silver", "999", 0.02, 0.06),
];

/// (gemstone, weight, price per carat in currency units). `None` = plain metal.
pub const GEMSTONES: [(Option<&str>, f64, f64); 11] = [
    (None, 0.44, 0.0),
    (Some("diamond"), 0.20, 4800.0),
    (Some("lab-grown diamond"), 0.08, 900.0),
    (Some("sapphire"), 0.07, 1400.0),
    (Some("ruby"), 0.04, 1800.0),
    (Some("emerald"), 0.04, 1600.0),
    (Some("pearl"), 0.05, 300.0),
    (Some("moissanite"), 0.03, 350.0),
    (Some("tanzanite"), 0.02, 700.0),
    (Some("aquamarine"), 0.02, 450.0),
    (Some("morganite"), 0.01, 400.0),
];

/// Diamond cuts.
pub const CUTS: [&str; 8] = [
    "round brilliant",
    "oval",
    "cushion",
    "princess",
    "emerald",
    "pear",
    "marquise",
    "radiant",
];
/// GIA clarity grades.
pub const CLARITY: [&str; 8] = ["IF", "VVS1", "VVS2", "VS1", "VS2", "SI1", "SI2", "I1"];
/// GIA colour grades.
pub const COLOUR: [&str; 8] = ["D", "E", "F", "G", "H", "I", "J", "K"];
/// Ring and pendant settings.
pub const SETTINGS: [&str; 7] = [
    "claw",
    "bezel",
    "halo",
    "pavé",
    "channel",
    "tension",
    "cathedral",
];
/// Metal finishes.
pub const FINISHES: [&str; 4] = ["polished", "brushed", "hammered", "matte"];
/// Certificate issuers.
pub const LABS: [&str; 3] = ["GIA", "IGI", "HRD"];

/// (slug, name, parent index or none, weight of products in it).
pub const CATEGORIES: [(&str, &str, Option<usize>, f64); 18] = [
    ("rings", "Rings", None, 0.0),
    ("engagement-rings", "Engagement rings", Some(0), 0.16),
    ("wedding-bands", "Wedding bands", Some(0), 0.12),
    ("eternity-rings", "Eternity rings", Some(0), 0.06),
    ("signet-rings", "Signet rings", Some(0), 0.03),
    ("dress-rings", "Dress rings", Some(0), 0.07),
    ("necklaces", "Necklaces", None, 0.0),
    ("pendants", "Pendants", Some(6), 0.10),
    ("chains", "Chains", Some(6), 0.07),
    ("lockets", "Lockets", Some(6), 0.02),
    ("earrings", "Earrings", None, 0.0),
    ("studs", "Stud earrings", Some(10), 0.09),
    ("hoops", "Hoop earrings", Some(10), 0.06),
    ("drops", "Drop earrings", Some(10), 0.05),
    ("bracelets", "Bracelets", None, 0.0),
    ("bangles", "Bangles", Some(14), 0.05),
    ("tennis-bracelets", "Tennis bracelets", Some(14), 0.04),
    ("watches", "Watches", None, 0.08),
];

/// Whether products of a category come in ring sizes.
pub fn is_ring(category: usize) -> bool {
    (1..=5).contains(&category)
}

/// Whether products of a category come in lengths (mm).
pub fn has_length(category: usize) -> bool {
    matches!(category, 7..=9 | 15 | 16)
}

/// Product nouns per category index.
pub fn noun(category: usize) -> &'static str {
    match category {
        1 => "Solitaire Ring",
        2 => "Wedding Band",
        3 => "Eternity Ring",
        4 => "Signet Ring",
        5 => "Cocktail Ring",
        7 => "Pendant",
        8 => "Chain",
        9 => "Locket",
        11 => "Stud Earrings",
        12 => "Hoop Earrings",
        13 => "Drop Earrings",
        15 => "Bangle",
        16 => "Tennis Bracelet",
        17 => "Watch",
        _ => "Piece",
    }
}

/// Collection names that prefix product names.
pub const COLLECTIONS: [&str; 16] = [
    "Aurora",
    "Celeste",
    "Heritage",
    "Lumière",
    "Marguerite",
    "Nova",
    "Orla",
    "Promise",
    "Riviera",
    "Seraphine",
    "Solstice",
    "Tiffany Blue",
    "Victoria",
    "Willow",
    "Ysolde",
    "Zephyr",
];

/// Pipeline stages: (name, probability %, is_won, is_lost, share of deals now in it).
pub const STAGES: [(&str, i16, bool, bool, f64); 7] = [
    ("Enquiry", 10, false, false, 0.35),
    ("Consultation", 25, false, false, 0.22),
    ("Design", 40, false, false, 0.14),
    ("Quote sent", 60, false, false, 0.10),
    ("Deposit paid", 85, false, false, 0.06),
    ("Won", 100, true, false, 0.08),
    ("Lost", 0, false, true, 0.05),
];

/// Deal titles.
pub const DEAL_TITLES: [&str; 12] = [
    "Bespoke engagement ring",
    "Anniversary eternity ring",
    "Pair of wedding bands",
    "Diamond upgrade",
    "Pearl necklace restring",
    "Heirloom ring redesign",
    "Christmas gift: tennis bracelet",
    "Valentine's pendant",
    "Watch purchase",
    "Earrings for the bride",
    "Corporate gifts",
    "Signet ring with family crest",
];

/// Interaction subjects.
pub const SUBJECTS: [&str; 12] = [
    "Ring sizing appointment",
    "Quote follow-up",
    "Design review: CAD render",
    "Collection reminder",
    "Valuation certificate request",
    "Resize request",
    "Engraving proof",
    "Deposit received",
    "Birthday greeting",
    "Repair status update",
    "Viewing appointment",
    "Care and cleaning advice",
];

/// Supplier names.
pub const SUPPLIERS: [&str; 12] = [
    "Antwerp Diamond Trading",
    "Birmingham Quarter Casting",
    "Jaipur Gem House",
    "Hatton Garden Settings",
    "Vicenza Gold Works",
    "Bangkok Coloured Stones",
    "Tahiti Pearl Cooperative",
    "Surat Lab Diamonds",
    "Idar-Oberstein Cutters",
    "Pforzheim Chains",
    "Colombo Sapphire Co",
    "Geneva Watch Distribution",
];

/// Tenant name patterns: `{}` is a surname or a city.
pub const TENANT_PATTERNS: [&str; 8] = [
    "{} & Sons Jewellers",
    "{} Diamonds",
    "Maison {}",
    "{} Fine Jewellery",
    "The {} Goldsmiths",
    "{} & Co",
    "{} Bridal Jewellers",
    "Atelier {}",
];

/// (country, currency, timezone, phone prefix, weight).
pub const COUNTRIES: [(&str, &str, &str, &str, f64); 9] = [
    ("GB", "GBP", "Europe/London", "+44 7700 9", 0.28),
    ("US", "USD", "America/New_York", "+1 212 555 ", 0.30),
    ("AU", "AUD", "Australia/Sydney", "+61 491 570 ", 0.09),
    ("CA", "CAD", "America/Toronto", "+1 416 555 ", 0.07),
    ("IE", "EUR", "Europe/Dublin", "+353 85 555 ", 0.05),
    ("FR", "EUR", "Europe/Paris", "+33 6 55 5", 0.06),
    ("CH", "CHF", "Europe/Zurich", "+41 79 555 ", 0.05),
    ("AE", "AED", "Asia/Dubai", "+971 50 555 ", 0.05),
    ("SG", "SGD", "Asia/Singapore", "+65 8555 ", 0.05),
];

/// Email domains of customers.
pub const EMAIL_DOMAINS: [&str; 8] = [
    "gmail.com",
    "outlook.com",
    "yahoo.com",
    "icloud.com",
    "hotmail.co.uk",
    "proton.me",
    "aol.com",
    "btinternet.com",
];

/// Keep lowercase ASCII letters only (emails derive from names).
pub fn slugify(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphabetic())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_consistent() {
        let funnel: f64 = STAGES.iter().map(|s| s.4).sum();
        assert!((funnel - 1.0).abs() < 1e-9);
        for (i, c) in CATEGORIES.iter().enumerate() {
            if let Some(p) = c.2 {
                assert!(p < i && CATEGORIES[p].2.is_none(), "{}", c.0);
            }
        }
        assert_eq!(slugify("O'Hara-Smith"), "oharasmith");
    }
}
