//! SARIF 2.1.0 for GitHub code scanning. Code scanning rejects a result
//! without a file location, so only located findings (Prisma schema,
//! migration files) are results; catalog findings stay in text and JSON.

use serde_json::{Value, json};

use super::model::{Report, Rule, Severity};

/// The SARIF log of `report`'s located findings.
pub fn sarif(report: &Report) -> Value {
    let rules: Vec<Value> = Rule::ALL
        .iter()
        .map(|r| {
            json!({
                "id": r.id(),
                "shortDescription": { "text": r.id().replace('-', " ") },
                "fullDescription": { "text": r.why() },
                "defaultConfiguration": { "level": level(r.severity()) },
                "properties": { "distribution-blocker": r.distribution_blocker() },
            })
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .filter_map(|f| {
            let loc = f.location.as_ref()?;
            let index = Rule::ALL.iter().position(|r| *r == f.rule)?;
            Some(json!({
                "ruleId": f.rule.id(),
                "ruleIndex": index,
                "level": level(f.severity),
                "message": { "text": format!("{}: {}. Fix:\n{}", f.object, f.message, f.fix) },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": loc.file },
                        "region": { "startLine": loc.line },
                    }
                }],
            }))
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "crmbench",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
        }],
    })
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}
