#!/usr/bin/env bash
# End to end through the fast path in one dispatch mode (l2 or gre): real
# curl on the client namespace, behind the router; the casalb appliance
# (DPDK over af_packet) in its own; three targets running python3
# http.server with the VIP on loopback (direct server return) and a
# casalb-agent (which, for GRE, decapsulates with its tc BPF program).
# Asserts:
#   - every request through the VIP succeeds (no failures);
#   - the answers come from the targets in proportion to the weights 3:1:1
#     (smooth weighted round robin: exact over whole cycles);
#   - on t1's link (tshark): l2: the SYNs arrive client -> VIP:80 unchanged
#     (no NAT, only the MAC rewritten); gre: they arrive inside GRE, outer
#     192.0.2.2 -> 192.0.2.21 protocol 47, inner client -> VIP:80;
#   - casalb counted the forwarded packets (fwd_l2 or fwd_gre);
#   - under load (wrk, 2 threads, 16 connections, 3 s) no request fails and
#     the servers' own logs show each target's share within 20 % (relative)
#     of its weight's (60/20/20 %).
# Always tears the test bed down, also on failure. Needs root.
#
# usage: test_dispatch.sh SOURCE_ROOT BUILD_DIR l2|gre
set -uo pipefail
src=$1
export BUILD_DIR=$2
mode=${3:-l2}
export TESTBED_STATE=${TMPDIR:-/tmp}/casalb-e2e-$mode.$$
export TESTBED_WEIGHTS="3 1 1"
export TESTBED_DISPATCH=$mode
# Configured weights only: the agents' loads would apply after 10 min.
export TESTBED_WEIGHT_REFRESH=600
# shellcheck source=test/e2e/lib.sh
source "$src/test/e2e/lib.sh"
requests=25

e2e_need_root
cleanup()
{
	[ -n "${cap_pid:-}" ] && kill "$cap_pid" 2>/dev/null
	bash "$bed" down
}
trap cleanup EXIT

bed_up 60
vip=$(bed_status vip)

# Capture SYNs on t1's link while the client works.
cap=$TESTBED_STATE/t1.pcap
case $mode in
gre) filter="ip proto 47" ;;
*) filter="tcp dst port 80 and tcp[13] & 18 == 2" ;;
esac
timeout 30 bash "$bed" exec t1 tshark -q -i eth0 -w "$cap" -f "$filter" \
	>/dev/null 2>"$TESTBED_STATE/tshark.err" &
cap_pid=$!
# Bounded wait for the capture to be live ("Capturing on 'eth0'").
for _ in $(seq 1 50); do
	grep -q "Capturing on" "$TESTBED_STATE/tshark.err" 2>/dev/null && break
	sleep 0.1
done

declare -A seen=()
failures=0
for _ in $(seq 1 "$requests"); do
	body=$(timeout 5 bash "$bed" exec client curl -s --max-time 3 "http://$vip/") || body=
	if [ -z "$body" ]; then
		failures=$((failures + 1))
	else
		seen[$body]=$((${seen[$body]:-0} + 1))
	fi
done
sleep 0.5 # the last SYN's way from the client to the capture
kill "$cap_pid" 2>/dev/null
wait "$cap_pid" 2>/dev/null
cap_pid=

echo "answers: t1=${seen[t1]:-0} t2=${seen[t2]:-0} t3=${seen[t3]:-0} failures=$failures"
check "no failed request" '[ "$failures" -eq 0 ]'
# 25 requests over a 3:1:1 cycle of 5: exactly 15, 5, 5.
check "weights 3:1:1 followed" '[ "${seen[t1]:-0}" -eq 15 ] && [ "${seen[t2]:-0}" -eq 5 ] && [ "${seen[t3]:-0}" -eq 5 ]'

