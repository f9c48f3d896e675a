#!/usr/bin/env bash
# End to end: the Prometheus endpoint (docs/metrics.md) on the test bed.
#   - GET /metrics answers 200 text/plain; version=0.0.4, / 404, POST 405;
#   - the scraped text passes `promtool check metrics`, names every
#     target's agent up and carries the workers' counters;
#   - N requests through the VIP add exactly N to the sum of
#     casalb_target_connections_total;
#   - a real Prometheus server (Debian's package) in the lb's namespace
#     scrapes casalb every second, and a query through its HTTP API returns
#     the same sum as the scrape.
# Its own namespace prefix, so it does not collide with another test bed.
# Every wait is bounded; Prometheus and the test bed are always cleaned up.
# Needs root.
#
# usage: test_metrics.sh SOURCE_ROOT BUILD_DIR
set -uo pipefail
src=$1
export BUILD_DIR=$2
export TESTBED_PREFIX=clbmet
export TESTBED_STATE=${TMPDIR:-/tmp}/casalb-e2e-metrics.$$
# shellcheck source=test/e2e/lib.sh
source "$src/test/e2e/lib.sh"
requests=10
prom_addr=127.0.0.1:19090
prom_pid=
work=

e2e_need_root
for tool in promtool prometheus curl python3; do
	command -v "$tool" >/dev/null || {
		echo "FAIL $tool not installed (scripts/deps.sh installs it)"
		exit 1
	}
done

cleanup()
{
	# Prometheus runs in a session of its own: end that group only.
	[ -n "$prom_pid" ] && kill -- -"$prom_pid" 2>/dev/null
	bash "$bed" down
	[ -n "$work" ] && rm -rf "$work"
}
trap cleanup EXIT
work=$(mktemp -d "${TMPDIR:-/tmp}/casalb-e2e-metrics-work.XXXXXX")

lb() { timeout 10 bash "$bed" exec lb "$@"; }

# The sum of one family's samples in a scraped text.
family_sum()
{
	awk -v f="$2" '$1 == f || index($1, f "{") == 1 { s += $NF } END { printf "%d\n", s }' "$1"
}

# A PromQL query's first value through the server's HTTP API ("" if none).
query()
{
	lb curl -s --max-time 3 --get --data-urlencode "query=$1" "http://$prom_addr/api/v1/query" |
		python3 -c '
import json, sys
try:
    r = json.load(sys.stdin)["data"]["result"]
    print(int(float(r[0]["value"][1])) if r else "")
except Exception:
    print("")'
}

# N requests through the VIP from the client; prints how many were answered.
answered()
{
	local ok=0 body
	for _ in $(seq 1 "$1"); do
		body=$(timeout 5 bash "$bed" exec client curl -s --max-time 3 "http://$vip/") || body=
		case $body in
		t[123]) ok=$((ok + 1)) ;;
		esac
	done
	echo "$ok"
}

bed_up 120
vip=$(bed_status vip)
url=$(bed_status metrics)
url=${url:-http://127.0.0.1:9637/metrics}
target=${url#http://}
target=${target%%/*}
echo "metrics at $url"

# The HTTP contract.
before=$work/before.txt
head=$(lb curl -s --max-time 3 -o "$before" -w '%{http_code} %{content_type}' "$url")
check "GET /metrics: 200 text/plain; version=0.0.4 ($head)" \
	'[[ "$head" == "200 text/plain; version=0.0.4"* ]]'
code=$(lb curl -s --max-time 3 -o /dev/null -w '%{http_code}' "${url%/metrics}/")
check "GET /: 404 ($code)" '[ "$code" = 404 ]'
code=$(lb curl -s --max-time 3 -o /dev/null -w '%{http_code}' -d x=1 "$url")
check "POST /metrics: 405 ($code)" '[ "$code" = 405 ]'

# Requests through the VIP: each one is a connection placed on a target.
base=$(family_sum "$before" casalb_target_connections_total)
answered=$(answered "$requests")
check "$answered of $requests requests answered" '[ "$answered" -eq "$requests" ]'
after=$work/after.txt
want=$((base + answered))
# New-connection notices reach the SM within a turn; allow a second.
for _ in $(seq 1 10); do
	lb curl -s --max-time 3 -o "$after" "$url"
	[ "$(family_sum "$after" casalb_target_connections_total)" -eq "$want" ] && break
	sleep 0.1
done
got=$(family_sum "$after" casalb_target_connections_total)
check "sum of casalb_target_connections_total grew by $answered ($base -> $got)" \
	'[ "$got" -eq "$want" ]'

out=$(promtool check metrics <"$after" 2>&1)
rc=$?
check "promtool check metrics passes${out:+: $out}" "[ $rc -eq 0 ]"
for t in t1 t2 t3; do
	check "casalb_agent_up{target=\"$t\"} 1" "grep -qx 'casalb_agent_up{target=\"$t\"} 1' '$after'"
done
check "workers counted received packets" \
	'[ "$(family_sum "$after" casalb_worker_rx_packets_total)" -gt 0 ]'
check "drops are named (reason=\"drop_...\")" \
	"grep -q '^casalb_worker_drops_total{worker=\"0\",reason=\"drop_' '$after'"
check "role service-manager" "grep -qx 'casalb_role{role=\"service-manager\"} 1' '$after'"

# A real Prometheus server scraping casalb every second.
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: casalb
    static_configs:
      - targets: ['$target']
EOF
setsid bash "$bed" exec lb prometheus --config.file="$work/prometheus.yml" \
	--storage.tsdb.path="$work/tsdb" --web.listen-address="$prom_addr" \
	>"$work/prometheus.log" 2>&1 &
prom_pid=$!
up='' prom=''
for _ in $(seq 1 60); do
	up=$(query 'up{job="casalb"}')
	prom=$(query 'sum(casalb_target_connections_total{job="casalb"})')
	[ "$up" = 1 ] && [ "$prom" = "$got" ] && break
	sleep 0.5
done
check "Prometheus scrapes casalb (up=${up:-none})" '[ "$up" = 1 ]'
check "Prometheus: sum(casalb_target_connections_total) = ${prom:-none}, scraped $got" \
	'[ "$prom" = "$got" ]'
vcrt=$(query 'casalb_vcrt_capacity{job="casalb"}')
check "Prometheus: casalb_vcrt_capacity = ${vcrt:-none} as scraped" \
	'[ "$vcrt" = "$(family_sum "$after" casalb_vcrt_capacity)" ]'
if [ "$fail" -ne 0 ]; then
	echo "--- prometheus log (tail)"
	tail -n 20 "$work/prometheus.log"
fi
exit "$fail"
