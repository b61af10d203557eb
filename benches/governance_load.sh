#!/bin/bash
# export / erase at scale 0.1 under the replayed workload (README, "Measured at
# scale 0.1"). Starts its own private server in $OUT/pg, stops it at the end.
set -u
cd "$(dirname "$0")/.."
O=${OUT:-/var/tmp/crmbench-governance}; mkdir -p "$O"
B="${CRMBENCH:-./target/debug/crmbench} --data-dir $O/pg"

$B pg start
/usr/bin/time -f "generate %e s" $B generate --scale 0.1 --seed 7 --jobs 2 --replace 2>&1 | tail -3
URL=$($B pg status 2>&1 | grep -o 'postgresql://[^ ]*' | head -1)
echo "url $URL"
q() { $B pg status >/dev/null; psql "$URL" -Atc "$1"; }
TEN=$(q "SELECT tenant_id FROM crm.customers GROUP BY 1 ORDER BY count(*) DESC OFFSET 5 LIMIT 1")
CUST=$(q "SELECT c.id FROM crm.customers c WHERE c.tenant_id <> '$TEN' AND EXISTS (SELECT 1 FROM crm.orders o WHERE o.tenant_id=c.tenant_id AND o.customer_id=c.id) ORDER BY c.id LIMIT 1")
echo "tenant $TEN customer $CUST rows $(q "SELECT count(*) FROM crm.customers WHERE tenant_id='$TEN'") customers"
run() { $B run --workload workloads/crm.toml --clients 4 --duration "$1" --warmup 3s --out "$O/$2" >"$O/$2.log" 2>&1; }
run 25s base
for step in export-tenant export-customer erase-customer erase-tenant; do
  run 30s "run-$step" &
  RP=$!
  sleep 10
  case $step in
    export-tenant) /usr/bin/time -f "$step %e s" $B export --tenant "$TEN" --out "$O/exp-tenant" 2>&1 | tail -2 ;;
    export-customer) /usr/bin/time -f "$step %e s" $B export --customer "$CUST" --policy fixtures/erase/crm.toml --out "$O/exp-cust" 2>&1 | tail -2 ;;
    erase-customer) /usr/bin/time -f "$step %e s" $B erase --customer "$CUST" --policy fixtures/erase/retain.toml 2>&1 | tail -8 ;;
    erase-tenant) /usr/bin/time -f "$step %e s" $B erase --tenant "$TEN" 2>&1 | tail -8 ;;
  esac
  wait $RP
done
du -sh "$O/exp-tenant"
for r in base run-export-tenant run-export-customer run-erase-customer run-erase-tenant; do
  python3 - "$O/$r.log" "$r" <<'PY'
import re, sys
tps, p99 = [], []
for l in open(sys.argv[1]):
    m = re.match(r'run:\s+([\d.]+)s\s+(\d+) tps\s+errors\s+(\d+)\s+p99\s+([\d.]+) ms', l)
    if m:
        tps.append(int(m.group(2))); p99.append(float(m.group(4)))
s = sorted(p99)
print(f"{sys.argv[2]:<22} mean tps {sum(tps)/len(tps):6.1f}  seconds at 0 tps {tps.count(0):2d}  "
      f"per-second p99 median {s[len(s)//2]:6.1f} ms worst {max(p99):8.1f} ms")
PY
done
$B pg stop
