#!/usr/bin/env bash
# Run every libFuzzer target for a while: fuzz_casa_decode, fuzz_fp_parse, fuzz_ctl_conf,
# fuzz_ctl_cmd.
#
# usage: test/fuzz/run.sh BUILD_DIR SECONDS
#
# BUILD_DIR is a -Dfuzzing=true build (CC=clang meson setup BUILD_DIR -Dfuzzing=true
# -Db_sanitize=address,undefined -Db_lundef=false). SECONDS is each target's time. Seed
# corpora are built in a temporary directory: casa_decode's from test/data/casa/*.hex (for
# the F datagrams, their CASA payload), fp_parse's from test/fuzz/frames/*.hex, ctl_conf's
# from conf/*.conf and test/control/conf/*.conf, ctl_cmd's from test/fuzz/cmds; the first two add their regressions folder. Prints libFuzzer's final statistics and "fuzz: NAME runs=N
# seconds=S" per target; exits non-zero if a fuzzer stopped on a crash or a broken property,
# printing where the artifacts are (and their hex). The temporary directory is kept then,
# and removed after a clean run.
set -u

if [ $# -ne 2 ] || ! [[ $2 =~ ^[0-9]+$ ]]; then
	echo "usage: $0 BUILD_DIR SECONDS" >&2
	exit 2
fi
build=$1
seconds=$2
src=$(cd "$(dirname "$0")/../.." && pwd)
for f in fuzz_casa_decode fuzz_fp_parse fuzz_ctl_conf fuzz_ctl_cmd; do
	if ! [ -x "$build/test/fuzz/$f" ]; then
		echo "fuzz: $build/test/fuzz/$f not found; configure $build with -Dfuzzing=true (CC=clang)" >&2
		exit 2
	fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/fuzz.XXXXXX")
mkdir -p "$work/casa_decode/corpus" "$work/fp_parse/corpus" "$work/ctl_conf/corpus" \
	"$work/ctl_cmd/corpus" "$work/artifacts"

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
	hex2bin "$hex" >"$work/casa_decode/corpus/$(basename "$f" .hex)"
done
for f in "$src"/test/fuzz/frames/*.hex; do
	hex2bin "$(grep -v '^#' "$f" | tr -d ' \n')" >"$work/fp_parse/corpus/$(basename "$f" .hex)"
done
for f in "$src"/conf/*.conf "$src"/test/control/conf/*.conf; do
	cp "$f" "$work/ctl_conf/corpus/"
done
copy_regressions() {
	local dir=$1 to=$2 f
	for f in "$dir"/*; do
		case $f in *.md) continue ;; esac
		[ -f "$f" ] && cp "$f" "$to/"
	done
}
cp "$src"/test/fuzz/cmds/* "$work/ctl_cmd/corpus/"
copy_regressions "$src/test/fuzz/regressions" "$work/casa_decode/corpus"
copy_regressions "$src/test/fuzz/regressions-fp" "$work/fp_parse/corpus"

# run_target NAME MAX_LEN [libFuzzer options...]
failed=0
run_target() {
	local name=$1 max_len=$2 status start elapsed runs
	shift 2
	start=$(date +%s)
	LSAN_OPTIONS="suppressions=$src/test/fuzz/lsan.supp:${LSAN_OPTIONS:-}" \
		"$build/test/fuzz/fuzz_$name" -max_len="$max_len" -max_total_time="$seconds" -timeout=10 \
		-rss_limit_mb=4096 -artifact_prefix="$work/artifacts/$name-" -print_final_stats=1 \
		"$@" "$work/$name/corpus" >"$work/$name.log" 2>&1
	status=$?
	elapsed=$(( $(date +%s) - start ))
	grep -E "^(stat::|#[0-9]+[[:space:]]+(INITED|DONE))" "$work/$name.log"
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$name.log" | tail -1)
	echo "fuzz: $name runs=${runs:-0} seconds=$elapsed"
	if [ "$status" != 0 ]; then
		echo "fuzz: $name FAILED (libFuzzer status $status); log $work/$name.log" >&2
		grep -E 'ERROR|SUMMARY|runtime error|deadly signal' "$work/$name.log" | head -5 >&2
		failed=1
	fi
}

run_target casa_decode 65535 -dict="$src/test/fuzz/casa.dict"
run_target fp_parse 9216
run_target ctl_conf 65536
run_target ctl_cmd 8192

artifacts=$(find "$work/artifacts" -type f | sort)
if [ "$failed" != 0 ] || [ -n "$artifacts" ]; then
	for a in $artifacts; do
		echo "fuzz: artifact $a" >&2
		echo "fuzz:   hex $(od -An -v -tx1 "$a" | tr -d ' \n' | head -c 2000)" >&2
	done
	exit 1
fi
rm -rf "$work"
