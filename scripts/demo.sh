#!/usr/bin/env bash
# scripts/demo.sh - show casalb working, for real.
#
# usage: scripts/demo.sh [--no-deps]
#
# Installs the packages it needs (scripts/deps.sh), builds build/, and runs
# the parts of casalb that exist. Today that is the CASA library, shown
# through casadump decoding the redbook's captured CASA messages: the three
# datagrams of seed section 6.8.1 from a pcap, then the same messages from
# their hex (test/data/casa/V1-V3.hex). Nothing here is canned: every line
# after the titles is printed by casadump.
#
# Each part of the demo is one function called from main; the appliance on
# its namespace test bed will be added the same way.
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

main()
{
	local deps=1

	while [ $# -gt 0 ]; do
		case $1 in
		--no-deps) deps=0 ;;
		-h | --help)
			sed -n '4,17s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
			return 0
			;;
		*) die "unknown argument '$1' (usage: scripts/demo.sh [--no-deps])" ;;
		esac
		shift
	done
	if [ "$deps" -eq 1 ]; then
		demo_deps
	fi
	demo_build
	demo_casadump_pcap
	demo_casadump_hex
	echo
	echo "demo: done"
}

main "$@"
