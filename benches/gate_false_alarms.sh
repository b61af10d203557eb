#!/usr/bin/env bash
# How honest is `crmbench compare` on this machine? Runs, on the private server,
# with the built-in workload:
#   1. PAIRS paired A/A runs (candidate = an identical clone): false alarms;
#   2. PAIRS pairs of separate runs of the same setup: false alarms, and the
#      spread of the separate-run p95 ratios (the noise band);
#   3. a paired run whose candidate lacks the email lookup's indexes: flagged?
#   4. a paired run whose candidate carries extra indexes that every customer
#      update must maintain plus a less selective index for the email lookup
#      (a small real slowdown): its measured size, and whether it is flagged.
# Prints counts; every compare JSON stays in $OUT for a closer look.
#
#   bash benches/gate_false_alarms.sh [PAIRS] [DURATION] [SCALE] [CLIENTS]   (5 20s 0.01 2)
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=${1:-5}; DURATION=${2:-20s}; SCALE=${3:-0.01}; CLIENTS=${4:-2}
BIN=${CRMBENCH_BIN:-target/release/crmbench}
WORKLOAD=${WORKLOAD:-workloads/crm.toml}
OUT=${OUT:-/var/tmp/crmbench-gate}
BASE=gfa_base; AA=gfa_aa; NOIDX=gfa_noidx; SLOW=gfa_slow
[ -x "$BIN" ] || { echo "build first: flock /tmp/crmbench-cargo.lock cargo build --release -j2" >&2; exit 2; }
rm -rf "$OUT"; mkdir -p "$OUT"
cleanup() { for db in $AA $NOIDX $SLOW $BASE; do "$BIN" schema drop-clone $db >/dev/null 2>&1 || true; done; }
trap cleanup EXIT

"$BIN" pg start >/dev/null
"$BIN" --database $BASE generate --scale "$SCALE" --seed 1 --replace -q --out "$OUT/gen" >/dev/null
clone() { "$BIN" --database $BASE schema clone --to "$1" --replace >/dev/null; }
url() { "$BIN" --database "$1" pg url; }
run() { # run NAME [extra args]: one measured run into $OUT/NAME
  local name=$1; shift
  "$BIN" --database $BASE run --workload "$WORKLOAD" --duration "$DURATION" --warmup 5s \
    --clients "$CLIENTS" --out "$OUT/$name" -q "$@" >"$OUT/$name.log" 2>&1 || true
}
gate() { # gate NAME ARGS...: compare as JSON into $OUT/NAME.json, prints its exit code
  local name=$1; shift
  local code=0
  "$BIN" compare "$@" --format json >"$OUT/$name.json" 2>"$OUT/$name.err" || code=$?
  echo $code
}
# A compare that errs (exit 2) writes no JSON: count it as nothing flagged.
regressions() { jq '[.queries[] | select(.verdict == "regression")] | length' "$1" 2>/dev/null || echo 0; }
queries() { jq '.queries | length' "$1" 2>/dev/null || echo 0; }
ratios() { jq -r '[.queries[].change.ratio // empty] | "\(min*1000|round/1000)–\(max*1000|round/1000)"' "$1" 2>/dev/null || echo n/a; }

clone $AA
paired_alarms=0; paired_exit1=0; paired_cells=0; paired_exit2=0
for i in $(seq 1 "$PAIRS"); do
  run "aa$i" --candidate-url "$(url $AA)" --seed "$i"
  code=$(gate "aa$i" "$OUT/aa$i")
  n=$(regressions "$OUT/aa$i.json"); q=$(queries "$OUT/aa$i.json")
  paired_alarms=$((paired_alarms + n)); paired_cells=$((paired_cells + q))
  [ "$code" = 1 ] && paired_exit1=$((paired_exit1 + 1))
  [ "$code" = 2 ] && paired_exit2=$((paired_exit2 + 1))
  echo "paired A/A $i: exit $code, $n of $q queries flagged, p95 ratio range $(ratios "$OUT/aa$i.json")"
done

