#!/usr/bin/env bash
# End to end: the admin console over a real telnet client (driven by expect)
# from the console node of the test bed (docs/console.md):
#   - log in with the password, show vdpt, vcrt and casa wildcard;
#   - enable, add port 8080 to service web live: vipadcfg and vdpt list it,
#     the CASA wildcard for it is advertised, and once t1's extra server on
#     8080 is reported ready by its agent, a client's connection to
#     VIP:8080 is placed and answered;
#   - show vdpt's TotalConn of every row equals the metrics endpoint's
#     casalb_target_connections_total (one snapshot for both);
#   - delete the port again: vipadcfg no longer lists it;
#   - a wrong password is refused.
# Every wait is bounded; the test bed is always torn down. Needs root, expect
# and telnet (scripts/deps.sh).
#
# usage: test_console.sh SOURCE_ROOT BUILD_DIR
set -uo pipefail
src=$1
export BUILD_DIR=$2
export TESTBED_STATE=${TMPDIR:-/tmp}/casalb-e2e-console.$$
# shellcheck source=test/e2e/lib.sh
source "$src/test/e2e/lib.sh"

e2e_need_root
for p in expect telnet; do
	if ! command -v "$p" >/dev/null 2>&1; then
		echo "SKIP: $p not installed (scripts/deps.sh)"
		exit 77
	fi
done
work=$(mktemp -d "${TMPDIR:-/tmp}/casalb-console.XXXXXX")
cleanup()
{
	bash "$bed" down
	rm -rf "$work"
}
trap cleanup EXIT


