#!/usr/bin/env bash
# scripts/testbed.sh - the namespace test bed: a client, the casalb
# appliance and three targets with real HTTP servers, on one machine.
#
# usage: scripts/testbed.sh up | down | status | exec NODE CMD...
#
# Nodes (network namespaces, names as `exec` takes them):
#   client  192.0.2.10    curl, wrk; routes the VIP via the appliance
#   lb      192.0.2.2     casalb: DPDK on veth lb0 through net_af_packet
#   t1..t3  192.0.2.21-23 python3 http.server answering "tN"; the VIP on lo
#                         with ARP suppressed (layer-2 dispatch, direct return)
# joined by a bridge in a sixth namespace (sw). A second bridge there is the
# management network, 198.51.100.0/24: the Service Manager listens on the
# lb's 198.51.100.1 and each target runs casalb-agent (198.51.100.21-23),
# which registers and reports readiness, load and connection ends.
# Documentation addresses only: 192.0.2.0/24 for the segment, 203.0.113.10
# for the VIP (port 80).
#
# up is idempotent (a bed already up is torn down first); down removes
# everything, even after a failed up. up reserves 128 hugepages for casalb
# (down gives them back); when the kernel refuses, casalb runs --no-huge. status prints key=value lines:
# vip=, port=, nodes=, lb_pid=, and the casalb log path; agent logs are
# agent-tN.log beside it.
#
# Environment: BUILD_DIR (default build) holds src/control/casalb;
# TESTBED_WEIGHTS="3 1 1" sets the targets' weights.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build}
state=${TESTBED_STATE:-/tmp/casalb-testbed}
prefix=clb
vip=203.0.113.10
port=80
targets=(t1 t2 t3)
sm_addr=198.51.100.1
read -r -a weights <<<"${TESTBED_WEIGHTS:-1 1 1}"

ns() { echo "$prefix-$1"; }

in_ns()
{
	local node=$1
	shift
	ip netns exec "$(ns "$node")" "$@"
}

log() { echo "testbed: $*" >&2; }

# Reserve 2 MiB pages for casalb (128 = 256 MiB) and remember how many
# there were; casalb falls back to --no-huge when the kernel refuses.
hugepages_reserve()
{
	local f=/proc/sys/vm/nr_hugepages cur free

	[ -w "$f" ] || return 0
	cur=$(cat "$f")
	echo "$cur" >"$state/hugepages.prev"
	echo $((cur + 128)) >"$f" 2>/dev/null || true
	free=$(awk '/^HugePages_Free/ { print $2 }' /proc/meminfo)
	if [ "${free:-0}" -lt 128 ]; then
		log "only ${free:-0} free hugepages: casalb will use --no-huge"
	fi
}

hugepages_restore()
{
	if [ -f "$state/hugepages.prev" ]; then
		cat "$state/hugepages.prev" >/proc/sys/vm/nr_hugepages 2>/dev/null || true
	fi
}

down()
{
	local node pid

	if [ -f "$state/lb.pid" ]; then
		pid=$(cat "$state/lb.pid")
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	for node in client lb sw "${targets[@]}"; do
		if ip netns list | grep -qw "$(ns "$node")"; then
			# Processes left in a namespace (servers) go with it.
			ip netns pids "$(ns "$node")" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
			ip netns del "$(ns "$node")" 2>/dev/null || true
		fi
	done
	hugepages_restore
	rm -rf "$state"
}

# link NODE IFNAME ADDR: a veth from NODE (IFNAME) to the bridge in sw.
link()
{
	local node=$1 ifname=$2 addr=$3 peer="$2-$1"

	ip link add "$ifname" netns "$(ns "$node")" type veth peer name "$peer" netns "$(ns sw)"
	in_ns sw ip link set "$peer" master br0 up
	in_ns "$node" ip link set lo up
	in_ns "$node" ip link set "$ifname" up
	if [ -n "$addr" ]; then
		in_ns "$node" ip addr add "$addr/24" dev "$ifname"
	fi
	# The appliance forwards frames as they come: have the kernels put
	# full checksums in them rather than leave it to an offload.
	in_ns "$node" ethtool -K "$ifname" tx off rx off >/dev/null 2>&1 || true
}

# mlink NODE ADDR: a veth from NODE (mgmt0) to the management bridge.
mlink()
{
	local node=$1 addr=$2 peer="m-$1"

	ip link add mgmt0 netns "$(ns "$node")" type veth peer name "$peer" netns "$(ns sw)"
	in_ns sw ip link set "$peer" master br1 up
	in_ns "$node" ip link set mgmt0 up
	in_ns "$node" ip addr add "$addr/24" dev mgmt0
}

# agent_up NODE N: casalb-agent on target N, registering with the SM.
agent_up()
{
	local t=$1 n=$2

	mlink "$t" "198.51.100.2$n"
	ip netns exec "$(ns "$t")" "$build/src/agent/casalb-agent" -s "$sm_addr" -n "$t" \
		>"$state/agent-$t.log" 2>&1 &
	echo $! >"$state/agent-$t.pid"
}