if [ "$mode" = gre ]; then
	# Every GRE packet: outer and inner addresses, protocols, t1's key
	# (1001, the test bed's), inner port, for the SYNs.
	syns=$(tshark -r "$cap" -Y "tcp.flags.syn == 1 && tcp.flags.ack == 0" -T fields \
		-e ip.src -e ip.dst -e ip.proto -e gre.key -e tcp.dstport 2>/dev/null | sort | uniq -c)
	echo "GRE SYNs seen on t1's link: $syns"
	check "t1 received SYNs in GRE 192.0.2.2 -> 192.0.2.21 key 1001, inner client -> VIP:80" \
		'echo "$syns" | grep -qE "^ *15 192\.0\.2\.2,203\.0\.113\.130[[:space:]]+192\.0\.2\.21,$vip[[:space:]]+47,6[[:space:]]+0x0*3e9[[:space:]]+80$"'
else
	syns=$(tshark -r "$cap" -T fields -e ip.src -e ip.dst -e tcp.dstport 2>/dev/null | sort | uniq -c)
	echo "SYNs seen on t1's link: $syns"
	check "t1 received SYNs client -> VIP:80 unchanged" \
		'echo "$syns" | grep -qE "^ *15 203\.0\.113\.130[[:space:]]+$vip[[:space:]]+80$"'
fi

# served T: requests target T's server has logged so far.
served() { grep -c '"GET ' "$TESTBED_STATE/http-$1.log" || true; }
served_all() { echo $(($(served t1) + $(served t2) + $(served t3))); }

declare -A before=()
for t in t1 t2 t3; do before[$t]=$(served "$t"); done
wrk_out=$(timeout 30 bash "$bed" exec client wrk -t2 -c16 -d3s "http://$vip/" 2>&1)
echo "$wrk_out" | grep -E "requests in|Socket errors|Non-2xx"
# shellcheck disable=SC2034 # read in check's eval
total=$(echo "$wrk_out" | sed -n 's/^ *\([0-9]*\) requests in.*/\1/p')
check "wrk: requests completed" '[ "${total:-0}" -gt 100 ]'
check "wrk: no socket error, no failed response" \
	'! echo "$wrk_out" | grep -qE "Socket errors|Non-2xx"'
# Bounded wait for the servers' last log lines (wrk's count includes them).
for _ in $(seq 1 30); do
	[ $(($(served_all) - before[t1] - before[t2] - before[t3])) -ge "${total:-0}" ] && break
	sleep 0.1
done
declare -A got=()
sum=0
for t in t1 t2 t3; do
	got[$t]=$(($(served "$t") - before[$t]))
	sum=$((sum + got[$t]))
done
echo "wrk answers: t1=${got[t1]} t2=${got[t2]} t3=${got[t3]} (of $sum)"
# within(N, PERCENT): N is within 20 % of PERCENT of the sum.
within() { [ $(($1 * 100 * 100)) -ge $(($2 * sum * 80)) ] && [ $(($1 * 100 * 100)) -le $(($2 * sum * 120)) ]; }
check "wrk: shares follow the weights 3:1:1 within 20 %" \
	'[ "$sum" -gt 0 ] && within "${got[t1]}" 60 && within "${got[t2]}" 20 && within "${got[t3]}" 20'

pid=$(bed_status lb_pid)
log=$(bed_status lb_log)
workers=$(lb_counters '^worker' | grep '^worker')
echo "$workers"
check "casalb counted $mode forwards" 'echo "$workers" | tail -1 | grep -qE "fwd_$mode=[1-9]"'
if [ "$mode" = gre ]; then
	# The agent's program, keyed, did the decapsulating (its counters are
	# logged every keepalive; -v).
	alog=$TESTBED_STATE/agent-t1.log
	# Bounded wait for the next keepalive's counter line.
	for _ in $(seq 1 30); do
		grep "GRE: " "$alog" | tail -1 | grep -qE " decap [0-9]{4,}" && break
		sleep 0.1
	done
	grep "GRE" "$alog" | tail -2
	check "t1's agent decapsulates on eth0 with the key required" \
		'grep -q "GRE: decapsulating on eth0 (tc ingress BPF), key required" "$alog"'
	check "t1's agent counted decapsulated packets and no key drop" \
		'grep "GRE: " "$alog" | tail -1 | grep -E " decap [0-9]{4,}" | grep -vq drop_key'
fi
exit $fail
