#!/usr/bin/env bash
# End to end with casalb-agent on every target (the test bed's default):
#   - close: after requests finish, the agents report the connection ends
#     and the Service Manager's VCRT empties (seed 6.8.3: the affinity goes
#     when the target reports the connection closed);
#   - readiness: stop t2's server; once t2's agent reports Rdy 0, no new
#     connection reaches t2 and every request succeeds on t1 and t3;
#   - plumbing: on t2 stripped of the VIP and ARP settings, a new agent
#     puts them in place, and takes them away again when stopped.
# Every wait is bounded; the test bed is always torn down. Needs root.
#
# usage: test_agents.sh SOURCE_ROOT BUILD_DIR
set -uo pipefail
src=$1
export BUILD_DIR=$2
export TESTBED_STATE=${TMPDIR:-/tmp}/casalb-e2e-agents.$$
# shellcheck source=test/e2e/lib.sh
source "$src/test/e2e/lib.sh"

e2e_need_root
cleanup()
{
	[ -n "${agent2:-}" ] && kill "$agent2" 2>/dev/null
	bash "$bed" down
}
trap cleanup EXIT

# The SM's VCRT size, from the counters casalb prints on SIGUSR1.
vcrt() { lb_counters '^vcrt ' | sed -n 's/^vcrt \([0-9]*\) .*/\1/p' | head -1; }

bed_up
vip=$(bed_status vip)
pid=$(bed_status lb_pid)
log=$(bed_status lb_log)
state=$TESTBED_STATE

read -r t1 t2 t3 bad <<<"$(ask 12)"
echo "answers: t1=$t1 t2=$t2 t3=$t3 failures=$bad"
check "every request answered, every target used" '[ "$bad" -eq 0 ] && [ "$t1" -gt 0 ] && [ "$t2" -gt 0 ] && [ "$t3" -gt 0 ]'

# Close: the agents poll every second; allow 8 s for every end to arrive.
left=
for _ in $(seq 1 16); do
	left=$(vcrt)
	[ "${left:-x}" = 0 ] && break
	sleep 0.5
done
check "VCRT empty after the connections closed (left: ${left:-?})" '[ "${left:-x}" = 0 ]'
if [ "${left:-x}" != 0 ]; then
	# What is left, and whether its end came before the SM knew it.
	timeout 5 bash "$bed" exec lb curl -s "$(bed_status metrics)" |
		grep -E '^casalb_sm_(conn_end|resync)|^casalb_vcrt' | sed 's/^/     /'
	grep -E "lost|resync|end" "$state"/agent-t*.log | tail -n 20 | sed 's/^/     /'
fi

# Readiness: stop t2's server; wait (bounded) for its agent to report Rdy 0.
kill "$(cat "$state/http-t2.pid")"
for _ in $(seq 1 50); do
	grep -q "Rdy 0" "$state/agent-t2.log" && break
	sleep 0.1
done
check "t2's agent reported Rdy 0" 'grep -q "Rdy 0" "$state/agent-t2.log"'
# The SM republishes within 50 ms of the report; probe until three requests
# in a row succeed (bounded), then count.
ok_row=0
for _ in $(seq 1 30); do
	if timeout 5 bash "$bed" exec client curl -s -o /dev/null --max-time 2 "http://$vip/"; then
		ok_row=$((ok_row + 1))
		[ "$ok_row" -ge 3 ] && break
	else
		ok_row=0
	fi
done
read -r t1 t2 t3 bad <<<"$(ask 12)"
echo "answers after t2 stopped listening: t1=$t1 t2=$t2 t3=$t3 failures=$bad"
check "no new connection to t2, none failed" '[ "$t2" -eq 0 ] && [ "$bad" -eq 0 ] && [ "$t1" -gt 0 ] && [ "$t3" -gt 0 ]'

# Plumbing: on a host without them, t2's agent puts the VIP on lo and
# suppresses ARP; stopped, it leaves the host as it found it. (The bed
# plumbs the targets itself, so the agents find everything in place.)
in_t2() { bash "$bed" exec t2 "$@"; }
# (Not `ip | grep -q`: under pipefail, grep leaving early fails the pipe.)
vip_on_lo() { [[ "$(in_t2 ip -o addr show dev lo)" == *" $vip/32 "* ]]; }
arp() { echo "$(in_t2 sysctl -n net.ipv4.conf.all.arp_ignore)/$(in_t2 sysctl -n net.ipv4.conf.all.arp_announce)"; }
stop_pid()
{
	kill "$1" 2>/dev/null
	for _ in $(seq 1 50); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}
stop_pid "$(cat "$state/agent-t2.pid")"
in_t2 ip addr del "$vip/32" dev lo
in_t2 sysctl -qw net.ipv4.conf.all.arp_ignore=0 net.ipv4.conf.all.arp_announce=0
# Not through in_t2: a function in the background is a subshell, and $!
# must be the agent itself (testbed.sh exec replaces itself with it).
bash "$bed" exec t2 "$BUILD_DIR/src/agent/casalb-agent" -s "$(bed_status console | cut -d: -f1)" \
	-n t2 >"$state/agent-t2-plumb.log" 2>&1 &
agent2=$!
for _ in $(seq 1 100); do
	vip_on_lo && [ "$(arp)" = 1/2 ] && break
	sleep 0.1
done
check "t2's agent put the VIP on lo" 'vip_on_lo' ||
	sed 's/^/     /' "$state/agent-t2-plumb.log"
check "t2's agent suppressed ARP (arp_ignore/arp_announce $(arp))" '[ "$(arp)" = 1/2 ]'
check "t2's agent stopped on SIGTERM" 'stop_pid "$agent2"'
agent2=
check "t2's agent took the VIP off lo" '! vip_on_lo'
check "t2's agent put ARP back as it was ($(arp))" '[ "$(arp)" = 0/0 ]'
exit "$fail"