# Bounded wait until every agent serves its VIP and a request gets through.
wait_agents()
{
	local t

	for t in "${targets[@]}"; do
		for _ in $(seq 1 100); do
			grep -q "serving" "$state/agent-$t.log" 2>/dev/null && break
			sleep 0.1
		done
		grep -q "serving" "$state/agent-$t.log" 2>/dev/null || {
			log "agent on $t did not register:"
			cat "$state/agent-$t.log" >&2
			return 1
		}
	done
	for _ in $(seq 1 50); do
		in_ns client curl -s -o /dev/null --max-time 1 "http://$vip:$port/" && return 0
		sleep 0.1
	done
	log "no answer through the VIP after the agents registered"
	return 1
}

target_up()
{
	local t=$1 n=$2 dir="$state/www-$1"

	link "$t" eth0 "192.0.2.2$n"
	in_ns "$t" ip addr add "$vip/32" dev lo
	in_ns "$t" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
		net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0
	mkdir -p "$dir"
	echo "$t" >"$dir/index.html"
	# ip netns exec execs the program: $! is the server itself.
	ip netns exec "$(ns "$t")" python3 -m http.server --bind 0.0.0.0 --directory "$dir" "$port" \
		>"$state/http-$t.log" 2>&1 &
	echo $! >"$state/http-$t.pid"
}

mac_of() { in_ns "$1" cat "/sys/class/net/$2/address"; }

write_conf()
{
	local i t w

	{
		echo "dataplane = {"
		echo "  lcores = \"0-1\";"
		echo "  hugepages = \"auto\";"
		echo "  affinity_capacity = 65536;"
		echo "  ports = ( { device = \"net_af_packet0,iface=lb0,qpairs=2\";"
		echo "              address = \"192.0.2.2\"; } );"
		echo "};"
			echo "service_manager = { address = \"$sm_addr\"; };"
		echo "agents = { required = true; keepalive = 1; timeout = 5; };"
		echo "targets = ("
		for i in "${!targets[@]}"; do
			t=${targets[$i]}
			w=${weights[$i]:-1}
			echo "  { name = \"$t\"; dispatch = \"l2\"; mac = \"$(mac_of "$t" eth0)\"; weight = $w; }$([ "$i" -lt $((${#targets[@]} - 1)) ] && echo ,)"
		done
		echo ");"
		echo "services = ( { name = \"web\"; vip = \"$vip\"; ports = [ $port ];"
		echo "  targets = [ \"t1\", \"t2\", \"t3\" ]; } );"
	} >"$state/lb.conf"
}

wait_http()
{
	local t

	for t in "${targets[@]}"; do
		for _ in $(seq 1 50); do
			in_ns "$t" bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null && break
			sleep 0.1
		done
	done
}

up()
{
	local i casalb=$build/src/control/casalb

	[ -x "$casalb" ] || {
		log "$casalb not built"
		exit 1
	}
	down
	mkdir -p "$state"
	for node in sw client lb "${targets[@]}"; do
		ip netns add "$(ns "$node")"
	done
	in_ns sw ip link add br0 type bridge
	in_ns sw ip link set br0 up
	link client eth0 192.0.2.10
	in_ns client ip route add "$vip/32" via 192.0.2.2
	link lb lb0 ""
	in_ns sw ip link add br1 type bridge
	in_ns sw ip link set br1 up
	mlink lb "$sm_addr"
	in_ns lb ip route add 224.0.0.0/4 dev mgmt0
	for i in "${!targets[@]}"; do
		target_up "${targets[$i]}" $((i + 1))
	done
	write_conf
	hugepages_reserve
	"$casalb" -n "$state/lb.conf" >/dev/null
	ip netns exec "$(ns lb)" "$casalb" -c "$state/lb.conf" >"$state/lb.log" 2>&1 &
	echo $! >"$state/lb.pid"
	wait_http
	for _ in $(seq 1 100); do
		grep -q "casalb: running" "$state/lb.log" && break
		kill -0 "$(cat "$state/lb.pid")" 2>/dev/null || break
		sleep 0.1
	done
	if ! grep -q "casalb: running" "$state/lb.log"; then
		log "casalb did not start:"
		cat "$state/lb.log" >&2
		exit 1
	fi
	for i in "${!targets[@]}"; do
		agent_up "${targets[$i]}" $((i + 1))
	done
	wait_agents || exit 1
	log "up: VIP $vip:$port through casalb (pid $(cat "$state/lb.pid"))"
}

status()
{
	echo "vip=$vip"
	echo "port=$port"
	echo "nodes=client lb ${targets[*]}"
	[ -f "$state/lb.pid" ] && echo "lb_pid=$(cat "$state/lb.pid")"
	echo "lb_log=$state/lb.log"
	echo "lb_conf=$state/lb.conf"
}

case ${1:-} in
up) up ;;
down) down ;;
status) status ;;
exec)
	shift
	[ $# -ge 2 ] || {
		echo "usage: $0 exec NODE CMD..." >&2
		exit 2
	}
	in_ns "$@"
	;;
*)
	sed -n '4,21s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
	exit 2
	;;
esac
