#!/usr/bin/env bash
# Load-driving speed and client CPU of `crmbench run` against pgbench, same
# server, same clients/threads/duration, both with prepared statements,
# in alternating pairs (the order flips every pair):
#   A. pgbench -S's select on pgbench_accounts (no RLS, no tenant) written as a
#      crmbench workload (benches/workloads/pgbench_select.toml);
#   B. the built-in customer-by-email lookup with its tenant frame (BEGIN,
#      set_config, SELECT, COMMIT) as the app role under RLS, written as a
#      pgbench script — plain, and with \startpipeline (pgbench's best);
#   C. a write transaction passing a value between statements (UPDATE …
#      RETURNING, then an INSERT of what it returned), as a crmbench workload
#      (benches/workloads/pgbench_write.toml, refs) and as a pgbench script
#      (\gset).
# Each measurement gives tps and the client's CPU seconds per 1,000
# transactions: user + system time of the client process from getrusage
# (/usr/bin/time), divided by the transactions it counted. crmbench runs
# without warm-up, so its whole process (connect, prepare, sampling, results)
# is set against the transactions of its window: an upper bound on its cost.
# Prints every pair, then per comparison the median ratio crmbench/pgbench
# with a 95% bootstrap interval (10,000 resamples of the pairs) for tps and
# for CPU per 1,000 transactions. The issue asks for >= 10 pairs.
#
#   bash benches/driver_vs_pgbench.sh [PAIRS] [SECONDS] [CLIENTS] [THREADS]   (10 10 4 2)
#   CRMBENCH_PROTOCOL=pipeline bash benches/driver_vs_pgbench.sh   (crmbench's --protocol, default prepared)
#   CRMBENCH_PERF_DIR=/tmp/p bash benches/driver_vs_pgbench.sh 1   (each crmbench run under `perf record -g`,
#     one file per run there: a1.data, b1.data …; its CPU figures then include perf's)
#   CRMBENCH_ONLY=A bash benches/driver_vs_pgbench.sh   (only these comparisons, comma-separated: A,B,B-plain,C)
set -euo pipefail
shopt -s inherit_errexit  # a failed measurement ends the script, not a row of zeros
cd "$(dirname "$0")/.."
PAIRS=${1:-10}; SECS=${2:-10}; CLIENTS=${3:-4}; THREADS=${4:-2}
BIN=${CRMBENCH_BIN:-target/release/crmbench}
[ -x "$BIN" ] || cargo build --release -j2 --locked
PGBENCH=$(command -v pgbench || echo /usr/lib/postgresql/15/bin/pgbench)
WORK=$(mktemp -d /var/tmp/crmbench-dvp.XXXXXX); chmod 755 "$WORK"
"$BIN" pg start >/dev/null
URL0=$("$BIN" pg url)
trap 'rm -rf "$WORK"; for db in dvp_pgb dvp_crm; do psql -q "$URL0" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; done' EXIT
# pgbench's tables in a database of their own on the private server.
psql -q "$URL0" -c "DROP DATABASE IF EXISTS dvp_pgb WITH (FORCE)" -c "CREATE DATABASE dvp_pgb" >/dev/null
URL_PGB=${URL0/\/crmbench\?/\/dvp_pgb?}
"$PGBENCH" -i -s 10 -q "$URL_PGB" >/dev/null 2>&1
# crmbench's workloads run as its application role.
psql -q "$URL_PGB" -c "GRANT SELECT, UPDATE ON pgbench_accounts TO crmbench_app" \
  -c "GRANT INSERT ON pgbench_history TO crmbench_app" >/dev/null