sep_alarms=0; sep_exit1=0; sep_cells=0; sep_exit2=0; sep_tput=0
for i in $(seq 1 "$PAIRS"); do
  run "sepA$i" --seed "$i"
  run "sepB$i" --seed "$i"
  code=$(gate "sep$i" "$OUT/sepA$i" "$OUT/sepB$i")
  n=$(regressions "$OUT/sep$i.json"); q=$(queries "$OUT/sep$i.json")
  sep_alarms=$((sep_alarms + n)); sep_cells=$((sep_cells + q))
  [ "$code" = 1 ] && sep_exit1=$((sep_exit1 + 1))
  [ "$code" = 2 ] && sep_exit2=$((sep_exit2 + 1))
  [ "$(jq '.throughput.dropped' "$OUT/sep$i.json" 2>/dev/null)" = true ] && sep_tput=$((sep_tput + 1))
  echo "separate A/A $i: exit $code, $n of $q queries flagged, p95 ratio range $(ratios "$OUT/sep$i.json"), tps ratio $(jq -r '.throughput.change.ratio*1000|round/1000' "$OUT/sep$i.json" 2>/dev/null || echo n/a)"
done
band=$(cat "$OUT"/sep[0-9]*.json | jq -s -r '[.[].queries[].change.ratio // empty] | sort | "\(.[0]*1000|round/1000)–\(.[-1]*1000|round/1000) (median \(.[length/2|floor]*1000|round/1000))"')

clone $NOIDX
psql -qX "$(url $NOIDX)" -c "DROP INDEX crm.customers_email_idx; ALTER TABLE crm.customers DROP CONSTRAINT customers_tenant_email_key" >/dev/null
run noidx --candidate-url "$(url $NOIDX)" --seed 11
noidx_code=$(gate noidx "$OUT/noidx")

clone $SLOW
# Writes: four more indexes on customers that an UPDATE of phone and
# updated_at must maintain (no HOT update). Reads: the email lookup loses its
# (tenant_id, email) key and gets an index on email alone (still selective,
# but without the tenant prefix).
psql -qX "$(url $SLOW)" -c "
  ALTER TABLE crm.customers DROP CONSTRAINT customers_tenant_email_key;
  CREATE INDEX gfa_phone ON crm.customers (phone, updated_at);
  CREATE INDEX gfa_updated ON crm.customers (updated_at, marketing_opt_in);
  CREATE INDEX gfa_opt ON crm.customers (marketing_opt_in, phone);
  CREATE INDEX gfa_t_updated ON crm.customers (tenant_id, updated_at);
  ANALYZE crm.customers" >/dev/null
run slow --candidate-url "$(url $SLOW)" --seed 12
slow_code=$(gate slow "$OUT/slow")

echo
echo "== crmbench compare: false alarms and detection (scale $SCALE, $DURATION runs, $CLIENTS clients, $WORKLOAD)"
echo "paired A/A:     $paired_alarms false alarms in $paired_cells query verdicts over $PAIRS runs; gate exit 1 in $paired_exit1 of $PAIRS, exit 2 in $paired_exit2"
echo "separate A/A:   $sep_alarms false alarms in $sep_cells query verdicts over $PAIRS pairs; gate exit 1 in $sep_exit1 of $PAIRS, exit 2 in $sep_exit2; throughput drops $sep_tput"
echo "separate noise: p95 ratios of identical setups ranged $band"
echo "dropped index:  exit $noidx_code; flagged: $(jq -r '[.queries[] | select(.verdict == "regression") | "\(.name) \(.change.ratio*100|round/100)x [\(.change.lo*100|round/100), \(.change.hi*100|round/100)]"] | join("; ")' "$OUT/noidx.json")"
echo "small slowdown: exit $slow_code; measured p95 ratios: $(jq -r '[.queries[] | select(.name == "customer_by_email" or .name == "update_customer") | "\(.name) \(.change.ratio*100|round/100)x [\(.change.lo*100|round/100), \(.change.hi*100|round/100)] \(.verdict)"] | join("; ")' "$OUT/slow.json")"
echo "details: $OUT/*.json"
