#!/usr/bin/env bash
# Load speed of `crmbench generate` against `pgbench -i` and against the
# server's ceiling (`psql \copy … (FORMAT binary)` of the same rows from files),
# The COPY-phase figure is crmbench's COPY connection-seconds divided by its
# connections (COPY is pipelined with other tables' index builds), against the
# wall time of two parallel psql \copy sessions into bare tables.
# on the same private server in one run, alternating, repeated; prints rows/s,
# MB/s of what lands (pg_total_relation_size: heap + indexes) and ratios, then
# the median ratios (this machine drifts ±20% run to run).
#
# Like for like, and what is not: both sides COPY every column, binary, FREEZE
# right after TRUNCATE in one transaction, into the same `tables.sql` tables
# (no keys, indexes, triggers or RLS yet), on the same server, so the server
# does the same work per row (a server-side perf of both shows the same
# functions in the same shares). What differs is the client: the ceiling
# reads finished files, crmbench makes its rows, and on a machine where
# client and server share the cores (2 here) every client CPU second is taken
# from the two COPY backends; crmbench's COPY phase also overlaps the index
# builds of tables it loaded first. So each run also prints the client CPU per
# row (G, crmbench's whole process from getrusage) and the server CPU per row
# of the ceiling's COPY (S, its backends' utime + stime from /proc), and
# S / (S + G): the ratio a generator costing G can reach when the cores, not
# the disk, are the limit.
#
#   bash benches/load_vs_pgbench.sh [REPEATS] [SCALE]      (defaults: 3, 0.05)
set -euo pipefail
cd "$(dirname "$0")/.."
REPEATS=${1:-3}
SCALE=${2:-0.05}
BIN=${CRMBENCH_BIN:-target/release/crmbench}
[ -x "$BIN" ] || cargo build --release -j2 --locked
PGBIN=$(dirname "$(command -v pgbench || echo /usr/lib/postgresql/15/bin/pgbench)")
[ -x "$PGBIN/pgbench" ] || PGBIN=/usr/lib/postgresql/15/bin
WORK=$(mktemp -d /var/tmp/crmbench-lvp.XXXXXX)
chmod 755 "$WORK"
trap 'rm -rf "$WORK"; for db in lvp_crm lvp_pgb lvp_ceil; do psql -qtA "$("$BIN" pg url)" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; done' EXIT

"$BIN" pg start >/dev/null
# `pg start --database X` refuses a database that does not exist (only
# generate and schema create make crmbench's own), so the two plain ones are
# made here.
for db in lvp_pgb lvp_ceil; do
  psql -qtA "$("$BIN" pg url)" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
done
URL_PGB=$("$BIN" --database lvp_pgb pg url)
URL_CEIL=$("$BIN" --database lvp_ceil pg url)
URL_CRM=$("$BIN" --database lvp_crm pg url)
now() { date +%s.%N; }

# The ceiling's input: crmbench's rows as binary COPY files.
"$BIN" --database lvp_crm generate --scale "$SCALE" --seed 1 --replace -q --out "$WORK/seed" >/dev/null
TABLES=$(psql -qtA "$URL_CRM" -c "SELECT relname FROM pg_class WHERE relnamespace = 'crm'::regnamespace AND relkind = 'r' AND relname NOT IN ('crmbench_meta', 'currencies') ORDER BY pg_table_size(oid) DESC")
for t in $TABLES; do psql -q "$URL_CRM" -c "\\copy crm.$t TO '$WORK/$t.bin' (FORMAT binary)"; done
CEIL_ROWS=$(psql -qtA "$URL_CRM" -c "SELECT sum(n_live_tup) FROM pg_stat_user_tables WHERE schemaname = 'crm' AND relname NOT IN ('crmbench_meta', 'currencies')")

