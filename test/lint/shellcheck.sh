#!/usr/bin/env bash
# test/lint/shellcheck.sh SOURCE_ROOT - shellcheck (severity warning and up)
# over scripts/*.sh, .ci/run and every test/**/*.sh.
#
# Run from the source root with -x, so `source scripts/deps.sh` is followed.
# SHELLCHECK overrides the program.
set -uo pipefail

if [ $# -ne 1 ]; then
	echo "usage: $0 SOURCE_ROOT" >&2
	exit 2
fi
cd "$1" || exit 2
shellcheck=${SHELLCHECK:-shellcheck}
if ! command -v "$shellcheck" >/dev/null 2>&1; then
	echo "shellcheck: $shellcheck not found (scripts/deps.sh installs it)" >&2
	exit 1
fi

files=()
for f in scripts/*.sh .ci/run; do
	[ -f "$f" ] && files+=("$f")
done
while IFS= read -r -d '' f; do
	files+=("$f")
done < <(find test -type f -name '*.sh' -print0 | sort -z)
if [ "${#files[@]}" -eq 0 ]; then
	echo "shellcheck: no scripts"
	exit 0
fi

bad=()
for f in "${files[@]}"; do
	if ! "$shellcheck" -x -S warning "$f"; then
		bad+=("$f")
	fi
done
echo "shellcheck: ${#files[@]} scripts checked, ${#bad[@]} with findings"
[ "${#bad[@]}" -eq 0 ]
