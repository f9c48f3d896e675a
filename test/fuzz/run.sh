#!/usr/bin/env bash
# Run the fuzz_casa_decode libFuzzer target for a while.
#
# usage: test/fuzz/run.sh BUILD_DIR SECONDS
#
# BUILD_DIR is a -Dfuzzing=true build (CC=clang meson setup BUILD_DIR -Dfuzzing=true
# -Db_sanitize=address,undefined -Db_lundef=false). The seed corpus is built in a temporary
# directory from test/data/casa/*.hex (for the F datagrams, their CASA payload). Prints
# libFuzzer's final statistics and "fuzz: casa_decode runs=N seconds=S"; exits non-zero if
# the fuzzer stopped on a crash or a broken property, printing where the artifacts are (and
# their hex). The temporary directory is kept then, and removed after a clean run.
set -u

if [ $# -ne 2 ] || ! [[ $2 =~ ^[0-9]+$ ]]; then
	echo "usage: $0 BUILD_DIR SECONDS" >&2
	exit 2
fi
build=$1
seconds=$2
src=$(cd "$(dirname "$0")/../.." && pwd)
fuzzer=$build/test/fuzz/fuzz_casa_decode
if ! [ -x "$fuzzer" ]; then
	echo "fuzz: $fuzzer not found; configure $build with -Dfuzzing=true (CC=clang)" >&2
	exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-casa.XXXXXX")
mkdir -p "$work/corpus" "$work/artifacts"

# shellcheck disable=SC2059 # the format is the data: \xHH escapes only
hex2bin() { printf "$(sed 's/../\\x&/g' <<<"$1")"; }

# The UDP payload of an IPv4 datagram in hex, following one GRE header (4 bytes
# plus checksum, key and sequence words as flagged) to an inner IPv4/UDP packet.
casa_payload() {
	local h=$1 ihl proto flags
	ihl=$(( (16#${h:1:1}) * 4 ))
	proto=$((16#${h:18:2}))
	h=${h:$((ihl * 2))}
	if [ "$proto" = 47 ]; then
		flags=$((16#${h:0:4}))
		h=${h:$(( (4 + (flags >> 15 & 1) * 4 + (flags >> 13 & 1) * 4 + (flags >> 12 & 1) * 4) * 2 ))}
		casa_payload "$h"
		return
	fi
	echo "${h:16}"
}

for f in "$src"/test/data/casa/*.hex; do
	hex=$(sed -n 2p "$f")
	case $hex in 4*) hex=$(casa_payload "$hex") ;; esac
	hex2bin "$hex" >"$work/corpus/$(basename "$f" .hex)"
done
for f in "$src"/test/fuzz/regressions/*; do
	case $f in *.md) continue ;; esac
	[ -f "$f" ] && cp "$f" "$work/corpus/"
done

start=$(date +%s)
"$fuzzer" -max_len=65535 -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 \
	-dict="$src/test/fuzz/casa.dict" -artifact_prefix="$work/artifacts/" \
	-print_final_stats=1 "$work/corpus" >"$work/fuzz.log" 2>&1
status=$?
elapsed=$(( $(date +%s) - start ))

grep -E "^(stat::|#[0-9]+[[:space:]]+(INITED|DONE))" "$work/fuzz.log"
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log" | tail -1)
echo "fuzz: casa_decode runs=${runs:-0} seconds=$elapsed"

artifacts=$(find "$work/artifacts" -type f | sort)
if [ "$status" != 0 ] || [ -n "$artifacts" ]; then
	echo "fuzz: FAILED (libFuzzer status $status); log $work/fuzz.log" >&2
	grep -E 'ERROR|SUMMARY|runtime error|deadly signal' "$work/fuzz.log" | head -5 >&2
	for a in $artifacts; do
		echo "fuzz: artifact $a" >&2
		echo "fuzz:   hex $(od -An -v -tx1 "$a" | tr -d ' \n' | head -c 2000)" >&2
	done
	exit 1
fi
rm -rf "$work"
