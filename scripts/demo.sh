#!/usr/bin/env bash
# scripts/demo.sh - show casalb working, for real.
#
# usage: scripts/demo.sh [--no-deps] [--keep]
#
# Installs the packages it needs (scripts/deps.sh), builds build/, and runs
# the parts of casalb that exist:
#   - the CASA library, through casadump decoding the redbook's captured CASA
#     messages: the three datagrams of seed section 6.8.1 from a pcap, then
#     the same messages from their hex (test/data/casa/V1-V3.hex);
#   - the appliance on the namespace test bed (scripts/testbed.sh, as root):
#     a client behind a router, casalb's DPDK fast path, three targets
#     running python3 http.server and casalb-agent (which decapsulates GRE
#     with its tc BPF program); curl and wrk through the VIP and the
#     per-target distribution from the servers' own logs (weights 3:1:1),
#     the GRE packets on a target's link as tshark sees them, the Service
#     Manager's VIPADCFG, VDPT, VCRT, CASA wildcards and affinities on the
#     admin console (telnet), an excerpt of the Prometheus endpoint, and
#     casalb's own counters. Torn down at the end (--keep leaves it up).
# Nothing here is canned: every line after the titles is printed by the
# programs themselves.
#
# Each part of the demo is one function called from main.
#
# Environment: BUILD_PREFIX puts the build at PREFIX-build (as in test.sh);
# JOBS sets parallel compile jobs (default 2); DEMO_DISPATCH=l2 shows
# layer-2 dispatch instead of GRE.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=scripts/deps.sh
source "$root/scripts/deps.sh"

if [ -n "${BUILD_PREFIX:-}" ]; then
	build_dir=$BUILD_PREFIX-build
else
	build_dir=build
fi
jobs=${JOBS:-2}
keep=0
dispatch=${DEMO_DISPATCH:-gre}
casadump=$build_dir/src/casa/casadump

title()
{
	echo
	echo "== $* =="
}

die()
{
	echo "demo: $*" >&2
	exit 1
}

demo_deps()
{
	title "packages"
	casalb_deps_install
}

demo_build()
{
	title "build ($build_dir)"
	if [ -f "$build_dir/meson-private/coredata.dat" ]; then
		meson setup --reconfigure "$build_dir" >/dev/null
	else
		meson setup "$build_dir" >/dev/null
	fi
	meson compile -C "$build_dir" -j "$jobs" >/dev/null
	echo "built $build_dir"
}

# The three CASA datagrams the redbook captured (seed 6.8.1), read from a pcap
# the way they come off a wire: Ethernet, IPv4, UDP 1637, and GRE for the
# interest packet.
demo_casadump_pcap()
{
	local pcap=test/data/redbook.pcap

	[ -x "$casadump" ] || die "$casadump was not built (it needs libpcap)"
	[ -f "$pcap" ] || die "$pcap not found"
	title "casadump -r $pcap: the redbook's captures (seed 6.8.1, traces 238, 299, 301)"
	echo "\$ $casadump -r $pcap"
	"$casadump" -r "$pcap"
}

# The same messages as bare CASA hex: line 1 of each file is a comment naming
# it, line 2 the message.
demo_casadump_hex()
{
	local name file hex

	[ -x "$casadump" ] || die "$casadump was not built (it needs libpcap)"
	for name in V1 V2 V3; do
		file=test/data/casa/$name.hex
		[ -f "$file" ] || die "$file not found"
		hex=$(sed -n 2p "$file")
		title "casadump, from hex: $(sed -n '1s/^#[[:space:]]*//p' "$file")"
		echo "\$ $casadump -x \$(sed -n 2p $file)"
		"$casadump" -x "$hex"
	done
}

bed=scripts/testbed.sh

# st KEY: one value of the test bed's status.
st() { bash "$bed" status | sed -n "s/^$1=//p"; }

# on NODE CMD...: run CMD on a test-bed node (its network namespace).
on() { bash "$bed" exec "$@"; }

# served T: the requests target T's server has logged.
served() { grep -c '"GET ' "$(st state)/http-$1.log" || true; }

