#!/usr/bin/env bash
# Rebuild the run folders under fixtures/runs/ that tests/report.rs reads, by
# really running the pipeline at a small scale (0.01: big enough for --verify to show what an index gains) on the private server (in its
# own database, report_fixture), then trimming them to a few queries so the
# fixtures stay small: plan trees are dropped (plan: null keeps plans.json
# valid), findings, histograms and ratios are kept as measured.
# Usage: scripts/make-report-fixtures.sh   (then UPDATE_GOLDEN=1 cargo test --test report)
set -euo pipefail
cd "$(dirname "$0")/.."
B=target/debug/crmbench
DB=(--database report_fixture)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# generate makes the database; pg start only knows the default one.
"$B" pg start >/dev/null
"$B" "${DB[@]}" generate --scale 0.01 --seed 1 --replace -q
"$B" "${DB[@]}" run --fresh --duration 5s --warmup 1s --clients 2 --out "$work/complete" -q
"$B" "${DB[@]}" explain --out "$work/complete"
"$B" "${DB[@]}" advise --verify --verify-duration 15s --verify-clients 2 --max-indexes 2 --out "$work/complete"
python3 - "$work/complete" fixtures/runs <<'PY'
import json, os, shutil, sys
src, dst = sys.argv[1], sys.argv[2]
keep = ["customer_by_email", "customer_name_search", "customer_360", "customer_orders",
        "order_detail", "top_spenders", "product_search", "place_order"]
def load(name):
    with open(os.path.join(src, name)) as f:
        return json.load(f)
def save(folder, name, value):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "w") as f:
        json.dump(value, f, indent=2, ensure_ascii=False)
        f.write("\n")
r = load("results.json")
r["queries"] = [q for q in r["queries"] if q["name"] in keep]
r["statements"] = r["statements"][:3]
r["index_usage"] = r["index_usage"][:4]
p = load("plans.json")
p["queries"] = [q for q in p["queries"] if q["name"] in keep]
for q in p["queries"]:
    for t in q["tenants"]:
        for s in t["statements"]:
            s["plan"] = None
a = load("advice.json")
a["candidates"] = a["candidates"][:5]
a["drops"] = a["drops"][:4]
a["rls_findings"] = [f for f in a["rls_findings"] if f[0] in keep]
a["remedies"] = [x for x in a.get("remedies", []) if x["query"] in keep]
for folder in ("results-only", "complete"):
    shutil.rmtree(os.path.join(dst, folder), ignore_errors=True)
save(os.path.join(dst, "results-only"), "results.json", r)
full = os.path.join(dst, "complete")
save(full, "results.json", r)
save(full, "plans.json", p)
save(full, "advice.json", a)
for name in ("migration.sql", "rollback.sql", "remedies.sql"):
    shutil.copy(os.path.join(src, name), full)
shutil.copytree(os.path.join(src, "prisma"), os.path.join(full, "prisma"))
PY
echo "fixtures/runs/{results-only,complete} rebuilt"
