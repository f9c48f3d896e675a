#!/usr/bin/env bash
# Integration test of the Service Manager with real processes (issue 4):
# a running casalb (DPDK over a net_ring data port, --no-huge) and
# casa_peer, a forwarding agent plus a target agent written against
# libcasa, in a private network namespace. CASA and the agent protocol run
# on a veth link that carries 198.51.100.1 (the SM) and 198.51.100.2 (the
# peer); authentication is on (HMAC-SHA256). casa_peer checks the wire
# conversation; this script then checks casalb's own counters (the forged
# and replayed messages were counted as security drops). Needs root.
#
# usage: run_sm_integration.sh CASALB CASA_PEER
set -uo pipefail
casalb=$1
peer=$2
ns=clb-smit-$$
work=$(mktemp -d)
fail=0

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: needs root for network namespaces"
	exit 77
fi
cleanup()
{
	if [ -n "${lb_pid:-}" ]; then
		kill "$lb_pid" 2>/dev/null
		for _ in $(seq 1 50); do
			kill -0 "$lb_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$lb_pid" 2>/dev/null
	fi
	ip netns del "$ns" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add va type veth peer name vb
ip -n "$ns" addr add 198.51.100.1/24 dev va
ip -n "$ns" addr add 198.51.100.2/24 dev va
ip -n "$ns" link set va up
ip -n "$ns" link set vb up
ip -n "$ns" route add 224.0.0.0/4 dev va

echo "casalb-integration-key-0123456789" >"$work/casa.key"
cat >"$work/sm.conf" <<CONF
dataplane = {
  lcores = "0-1"; hugepages = "off"; memory_mb = 256;
  affinity_capacity = 65536;
  ports = ( { device = "ring:smit"; address = "192.0.2.1";
              gateway_mac = "02:00:00:00:00:01"; } );
};
service_manager = {
  address = "198.51.100.1";
  wildcard_interval = 2; wildcard_ttl = 5;
  auth = { algorithm = "sha256"; key_file = "$work/casa.key"; key_id = 1; };
};
agents = { keepalive = 1; timeout = 60; required = true; };
targets = (
  { name = "t1"; tunnel = "198.51.100.11"; },
  { name = "t2"; tunnel = "198.51.100.12"; }
);
services = (
  { name = "web"; vip = "203.0.113.10"; ports = [ 80 ]; targets = [ "t1", "t2" ]; }
);
CONF

"$casalb" -n "$work/sm.conf" || {
	echo "FAIL configuration rejected"
	exit 1
}
ip netns exec "$ns" "$casalb" -c "$work/sm.conf" >"$work/lb.log" 2>&1 &
lb_pid=$!
for _ in $(seq 1 100); do
	grep -q "running" "$work/lb.log" && break
	kill -0 "$lb_pid" 2>/dev/null || break
	sleep 0.1
done
if ! grep -q "running" "$work/lb.log"; then
	echo "FAIL casalb did not start"
	cat "$work/lb.log"
	exit 1
fi

# t1's agent registers; only t1 is ready, so the SYN must go to t1, whose
# dispatch (forward) address defaults to its tunnel endpoint.
timeout 90 ip netns exec "$ns" "$peer" 198.51.100.1 198.51.100.2 224.0.1.2 1637 1638 \
	"$work/casa.key" t1 203.0.113.10 80 198.51.100.11 || fail=1

kill -USR1 "$lb_pid"
for _ in $(seq 1 50); do
	grep -q "^casa drops" "$work/lb.log" && break
	sleep 0.1
done
drops=$(grep '^casa drops' "$work/lb.log" | tail -1)
echo "casalb: $drops"
if echo "$drops" | grep -q 'auth_bad=[1-9]' && echo "$drops" | grep -q 'auth_replay=[1-9]'; then
	echo "ok   casalb counted the forged (auth_bad) and replayed (auth_replay) messages"
else
	echo "FAIL casalb did not count the forged and replayed messages"
	fail=1
fi
if grep -q 'interest new=1 ' "$work/lb.log"; then
	echo "ok   casalb placed exactly one new connection from interest"
else
	echo "FAIL casalb's interest counters"
	fail=1
fi
[ "$fail" -eq 0 ] || cat "$work/lb.log"
exit "$fail"
