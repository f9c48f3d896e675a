#!/usr/bin/env bash
# scripts/bench.sh - run a benchmark and print its figures last, as key=value.
#
# usage: scripts/bench.sh NAME [--quick]
#
#   fastpath   test/bench/bench_fastpath: p1 hits (uniform, Zipf) against a
#              no-op baseline, p2 SYN path, p4 10 M affinities; then p1's
#              instructions per packet under callgrind, and a PNG plot of
#              Mpps against table size (build-bench/fastpath-mpps.png).
#   sm         test/bench/bench_sm: p3 interest messages turned into fixed
#              affinities per second by one control core, with and without
#              HMAC-SHA256, against bare sendto() on the same core.
#   agent      test/bench/bench_agent: the target's GRE decapsulation
#              program (tc BPF) in ns per packet, decapsulating and passing
#              plain traffic, against a two-instruction program (root).
#
# Builds build-bench/ (release; generic x86-64 so that valgrind runs it too)
# after installing what is
# missing (scripts/deps.sh). Benchmarks never fail on a time: the exit status
# is non-zero only when the harness breaks.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=scripts/deps.sh
source "$root/scripts/deps.sh"

usage()
{
	sed -n '4,20s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

if [ $# -lt 1 ]; then
	usage >&2
	exit 2
fi
name=$1
shift
quick=()
for a in "$@"; do
	case $a in
	--quick) quick=(--quick) ;;
	*)
		usage >&2
		exit 2
		;;
	esac
done

build=${BENCH_BUILD:-build-bench}

build_bench()
{
	casalb_deps_install >&2
	if ! [ -f "$build/meson-private/coredata.dat" ]; then
		meson setup "$build" --buildtype=release -Db_ndebug=true >&2
	fi
	meson compile -C "$build" >&2
}

# plot_sizes FILE PNG: "size N MPPS" lines to a PNG with gnuplot.
plot_sizes()
{
	local data=$1 png=$2

	awk '$1 == "size" { print $2, $3 }' "$data" >"$data.dat"
	gnuplot <<GP
set terminal pngcairo size 800,500
set output '$png'
set title 'casalb fast path: GRE hits on one core'
set xlabel 'established flows in the affinity table'
set ylabel 'Mpps'
set logscale x
set grid
set yrange [0:*]
plot '$data.dat' using 1:2 with linespoints lw 2 pt 7 title 'uniform, 64-byte TCP'
GP
}

bench_fastpath()
{
	local bin=$build/test/bench/bench_fastpath out ir pkts

	tmp=$(mktemp -d "${TMPDIR:-/tmp}/casalb-bench.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT

	echo "bench: p1, p2, p4 (this takes a minute or two)" >&2
	"$bin" "${quick[@]}" >"$tmp/main.txt"

	echo "bench: p1 under callgrind (instructions per packet on the hit path)" >&2
	pkts=200000
	valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" \
		--toggle-collect=fp_worker_handle_burst "$bin" --callgrind "$pkts" \
		>"$tmp/cg.txt" 2>"$tmp/cg.err"
	ir=$(sed -n 's/^summary: *//p' "$tmp/cg.out" | head -1)

	echo "bench: Mpps against table size" >&2
	"$bin" --sizes "${quick[@]}" >"$tmp/sizes.txt"
	sed 's/^/bench: /' "$tmp/sizes.txt" >&2
	if command -v gnuplot >/dev/null 2>&1; then
		plot_sizes "$tmp/sizes.txt" "$build/fastpath-mpps.png"
		echo "bench: plot in $build/fastpath-mpps.png" >&2
	fi

	cat "$tmp/main.txt"
	if [ -n "$ir" ]; then
		awk -v ir="$ir" -v p="$pkts" 'BEGIN { printf "p1_instr_per_pkt=%.1f\n", ir / p }'
	fi
	out=$(awk '$1 == "size" { printf "%s%s:%s", sep, $2, $3; sep="," }' "$tmp/sizes.txt")
	echo "p1_mpps_by_table_size=$out"
}

bench_sm()
{
	echo "bench: p3, the SM's interest path (a few seconds)" >&2
	"$build/test/bench/bench_sm"
}

bench_agent()
{
	echo "bench: the agent's GRE decapsulation under BPF_PROG_TEST_RUN" >&2
	"$build/test/bench/bench_agent" "${quick[@]}"
}

case $name in
fastpath)
	build_bench
	bench_fastpath
	;;
sm)
	build_bench
	bench_sm
	;;
agent)
	build_bench
	bench_agent
	;;
*)
	echo "bench.sh: unknown benchmark '$name' (known: fastpath, sm, agent)" >&2
	exit 2
	;;
esac
