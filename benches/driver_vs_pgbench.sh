#!/usr/bin/env bash
# Load-driving speed of `crmbench run` against pgbench, same server, same run,
# same clients/threads/duration, both with prepared statements, alternating:
#   A. pgbench -S's select on pgbench_accounts (no RLS, no tenant) written as a
#      crmbench workload (benches/workloads/pgbench_select.toml);
#   B. the built-in customer-by-email lookup with its tenant frame (BEGIN,
#      set_config, SELECT, COMMIT) as the app role under RLS, written as a
#      pgbench script — plain, and with \startpipeline (pgbench's best).
# Prints tps of each, crmbench's p99, and the median ratio crmbench/pgbench.
#
#   bash benches/driver_vs_pgbench.sh [REPEATS] [SECONDS] [CLIENTS] [THREADS]   (3 10 4 2)
set -euo pipefail
cd "$(dirname "$0")/.."
REPEATS=${1:-3}; SECS=${2:-10}; CLIENTS=${3:-4}; THREADS=${4:-2}
BIN=${CRMBENCH_BIN:-target/release/crmbench}
[ -x "$BIN" ] || cargo build --release -j2 --locked
PGBENCH=$(command -v pgbench || echo /usr/lib/postgresql/15/bin/pgbench)
WORK=$(mktemp -d /var/tmp/crmbench-dvp.XXXXXX); chmod 755 "$WORK"
trap 'rm -rf "$WORK"; for db in dvp_pgb dvp_crm; do "$BIN" schema drop-clone $db >/dev/null 2>&1 || true; done' EXIT

"$BIN" pg start >/dev/null
"$BIN" --database dvp_pgb pg start >/dev/null
URL_PGB=$("$BIN" --database dvp_pgb pg url)
"$PGBENCH" -i -s 10 -q "$URL_PGB" >/dev/null 2>&1
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

crm() { # $1 database, $2 workload, $3 out, [$4 protocol] → "tps p99_ms"
  "$BIN" --database "$1" run --workload "$2" --clients "$CLIENTS" --threads "$THREADS" \
    --duration "${SECS}s" --warmup 2s --protocol "${4:-prepared}" -q --out "$3" >/dev/null
  python3 -c "import json; r=json.load(open('$3/results.json')); q=r['queries'][0]['baseline']; print(q['tps'], q['latency']['p99_us']/1000)"
}
pgb() { # $@ pgbench args → tps
  "$PGBENCH" -M prepared -c "$CLIENTS" -j "$THREADS" -T "$SECS" "$@" 2>/dev/null | awk '/^tps = /{print $3; exit}'
}

rows=()
for i in $(seq 1 "$REPEATS"); do
  read -r a_crm a_p99 <<<"$(crm dvp_pgb benches/workloads/pgbench_select.toml "$WORK/a$i")"
  a_pgb=$(pgb -S "$URL_PGB")
  read -r b_crm b_p99 <<<"$(crm dvp_crm "$WORK/email.toml" "$WORK/b$i")"
  read -r s_crm s_p99 <<<"$(crm dvp_crm "$WORK/email.toml" "$WORK/s$i" simple)"
  b_pgb=$(pgb -n -f "$WORK/email.sql" -D tenant="$TENANT" -D email="$EMAIL" "$URL_APP")
  b_pip=$(pgb -n -f "$WORK/email_pipe.sql" -D tenant="$TENANT" -D email="$EMAIL" "$URL_APP")
  printf 'run %d: A select: crmbench %.0f tps (p99 %.2f ms) pgbench -S %.0f tps | B email+frame: crmbench %.0f tps (p99 %.2f ms), crmbench simple %.0f tps (p99 %.2f ms), pgbench %.0f tps, pgbench pipelined %.0f tps\n' \
    "$i" "$a_crm" "$a_p99" "$a_pgb" "$b_crm" "$b_p99" "$s_crm" "$s_p99" "$b_pgb" "$b_pip"
  rows+=("$a_crm $a_pgb $b_crm $b_pgb $b_pip $s_crm")
done
printf '%s\n' "${rows[@]}" | python3 -c "
import sys, statistics as st
r = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
m = lambda f: st.median(f(x) for x in r)
print(f'median crmbench/pgbench, A (pgbench -S select, no RLS): {m(lambda x: x[0]/x[1]):.2f}x   (goal >= 1.0)')
print(f'median crmbench/pgbench, B (email lookup + tenant frame, RLS): {m(lambda x: x[2]/x[3]):.2f}x vs plain, {m(lambda x: x[2]/x[4]):.2f}x vs \\\\startpipeline')
print(f'median crmbench --protocol simple (one message per transaction) / pgbench \\\\startpipeline, B: {m(lambda x: x[5]/x[4]):.2f}x')
"
