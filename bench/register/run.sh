#!/usr/bin/env bash
# Registration benchmark: edgepbx against Kamailio 5.6 on the same machine,
# in the same run, under the same SIPp load, everything on loopback.
#
# Each server gets N extensions. SIPp (tests/sipp/register_auth.xml) runs
# complete digest registrations (REGISTER -> 401 -> REGISTER with
# credentials -> 200), cycling through the N users, at each offered rate
# of RATES for CALLS registrations, straight at the server. Reported per
# server and rate:
#   - reg/s: completed registrations per second (the times SIPp received
#     the 200s, first to last);
#   - p50/p99 of the answer time of the authenticated REGISTER (-> 200)
#     and of the challenge (-> 401), in microseconds, as SIPp saw them:
#     from its first sending of the request to its receipt of the final
#     response, both timestamped by SIPp's short message trace;
#   - failed registrations.
# The last table line per rate gives edgepbx / Kamailio for reg/s and p50.
#
# Both servers challenge with MD5 only: Kamailio's registrar does, and
# Debian's SIPp 3.6.1 cannot answer a SHA-256 challenge. edgepbx offers
# SHA-256 and MD5 by default; here it runs with
# `[security] digest_algorithms = ["MD5"]`, its setting for such clients.
#
# Usage: bench/register/run.sh
# Environment (all optional):
#   USERS=100            extensions per server
#   CALLS=6000           registrations per rate step
#   RATES="500 1000 2000 4000 8000"  offered registrations per second
#   EDGEPBX_BIN=path     edgepbx binary to use instead of building one
#   KAMAILIO_CHILDREN=2  Kamailio UDP worker processes (edgepbx's tokio
#                        runtime uses one worker per core)
#   KEEP=1               keep the work directory
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)

USERS=${USERS:-100}
CALLS=${CALLS:-6000}
RATES=${RATES:-"500 1000 2000 4000 8000"}
KAMAILIO_CHILDREN=${KAMAILIO_CHILDREN:-2}
DOMAIN=bench.test
TENANT=BENCH

# shellcheck source=../common.sh
. "$ROOT/bench/common.sh"
require sipp kamailio md5sum ss awk sort
kamailio -v | grep -q '^version: kamailio 5\.6' || echo "note: not Kamailio 5.6: $(kamailio -v | head -1)" >&2

select_edgepbx

make_workdir register

# ---- users -------------------------------------------------------------
echo "preparing $USERS users..." >&2
CSV=$WORK/users.csv
echo SEQUENTIAL > "$CSV"
KDB=$WORK/kamailio-db
mkdir -p "$KDB" "$WORK/edgepbx-data"
printf 'table_name(string) table_version(int)\ncred:2\n' > "$KDB/version"
echo 'key_name(string) key_type(int) value_type(int) key_value(string) expires(int)' > "$KDB/cred"
export EDGEPBX_LOG=warn
edgepbx_admin() { "$EDGEPBX_BIN" "$@" --data "$WORK/edgepbx-data" >/dev/null; }
edgepbx_admin tenant add "$TENANT" --domain "$DOMAIN"
start=$(date +%s)
for i in $(seq 1 "$USERS"); do
    number=$((1000 + i))
    password="pw-$number-Bench"
    edgepbx_admin ext add "$TENANT" "$number" --name "Bench $number" --password "$password"
    ha1=$(printf '%s' "$number:$DOMAIN:$password" | md5sum | cut -d' ' -f1)
    echo "$number@$DOMAIN:0:0:$ha1:0" >> "$KDB/cred"
    echo "$DOMAIN;$number;$password" >> "$CSV"
done
echo "users ready in $(( $(date +%s) - start )) s" >&2

# ---- servers -----------------------------------------------------------
cat > "$WORK/edgepbx.toml" <<EOF
[registrar]
# Kamailio does no reachability pings either.
keepalive_interval_secs = 0
[security]
# Kamailio challenges with MD5 only, and SIPp 3.6.1 answers nothing else.
digest_algorithms = ["MD5"]
EOF
start_edgepbx "$WORK/edgepbx.toml" "$WORK/edgepbx-data" "$WORK/edgepbx.out" "$WORK/edgepbx.log"
EDGEPBX_ADDR=$STARTED_ADDR
PIDS+=("$LAST_PID")
EDGEPBX_PID=$LAST_PID

KAM_PORT=$(free_udp_port)
KAM_ADDR=127.0.0.1:$KAM_PORT
kamailio -f "$ROOT/bench/register/kamailio.cfg" -l "udp:$KAM_ADDR" \
    -A "DBURL=\"text://$KDB\"" -A "CHILDREN=$KAMAILIO_CHILDREN" \
    -P "$WORK/kamailio.pid" -E -DD -m 256 -M 16 >"$WORK/kamailio.log" 2>&1 &
PIDS+=($!)
sleep 1
grep -q 'ERROR' "$WORK/kamailio.log" && die "kamailio: $(grep ERROR "$WORK/kamailio.log" | head -3)"

# ---- load --------------------------------------------------------------

