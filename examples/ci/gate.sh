#!/usr/bin/env bash
# crmbench's CI gate for an application's repository (any CI; the composite
# GitHub Action action.yml runs this script). It measures a pull request's
# database migrations with a sequential paired run and exits with the verdict:
#   0 pass (every gated query shows no regression), 1 fail (a regression, in
#   a query or a tenant class), 2 inconclusive or an error.
#
# Steps: install PostgreSQL + HypoPG and crmbench (unless SKIP_INSTALL=1);
# start crmbench's private server; provide the data (the CRM via `generate`,
# or --dataset-cmd for any application: it gets DATABASE_URL of an empty
# database and restores a dump or runs the app's seed script); clone it; apply
# the migrations to the clone (a folder of .sql files in name order, or a
# Prisma migrations/ folder, each migration.sql sent as one multi-statement
# query as Prisma Migrate sends it); run the paired gate until decided; write
# the summary (GITHUB_STEP_SUMMARY when set) and the report into --out.
#
# Usage: gate.sh --workload FILE --migrations DIR [options]
#   --dataset-cmd CMD      shell command that loads the baseline data into
#                          $DATABASE_URL (default: the CRM via `crmbench generate`)
#   --scale S --seed N     the CRM's size and seed (default 0.01 and 1)
#   --dataset-cache FILE   a pg_dump -Fc of the loaded data: restored when
#                          FILE exists, written after loading when not (key
#                          it by what made the data: for the CRM its scale,
#                          seed and crmbench's version; for --dataset-cmd
#                          a hash of your seed script or dump)
#   --prisma               DIR is a Prisma migrations/ folder
#   --threshold T          default 10%
#   --metric M             p50 | p95 (default) | p99 | mean
#   --min-duration D       default 20s;  --max-duration D  default 2m
#   --look-every D         default 10s;  --clients N  default: the cores (nproc)
#   --gate-queries A,B     gate only these queries
#   --out DIR              the run folder (default crmbench-gate)
# Environment: CRMBENCH_BIN (the crmbench binary; default `crmbench` on PATH),
#   SKIP_INSTALL=1 (PostgreSQL and crmbench are there already),
#   CRMBENCH_GIT / CRMBENCH_REF (what `cargo install` builds),
#   CRMBENCH_DATA_DIR (the private server's folder), GITHUB_STEP_SUMMARY.
set -euo pipefail

workload="" migrations="" dataset_cmd="" dataset_cache="" scale=0.01 seed=1 prisma=0
threshold=10% metric=p95 min=20s max=2m look=10s clients="" gate_queries="" out=crmbench-gate
while [ $# -gt 0 ]; do
  case "$1" in
    --workload) workload=$2; shift 2 ;;
    --migrations) migrations=$2; shift 2 ;;
    --dataset-cmd) dataset_cmd=$2; shift 2 ;;
    --dataset-cache) dataset_cache=$2; shift 2 ;;
    --scale) scale=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --prisma) prisma=1; shift ;;
    --threshold) threshold=$2; shift 2 ;;
    --metric) metric=$2; shift 2 ;;
    --min-duration) min=$2; shift 2 ;;
    --max-duration) max=$2; shift 2 ;;
    --look-every) look=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --gate-queries) gate_queries=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "gate.sh: unknown option $1 (see the usage at the top of this script)" >&2; exit 2 ;;
  esac
done
if [ -z "$workload" ] || [ -z "$migrations" ]; then
  echo "gate.sh: --workload FILE and --migrations DIR are required" >&2
  exit 2
fi
[ -f "$workload" ] || { echo "gate.sh: no workload file $workload" >&2; exit 2; }
[ -d "$migrations" ] || { echo "gate.sh: no migrations folder $migrations" >&2; exit 2; }
clients=${clients:-$(nproc)}

