#!/usr/bin/env bash
# scripts/testbed.sh - the namespace test bed: a client behind a router, the
# casalb appliance and three targets with real HTTP servers, on one machine.
#
# usage: scripts/testbed.sh up | down | status | exec NODE CMD...
#
# Nodes (network namespaces, names as `exec` takes them):
#   client  203.0.113.130  curl, wrk; default route via the router
#   router  203.0.113.129 (client side), 192.0.2.1 (data segment): routes the
#           VIP to the appliance, carries the targets' direct answers back
#   lb      192.0.2.2      casalb: DPDK on veth lb0 through net_af_packet
#   t1..t3  192.0.2.21-23  python3 http.server answering "tN", the VIP on lo
#                          with ARP suppressed, casalb-agent
# The data segment is a bridge in a further namespace (sw). A second bridge
# there is the management network, 198.51.100.0/24: the Service Manager, the
# console and the metrics endpoint listen on the lb's 198.51.100.1 and each
# target's casalb-agent (198.51.100.21-23) registers there and reports
# readiness, load and connection ends. Documentation addresses only; the VIP
# is 203.0.113.10 (port 80).
#
# up is idempotent (a bed already up is torn down first); down removes
# everything, even after a failed up. up reserves 128 hugepages for casalb
# (down gives them back); when the kernel refuses, casalb runs --no-huge.
# status prints key=value lines: vip=, port=, nodes=, dispatch=, lb_pid=,
# lb_log=, lb_conf=, console=, console_node=, console_password=,
# console_enable_password=, metrics=, state=; agent logs
# are agent-tN.log beside lb_log.
#
# Environment:
#   BUILD_DIR         build directory holding casalb (default build)
#   TESTBED_WEIGHTS   the targets' weights, e.g. "3 1 1" (default 1 1 1)
#   TESTBED_DISPATCH  l2 (default) or gre: how casalb reaches the targets
#   TESTBED_WEIGHT_REFRESH  seconds between the SM's applications of the
#                     agents' loads (default 2; tests of exact configured
#                     weights set it long)
#   TESTBED_PREFIX    namespace prefix (default clb), so test beds can
#                     coexist; TESTBED_STATE its state directory
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build}
prefix=${TESTBED_PREFIX:-clb}
state=${TESTBED_STATE:-/tmp/casalb-testbed-$prefix}
dispatch=${TESTBED_DISPATCH:-l2}
refresh=${TESTBED_WEIGHT_REFRESH:-2}
vip=203.0.113.10
port=80
targets=(t1 t2 t3)
sm_addr=198.51.100.1
console_password="casalb-console" # test bed only, not a secret
console_enable="casalb-enable"
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
	for node in client router lb sw "${targets[@]}"; do
		if ip netns list | grep -qw "$(ns "$node")"; then
			# Processes left in a namespace (servers) go with it.
			ip netns pids "$(ns "$node")" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
			ip netns del "$(ns "$node")" 2>/dev/null || true
		fi
	done
	hugepages_restore
	cgroups_down
	# --one-file-system: never walk into a mount (the cgroup view) left
	# behind.
	rm -rf --one-file-system "$state"
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

# The cgroup v2 mount (the "unified" one on a hybrid host), or nothing.
cgroup2_root()
{
	awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts
}

# Each target's processes go into a cgroup of their own, so its agent
# measures the target's CPU share and pressure rather than the whole
# machine's, which every namespace shares. Prints the directory, or
# nothing when cgroup v2 is not there (agents then measure the host).
# `ip netns exec` mounts a fresh /sys, hiding /sys/fs/cgroup: the cgroup v2
# tree is bind-mounted into the state directory, where agents can read it.
cgroup_up()
{
	local root dir view=$state/cgroup2

	root=$(cgroup2_root)
	[ -n "$root" ] || return 0
	if ! mountpoint -q "$view"; then
		mkdir -p "$view"
		mount --bind "$root" "$view" 2>/dev/null || return 0
	fi
	dir=$view/$prefix-$1
	mkdir -p "$dir" 2>/dev/null && [ -f "$dir/cgroup.procs" ] && echo "$dir"
}

cgroup_join()
{
	[ -n "$1" ] && echo "$2" >"$1/cgroup.procs" 2>/dev/null || true
}

cgroups_down()
{
	local view=$state/cgroup2 t

	mountpoint -q "$view" 2>/dev/null || return 0
	for t in "${targets[@]}"; do
		[ -d "$view/$prefix-$t" ] || continue
		for _ in $(seq 1 20); do
			rmdir "$view/$prefix-$t" 2>/dev/null && break
			sleep 0.1
		done
	done
	# Bounded: a view mounted more than once comes off layer by layer.
	for _ in $(seq 1 5); do
		mountpoint -q "$view" || break
		umount "$view" 2>/dev/null || umount -l "$view" 2>/dev/null || true
	done
}

# agent_up NODE N: casalb-agent on target N, registering with the SM.
agent_up()
{
	local t=$1 n=$2 cg

	mlink "$t" "198.51.100.2$n"
	cg=$(cgroup_up "$t") || cg= # no writable cgroup v2: the agent measures the host
	ip netns exec "$(ns "$t")" "$build/src/agent/casalb-agent" -s "$sm_addr" -n "$t" -v \
		${cg:+-c "$cg"} >"$state/agent-$t.log" 2>&1 &
	echo $! >"$state/agent-$t.pid"
	cgroup_join "$cg" "$(cat "$state/agent-$t.pid")"
	cgroup_join "$cg" "$(cat "$state/http-$t.pid")"
	[ -n "$cg" ] && echo "$cg" >"$state/cgroup-$t"
	return 0
}