# console CMD...: log in to the admin console (telnet, from the console
# node, as an operator would) and run each CMD, printing the session.
console()
{
	local script console

	script=$(mktemp)
	console=$(st console)
	cat >"$script" <<'EXP'
set timeout 10
lassign $argv host port password
log_user 1
spawn -noecho telnet $host $port
expect "Username: " { send "admin\r" }
expect "Password: " { send "$password\r" }
expect "casalb> "
foreach cmd [lrange $argv 3 end] {
	send "$cmd\r"
	expect {
		"casalb> " {}
		timeout { puts "\n(no prompt after \"$cmd\")"; exit 1 }
	}
}
send "quit\r"
expect eof
EXP
	timeout 60 bash "$bed" exec "$(st console_node)" expect -f "$script" \
		"${console%:*}" "${console#*:}" "$(st console_password)" "$@" |
		tr -d '\r' | grep -v "^Trying\|^Connected to\|^Escape character" || true
	rm -f "$script"
}

demo_bed_up()
{
	title "the test bed: client -> router -> VIP on casalb (DPDK, $dispatch dispatch) -> t1 t2 t3"
	BUILD_DIR=$build_dir TESTBED_WEIGHTS="3 1 1" TESTBED_DISPATCH=$dispatch bash "$bed" up
	echo "\$ scripts/testbed.sh status"
	bash "$bed" status
	echo
	echo "\$ cat $(st lb_conf)"
	cat "$(st lb_conf)"
}

demo_curl()
{
	local vip n body
	local -A seen=()

	vip=$(st vip)
	title "curl through the VIP (each server answers with its own name)"
	echo "\$ for i in \$(seq 10); do scripts/testbed.sh exec client curl -s http://$vip/; done"
	for n in $(seq 1 10); do
		body=$(timeout 5 bash "$bed" exec client curl -s --max-time 3 "http://$vip/") ||
			body="(failed)"
		echo "request $n: $body"
		seen[$body]=$((${seen[$body]:-0} + 1))
	done
	echo "answers per target: t1=${seen[t1]:-0} t2=${seen[t2]:-0} t3=${seen[t3]:-0}" \
		"(configured weights 3:1:1; the agents' live capacities adjust them)"
}

demo_wrk()
{
	local vip t sum=0
	local -A before=() got=()

	vip=$(st vip)
	title "wrk: 2 threads, 16 connections, 5 s through the VIP"
	for t in t1 t2 t3; do before[$t]=$(served "$t"); done
	echo "\$ scripts/testbed.sh exec client wrk -t2 -c16 -d5s http://$vip/"
	timeout 30 bash "$bed" exec client wrk -t2 -c16 -d5s "http://$vip/"
	sleep 0.5 # the servers' last log lines
	for t in t1 t2 t3; do
		got[$t]=$(($(served "$t") - before[$t]))
		sum=$((sum + got[$t]))
	done
	echo
	echo "per-target distribution, from the servers' own logs:"
	for t in t1 t2 t3; do
		awk -v t="$t" -v n="${got[$t]}" -v s="$sum" \
			'BEGIN { printf "  %s %6d requests  %5.1f %%\n", t, n, s ? 100 * n / s : 0 }'
	done
}

demo_wire()
{
	local vip err what

	vip=$(st vip)
	if [ "$dispatch" = gre ]; then
		what="casalb's GRE (outer 192.0.2.2 -> t2's endpoint, protocol 47, t2's key) around the client's own SYN"
	else
		what="the client's own SYN to the VIP, sent to t2's MAC (layer-2 dispatch)"
	fi
	title "tshark on t2's link: $what"
	err=$(mktemp)
	echo "\$ scripts/testbed.sh exec t2 tshark -i eth0 -Y 'tcp.flags.syn == 1 && tcp.flags.ack == 0' -T fields ..."
	echo "eth.dst	ip.src	ip.dst	ip.proto	gre.key	tcp.dstport"
	timeout 10 bash "$bed" exec t2 tshark -q -l -i eth0 -a duration:4 \
		-f "ip proto 47 or tcp port 80" -Y "tcp.flags.syn == 1 && tcp.flags.ack == 0" \
		-T fields -e eth.dst -e ip.src -e ip.dst -e ip.proto -e gre.key -e tcp.dstport \
		2>"$err" &
	# Bounded wait until the capture is live ("Capturing on 'eth0'").
	for _ in $(seq 1 30); do
		grep -q "Capturing on" "$err" && break
		sleep 0.1
	done
	for _ in $(seq 1 10); do
		timeout 5 bash "$bed" exec client curl -s -o /dev/null --max-time 3 "http://$vip/" || true
	done
	wait
	rm -f "$err"
}

