//! report.json: the report's summary in machine form, versioned by
//! [`FORMAT_VERSION`]. Latencies are in ms, floats rounded (3 decimals for
//! ms and ratios, 1 for tps), so the file diffs cleanly and snapshots hold.

use std::path::Path;

use serde_json::{Value, json};

use super::model::{ReportModel, ms};
use crate::error::{Error, Result};
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

/// The document as pretty JSON.
pub fn render(model: &ReportModel, path: &Path) -> Result<String> {
    let env = &model.environment;
    let queries: Vec<Value> = model
        .queries
        .iter()
        .map(|q| {
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
        })
        .collect();
    let plans = model.plans.as_ref().map(|plans| {
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
            .collect::<Vec<_>>()
    });
    let advice = model.advice.as_ref().map(|a| {
        json!({
            "method": a.method,
            "weights_from": a.weights_from,
            "base_cost": round(a.base_cost, 3),
            "final_cost": round(a.final_cost, 3),
            "verified": a.verified,
            "indexes": a.indexes.iter().map(|i| json!({
                "name": i.name,
                "create_sql": i.create_sql,
                "serves": i.queries,
                "predicted_cost_ratio": round(i.predicted_ratio, 3),
                "estimated_bytes": i.estimated_bytes,
                "verification": i.verification.as_ref().map(|v| json!({
                    "kept": v.kept,
                    "reason": v.reason,
                    "measured": v.measured.iter().map(|m| json!({
                        "query": m.query,
                        "p50": ratio(&m.p50),
                        "p95": ratio(&m.p95),
                        "before_count": m.before.len(),
                        "after_count": m.after.len(),
                    })).collect::<Vec<_>>(),
                })),
            })).collect::<Vec<_>>(),
            "rls_findings": a.rls_findings.iter().map(|(q, f)| json!({
                "query": q, "node": f.node, "hint": f.hint,
            })).collect::<Vec<_>>(),
            "remedies": a.remedies.iter().map(|(q, change, effect)| json!({
                "query": q, "change": change, "measured": effect,
            })).collect::<Vec<_>>(),
            "drops": a.drops.iter().map(|d| json!({
                "index": d.index, "table": d.table, "reason": d.reason, "sql": d.sql,
            })).collect::<Vec<_>>(),
        })
    });
    let doc = json!({
        "format_version": FORMAT_VERSION,
        "environment": {
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
        },
        "queries": queries,
        "plans": plans,
        "advice": advice,
    });
    serde_json::to_string_pretty(&doc)
        .map(|t| t + "\n")
        .map_err(|e| Error::Json {
            action: "serializing",
            path: path.to_path_buf(),
            source: e,
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
