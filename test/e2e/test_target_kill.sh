#!/usr/bin/env bash
# End to end: a target host dies (issue 5, design.md section 6).
#   - the client holds 6 connections through the VIP (an HTTP request
#     sent but for its last line, so the servers wait), 2 on each target;
#   - t3 "dies": its links go down first (nothing it sends leaves), then its
#     agent and server are killed;
#   - the Service Manager notices the silence (agents timeout, 5 s on the
#     test bed) and marks t3 down: its connections leave the VCRT and the
#     fast path's affinity table;
#   - the client finishes its requests: the connections on t1 and t2 are
#     answered; each one on t3 gets a fast connection reset from casalb
#     within 3 s instead of hanging until a time-out;
#   - new connections all succeed, on t1 and t2 only.
# Every wait is bounded; the test bed is always torn down. Needs root.
#
# usage: test_target_kill.sh SOURCE_ROOT BUILD_DIR
set -uo pipefail
src=$1
export BUILD_DIR=$2
export TESTBED_STATE=${TMPDIR:-/tmp}/casalb-e2e-kill.$$
export TESTBED_DISPATCH=${TESTBED_DISPATCH:-l2}
# shellcheck source=test/e2e/lib.sh
source "$src/test/e2e/lib.sh"
holder_pid=

e2e_need_root
cleanup()
{
	[ -n "$holder_pid" ] && kill "$holder_pid" 2>/dev/null
	exec 3>&-
	bash "$bed" down
}
trap cleanup EXIT

# The held connections: open N, print "open PORT" for each, wait for a line
# on stdin, finish every request and print "PORT answer BODY SECONDS",
# "PORT reset SECONDS" or "PORT timeout SECONDS".
holder_py='
import socket, sys, time
vip, n = sys.argv[1], int(sys.argv[2])
conns = []
for _ in range(n):
    s = socket.create_connection((vip, 80), timeout=3)
    s.sendall(b"GET / HTTP/1.0\r\nHost: vip\r\n")
    conns.append(s)
    print("open", s.getsockname()[1], flush=True)
sys.stdin.readline()
for s in conns:
    port, t0 = s.getsockname()[1], time.monotonic()
    s.settimeout(8)
    try:
        s.sendall(b"\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        body = data.split(b"\r\n\r\n", 1)[-1].strip().decode() or "-"
        print(port, "answer", body, "%.2f" % (time.monotonic() - t0), flush=True)
    except ConnectionResetError:
        print(port, "reset", "%.2f" % (time.monotonic() - t0), flush=True)
    except socket.timeout:
        print(port, "timeout", "%.2f" % (time.monotonic() - t0), flush=True)
'

# targets_down from casalb's counters (SIGUSR1 prints them to its log).
targets_down()
{
	lb_counters '^vcrt ' | sed -n 's/^vcrt .* targets_down \([0-9]*\) .*/\1/p' | head -1
}

bed_up
vip=$(bed_status vip)
pid=$(bed_status lb_pid)
log=$(bed_status lb_log)
state=$TESTBED_STATE
out=$state/holder.out

mkfifo "$state/holder.in"
bash "$bed" exec client python3 -c "$holder_py" "$vip" 6 <"$state/holder.in" >"$out" 2>&1 &
holder_pid=$!
exec 3>"$state/holder.in"
for _ in $(seq 1 50); do
	[ "$(grep -c '^open' "$out")" -ge 6 ] && break
	sleep 0.1
done
check "six connections held open" '[ "$(grep -c "^open" "$out")" -eq 6 ]'
sleep 0.3 # the last handshakes reach the servers
# Which client ports landed on t3 (its established connections to the VIP).
t3_ports=$(bash "$bed" exec t3 ss -Htn state established "( sport = :80 )" |
	awk '{ n = split($4, a, ":"); print a[n] }' | sort -n | tr '\n' ' ')
echo "held on t3: ${t3_ports:-none}"
check "t3 holds some of them" '[ -n "$t3_ports" ]'

# t3 dies: links first, so neither its kernel's resets nor its agent's
# goodbye leave the host; then its processes.
bash "$bed" exec t3 ip link set eth0 down
bash "$bed" exec t3 ip link set mgmt0 down
kill -KILL "$(cat "$state/agent-t3.pid")" "$(cat "$state/http-t3.pid")" 2>/dev/null

down=
for _ in $(seq 1 40); do
	down=$(targets_down)
	[ "${down:-0}" -ge 1 ] && break
	sleep 0.5
done
check "the SM marked t3 down (targets_down ${down:-?})" '[ "${down:-0}" -ge 1 ]'

echo go >&3
for _ in $(seq 1 120); do
	[ "$(grep -cE ' (answer|reset|timeout) ' "$out")" -ge 6 ] && break
	sleep 0.1
done
exec 3>&-
wait "$holder_pid" 2>/dev/null
holder_pid=
cat "$out"
resets=$(grep -c ' reset ' "$out")
want=$(echo "$t3_ports" | wc -w)
fast=$(awk '$2 == "reset" && $3 < 3 { n++ } END { print n + 0 }' "$out")
# shellcheck disable=SC2034 # read in check's eval
answered=$(grep -cE ' answer t[12] ' "$out")
check "each connection on t3 was reset ($resets of $want)" '[ "$resets" -eq "$want" ]'
check "the resets came within 3 s ($fast of $resets)" '[ "$fast" -eq "$resets" ]'
for p in $t3_ports; do
	check "port $p (on t3) was the one reset" 'grep -q "^$p reset " "$out"'
done
check "the others were answered by t1 and t2" '[ "$answered" -eq $((6 - want)) ]'

t1=0 t2=0 bad=0
for _ in $(seq 1 12); do
	body=$(timeout 5 bash "$bed" exec client curl -s --max-time 3 "http://$vip/") || body=
	case $body in
	t1) t1=$((t1 + 1)) ;;
	t2) t2=$((t2 + 1)) ;;
	*) bad=$((bad + 1)) ;;
	esac
done
echo "new connections: t1=$t1 t2=$t2 other/failed=$bad"
check "new connections all succeed on t1 and t2" '[ "$bad" -eq 0 ] && [ "$t1" -gt 0 ] && [ "$t2" -gt 0 ]'
exit "$fail"