"$BIN" --database dvp_crm generate --scale 0.05 --seed 1 --replace -q --out "$WORK/gen" >/dev/null
URL_CRM=$("$BIN" --database dvp_crm pg url)
URL_APP=$("$BIN" --database dvp_crm pg url --app)
TENANT=$(psql -qtA "$URL_CRM" -c "SELECT tenant_id FROM crm.customers GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
EMAIL=$(psql -qtA "$URL_CRM" -c "SELECT email FROM crm.customers WHERE tenant_id = '$TENANT' ORDER BY id LIMIT 1 OFFSET 100")

# B as a crmbench workload: the built-in query text, one tenant, one email.
SQL=$(python3 -c "
import tomllib; w = tomllib.load(open('workloads/crm.toml', 'rb'))
q = next(q for q in w['query'] if q['name'] == 'customer_by_email'); print(q['sql'].strip())")
python3 - "$TENANT" "$EMAIL" "$SQL" >"$WORK/email.toml" <<'PY'
import json, sys
tenant, email, sql = sys.argv[1:]
print('name = "email_lookup"\n[context]\nrole = "crmbench_app"\ntenant_setting = "app.current_tenant_id"')
print(f'tenants = "SELECT \'{tenant}\', 1"')
print('[[query]]\nname = "customer_by_email"\nkind = "read"')
print(f'sql = {json.dumps(sql)}')
print(f'params = [{{ tenant = true }}, {{ value = "{email}" }}]' if '$2' in sql else f'params = [{{ value = "{email}" }}]')
PY
PSQL_SQL=$(python3 -c "import sys; s=sys.argv[1]; s=s.replace('\$1', ':tenant').replace('\$2', ':email') if '\$2' in s else s.replace('\$1', ':email'); print(' '.join(s.split()))" "$SQL")
printf "BEGIN;\nSELECT set_config('app.current_tenant_id', :tenant, true);\n%s;\nCOMMIT;\n" "$PSQL_SQL" >"$WORK/email.sql"
printf "\\\\startpipeline\nBEGIN;\nSELECT set_config('app.current_tenant_id', :tenant, true);\n%s;\nCOMMIT;\n\\\\endpipeline\n" "$PSQL_SQL" >"$WORK/email_pipe.sql"

# C as a pgbench script: the value returned by the UPDATE passed on by \gset.
cat >"$WORK/write.sql" <<'SQL'
\set aid random(1, 1000000)
\set delta random(-5000, 5000)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid RETURNING aid AS r_aid, abalance AS r_balance \gset
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, :r_aid, :r_balance, CURRENT_TIMESTAMP);
COMMIT;
SQL

cpu() { # $1 file of /usr/bin/time -f "%U %S" → CPU seconds
  awk '{print $1 + $2; exit}' "$1"
}
crm() { # $1 database, $2 workload, $3 out, [$4 protocol] → "tps p99_ms cpu_per_1000"
  local perf=()
  [ -n "${CRMBENCH_PERF_DIR:-}" ] && perf=(perf record -q -g -o "$CRMBENCH_PERF_DIR/$(basename "$3").data" --)
  /usr/bin/time -f "%U %S" -o "$3.cpu" \
    "${perf[@]}" "$BIN" --database "$1" run --workload "$2" --clients "$CLIENTS" --threads "$THREADS" \
    --duration "${SECS}s" --warmup 0s --protocol "${4:-${CRMBENCH_PROTOCOL:-prepared}}" -q --out "$3" >/dev/null
  python3 - "$3/results.json" "$(cpu "$3.cpu")" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
qs = [q['baseline'] for q in r['queries']]
count = sum(q['count'] for q in qs)
tps = sum(q['tps'] for q in qs)
p99 = max(q['latency']['p99_us'] for q in qs) / 1000
print(tps, p99, float(sys.argv[2]) / max(count, 1) * 1000)
PY
}
pgb() { # $@ pgbench args → "tps cpu_per_1000"
  local out="$WORK/pgb.out"
  /usr/bin/time -f "%U %S" -o "$WORK/pgb.cpu" \
    "$PGBENCH" -M prepared -c "$CLIENTS" -j "$THREADS" -T "$SECS" "$@" >"$out" 2>/dev/null
  local tx tps
  tx=$(awk -F': ' '/^number of transactions actually processed/{split($2, a, "/"); print a[1]; exit}' "$out")
  tps=$(awk '/^tps = /{print $3; exit}' "$out")
  python3 -c "import sys; print($tps, $(cpu "$WORK/pgb.cpu") / max($tx, 1) * 1000)"
}
# One pair of one comparison, in the order the pair's parity says:
# $1 pair, $2 name, $3 crmbench command, $4 pgbench command → "crm_tps crm_cpu pgb_tps pgb_cpu"
pair() {
  local c p
  if (( $1 % 2 )); then c=$(eval "$3"); p=$(eval "$4"); else p=$(eval "$4"); c=$(eval "$3"); fi
  read -r ct cp99 ccpu <<<"$c"; read -r pt pcpu <<<"$p"
  printf '  %s: crmbench %.0f tps (p99 %.2f ms, %.3f CPU s/1000 tx)  pgbench %.0f tps (%.3f CPU s/1000 tx)\n' \
    "$2" "$ct" "$cp99" "$ccpu" "$pt" "$pcpu" >&2
  echo "$2 $ct $ccpu $pt $pcpu"
}

want() { [[ -z "${CRMBENCH_ONLY:-}" || ",${CRMBENCH_ONLY}," == *",$1,"* ]]; }
rows=()
for i in $(seq 1 "$PAIRS"); do
  echo "pair $i:" >&2
  if want A; then rows+=("$(pair "$i" A 'crm dvp_pgb benches/workloads/pgbench_select.toml "$WORK/a$i"' 'pgb -S "$URL_PGB"')"); fi
  if want B; then rows+=("$(pair "$i" B 'crm dvp_crm "$WORK/email.toml" "$WORK/b$i"' \
    'pgb -n -f "$WORK/email_pipe.sql" -D tenant="$TENANT" -D email="$EMAIL" "$URL_APP"')"); fi
  if want B-plain; then rows+=("$(pair "$i" B-plain 'crm dvp_crm "$WORK/email.toml" "$WORK/p$i"' \
    'pgb -n -f "$WORK/email.sql" -D tenant="$TENANT" -D email="$EMAIL" "$URL_APP"')"); fi
  if want C; then rows+=("$(pair "$i" C 'crm dvp_pgb benches/workloads/pgbench_write.toml "$WORK/c$i"' \
    'pgb -n -f "$WORK/write.sql" "$URL_PGB"')"); fi
done
printf '%s\n' "${rows[@]}" | python3 -c '
import random, statistics as st, sys
rows = {}
for line in sys.stdin:
    name, *v = line.split()
    rows.setdefault(name, []).append(list(map(float, v)))
def interval(ratios):
    rng = random.Random(1)
    meds = sorted(st.median(rng.choices(ratios, k=len(ratios))) for _ in range(10000))
    return st.median(ratios), meds[249], meds[9749]
goals = {"A": "pgbench -S select, no RLS, vs -M prepared",
         "B": "email lookup + tenant frame, RLS, vs pgbench \\startpipeline",
         "B-plain": "email lookup + tenant frame, RLS, vs plain pgbench script",
         "C": "write with a value passed between statements, vs pgbench \\gset script"}
for name, r in rows.items():
    tps = interval([x[0] / x[2] for x in r])
    cpu = interval([x[1] / x[3] for x in r])
    print(f"{name} ({goals[name]}), {len(r)} pairs: tps crmbench/pgbench median {tps[0]:.2f}x "
          f"[95% {tps[1]:.2f}-{tps[2]:.2f}] (goal >= 1.0); CPU per 1000 tx crmbench/pgbench "
          f"median {cpu[0]:.2f}x [95% {cpu[1]:.2f}-{cpu[2]:.2f}] (goal <= 1.0)")
'