# run NAME ADDR RATE CALLS -> prints "regs_per_s p50_200 p99_200 p50_401 p99_401 failed"
run_step() {
    local name=$1 addr=$2 rate=$3 calls=$4
    local dir=$WORK/$name-$rate
    mkdir -p "$dir"
    # -buff_size: SIPp's socket otherwise keeps the kernel's default
    # buffer (208 KiB here), which a server's burst of answers overflows
    # while SIPp itself is busy at 8000 reg/s; the lost answers then cost
    # 500 ms retransmissions that measure the client, not the server.
    (cd "$dir" && sipp "$addr" -sf "$ROOT/tests/sipp/register_auth.xml" \
        -inf "$CSV" -key expires 3600 -auth_uri "$DOMAIN" \
        -m "$calls" -r "$rate" -l $((rate * 2 + 100)) \
        -i 127.0.0.1 -p "$(free_udp_port)" -t u1 -nostdin -buff_size 4194304 \
        -recv_timeout 5000 -timeout 300s \
        -trace_stat -stf stats.csv -fd 1 -trace_shortmsg \
        >screen.log 2>&1) || true
    # One line per message SIPp sent (S) or received (R), tab-separated:
    # date, time, epoch seconds with microseconds, S/R, Call-ID, CSeq, start line.
    local trace
    trace=$(ls "$dir"/register_auth_*_shortmessages.log 2>/dev/null | head -1)
    [ -n "$trace" ] || die "SIPp wrote no message trace for $name at $rate/s: $(tail -3 "$dir/screen.log")"
    # "<status> <micros>" per answered request: first send to the first
    # final response (retransmissions keep the first send time).
    awk -F'\t' '
        $4 == "S" { key = $5 " " $6; if (!(key in sent)) sent[key] = $3 }
        $4 == "R" { key = $5 " " $6; split($7, start, " "); status = start[2]
                    if (status >= 200 && (key in sent) && !(key in done)) {
                        done[key] = 1; printf "%s %.0f %s\n", status, ($3 - sent[key]) * 1e6, $3 } }
    ' "$trace" > "$dir/answers.txt"
    local regs_per_s failed
    regs_per_s=$(awk '$1 == 200 {if (n == 0) first = $3; last = $3; n++}
        END {if (n > 1 && last > first) printf "%.0f", (n - 1) / (last - first); else print "-"}' "$dir/answers.txt")
    failed=$(awk -F';' 'NR==1 {for (i=1;i<=NF;i++) if ($i=="FailedCall(C)") c=i} NR>1 && c {v=$c} END {print v+0}' "$dir/stats.csv" 2>/dev/null || echo "?")
    local p50_200 p99_200 p50_401 p99_401
    p50_200=$(awk '$1 == 200 {print $2}' "$dir/answers.txt" | percentile 50)
    p99_200=$(awk '$1 == 200 {print $2}' "$dir/answers.txt" | percentile 99)
    p50_401=$(awk '$1 == 401 {print $2}' "$dir/answers.txt" | percentile 50)
    p99_401=$(awk '$1 == 401 {print $2}' "$dir/answers.txt" | percentile 99)
    echo "$regs_per_s $p50_200 $p99_200 $p50_401 $p99_401 $failed"
}

# Warm-up: every user registered once on both servers (not reported).
echo "warm-up..." >&2
run_step edgepbx-warmup "$EDGEPBX_ADDR" 200 "$USERS" >/dev/null
run_step kamailio-warmup "$KAM_ADDR" 200 "$USERS" >/dev/null

ROWS=()
for rate in $RATES; do
    echo "rate $rate/s: edgepbx..." >&2
    read -r e_rps e_p50 e_p99 e_c50 e_c99 e_fail < <(run_step edgepbx "$EDGEPBX_ADDR" "$rate" "$CALLS")
    kill -0 "$EDGEPBX_PID" 2>/dev/null || die "edgepbx died at rate $rate: $(tail -5 "$WORK/edgepbx.log")"
    echo "rate $rate/s: kamailio..." >&2
    read -r k_rps k_p50 k_p99 k_c50 k_c99 k_fail < <(run_step kamailio "$KAM_ADDR" "$rate" "$CALLS")
    ratio_rps=$(awk -v a="$e_rps" -v b="$k_rps" 'BEGIN {if (b+0>0 && a+0>0) printf "%.2f", a/b; else print "-"}')
    ratio_p50=$(awk -v a="$e_p50" -v b="$k_p50" 'BEGIN {if (b+0>0 && a+0>0) printf "%.2f", a/b; else print "-"}')
    ROWS+=("| $rate | edgepbx | $e_rps | $e_p50 | $e_p99 | $e_c50 | $e_c99 | $e_fail |"
           "| $rate | Kamailio | $k_rps | $k_p50 | $k_p99 | $k_c50 | $k_c99 | $k_fail |"
           "| $rate | edgepbx / Kamailio | $ratio_rps | $ratio_p50 | | | | |")
done

# ---- report ------------------------------------------------------------
CPU=$(cpu_model)
echo
echo "### Registration benchmark ($(date -u +%Y-%m-%d))"
echo
echo "$USERS extensions, $CALLS digest registrations per step (REGISTER, 401, REGISTER with"
echo "credentials, 200; MD5 only on both servers), SIPp $(sipp -v 2>&1 | sed -n 's/.*SIPp v\([0-9.]*[0-9]\).*/\1/p' | head -1) over UDP on loopback,"
echo "straight at each server; $(nproc) cores ($CPU), both servers and SIPp on the same machine."
echo "$BUILD_NOTE; Kamailio $(kamailio -v | awk '/^version:/ {print $3; exit}') with $KAMAILIO_CHILDREN UDP workers,"
echo "usrloc db_mode=0, credentials as HA1 in htable (bench/register/kamailio.cfg)."
echo "Answer times are SIPp's (first send to final response, from its message trace), in microseconds."
echo
echo "| offered reg/s | server | reg/s | p50 200 (µs) | p99 200 (µs) | p50 401 (µs) | p99 401 (µs) | failed |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
