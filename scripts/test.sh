#!/usr/bin/env bash
# scripts/test.sh - install what is missing, build, and run every test of casalb.
#
# usage: scripts/test.sh [--quick] [--suite NAME]... [--no-deps]
#
# Steps, each announced by a "== step ==" line; a failing step does not stop
# the ones after it:
#   deps      Debian packages from scripts/deps.sh, only those missing
#   build     build/ (-Dwerror=true) and `meson test` there, every suite
#   conf      `casalb -n FILE` for every conf/*.conf (once casalb exists)
#   asan      build-asan/ with ASan+UBSan, every suite again; any finding fails
#   fuzz      build-fuzz/ with clang and libFuzzer, test/fuzz/run.sh for
#             FUZZ_SECONDS (default 60)
#
# --quick runs deps, build and conf only. --suite NAME is passed to every
# `meson test` (repeatable). --no-deps skips the package step.
#
# Counting: every meson test is one test (OK and expected failures pass; FAIL,
# TIMEOUT, ERROR and unexpected passes fail; SKIP is reported apart), read from
# meson-logs/testlog.json. The fuzz run and each conf check are one test each.
# A step that could not get as far as its tests (package install, meson setup,
# compile, a `meson test` that ran nothing) counts as one failed test. The last
# line is "N passed, N failed"; the exit status is 1 when anything failed.
#
# Environment:
#   BUILD_PREFIX   put the build dirs at PREFIX-build, PREFIX-build-asan,
#                  PREFIX-build-fuzz instead of build, build-asan, build-fuzz
#   FUZZ_SECONDS   libFuzzer run time (default 60)
#   JOBS           parallel compile and test jobs (default 2)
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 2
# shellcheck source=scripts/deps.sh
source "$root/scripts/deps.sh"

usage()
{
	sed -n '4,17s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

quick=0
deps=1
suite_args=()
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 ;;
	--no-deps) deps=0 ;;
	--suite)
		if [ $# -lt 2 ]; then
			echo "test.sh: --suite needs a name" >&2
			exit 2
		fi
		suite_args+=(--suite "$2")
		shift
		;;
	--suite=*) suite_args+=(--suite "${1#--suite=}") ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		echo "test.sh: unknown argument '$1'" >&2
		usage >&2
		exit 2
		;;
	esac
	shift
done

if [ -n "${BUILD_PREFIX:-}" ]; then
	build_dir=$BUILD_PREFIX-build
else
	build_dir=build
fi
asan_dir=$build_dir-asan
fuzz_dir=$build_dir-fuzz
jobs=${JOBS:-2}
fuzz_seconds=${FUZZ_SECONDS:-60}

passed=0
failed=0
skipped=0
failures=()

banner()
{
	echo
	echo "== $* =="
}

pass()
{
	passed=$((passed + 1))
}

fail()
{
	failed=$((failed + 1))
	failures+=("$1")
	echo "test.sh: FAILED: $1" >&2
}

# setup_build LABEL DIR [meson options...]: configure (or reconfigure) and
# compile. A directory whose reconfigure fails (say, configured by another
# compiler) is wiped and set up afresh. Returns non-zero on failure.
setup_build()
{
	local label=$1 dir=$2
	shift 2

	if [ -f "$dir/meson-private/coredata.dat" ]; then
		if ! meson setup --reconfigure "$dir" "$@" </dev/null; then
			echo "test.sh: reconfigure of $dir failed; wiping it"
			rm -rf "$dir"
		fi
	fi
	if ! [ -f "$dir/meson-private/coredata.dat" ]; then
		if ! meson setup "$dir" "$@" </dev/null; then
			fail "$label: meson setup"
			return 1
		fi
	fi
	if ! meson compile -C "$dir" -j "$jobs" </dev/null; then
		fail "$label: compile"
		return 1
	fi
}