# Bounded wait until every agent serves its VIP and has reported its server
# ready (Rdy, so every target takes new connections from the start), and a
# request gets through.
wait_agents()
{
	local t ready="ready $vip:$port Rdy [1-9]"

	for t in "${targets[@]}"; do
		for _ in $(seq 1 100); do
			grep -q "$ready" "$state/agent-$t.log" 2>/dev/null && break
			sleep 0.1
		done
		grep -q "$ready" "$state/agent-$t.log" 2>/dev/null || {
			log "agent on $t did not register, or its server did not listen:"
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
	# Direct server return: answers go straight to the router.
	in_ns "$t" ip route add default via 192.0.2.1
	in_ns "$t" ip addr add "$vip/32" dev lo
	in_ns "$t" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
		net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0
	mkdir -p "$dir"
	echo "$t" >"$dir/index.html"
	# ip netns exec execs the program: $! is the server itself. Python's
	# http.server (threaded), with a listen backlog of 128 rather than
	# socketserver's 5, which under wrk overflows and drops handshakes
	# (no real server listens that short).
	ip netns exec "$(ns "$t")" python3 -c '
import functools, http.server as h, sys
h.ThreadingHTTPServer.request_queue_size = 128
h.test(HandlerClass=functools.partial(h.SimpleHTTPRequestHandler, directory=sys.argv[1]),
       ServerClass=h.ThreadingHTTPServer, port=int(sys.argv[2]), bind="0.0.0.0")' \
		"$dir" "$port" >"$state/http-$t.log" 2>&1 &
	echo $! >"$state/http-$t.pid"
}

mac_of() { in_ns "$1" cat "/sys/class/net/$2/address"; }

# The client's network (203.0.113.128/25, a veth pair) and the router that
# joins it to the data segment: it routes the VIP to the appliance and
# forwards the targets' direct answers back to the client.
router_up()
{
	ip link add eth0 netns "$(ns client)" type veth peer name c0 netns "$(ns router)"
	in_ns client ip link set lo up
	in_ns client ip link set eth0 up
	in_ns client ip addr add 203.0.113.130/25 dev eth0
	in_ns client ip route add default via 203.0.113.129
	in_ns router ip link set c0 up
	in_ns router ip addr add 203.0.113.129/25 dev c0
	link router eth0 192.0.2.1
	in_ns router sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
		net.ipv4.conf.default.rp_filter=0
	in_ns router ip route add "$vip/32" via 192.0.2.2
	in_ns client ethtool -K eth0 tx off rx off >/dev/null 2>&1 || true
	in_ns router ethtool -K c0 tx off rx off >/dev/null 2>&1 || true
}

write_conf()
{
	local i t w

	{
		echo "dataplane = {"
		echo "  lcores = \"0-1\";"
		echo "  hugepages = \"auto\";"
		echo "  affinity_capacity = 65536;"
		echo "  eal_args = \"--file-prefix=$prefix\";"
		echo "  ports = ( { device = \"net_af_packet0,iface=lb0,qpairs=2\";"
		echo "              address = \"192.0.2.2\";"
		echo "              gateway_mac = \"$(mac_of router eth0)\"; } );"
		# Keyed GRE: each target's key in every packet; its agent drops
		# GRE without it.
		echo "  gre = { local = \"192.0.2.2\"; key = true; };"
		echo "};"
		# Loads apply every 2 s by default (60 in production), so the load
		# test waits less.
		echo "service_manager = { address = \"$sm_addr\"; weight_refresh = $refresh; };"
		# Off loopback the console needs a password (docs/console.md).
		echo "console = { address = \"$sm_addr\"; port = 2323; password = \"$console_password\";"
		echo "  enable_password = \"$console_enable\"; };"
		echo "metrics = { address = \"$sm_addr\"; port = 9637; };"
		echo "agents = { required = true; keepalive = 1; timeout = 5; };"
		echo "targets = ("
		for i in "${!targets[@]}"; do
			t=${targets[$i]}
			w=${weights[$i]:-1}
			# The target's own address: its tunnel endpoint for GRE, its
			# dispatch address (what its agent reports) for both.
			echo "  { name = \"$t\"; dispatch = \"$dispatch\"; address = \"192.0.2.2$((i + 1))\";"
			[ "$dispatch" = gre ] && echo "    tunnel = \"192.0.2.2$((i + 1))\"; key = 100$((i + 1));"
			echo "    mac = \"$(mac_of "$t" eth0)\"; weight = $w; }$([ "$i" -lt $((${#targets[@]} - 1)) ] && echo ,)"
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
	for node in sw client router lb "${targets[@]}"; do
		ip netns add "$(ns "$node")"
	done
	in_ns sw ip link add br0 type bridge
	in_ns sw ip link set br0 up
	router_up
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
	echo "nodes=client router lb ${targets[*]}"
	echo "dispatch=$(sed -n 's/.*dispatch = "\([a-z0-9]*\)".*/\1/p' "$state/lb.conf" 2>/dev/null | head -1)"
	[ -f "$state/lb.pid" ] && echo "lb_pid=$(cat "$state/lb.pid")"
	echo "lb_log=$state/lb.log"
	echo "lb_conf=$state/lb.conf"
	echo "console=$sm_addr:2323"
	echo "console_node=lb"
	echo "console_password=$console_password"
	echo "console_enable_password=$console_enable"
	echo "metrics=http://$sm_addr:9637/metrics"
	echo "state=$state"
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
	# The command replaces this script: signals and exit status are its own.
	node=$1
	shift
	exec ip netns exec "$(ns "$node")" "$@"
	;;
*)
	sed -n '4,37s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
	exit 2
	;;
esac
