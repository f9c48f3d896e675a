#!/usr/bin/env bash
# test/lint/clang-format.sh SOURCE_ROOT - every tracked .c/.h file under src/
# and test/ must already be formatted by the root .clang-format.
#
# Files come from `git ls-files` in a git work tree (so build output and
# scratch files are never checked), else from find. CLANG_FORMAT overrides
# the program (default clang-format, version 14 on Debian 12).
set -uo pipefail

if [ $# -ne 1 ]; then
	echo "usage: $0 SOURCE_ROOT" >&2
	exit 2
fi
cd "$1" || exit 2
clang_format=${CLANG_FORMAT:-clang-format}
if ! command -v "$clang_format" >/dev/null 2>&1; then
	echo "clang-format: $clang_format not found (scripts/deps.sh installs it)" >&2
	exit 1
fi
if ! [ -f .clang-format ]; then
	echo "clang-format: no .clang-format in $PWD" >&2
	exit 1
fi

files=()
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	while IFS= read -r -d '' f; do
		[ -f "$f" ] && files+=("$f")
	done < <(git ls-files -z -- 'src/*.c' 'src/*.h' 'test/*.c' 'test/*.h')
else
	while IFS= read -r -d '' f; do
		files+=("$f")
	done < <(find src test -type f \( -name '*.c' -o -name '*.h' \) -print0 | sort -z)
fi
if [ "${#files[@]}" -eq 0 ]; then
	echo "clang-format: no .c/.h files under src/ and test/"
	exit 0
fi

bad=()
for f in "${files[@]}"; do
	if ! "$clang_format" --dry-run -Werror --ferror-limit=5 "$f"; then
		bad+=("$f")
	fi
done
echo "clang-format: ${#files[@]} files checked, ${#bad[@]} not formatted"
if [ "${#bad[@]}" -ne 0 ]; then
	echo "clang-format: fix with: clang-format -i ${bad[*]}" >&2
	exit 1
fi