# count_results LABEL DIR: reads DIR/meson-logs/testlog.json and prints
# "PASSED FAILED SKIPPED" then one line per failed test.
count_results()
{
	python3 - "$1" "$2/meson-logs/testlog.json" <<'EOF'
import json, sys

label, path = sys.argv[1], sys.argv[2]
good = {"OK", "EXPECTEDFAIL"}
neutral = {"SKIP"}
p = f = s = 0
bad = []
try:
    with open(path) as log:
        for line in log:
            line = line.strip()
            if not line:
                continue
            t = json.loads(line)
            result = t.get("result", "ERROR")
            if result in good:
                p += 1
            elif result in neutral:
                s += 1
            else:
                f += 1
                bad.append(f"{label}: {t.get('name', '?')} ({result})")
except FileNotFoundError:
    pass
print(p, f, s)
for b in bad:
    print(b)
EOF
}

# run_meson_tests LABEL DIR [meson test options...]
run_meson_tests()
{
	local label=$1 dir=$2 rc p f s name
	local -a lines
	shift 2

	rm -f "$dir/meson-logs/testlog.json"
	meson test -C "$dir" --print-errorlogs -v --num-processes "$jobs" \
		"${suite_args[@]}" "$@" </dev/null
	rc=$?
	mapfile -t lines < <(count_results "$label" "$dir")
	read -r p f s <<<"${lines[0]:-0 0 0}"
	passed=$((passed + p))
	skipped=$((skipped + s))
	for name in "${lines[@]:1}"; do
		fail "$name"
	done
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		# meson test failed without a failed test: it ran nothing or broke.
		fail "$label: meson test exited $rc"
	fi
	echo "test.sh: $label: $p passed, $f failed, $s skipped"
}

step_deps()
{
	banner deps
	if [ "$deps" -eq 0 ]; then
		echo "skipped (--no-deps)"
		return
	fi
	casalb_deps_install || fail "deps: package install"
}

step_build()
{
	banner "build ($build_dir)"
	setup_build build "$build_dir" -Dwerror=true || return
	banner "test ($build_dir)"
	run_meson_tests build "$build_dir"
}

# Each example configuration must pass `casalb -n`. Silent until casalb and
# conf/*.conf exist.
step_conf()
{
	local casalb=$build_dir/src/control/casalb f
	local -a confs=()

	[ -x "$casalb" ] || return 0
	for f in conf/*.conf; do
		[ -f "$f" ] && confs+=("$f")
	done
	[ "${#confs[@]}" -gt 0 ] || return 0
	banner "conf check"
	for f in "${confs[@]}"; do
		if "$casalb" -n "$f" </dev/null; then
			pass
		else
			fail "conf: casalb -n $f"
		fi
	done
}

step_asan()
{
	banner "build ($asan_dir, address,undefined sanitizers)"
	setup_build asan "$asan_dir" -Db_sanitize=address,undefined -Db_lundef=false \
		-Dwerror=true || return
	banner "test ($asan_dir)"
	# Any sanitizer report aborts the test, so it fails.
	ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1:print_stacktrace=1 \
		UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1 \
		run_meson_tests asan "$asan_dir" --timeout-multiplier 3
}

step_fuzz()
{
	banner "fuzz ($fuzz_dir, ${fuzz_seconds}s)"
	if ! [ -f test/fuzz/run.sh ]; then
		echo "skipped: test/fuzz/run.sh does not exist yet"
		skipped=$((skipped + 1))
		return
	fi
	CC=clang setup_build fuzz "$fuzz_dir" -Dfuzzing=true \
		-Db_sanitize=address,undefined -Db_lundef=false || return
	if bash test/fuzz/run.sh "$fuzz_dir" "$fuzz_seconds" </dev/null; then
		pass
	else
		fail "fuzz: test/fuzz/run.sh $fuzz_dir $fuzz_seconds"
	fi
}

start=$SECONDS
step_deps
step_build
step_conf
if [ "$quick" -eq 0 ]; then
	step_asan
	step_fuzz
fi

banner summary
echo "time: $((SECONDS - start))s"
for f in "${failures[@]}"; do
	echo "failed: $f"
done
echo "skipped: $skipped"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