results=()
for i in $(seq 1 "$REPEATS"); do
  # crmbench generate, end to end (COPY, keys, indexes, FKs, RLS, ANALYZE).
  /usr/bin/time -f "%U %S" -o "$WORK/crm.cpu" \
    "$BIN" --database lvp_crm generate --scale "$SCALE" --seed 1 --replace -q --out "$WORK/run$i" >/dev/null
  c_cpu=$(awk '{print $1 + $2; exit}' "$WORK/crm.cpu")
  read -r c_rows c_bytes c_secs c_load <<<"$(python3 -c "import json;d=json.load(open('$WORK/run$i/generate.json'));print(d['total_rows'],d['total_bytes'],d['total_seconds'],d['copy_seconds']/d['jobs'])")"
  c_heap=$(psql -qtA "$URL_CRM" -c "SELECT sum(pg_table_size(oid)) FROM pg_class WHERE relnamespace = 'crm'::regnamespace AND relkind = 'r' AND relname NOT IN ('crmbench_meta', 'currencies')")

  # pgbench -i -s 10: client-side generation, vacuum, primary keys.
  t0=$(now)
  "$PGBIN/pgbench" -i -s 10 -q "$URL_PGB" >/dev/null 2>&1
  t1=$(now)
  p_bytes=$(psql -qtA "$URL_PGB" -c "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c WHERE c.relname LIKE 'pgbench_%' AND c.relkind = 'r'")
  p_rows=$(psql -qtA "$URL_PGB" -c "SELECT (SELECT count(*) FROM pgbench_accounts) + (SELECT count(*) FROM pgbench_branches) + (SELECT count(*) FROM pgbench_tellers)")

  # Ceiling: the same rows from binary files into bare tables, two psql at once
  # (as crmbench uses two connections), FREEZE in the creating transaction.
  psql -q "$URL_CEIL" -c "DROP SCHEMA IF EXISTS crm CASCADE" -c "CREATE SCHEMA crm" -f src/schema/sql/tables.sql >/dev/null
  # Each session ends by adding its backend's CPU seconds to ceil.cpu.
  for f in "$WORK/a.sql" "$WORK/b.sql"; do printf 'SELECT pg_backend_pid() AS pid \\gset\n\\setenv PID :pid\n' >"$f"; done
  : >"$WORK/ceil.cpu"; n=0
  for t in $TABLES; do
    f="$WORK/a.sql"; [ $((n % 2)) -eq 1 ] && f="$WORK/b.sql"; n=$((n + 1))
    printf 'BEGIN;\nTRUNCATE crm.%s;\n\\copy crm.%s FROM %s (FORMAT binary, FREEZE)\nCOMMIT;\n' "$t" "$t" "'$WORK/$t.bin'" >>"$f"
  done
  for f in "$WORK/a.sql" "$WORK/b.sql"; do
    printf '\\! awk -v hz=%s '"'"'{print ($14 + $15) / hz}'"'"' /proc/$PID/stat >>%s\n' "$(getconf CLK_TCK)" "$WORK/ceil.cpu" >>"$f"
  done
  t0c=$(now)
  psql -q "$URL_CEIL" -f "$WORK/a.sql" >/dev/null & pa=$!
  psql -q "$URL_CEIL" -f "$WORK/b.sql" >/dev/null & pb=$!
  wait $pa $pb
  t1c=$(now)
  s_cpu=$(awk '{s += $1} END {print s + 0}' "$WORK/ceil.cpu")
  results+=("$(python3 - "$c_rows" "$c_bytes" "$c_secs" "$c_load" "$c_heap" "$p_rows" "$p_bytes" "$t0" "$t1" "$CEIL_ROWS" "$t0c" "$t1c" "$c_cpu" "$s_cpu" <<'PY'
import sys
c_rows, c_bytes, c_secs, c_load, c_heap, p_rows, p_bytes, t0, t1, ceil_rows, t0c, t1c, c_cpu, s_cpu = map(float, sys.argv[1:])
g_us, s_us = c_cpu / c_rows * 1e6, s_cpu / ceil_rows * 1e6
p_secs, ceil_secs = t1 - t0, t1c - t0c
crm_mbps, pgb_mbps = c_bytes / c_secs / 1e6, p_bytes / p_secs / 1e6
load_mbps, ceil_mbps = c_heap / c_load / 1e6, c_heap / ceil_secs / 1e6
print(f"{crm_mbps / pgb_mbps:.3f} {load_mbps / ceil_mbps:.3f} {s_us / (s_us + g_us):.3f} "
      f"crmbench {c_rows / c_secs:,.0f} rows/s {crm_mbps:.1f} MB/s ({c_bytes / 1e6:.0f} MB in {c_secs:.2f} s) | "
      f"pgbench -i {p_rows / p_secs:,.0f} rows/s {pgb_mbps:.1f} MB/s ({p_bytes / 1e6:.0f} MB in {p_secs:.2f} s) | "
      f"COPY phase {c_rows / c_load:,.0f} rows/s {load_mbps:.1f} MB/s heap vs \\copy binary {ceil_rows / ceil_secs:,.0f} rows/s {ceil_mbps:.1f} MB/s | "
      f"client CPU G {g_us:.2f} us/row, ceiling server CPU S {s_us:.2f} us/row, S/(S+G) {s_us / (s_us + g_us):.2f}")
PY
)")
  echo "run $i (load $(cut -d' ' -f1-3 /proc/loadavg)): ${results[-1]#* * * }"
done
printf '%s\n' "${results[@]}" | python3 -c "
import sys, statistics
rows = [l.split() for l in sys.stdin if l.strip()]
a = statistics.median(float(r[0]) for r in rows)
b = statistics.median(float(r[1]) for r in rows)
print(f'median crmbench/pgbench -i (MB/s landed, end to end): {a:.2f}x   (goal >= 1.0)')
c = statistics.median(float(r[2]) for r in rows)
print(f'median crmbench COPY phase / psql binary \\\\copy ceiling: {b:.2f}x   (goal >= 0.95)')
print(f'median S/(S+G), what a client costing G of these shared cores can reach: {c:.2f}x')
"
