# shellcheck shell=bash disable=SC2154,SC2034
# (src, vip, pid and log come from the sourcing script; bed and fail go to it)
# test/e2e/lib.sh - what every end-to-end test does the same way; sourced.
#
# The sourcing script sets src (the source root) first. It gets bed (the
# test bed script), fail=0, and:
#   e2e_need_root        exit 77 (meson's skip) unless root
#   check NAME EXPR      eval EXPR: "ok   NAME", or "FAIL NAME", fail=1 and
#                        status 1
#   bed_status KEY       one value of `testbed.sh status`
#   bed_up [SECONDS]     bring the test bed up (90 s at most) or FAIL, exit 1
#   ask N                N curl requests to the VIP from the client node,
#                        printing "T1 T2 T3 FAILURES" counts (uses $vip);
#                        after 3 failures in a row the rest count as failed
#   lb_counters PATTERN  SIGUSR1 to casalb (uses $pid, $log), then print the
#                        counter lines it wrote, once one matches PATTERN
#                        (3 s at most)
# Each test keeps its own cleanup trap: what it starts besides the bed.

bed="$src/scripts/testbed.sh"
fail=0

e2e_need_root()
{
	if [ "$(id -u)" -ne 0 ]; then
		echo "SKIP: needs root for network namespaces"
		exit 77
	fi
}

check()
{
	if eval "$2"; then
		echo "ok   $1"
	else
		echo "FAIL $1"
		fail=1
		return 1
	fi
}

bed_status() { bash "$bed" status | sed -n "s/^$1=//p"; }

bed_up()
{
	timeout "${1:-90}" bash "$bed" up || {
		echo "FAIL test bed did not come up"
		exit 1
	}
}

ask()
{
	local n=$1 i body t1=0 t2=0 t3=0 bad=0 run=0

	for ((i = 0; i < n; i++)); do
		# Three failures in a row: the VIP is down; the rest count as
		# failed rather than each waiting out its time-out.
		if [ "$run" -ge 3 ]; then
			bad=$((bad + n - i))
			break
		fi
		body=$(timeout 5 bash "$bed" exec client curl -s --max-time 3 "http://$vip/") || body=
		case $body in
		t1) t1=$((t1 + 1)) run=0 ;;
		t2) t2=$((t2 + 1)) run=0 ;;
		t3) t3=$((t3 + 1)) run=0 ;;
		*) bad=$((bad + 1)) run=$((run + 1)) ;;
		esac
	done
	echo "$t1 $t2 $t3 $bad"
}

lb_counters()
{
	local lines

	lines=$(wc -l <"$log")
	kill -USR1 "$pid"
	for _ in $(seq 1 30); do
		tail -n +$((lines + 1)) "$log" | grep -q "$1" && break
		sleep 0.1
	done
	tail -n +$((lines + 1)) "$log"
}
