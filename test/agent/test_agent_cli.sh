#!/usr/bin/env bash
# casalb-agent's command line: every bad flag value is a one-line error and
# exit status 2, a bad key file a one-line error and status 1, before the
# agent touches the network or the host; a key file that is too long, a
# FIFO or empty never crashes (the ASan build runs this too) or hangs.
#
# usage: test_agent_cli.sh CASALB_AGENT
set -uo pipefail
agent=$1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/casalb-agent-cli.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail=0
base=(-s 192.0.2.1 -n t1)

# expect NAME STATUS PATTERN ARGS...: the agent exits with STATUS within
# 5 s and says PATTERN (grep -E) on stderr, in one line.
expect()
{
	local name=$1 want=$2 pattern=$3 rc lines
	shift 3
	timeout 5 "$agent" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	lines=$(wc -l <"$tmp/err")
	if [ "$rc" -eq "$want" ] && grep -Eq -- "$pattern" "$tmp/err" && [ "$lines" -le 1 ]; then
		echo "ok   $name"
	else
		echo "FAIL $name: status $rc (want $want), stderr:"
		sed 's/^/     /' "$tmp/err"
		fail=1
	fi
}

expect "port out of range" 2 '-p 70000: a port 1\.\.65535' "${base[@]}" -p 70000
expect "port not a number" 2 '-p 80x: a port' "${base[@]}" -p 80x
expect "port zero" 2 '-p 0: a port' "${base[@]}" -p 0
expect "key id out of range" 2 '-i 256: a key id 0\.\.255' "${base[@]}" -i 256
expect "key id negative" 2 '-i -1: a key id' "${base[@]}" -i -1
expect "unknown algorithm" 2 '-a sha1: sha256 or md5' "${base[@]}" -a sha1
expect "resync negative" 2 '-r -5: seconds 0\.\.86400' "${base[@]}" -r -5
expect "resync too long" 2 '-r 86401: seconds' "${base[@]}" -r 86401
expect "no such cgroup" 2 "-c $tmp/nosuch: not a cgroup v2 directory" "${base[@]}" -c "$tmp/nosuch"
expect "empty name" 2 '-n: a target name is 1\.\.64 octets of UTF-8' -s 192.0.2.1 -n ''
expect "name too long" 2 '-n: a target name' -s 192.0.2.1 -n "$(printf '%065d' 0)"
expect "name not UTF-8" 2 '-n: a target name' -s 192.0.2.1 -n "$(printf 't\377')"
expect "bad SM list" 2 '-s 192\.0\.2\.1,x: IPv4 addresses' -s 192.0.2.1,x -n t1
if timeout 5 "$agent" -h 2>/dev/null | grep -q '^usage: casalb-agent -s SM_ADDR'; then
	echo "ok   help"
else
	echo "FAIL help: no usage line on stdout"
	fail=1
fi

printf '%070d\n' 0 >"$tmp/long.key"
expect "key too long" 1 "key file $tmp/long.key: 1\.\.64 octets" "${base[@]}" -k "$tmp/long.key"
head -c 200 /dev/zero | tr '\0' 'k' >"$tmp/long-no-newline.key"
expect "key too long, no newline" 1 '1\.\.64 octets' "${base[@]}" -k "$tmp/long-no-newline.key"
: >"$tmp/empty.key"
expect "key empty" 1 '1\.\.64 octets' "${base[@]}" -k "$tmp/empty.key"
printf '\r\n' >"$tmp/cr.key"
expect "key only CR LF" 1 '1\.\.64 octets' "${base[@]}" -k "$tmp/cr.key"
mkfifo "$tmp/fifo.key"
expect "key file a FIFO" 1 'fifo.key: not a regular file' "${base[@]}" -k "$tmp/fifo.key"
expect "key file a directory" 1 'not a regular file' "${base[@]}" -k "$tmp"
expect "key file missing" 1 'nosuch.key: No such file' "${base[@]}" -k "$tmp/nosuch.key"
exit $fail
