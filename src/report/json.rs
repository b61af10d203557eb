//! report.json: the report's summary in machine form ([`ReportSummary`],
//! written through the run folder's writer), versioned by
//! [`FORMAT_VERSION`]. Latencies are in ms, floats rounded (3 decimals for
//! ms and ratios, 1 for tps), so the file diffs cleanly and snapshots hold.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::model::{
    AdviceView, Environment, IndexView, QueryFindings, QuerySummary, RemedyView, ReportModel,
    Verification, ms,
};
use crate::results::RatioCi;

/// Version of report.json.
pub const FORMAT_VERSION: u32 = 1;

/// Round to `places` decimals (non-finite values become null in JSON anyway).
pub fn round(v: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (v * f).round() / f
}

fn ratio(r: &RatioCi) -> Value {
    json!({"ratio": round(r.ratio, 3), "lo": round(r.lo, 3), "hi": round(r.hi, 3)})
}

/// report.json's content. The document is built as a JSON value (keys in
/// the order serde_json sorts them, which the golden files hold); the type
/// lets it go through the run folder's one versioned reader and writer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReportSummary(pub Value);

/// The summary of `model`.
pub fn summary(model: &ReportModel) -> ReportSummary {
    let mut doc = json!({
        "format_version": FORMAT_VERSION,
        "environment": environment(&model.environment),
        "queries": model.queries.iter().map(query).collect::<Vec<_>>(),
        "plans": model.plans.as_deref().map(plans),
        "advice": model.advice.as_ref().map(advice),
    });
    // A paired folder's summary is the gate's verdict, as `compare --format
    // json` gives it (absent for other folders).
    if let (Some(p), Some(obj)) = (&model.paired, doc.as_object_mut()) {
        obj.insert(
            "gate".into(),
            serde_json::to_value(&p.comparison).unwrap_or(Value::Null),
        );
    }
    ReportSummary(doc)
}

fn environment(env: &Environment) -> Value {
    json!({
        "crmbench_version": env.crmbench_version,
        "server_version": env.server_version,
        "settings": env.settings,
        "scale": env.scale,
        "seed": env.seed,
        "workload": {"name": env.workload, "path": env.workload_path, "hash": env.workload_hash},
        "driver": env.driver,
        "started_at": env.started_at,
        "ended_at": env.ended_at,
        "measured_seconds": round(env.measured_seconds, 3),
        "partial": env.partial,
        "warnings": env.warnings,
    })
}

fn query(q: &QuerySummary) -> Value {
    let l = &q.latency;
    json!({
        "name": q.name,
        "kind": q.kind,
        "count": q.count,
        "tps": round(q.tps, 1),
        "errors": q.errors,
        "latency_ms": {
            "mean": round(l.mean_us / 1000.0, 3),
            "p50": ms(l.p50_us),
            "p90": ms(l.p90_us),
            "p95": ms(l.p95_us),
            "p99": ms(l.p99_us),
            "p99_9": ms(l.p999_us),
            "max": ms(l.max_us),
        },
    })
}

fn plans(plans: &[QueryFindings]) -> Vec<Value> {
    plans
        .iter()
        .map(|q| {
            json!({
                "query": q.query,
                "findings": q.findings.iter().map(|f| json!({
                    "kind": f.kind, "node": f.node, "hint": f.hint,
                })).collect::<Vec<_>>(),
            })
        })
        .collect()
}

fn advice(a: &AdviceView) -> Value {
    json!({
        "method": a.method,
        "weights_from": a.weights_from,
        "base_cost": round(a.base_cost, 3),
        "final_cost": round(a.final_cost, 3),
        "verified": a.verified,
        "indexes": a.indexes.iter().map(index).collect::<Vec<_>>(),
        "rls_findings": a.rls_findings.iter().map(|(q, f)| json!({
            "query": q, "node": f.node, "hint": f.hint,
        })).collect::<Vec<_>>(),
        "remedies": a.remedies.iter().map(|RemedyView { query: q, change, effect, .. }| json!({
            "query": q, "change": change, "measured": effect,
        })).collect::<Vec<_>>(),
        "drops": a.drops.iter().map(|d| json!({
            "index": d.index, "table": d.table, "reason": d.reason, "sql": d.sql,
        })).collect::<Vec<_>>(),
    })
}

fn index(i: &IndexView) -> Value {
    json!({
        "name": i.name,
        "create_sql": i.create_sql,
        "serves": i.queries,
        "predicted_cost_ratio": round(i.predicted_ratio, 3),
        "estimated_bytes": i.estimated_bytes,
        "verification": i.verification.as_ref().map(verification),
    })
}

fn verification(v: &Verification) -> Value {
    json!({
        "kept": v.kept,
        "reason": v.reason,
        "measured": v.measured.iter().map(|m| json!({
            "query": m.query,
            "p50": ratio(&m.p50),
            "p95": ratio(&m.p95),
            "before_count": m.before.len(),
            "after_count": m.after.len(),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_keeps_the_places_asked_for() {
        assert_eq!(round(0.845_659_163_987, 3), 0.846);
        assert_eq!(round(641.954_872, 1), 642.0);
        assert_eq!(round(-1.25, 1), -1.3);
    }
}
