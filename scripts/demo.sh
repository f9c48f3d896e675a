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
#     casalb's DPDK fast path between a client and three targets running
#     python3 http.server; curl through the VIP, the answers per target
#     (weights 3:1:1), the SYNs on a target's link as tshark sees them, and
#     casalb's own counters. Torn down at the end (--keep leaves it up).
# Nothing here is canned: every line after the titles is printed by the
# programs themselves.
#
# Each part of the demo is one function called from main.
#
# Environment: BUILD_PREFIX puts the build at PREFIX-build (as in test.sh);
# JOBS sets parallel compile jobs (default 2).
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

# The appliance for real: namespaces, DPDK over af_packet, real servers.
demo_appliance()
{
	local bed=scripts/testbed.sh vip pid log n body
	local -A seen=()

	title "casalb on the namespace test bed: client -> VIP -> casalb (DPDK) -> t1 t2 t3"
	if [ "$(id -u)" -ne 0 ]; then
		echo "skipped: the test bed needs root (network namespaces)"
		return
	fi
	[ "$keep" -eq 1 ] || trap 'bash scripts/testbed.sh down' EXIT
	BUILD_DIR=$build_dir TESTBED_WEIGHTS="3 1 1" bash "$bed" up
	BUILD_DIR=$build_dir bash "$bed" status
	vip=$(bash "$bed" status | sed -n 's/^vip=//p')
	echo "\$ cat $(bash "$bed" status | sed -n 's/^lb_conf=//p')"
	cat "$(bash "$bed" status | sed -n 's/^lb_conf=//p')"
	echo
	echo "\$ for i in \$(seq 10); do ip netns exec clb-client curl -s http://$vip/; done"
	for n in $(seq 1 10); do
		body=$(timeout 5 ip netns exec clb-client curl -s --max-time 3 "http://$vip/") ||
			body="(failed)"
		echo "request $n: $body"
		seen[$body]=$((${seen[$body]:-0} + 1))
	done
	echo "answers per target: t1=${seen[t1]:-0} t2=${seen[t2]:-0} t3=${seen[t3]:-0}" \
		"(weights 3:1:1, smooth weighted round robin in shuffled cycles)"
	echo
	echo "\$ tshark on t2's link while the client asks five times more:"
	echo "  the SYNs t2 gets, to its own MAC but still client -> VIP (layer-2 dispatch)"
	capture_err=$(mktemp)
	timeout 8 ip netns exec clb-t2 tshark -q -l -i eth0 -a duration:4 \
		-f "tcp dst port 80 and tcp[13] & 18 == 2" \
		-T fields -e eth.dst -e ip.src -e ip.dst -e tcp.dstport 2>"$capture_err" &
	# Bounded wait until the capture is live ("Capturing on 'eth0'").
	for _ in $(seq 1 30); do
		grep -q "Capturing on" "$capture_err" && break
		sleep 0.1
	done
	for n in 1 2 3 4 5; do
		timeout 5 ip netns exec clb-client curl -s -o /dev/null --max-time 3 "http://$vip/" || true
	done
	wait
	rm -f "$capture_err"
	pid=$(bash "$bed" status | sed -n 's/^lb_pid=//p')
	log=$(bash "$bed" status | sed -n 's/^lb_log=//p')
	lines=$(wc -l <"$log")
	kill -USR1 "$pid"
	# Bounded wait for the counters' last line (the workers') in the log.
	for _ in $(seq 1 30); do
		tail -n +$((lines + 1)) "$log" | grep -q '^worker ' && break
		sleep 0.1
	done
	echo
	echo "\$ kill -USR1 $pid   # casalb prints its counters"
	tail -n +$((lines + 1)) "$log"
}

main()
{
	local deps=1

	while [ $# -gt 0 ]; do
		case $1 in
		--no-deps) deps=0 ;;
		--keep) keep=1 ;;
		-h | --help)
			sed -n '4,24s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
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
