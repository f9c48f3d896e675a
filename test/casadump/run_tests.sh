#!/usr/bin/env bash
# casadump tests (meson suite 'casa').
#
# usage: run_tests.sh CASADUMP SOURCE_ROOT
#        UPDATE_GOLDEN=1 run_tests.sh ...   rewrites test/casadump/expected/ (review the diff!)
#
# Golden output: every V vector (detail and -q) and test/data/redbook.pcap must print
# exactly the files in expected/. Negative vectors and bad input must give exit status 1
# and exactly one line on stderr naming the problem; nothing may crash. Extra captures
# (link types, GRE options, fragments, truncation, replays) are written here with bash
# alone, in classic pcap format, so the test needs no capture tools.
set -u

CASADUMP=$1
SRC=$2
DATA=$SRC/test/data/casa
EXPECTED=$SRC/test/casadump/expected
TMP=$(mktemp -d "${TMPDIR:-/tmp}/casadump-test.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
export TZ=UTC LC_ALL=C

passed=0
failed=0
rc=0

ok() { passed=$((passed + 1)); echo "ok   $1"; }
not_ok() {
	failed=$((failed + 1))
	echo "FAIL $1: $2"
	sed 's/^/     stderr: /' "$TMP/err" 2>/dev/null | head -5
}

vec() { sed -n 2p "$DATA/$1.hex"; }

# run ARGS...: casadump's stdout, stderr and status into $TMP/out, $TMP/err, $rc.
run() { "$CASADUMP" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null; rc=$?; }
run_stdin() { local in=$1; shift; "$CASADUMP" "$@" <"$in" >"$TMP/out" 2>"$TMP/err"; rc=$?; }

stderr_lines() { wc -l <"$TMP/err" | tr -d ' '; }

# check_golden NAME FILE: status 0, nothing on stderr, stdout equal to expected/FILE.
check_golden() {
	local name=$1 file=$EXPECTED/$2
	if [ "${UPDATE_GOLDEN:-}" = 1 ] && [ "$rc" = 0 ]; then
		cp "$TMP/out" "$file"
	fi
	if [ "$rc" != 0 ]; then
		not_ok "$name" "exit status $rc, expected 0"
	elif [ -s "$TMP/err" ]; then
		not_ok "$name" "unexpected stderr"
	elif ! cmp -s "$TMP/out" "$file"; then
		not_ok "$name" "stdout differs from ${file#"$SRC"/}"
		diff -u "$file" "$TMP/out" | head -20
	else
		ok "$name"
	fi
}

# check_error NAME TEXT: status 1 and exactly one stderr line containing TEXT.
check_error() {
	local name=$1 text=$2
	if [ "$rc" != 1 ]; then
		not_ok "$name" "exit status $rc, expected 1"
	elif [ "$(stderr_lines)" != 1 ]; then
		not_ok "$name" "$(stderr_lines) stderr lines, expected 1"
	elif ! grep -qF -- "$text" "$TMP/err"; then
		not_ok "$name" "stderr lacks '$text'"
	else
		ok "$name"
	fi
}

# check_ok NAME [TEXT]: status 0, empty stderr, stdout containing TEXT (if given).
check_ok() {
	local name=$1 text=${2:-}
	if [ "$rc" != 0 ]; then
		not_ok "$name" "exit status $rc, expected 0"
	elif [ -s "$TMP/err" ]; then
		not_ok "$name" "unexpected stderr"
	elif [ -n "$text" ] && ! grep -qF -- "$text" "$TMP/out"; then
		not_ok "$name" "stdout lacks '$text'"
		sed 's/^/     stdout: /' "$TMP/out" | head -5
	else
		ok "$name"
	fi
}

# check_stdout NAME TEXT: stdout contains TEXT (after a check_error).
check_stdout() {
	if grep -qF -- "$2" "$TMP/out"; then ok "$1"; else not_ok "$1" "stdout lacks '$2'"; fi
}

# check_no_stdout NAME: nothing printed.
check_no_stdout() {
	if [ -s "$TMP/out" ]; then not_ok "$1" "stdout not empty"; else ok "$1"; fi
}

# check_usage NAME [TEXT]: status 2 (usage error), TEXT on stderr if given.
check_usage() {
	if [ "$rc" != 2 ]; then
		not_ok "$1" "exit status $rc, expected 2"
	elif [ -n "${2:-}" ] && ! grep -qF -- "$2" "$TMP/err"; then
		not_ok "$1" "stderr lacks '$2'"
	else
		ok "$1"
	fi
}

# ---- capture files, byte by byte ----------------------------------------------

# shellcheck disable=SC2059 # the format is the data: \xHH escapes only
hex2bin() { printf "$(sed 's/[^0-9a-fA-F]//g; s/../\\x&/g' <<<"$1")"; }
le32() { printf '%02x%02x%02x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }

# write_pcap FILE LINKTYPE RECORD...: a classic little-endian microsecond pcap. A record
# is hex, or HEX:CAPLEN to keep only CAPLEN bytes (a short snap length). Packet i is
# stamped 2001-07-16 17:54:26 plus i microseconds.
write_pcap() {
	local file=$1 link=$2 rec hex cap i=0 out
	shift 2
	out="d4c3b2a1 02000400 00000000 00000000 ffff0000 $(le32 "$link")"
	for rec in "$@"; do
		hex=${rec%%:*}
		hex=${hex// /}
		cap=$((${#hex} / 2))
		[ "$rec" != "${rec#*:}" ] && cap=${rec#*:}
		out+=" $(le32 995306066) $(le32 $i) $(le32 "$cap") $(le32 $((${#hex} / 2)))"
		out+=" ${hex:0:$((cap * 2))}"
		i=$((i + 1))
	done
	hex2bin "$out" >"$file"
}

ETH="0a00000000020a0000000001"     # dummy destination and source MAC
F1=$(vec F1)
F2=$(vec F2)
F3=$(vec F3)
F3_Q='9.67.156.73:1637 > 1.1.1.2:1637: CASA FIXED, length 52: 9.67.156.104:2771 > 9.67.157.17:23 TCP fwd 9.67.156.74 ttl 900, interest 9.67.156.73:1637 0x0002 SYN'

# udp_datagram CASA_HEX [PORT]: 1.1.1.2 -> 9.67.156.73, UDP PORT (default 1637) both ways.
udp_datagram() {
	local casa=$1 port=${2:-1637} n=$((${#1} / 2))
	printf '4500%04x00010000ff110000010101020943 9c49%04x%04x%04x0000%s' \
		$((28 + n)) "$port" "$port" $((8 + n)) "$casa" | tr -d ' '
}

# ---- 1. golden output --------------------------------------------------------------

for v in V1 V2 V3 V4 V5 V6 V7 V8 V9 V10 V11 V12 V13 V14 V15 N12 N26 N27; do
	run "$(vec $v)"
	check_golden "golden $v" "$v.txt"
done

: >"$TMP/quiet"
for v in V1 V2 V3 V4 V5 V6 V7 V8 V9 V10 V11 V12 V13 V14 V15; do
	"$CASADUMP" -q "$(vec $v)" >>"$TMP/quiet" 2>&1
done
cp "$TMP/quiet" "$TMP/out"
: >"$TMP/err"
rc=0
check_golden "golden -q V1..V15" "quiet.txt"

run -r "$SRC/test/data/redbook.pcap"
check_golden "golden redbook.pcap" "redbook.txt"
run -q -r "$SRC/test/data/redbook.pcap"
check_golden "golden redbook.pcap -q" "redbook-q.txt"
run -q -X -r "$SRC/test/data/redbook.pcap"
check_golden "golden redbook.pcap -q -X" "redbook-qX.txt"

# ---- 2. the negative vectors (spec 10.4) ------------------------------------------

for f in "$DATA"/N*.hex; do
	name=$(basename "$f" .hex)
	expect=$(sed -n '1s/^# [^:]*: expect //p' "$f")
	run "$(vec "$name")"
	case $expect in
	CASA_E_*) check_error "$name $expect" "($expect) at offset" ;;
	"OK (skipped 0)") check_ok "$name $expect" ;;
	"OK (skipped 1)") check_ok "$name $expect" "skipped 1 unknown TLV" ;;
	"OK (skipped "*)
		n=${expect#OK (skipped }
		check_ok "$name $expect" "skipped ${n%)} unknown TLVs"
		;;
	*) not_ok "$name" "cannot read the expectation '$expect'" ;;
	esac
done
run "$(vec N5)"
check_error "N5 names message and offset" "casadump: message 1: TLV truncated (CASA_E_TLV_TRUNC) at offset 50"
check_no_stdout "N5 prints nothing on stdout"

# ---- 3. authentication (-k) ------------------------------------------------------

printf 'casalb-test-key\n' >"$TMP/key"
printf 'casalb-test-key' >"$TMP/key-nonl"
printf 'casalb-test-key\r\n' >"$TMP/key-crlf"
: >"$TMP/key-empty"

run -k "$TMP/key" "$(vec V12)"
check_ok "V12 verifies (sha256)" "Verification: verified"
run -k "$TMP/key-nonl" -a sha256 -i 1 "$(vec V12)"
check_ok "key file without newline" "Verification: verified"
run -k "$TMP/key-crlf" "$(vec V14)"
check_ok "V14 verifies, key file with CRLF" "Verification: verified"
run -k "$TMP/key" -a md5 "$(vec V13)"
check_ok "V13 verifies (md5)" "Verification: verified"
run -q -k "$TMP/key" "$(vec V12)"
check_ok "-q shows verified" "auth HMAC-SHA256 key 1 seq 1 verified"
run -k "$TMP/key" "$(vec N29)"
check_error "N29 bad digest" "(CASA_E_AUTH_BAD) at offset 52"
check_stdout "N29 still printed" "FAILED: bad digest (CASA_E_AUTH_BAD)"
run -k "$TMP/key" "$(vec V3)"
check_error "no AUTH with a key" "(CASA_E_AUTH_REQUIRED)"
run -k "$TMP/key" -i 2 "$(vec V12)"
check_error "wrong key id" "(CASA_E_AUTH_KEYID)"
run -k "$TMP/key" -a md5 "$(vec V12)"
check_error "wrong algorithm" "(CASA_E_AUTH_ALG)"
v13=$(vec V13)
alg3=${v13:0:112}03${v13:114}
run "$alg3"
check_ok "algorithm 3 decodes without a key" "Algorithm: unknown (3)"
run -k "$TMP/key" -a md5 "$alg3"
check_error "algorithm 3 refused with a key" "(CASA_E_AUTH_ALG)"
run -k "$TMP/key" -t 120 "$(vec V12)"
check_error "-t: a 2001 timestamp is stale now" "(CASA_E_AUTH_STALE)"
write_pcap "$TMP/replay.pcap" 101 "$(udp_datagram "$(vec V12)")" "$(udp_datagram "$(vec V12)")"
run -q -k "$TMP/key" -t 120 -r "$TMP/replay.pcap"
check_error "the same V12 twice: replay" "casadump: packet 2: replayed sequence number (CASA_E_AUTH_REPLAY)"
check_stdout "replay: first copy verified" "seq 1 verified"
run -k "$TMP/key-empty" "$(vec V12)"
check_error "empty key file" "1..64 octets on the first line"
run -k "$TMP/no-such-key" "$(vec V12)"
check_error "missing key file" "No such file"

# ---- 4. hex input forms ----------------------------------------------------------

# The wildcard exactly as the seed prints it (trace 238), character column and all.
cat >"$TMP/trace238" <<'EOF'
000000 00010101 81010024 00000006 00000000 !....a.....$..
000010 00000000 09439D11 FFFFFFFF 00000050 !.....& .....C.P!
000020 00000000 003C0000 05050008 05040000 !.....<..!
000030 85040014 09439C49 06658100 81000000 !e.....a.a... ..C..!
000040 00000000             !....      ....  !
EOF
run_stdin "$TMP/trace238"
check_golden "seed trace layout on stdin" "V1.txt"
run 0x00010102 0x8102001C 00020006 09439c68 "09 43 9D 11" 0AD30017 09439C4A 03840000 \
	85040014 09439C49 06650002 00020000 00000000
check_golden "0x, mixed case, spaces, many arguments" "V3.txt"
run_stdin "$DATA/V3.hex"
check_golden "vector file on stdin" "V3.txt"
run_stdin "$DATA/V3.hex" -
check_golden "'-' reads stdin" "V3.txt"
run -x "$(vec V3)"
check_golden "-x" "V3.txt"
"$CASADUMP" -q -X "$(vec V12)" | tail -n +2 >"$TMP/dumped"
run_stdin "$TMP/dumped" -q
if [ "$rc" = 0 ] && [ "$(cat "$TMP/out")" = "$("$CASADUMP" -q "$(vec V12)")" ]; then
	ok "-X output reads back"
else
	not_ok "-X output reads back" "status $rc"
fi
run -q "$F3"
check_ok "IPv4 datagram in hex (F3)" "$F3_Q"
run -q "$F2"
check_ok "GRE datagram in hex (F2)" "1.1.1.2:1637 > 9.67.156.73:1637 (GRE 9.67.157.136 > 9.67.156.1): CASA IP_PACKET, length 56"
run -q "${F2:120}"
check_error "a datagram without CASA" "IPv4 datagram carries no CASA (UDP port 1637)"

# ---- 5. garbage -----------------------------------------------------------------

run 0001010
check_error "odd number of hex digits" "odd number of hex digits: unpaired '0' at offset 6"
run 0001zz01
check_error "non-hex character" "bad hex character 'z' at offset 4"
run "$(vec V3)" ":"
check_error "stray colon" "bad hex character ':' at offset 105"
printf '00010102\n8102001C 0002000G\n' >"$TMP/badline"
run_stdin "$TMP/badline"
check_error "bad hex on stdin: line and column" "bad hex character 'G' at line 2, column 17 (offset 25)"
printf '0001\0000102' >"$TMP/nul"
run_stdin "$TMP/nul"
check_error "NUL byte on stdin" "bad hex character '\\x00' at line 1, column 5"
run_stdin /dev/null
check_error "empty stdin" "(CASA_E_SHORT) at offset 0"
run ""
check_error "empty argument" "(CASA_E_SHORT) at offset 0"
head -c 300000 /dev/zero | tr '\0' '0' >"$TMP/zeros"
run_stdin "$TMP/zeros"
check_error "more than 65535 bytes of hex" "more than 65535 bytes of hex"
run -m 60 "$(vec V1)"
check_error "-m 60 against a 68-byte wildcard" "(CASA_E_TOO_BIG) at offset 60"
run -r "$TMP/no-such.pcap"
check_error "missing capture file" "no-such.pcap"
: >"$TMP/empty.pcap"
run -r "$TMP/empty.pcap"
check_error "empty capture file" "empty.pcap"
run -r "$SRC/test/casadump/run_tests.sh"
check_error "a script as a capture file" "run_tests.sh"
head -c 4000 "$CASADUMP" >"$TMP/elf.pcap"
run -r "$TMP/elf.pcap"
check_error "an executable as a capture file" "elf.pcap"
head -c 100 "$SRC/test/data/redbook.pcap" >"$TMP/cut1.pcap"
run -r "$TMP/cut1.pcap"
check_error "capture cut inside packet 1" "truncated"
head -c 300 "$SRC/test/data/redbook.pcap" >"$TMP/cut3.pcap"
run -q -r "$TMP/cut3.pcap"
check_error "capture cut inside packet 3" "truncated"
check_stdout "packets before the cut are printed" "CASA IP_PACKET, length 56"
hex2bin "d4c3b2a1 02000400 00000000 00000000 ffff0000 69000000" >"$TMP/wifi.pcap"
run -r "$TMP/wifi.pcap"
check_error "unsupported link type" "link type IEEE802_11 (105) not supported"
hex2bin "d4c3b2a1 02000400 00000000 00000000 ffff0000 93000000" >"$TMP/user0.pcap"
run -r "$TMP/user0.pcap"
check_error "unsupported link type without a name" "link type 147 not supported"

# ---- 6. link layers, IP, GRE, UDP ----------------------------------------------------

write_pcap "$TMP/raw.pcap" 101 "$F3"
run -q -r "$TMP/raw.pcap"
check_ok "raw IP (LINKTYPE_RAW)" "$F3_Q"
write_pcap "$TMP/ipv4.pcap" 228 "$F3"
run -q -r "$TMP/ipv4.pcap"
check_ok "LINKTYPE_IPV4" "$F3_Q"
write_pcap "$TMP/sll.pcap" 113 "0000 0001 0006 0a0000000001 0000 0800 $F3"
run -q -r "$TMP/sll.pcap"
check_ok "Linux cooked v1" "$F3_Q"
write_pcap "$TMP/sll2.pcap" 276 "0800 0000 00000002 0001 00 06 0a0000000001 0000 $F3"
run -q -r "$TMP/sll2.pcap"
check_ok "Linux cooked v2" "$F3_Q"
write_pcap "$TMP/vlan.pcap" 1 "$ETH 8100 0064 0800 $F3"
run -q -r "$TMP/vlan.pcap"
check_ok "Ethernet with an 802.1Q tag" "$F3_Q"
write_pcap "$TMP/fcs.pcap" 1 "$ETH 0800 $F3 deadbeef"
run -q -r "$TMP/fcs.pcap"
check_ok "frame trailer is not CASA data" "$F3_Q"
# F3's 52-byte message in a 60-byte minimum frame would need no padding, so pad an
# N17-sized delete (32 bytes) the same way an Ethernet driver would: to 60 bytes.
small=$(udp_datagram "$(vec N17)")
write_pcap "$TMP/pad.pcap" 1 "$ETH 0800 $small 0000000000000000"
run -q -r "$TMP/pad.pcap"
check_ok "Ethernet padding ignored" "CASA FIXED, length 32:"
write_pcap "$TMP/ipv6.pcap" 1 "$ETH 86dd 6000000000081140 $F3"
run -q -r "$TMP/ipv6.pcap"
check_ok "IPv6 is not looked at"
check_no_stdout "IPv6 prints nothing"
gre_cks="45000074b9ea0000fe2f000009439d8809439c01 b0000800 00000000 0000002a 00000007 $F3"
write_pcap "$TMP/gre.pcap" 101 "$gre_cks"
run -q -r "$TMP/gre.pcap"
check_ok "GRE with checksum, key and sequence" "(GRE 9.67.157.136 > 9.67.156.1): CASA FIXED, length 52"
write_pcap "$TMP/gre-ver1.pcap" 101 "45000068b9ea0000fe2f000009439d8809439c01 00010800 $F3"
run -q -r "$TMP/gre-ver1.pcap"
check_ok "GRE version 1 is not followed"
check_no_stdout "GRE version 1 prints nothing"
frag=${F3:0:12}00b9${F3:16}
write_pcap "$TMP/frag.pcap" 101 "$frag" "$F1"
run -q -r "$TMP/frag.pcap"
check_ok "non-first fragment noted, later packets decoded" "9.67.156.73 > 1.1.1.2: IP UDP fragment, offset 1480: skipped (not reassembled)"
check_stdout "  ... and the packet after it" "CASA WILDCARD, length 68"
first=${F3:0:12}2000${F3:16}
write_pcap "$TMP/first-frag.pcap" 101 "$first"
run -q -r "$TMP/first-frag.pcap"
check_ok "first fragment noted" "IP UDP fragment, offset 0, more fragments: skipped"
write_pcap "$TMP/ports.pcap" 101 "$(udp_datagram "$(vec V3)" 1638)"
run -q -r "$TMP/ports.pcap"
check_ok "port 1638 ignored by default"
check_no_stdout "port 1638 prints nothing"
run -q -p 1638 -r "$TMP/ports.pcap"
check_ok "-p 1638" "1.1.1.2:1638 > 9.67.156.73:1638: CASA FIXED, length 52"
write_pcap "$TMP/snap.pcap" 101 "$F3:60" "$F1"
run -q -r "$TMP/snap.pcap"
check_error "short snap length" "casadump: packet 1: capture truncated: 32 of 52 CASA bytes captured"
check_stdout "  ... and the packet after it" "CASA WILDCARD, length 68"
badlen=${F3:0:48}0004${F3:52}
write_pcap "$TMP/udplen.pcap" 101 "$badlen"
run -r "$TMP/udplen.pcap"
check_error "UDP length below 8" "casadump: packet 1: bad UDP length 4"
badlen=${F3:0:48}0100${F3:52}
write_pcap "$TMP/udplen2.pcap" 101 "$badlen"
run -r "$TMP/udplen2.pcap"
check_error "UDP length beyond the IP packet" "bad UDP length 256 (IP payload 60 bytes)"
write_pcap "$TMP/mixed.pcap" 1 "$ETH 0800 $F1" "$ETH 0800 $(udp_datagram "$(vec N8)")" \
	"$ETH 0800 $(udp_datagram "$(vec N20)")" "$ETH 0800 $F3"
run -q -r "$TMP/mixed.pcap"
if [ "$rc" = 1 ] && [ "$(stderr_lines)" = 2 ] && grep -qF "packet 2: TLV truncated (CASA_E_TLV_TRUNC) at offset 6" "$TMP/err" &&
	grep -qF "packet 3: non-zero TLV padding (CASA_E_PAD) at offset 49" "$TMP/err" &&
	[ "$(wc -l <"$TMP/out")" = 2 ]; then
	ok "bad packets among good ones: one line each, exit 1"
else
	not_ok "bad packets among good ones" "status $rc, $(stderr_lines) stderr lines"
fi
# Nanosecond pcap: libpcap scales to microseconds.
hex2bin "4d3cb2a1 02000400 00000000 00000000 ffff0000 65000000 $(le32 995306066) $(le32 610488123) $(le32 80) $(le32 80) $F3" >"$TMP/nsec.pcap"
run -q -r "$TMP/nsec.pcap"
check_ok "nanosecond pcap" "2001-07-16 17:54:26.610488 $F3_Q"
if command -v text2pcap >/dev/null; then
	sed -n 2p "$DATA/F3.hex" | fold -w32 | awk '{ o = sprintf("%06x", (NR - 1) * 16); gsub(/../, "& "); print o " " $0 }' |
		text2pcap -q -F pcapng -l 101 - "$TMP/f3.pcapng" 2>/dev/null
	run -q -r "$TMP/f3.pcapng"
	check_ok "pcapng" "$F3_Q"
else
	echo "skip pcapng (no text2pcap)"
fi

# ---- 7. options -------------------------------------------------------------------

run -h
check_ok "-h" "usage: casadump"
run -Z
check_usage "unknown option" "unknown option -Z"
run -r
check_usage "-r without a file" "option -r needs an argument"
run -m 3 "$(vec V3)"
check_usage "-m 3" "-m: '3' is not 4..65507"
run -p 0 -r "$SRC/test/data/redbook.pcap"
check_usage "-p 0" "-p: '0' is not a port"
run -i 256 -k "$TMP/key" "$(vec V12)"
check_usage "-i 256" "-i: key id '256'"
run -r "$SRC/test/data/redbook.pcap" "$(vec V3)"
check_usage "-r with hex" "cannot be combined with -r"
run -t 60 "$(vec V3)"
check_usage "-t without -k" "-t needs -k"
run -k "$TMP/key" -a sha1 "$(vec V3)"
check_usage "-a sha1" "unknown algorithm 'sha1'"
run -m 65507 -q "$(vec V3)"
check_ok "-m 65507" "CASA FIXED, length 52"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