if [ "${SKIP_INSTALL:-0}" != 1 ]; then
  if ! command -v psql >/dev/null || ! ls /usr/lib/postgresql/*/lib/hypopg.so >/dev/null 2>&1; then
    sudo apt-get update -q
    sudo apt-get install -y -q postgresql postgresql-contrib \
      "postgresql-$(ls /usr/lib/postgresql | sort -n | tail -1)-hypopg" || \
      sudo apt-get install -y -q postgresql postgresql-contrib
  fi
  if [ -z "${CRMBENCH_BIN:-}" ] && ! command -v crmbench >/dev/null; then
    cargo install --locked --git "${CRMBENCH_GIT:?set CRMBENCH_GIT to the URL of the crmbench repository}" \
      ${CRMBENCH_REF:+--rev "$CRMBENCH_REF"} crmbench
  fi
fi
cb=${CRMBENCH_BIN:-crmbench}
base=gate_base pr=gate_pr

"$cb" pg start >/dev/null
admin_url=$("$cb" --database postgres pg url)
base_url=$("$cb" --database "$base" pg url)
pr_url=$("$cb" --database "$pr" pg url)

# The data: from the cache of an earlier job, or the application's own (a
# dump, a seed script), or the CRM. The cache is a dump of the data as
# loaded, before any run wrote to it.
bindir=${CRMBENCH_PG_BINDIR:+$CRMBENCH_PG_BINDIR/}
if [ -n "$dataset_cache" ] && [ -s "$dataset_cache" ]; then
  echo "gate.sh: the data restored from the cache $dataset_cache"
  psql "$admin_url" -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $base" -c "CREATE DATABASE $base"
  "${bindir}pg_restore" --exit-on-error -d "$base_url" "$dataset_cache"
  # A dump holds no planner statistics.
  psql "$base_url" -q -v ON_ERROR_STOP=1 -c ANALYZE
elif [ -n "$dataset_cmd" ]; then
  psql "$admin_url" -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $base" -c "CREATE DATABASE $base"
  DATABASE_URL=$base_url bash -c "$dataset_cmd"
else
  "$cb" --database "$base" generate --scale "$scale" --seed "$seed" --replace --quiet
fi
if [ -n "$dataset_cache" ] && [ ! -s "$dataset_cache" ]; then
  mkdir -p "$(dirname "$dataset_cache")"
  "${bindir}pg_dump" -Fc -f "$dataset_cache.tmp" "$base_url"
  mv "$dataset_cache.tmp" "$dataset_cache"
  echo "gate.sh: the data saved to the cache $dataset_cache"
fi
"$cb" --database "$base" schema clone --to "$pr" --replace >/dev/null

# The pull request's migrations, on the clone only.
if [ "$prisma" = 1 ]; then
  for f in "$migrations"/*/migration.sql; do
    [ -f "$f" ] || continue
    echo "gate.sh: applying $f (one multi-statement query, as Prisma Migrate sends it)"
    psql "$pr_url" -q -v ON_ERROR_STOP=1 -c "$(cat "$f")"
  done
else
  for f in "$migrations"/*.sql; do
    [ -f "$f" ] || continue
    echo "gate.sh: applying $f"
    psql "$pr_url" -q -v ON_ERROR_STOP=1 -f "$f"
  done
fi

# Both sides vacuumed and analysed first: a migration may have rewritten a
# table on the clone, and autovacuum busy on one side only during the paired
# run reads as a difference between them (a wrong pass in benches/gate_power.sh
# under load, most likely this).
for u in "$base_url" "$pr_url"; do
  psql "$u" -q -v ON_ERROR_STOP=1 -c "VACUUM (ANALYZE)"
done

# The sequential paired gate. Exit 1 of `run` (an error rate above the
# limit) is for `compare` to judge; 2 is an error.
mkdir -p "$out"
code=0
"$cb" --database "$base" run --workload "$workload" --candidate-url "$pr_url" \
  --until-decided --threshold "$threshold" --metric "$metric" \
  --min-duration "$min" --max-duration "$max" --look-every "$look" \
  ${gate_queries:+--gate-queries "$gate_queries"} \
  --clients "$clients" --warmup 5s --out "$out" --quiet || code=$?
if [ "$code" -gt 1 ]; then
  echo "gate.sh: the paired run failed (exit $code)" >&2
  exit 2
fi
verdict=0
# compare appends its Markdown to $GITHUB_STEP_SUMMARY itself when it is set.
"$cb" compare "$out/results.json" --metric "$metric" --format md > "$out/compare.md" || verdict=$?
"$cb" report --in "$out" --format html,markdown,json >/dev/null || true
cat "$out/compare.md"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  echo "The before/after report is report.html in the run folder artifact ($out)." \
    >> "$GITHUB_STEP_SUMMARY"
fi
# The clone is not needed any more; the baseline stays for a re-run.
"$cb" --database "$base" schema drop-clone "$pr" >/dev/null 2>&1 || true
exit "$verdict"