demo_sm_tables()
{
	local vip holder

	vip=$(st vip)
	title "the Service Manager on the admin console (telnet $(st console) from node $(st console_node))"
	# Six connections held open across the display, so the VCRT and the
	# fixed affinities have something in them.
	on client python3 -c '
import socket, sys, time
held = [socket.create_connection((sys.argv[1], 80), timeout=3) for _ in range(6)]
time.sleep(4)' "$vip" &
	holder=$!
	sleep 1.5
	console "show vipadcfg" "show vdpt detail" "show vcrt" "show casa wildcard" \
		"show casa affinities" "show targets" "show agents" "show workers"
	wait "$holder" || true
}

demo_metrics()
{
	local url

	url=$(st metrics)
	title "the Prometheus endpoint (an excerpt of $url)"
	echo "\$ scripts/testbed.sh exec $(st console_node) curl -s $url | grep ..."
	timeout 10 bash "$bed" exec "$(st console_node)" curl -s --max-time 5 "$url" |
		grep -E '^casalb_(role|agent_up|worker_packets_total.*fwd|affinity_entries|vcrt_connections|target_(connections_total|effective_weight|capacity))' ||
		true
}

demo_counters()
{
	local pid log lines

	pid=$(st lb_pid)
	log=$(st lb_log)
	lines=$(wc -l <"$log")
	kill -USR1 "$pid"
	# Bounded wait for the counters' last line (the workers') in the log.
	for _ in $(seq 1 30); do
		tail -n +$((lines + 1)) "$log" | grep -q '^worker ' && break
		sleep 0.1
	done
	title "casalb's own counters (kill -USR1 $pid)"
	tail -n +$((lines + 1)) "$log"
}

# The appliance for real: namespaces, DPDK over af_packet, real servers.
demo_appliance()
{
	if [ "$(id -u)" -ne 0 ]; then
		title "the appliance on the namespace test bed"
		echo "skipped: the test bed needs root (network namespaces)"
		return
	fi
	[ "$keep" -eq 1 ] || trap 'bash scripts/testbed.sh down' EXIT
	demo_bed_up
	demo_curl
	demo_wrk
	demo_wire
	demo_sm_tables
	demo_metrics
	demo_counters
	if [ "$keep" -eq 1 ]; then
		title "left running (--keep)"
		echo "scripts/testbed.sh exec client curl -s http://$(st vip)/"
		echo "scripts/testbed.sh exec $(st console_node) telnet $(st console | tr : ' ')" \
			"  # admin / $(st console_password), enable: $(st console_enable_password)"
		echo "scripts/testbed.sh exec $(st console_node) curl -s $(st metrics)"
		echo "scripts/testbed.sh down"
	fi
}

main()
{
	local deps=1

	while [ $# -gt 0 ]; do
		case $1 in
		--no-deps) deps=0 ;;
		--keep) keep=1 ;;
		-h | --help)
			sed -n '4,27s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
			return 0
			;;
		*) die "unknown argument '$1' (usage: scripts/demo.sh [--no-deps] [--keep])" ;;
		esac
		shift
	done
	if [ "$deps" -eq 1 ]; then
		demo_deps
	fi
	demo_build
	demo_casadump_pcap
	demo_casadump_hex
	demo_appliance
	echo
	echo "demo: done"
}

main "$@"
