# shellcheck shell=bash
# scripts/deps.sh - the Debian 12 packages casalb needs, in one place.
#
# Sourced by scripts/test.sh and scripts/demo.sh (and usable alone:
# `bash scripts/deps.sh` installs). casalb_deps_install installs only what
# is missing (dpkg-query decides), runs `apt-get update` only then, and
# never prompts. Run as root (CI does); otherwise sudo is used if present.

# Every Debian package the build, the tests, the demo and the test bed need.
# Add new ones here only.
CASALB_DEPS=(
	build-essential # gcc, make, libc headers; gcc's ASan/UBSan runtimes
	meson
	ninja-build
	pkg-config
	clang              # the fuzz build (CC=clang, -Dfuzzing=true)
	libclang-rt-14-dev # libFuzzer and the ASan/UBSan runtimes for clang
	llvm               # llvm-symbolizer for sanitizer stack traces
	libcunit1-dev      # unit tests
	libssl-dev         # libcrypto: CASA authentication (HMAC)
	libpcap-dev        # casadump -r: pcap and pcapng reading
	tshark             # text2pcap and tshark: captures in tests and the test bed
	clang-format       # lint: formatting (version 14 on Debian 12)
	shellcheck         # lint: shell scripts
	dpdk-dev           # fast path
	libdpdk-dev
	libconfig-dev # control: configuration files
	libcli-dev    # control: the admin console (Telnet-style sessions)
	expect        # e2e: drives a real telnet session on the console
	telnet        # e2e: the console's client
	libmicrohttpd-dev # control: the metrics endpoint (HTTP)
	prometheus        # promtool and the server for the metrics e2e test
	liburcu-dev   # fast path and control: RCU publication of tables
	libbpf-dev    # agent and xdp: BPF loaders
	bpftool       # agent: the GRE program's libbpf skeleton (bpftool gen skeleton)
	iproute2      # test bed: ip netns, veth
	ethtool       # test bed: checksum offloads off on veths
	curl          # test bed and e2e: real HTTP clients
	wrk           # e2e and demo: HTTP load through the VIP
	stress-ng     # e2e: CPU load on one target (live weights)
	python3       # test log parsing, lint helpers
	valgrind      # bench: instructions per packet (callgrind)
	gnuplot-nox   # bench: plots
)

# Prints the packages of CASALB_DEPS that are not fully installed.
casalb_deps_missing()
{
	local pkg status

	for pkg in "${CASALB_DEPS[@]}"; do
		status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null) || status=
		case $status in
		ii*) ;;
		*) echo "$pkg" ;;
		esac
	done
}

# Installs whatever is missing. Returns 0 when everything is installed.
casalb_deps_install()
{
	local -a missing sudo=()

	if ! command -v dpkg-query >/dev/null 2>&1; then
		echo "deps: dpkg-query not found: casalb's scripts expect Debian 12" >&2
		return 1
	fi
	mapfile -t missing < <(casalb_deps_missing)
	if [ "${#missing[@]}" -eq 0 ]; then
		echo "deps: all ${#CASALB_DEPS[@]} packages installed"
		return 0
	fi
	echo "deps: installing ${missing[*]}"
	if [ "$(id -u)" -ne 0 ]; then
		if ! command -v sudo >/dev/null 2>&1; then
			echo "deps: missing packages and not root (no sudo): ${missing[*]}" >&2
			return 1
		fi
		sudo=(sudo -E)
	fi
	export DEBIAN_FRONTEND=noninteractive
	# tshark asks whether non-root users may capture; answer no beforehand.
	echo "wireshark-common wireshark-common/install-setuid boolean false" |
		"${sudo[@]}" debconf-set-selections || return 1
	"${sudo[@]}" apt-get -q update || return 1
	"${sudo[@]}" apt-get -q -y -o DPkg::Lock::Timeout=300 \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
		--no-install-recommends install "${missing[@]}" </dev/null || return 1
	mapfile -t missing < <(casalb_deps_missing)
	if [ "${#missing[@]}" -ne 0 ]; then
		echo "deps: still missing after install: ${missing[*]}" >&2
		return 1
	fi
	echo "deps: installed"
}

# Run directly: install.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	casalb_deps_install
fi