bed_up
vip=$(bed_status vip)
console=$(bed_status console)
node=$(bed_status console_node)
password=$(bed_status console_password)
enable=$(bed_status console_enable_password)
state=$TESTBED_STATE
host=${console%:*}
port=${console#*:}

# The dialogue. Each step waits for its answer (10 s at most); any timeout
# or early end fails the whole script, which prints what it saw.
cat >"$work/session.exp" <<'EOF'
set timeout 10
lassign $argv host port password enable phase
log_user 1
proc step {send want} {
	if {$send ne ""} { send -- "$send\r" }
	expect {
		-ex $want {}
		timeout { puts "\nEXPECT TIMEOUT waiting for: $want"; exit 1 }
		eof { puts "\nEXPECT EOF waiting for: $want"; exit 1 }
	}
}
spawn telnet $host $port
step "" "Username: "
step "admin" "Password: "
if {$phase eq "wrong"} {
	step "not-the-password" "Access denied"
	exit 0
}
step $password "casalb> "
if {$phase eq "show"} {
	step "show vdpt" "records displayed"
	step "" "casalb> "
	step "show vcrt" "records displayed"
	step "" "casalb> "
	step "show casa wildcard" "255.255.255.255"
	step "" "casalb> "
	step "enable" "Password: "
	step $enable "casalb# "
	step "port add web 8080" "port 8080 added to service web"
	step "" "casalb# "
	step "show vipadcfg" "VIPA Service Manager"
	step "" "casalb# "
	step "sh vd" "records displayed"
	step "" "casalb# "
	step "show casa wildcard" "255.255.255.255"
	step "" "casalb# "
}
if {$phase eq "placed"} {
	step "show vdpt" "records displayed"
	step "" "casalb> "
	step "trace flow tcp 203.0.113.130 40000 203.0.113.10 8080" "verdict:"
	step "" "casalb> "
}
if {$phase eq "delete"} {
	step "enable" "Password: "
	step $enable "casalb# "
	step "port delete web 8080" "port 8080 deleted from service web"
	step "" "casalb# "
	step "show vipadcfg" "VIPA Service Manager"
	step "" "casalb# "
}
send "quit\r"
expect eof
exit 0
EOF

# console PHASE: run the dialogue from the console node; its transcript
# (without telnet's CR) is in $work/PHASE.log.
console()
{
	timeout 60 bash "$bed" exec "$node" expect -f "$work/session.exp" \
		"$host" "$port" "$password" "$enable" "$1" 2>&1 | tr -d '\r' >"$work/$1.log"
	return "${PIPESTATUS[0]}"
}

console show
rc=$?
check "login, displays, enable and port add (expect exit $rc)" '[ "$rc" -eq 0 ]'
# shellcheck disable=SC2034 # read by the check strings (eval)
log=$work/show.log
check "show vdpt lists port 80 on t1..t3" \
	'[ "$(grep -c "^203.0.113.10    00080 " "$log")" -ge 3 ]'
check "show casa wildcard lists VIP port 80" 'grep -q "203.0.113.10    255.255.255.255  80 " "$log"'
check "show vipadcfg lists port 8080 after the add" 'grep -q "203.0.113.10    08080 TCP" "$log"'
check "show vdpt lists port 8080 after the add" 'grep -q "^203.0.113.10    08080 " "$log"'
check "the wildcard of 8080 is advertised" 'grep -q "203.0.113.10    255.255.255.255  8080 " "$log"'
check "the change is logged by casalb" \
	'grep -q "console: session .*admin.*port 8080 added to service web" "$state/lb.log"'

# A server on t1's port 8080: its agent reports it ready (SERVICES was sent
# again with the new port), and a client's connection is placed there.
# (The test bed's teardown ends every process of the namespace.)
bash "$bed" exec t1 python3 -m http.server --bind 0.0.0.0 --directory "$state/www-t1" 8080 \
	>"$work/http8080.log" 2>&1 &
body=
for _ in $(seq 1 30); do
	body=$(timeout 5 bash "$bed" exec client curl -s --max-time 2 "http://$vip:8080/") || body=
	[ "$body" = t1 ] && break
	sleep 0.5
done
check "a connection to VIP:8080 is placed on t1 and answered (got \"$body\")" '[ "$body" = t1 ]'
check "t1's agent reported Rdy for 8080" 'grep -q "ready 203.0.113.10:8080 Rdy 1" "$state/agent-t1.log"'
console placed
rc=$?
check "show and trace after placement (expect exit $rc)" '[ "$rc" -eq 0 ]'
check "show vdpt: t1 took the 8080 connection" \
	'grep "^203.0.113.10    08080 " "$work/placed.log" | grep " t1 " | grep -v " 0000000000 " >/dev/null'
check "trace flow explains a new connection to 8080" \
	'grep -q "service: web, 203.0.113.10 port 8080" "$work/placed.log"'

# Console and metrics render the same snapshot: with no traffic in between,
# each VDPT row's TotalConn equals its casalb_target_connections_total.
metrics=$(timeout 10 bash "$bed" exec "$node" curl -s --max-time 5 "$(bed_status metrics)")
# vdpt_total PORT5 TARGET: TotalConn of that row in the placed transcript.
vdpt_total()
{
	awk -v p="$1" -v t="$2" '$1 == "203.0.113.10" && $2 == p && $8 == t { print $5 + 0; exit }' \
		"$work/placed.log"
}
# metric_total PORT TARGET: the series' value in the scrape.
metric_total()
{
	echo "$metrics" | grep '^casalb_target_connections_total{' | grep "port=\"$1\"" |
		grep "target=\"$2\"" | awk '{ print $2 + 0; exit }'
}
pairs=
same=1 # read in check's eval
for row in "00080 t1" "00080 t2" "00080 t3" "08080 t1"; do
	read -r p5 t <<<"$row"
	c=$(vdpt_total "$p5" "$t")
	m=$(metric_total "$((10#$p5))" "$t")
	pairs="$pairs $t:$((10#$p5))=${c:-none}/${m:-none}"
	# shellcheck disable=SC2034 # read in check's eval
	[ -n "$c" ] && [ -n "$m" ] && [ "$c" = "$m" ] || same=0
done
echo "TotalConn console/metrics:$pairs"
check "show vdpt's TotalConn equals casalb_target_connections_total on every row" '[ "$same" -eq 1 ]'

console delete
rc=$?
check "port delete (expect exit $rc)" '[ "$rc" -eq 0 ]'
check "show vipadcfg no longer lists 8080" \
	'! sed -n "/port 8080 deleted/,\$p" "$work/delete.log" | grep "08080 TCP" >/dev/null'

console wrong
rc=$?
check "a wrong password is refused (expect exit $rc)" '[ "$rc" -eq 0 ]'
if [ "$fail" -ne 0 ]; then
	for f in "$work"/*.log; do
		echo "---- $f"
		cat "$f"
	done
	tail -20 "$state/lb.log"
fi
exit "$fail"
