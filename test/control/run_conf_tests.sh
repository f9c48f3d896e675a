#!/usr/bin/env bash
# Golden tests of casalb's configuration checker: `casalb -n -v` on a good
# file prints the normalised configuration and "configuration OK"; on a bad
# file it exits 1 and prints every error, each exactly as expected.
#
# usage: run_conf_tests.sh CASALB CONF_DIR
set -u
casalb=$(realpath "$1")
cd "$2" || exit 2
status=0

check()
{
	local name=$1 want_rc=$2 got rc
	shift 2
	got=$("$casalb" "$@" 2>&1)
	rc=$?
	if [ "$rc" -ne "$want_rc" ]; then
		echo "FAIL $name: exit $rc, expected $want_rc"
		status=1
	fi
	if ! diff -u "$name.expected" <(printf '%s\n' "$got"); then
		echo "FAIL $name: output differs (above)"
		status=1
	else
		echo "ok   $name"
	fi
}

check good 0 -n -v good.conf
check bad-keys 1 -n bad-keys.conf
check bad-sm 1 -n bad-sm.conf
check bad-key 1 -n bad-key.conf
check bad-console 1 -n bad-console.conf
check bad-console-open 1 -n bad-console-open.conf
check bad-service 1 -n bad-service.conf
# The console's secrets are never printed (good.conf has one in a file and
# one inline).
if "$casalb" -n -v good.conf | grep -q -e console-secret -e en-secret; then
	echo "FAIL a console password was printed"
	status=1
fi
got=$("$casalb" -n missing.conf 2>&1)
if [ $? -ne 1 ] || [ -z "$got" ]; then
	echo "FAIL missing file: no error"
	status=1
else
	echo "ok   missing file: $got"
fi
"$casalb" -x >/dev/null 2>&1
if [ $? -ne 2 ]; then
	echo "FAIL usage error does not exit 2"
	status=1
fi
exit $status
