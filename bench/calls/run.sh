#!/usr/bin/env bash
# Call benchmark: calls per second (INVITE with proxy authentication ->
# 180 -> 200 -> ACK -> BYE -> 200) through edgepbx and through Kamailio 5.6
# as a stateful proxy, on the same machine, in the same run, under the same
# SIPp load; everything on loopback.
#
# Each server knows a caller (1001) and a callee (2001). The callee is one
# SIPp process (bench/calls/answer.xml) that registered from its own port
# first and answers every INVITE at once. The caller is SIPp running
# tests/sipp/call.xml with no talk time, at each offered rate of RATES for
# CALLS calls. Reported per server and rate:
#   - calls/s: completed calls per second (SIPp's per-call completion
#     times, first to last);
#   - p50/p99 INVITE -> 180: from the authenticated INVITE to the 180, as
#     SIPp measures it (whole milliseconds);
#   - failed calls.
# Three servers: edgepbx anchoring media (what it does by default: each
# call gets four relay ports and a relay task), edgepbx with
# media.direct_same_network (all parties are on 127.0.0.1, so no relay:
# signalling alone), and Kamailio (signalling alone, as a proxy: no second
# dialog, no description rewriting, no policy, no call record).
#
# Usage: bench/calls/run.sh
# Environment (all optional):
#   CALLS=3000            calls per rate step
#   RATES="100 200 400 800"  offered calls per second (BENCHMARKS.md used 200 400 800 1200)
#   EDGEPBX_BIN=path      edgepbx binary to use instead of building one
#   KAMAILIO_CHILDREN=2   Kamailio UDP worker processes
#   KEEP=1                keep the work directory
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
# shellcheck source=../common.sh
. "$ROOT/bench/common.sh"
require sipp kamailio md5sum ss awk sort

CALLS=${CALLS:-3000}
RATES=${RATES:-"100 200 400 800"}
KAMAILIO_CHILDREN=${KAMAILIO_CHILDREN:-2}
select_edgepbx
make_workdir calls
# shellcheck source=lib.sh
. "$ROOT/bench/calls/lib.sh"
export EDGEPBX_LOG=warn

# ---- edgepbx (two installations: anchored media, direct media) ----------
MEDIA='[media]
port_min = 20000
port_max = 59999'
start_bench_edgepbx edgepbx "$MEDIA"
EDGEPBX_ADDR=$STARTED_ADDR
start_bench_edgepbx edgepbx-direct "$MEDIA
direct_same_network = true"
DIRECT_ADDR=$STARTED_ADDR

# ---- Kamailio -------------------------------------------------------------
KDB=$WORK/kamailio-db
mkdir -p "$KDB"
printf 'table_name(string) table_version(int)\ncred:2\n' > "$KDB/version"
echo 'key_name(string) key_type(int) value_type(int) key_value(string) expires(int)' > "$KDB/cred"
for number in 1001 2001; do
    ha1=$(printf '%s' "$number:$DOMAIN:pw-$number-Bench" | md5sum | cut -d' ' -f1)
    echo "$number@$DOMAIN:0:0:$ha1:0" >> "$KDB/cred"
done
KAM_ADDR=127.0.0.1:$(free_udp_port)
kamailio -f "$ROOT/bench/calls/kamailio.cfg" -l "udp:$KAM_ADDR" \
    -A "DBURL=\"text://$KDB\"" -A "CHILDREN=$KAMAILIO_CHILDREN" \
    -P "$WORK/kamailio.pid" -E -DD -m 256 -M 16 >"$WORK/kamailio.log" 2>&1 &
PIDS+=($!)
sleep 1
grep -q 'ERROR' "$WORK/kamailio.log" && die "kamailio: $(grep ERROR "$WORK/kamailio.log" | head -3)"

# ---- callees: register from a port, then answer on it ---------------------
start_callee edgepbx "$EDGEPBX_ADDR"
start_callee edgepbx-direct "$DIRECT_ADDR"
start_callee kamailio "$KAM_ADDR"

# run_step NAME ADDR RATE CALLS -> "calls_per_s p50_ms p99_ms failed"
run_step() {
    local name=$1 addr=$2 rate=$3 calls=$4 dir=$WORK/$1-$3
    mkdir -p "$dir"
    (cd "$dir" && sipp "$addr" -sf "$ROOT/tests/sipp/call.xml" -s 2001 \
        -key domain "$DOMAIN" -key user 1001 -key password pw-1001-Bench \
        -auth_uri "2001@$DOMAIN" -d 0 \
        -m "$calls" -r "$rate" -l $((rate * 4 + 100)) \
        -i 127.0.0.1 -p "$(free_udp_port)" -t u1 -nostdin \
        -recv_timeout 5000 -timeout 300s \
        -trace_stat -stf stats.csv -fd 1 -trace_rtt -rtt_freq 1 \
        >screen.log 2>&1) || true
    local rtt calls_per_s="-" p50="-" p99="-"
    rtt=$(ls "$dir"/call_*_rtt.csv 2>/dev/null | head -1)
    if [ -n "$rtt" ]; then
        calls_per_s=$(tail -n +2 "$rtt" | awk -F';' 'NR==1{first=$1} {last=$1; n++} END {if (n>1 && last>first) printf "%.0f", (n-1)*1000/(last-first); else print "-"}')
        p50=$(tail -n +2 "$rtt" | awk -F';' '{print $2}' | percentile 50)
        p99=$(tail -n +2 "$rtt" | awk -F';' '{print $2}' | percentile 99)
    fi
    local failed
    failed=$(awk -F';' 'NR==1 {for (i=1;i<=NF;i++) if ($i=="FailedCall(C)") c=i} NR>1 && c {v=$c} END {print v+0}' "$dir/stats.csv" 2>/dev/null || echo "?")
    echo "$calls_per_s $p50 $p99 $failed"
}

echo "warm-up..." >&2
run_step edgepbx-warmup "$EDGEPBX_ADDR" 50 100 >/dev/null
run_step edgepbx-direct-warmup "$DIRECT_ADDR" 50 100 >/dev/null
run_step kamailio-warmup "$KAM_ADDR" 50 100 >/dev/null

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b+0>0 && a+0>0) printf "%.2f", a/b; else print "-"}'; }
ROWS=()
for rate in $RATES; do
    echo "rate $rate/s..." >&2
    read -r e_cps e_p50 e_p99 e_fail < <(run_step edgepbx "$EDGEPBX_ADDR" "$rate" "$CALLS")
    read -r d_cps d_p50 d_p99 d_fail < <(run_step edgepbx-direct "$DIRECT_ADDR" "$rate" "$CALLS")
    read -r k_cps k_p50 k_p99 k_fail < <(run_step kamailio "$KAM_ADDR" "$rate" "$CALLS")
    ROWS+=("| $rate | edgepbx (media anchored) | $e_cps | $e_p50 | $e_p99 | $e_fail |"
           "| $rate | edgepbx (direct media) | $d_cps | $d_p50 | $d_p99 | $d_fail |"
           "| $rate | Kamailio (stateful proxy) | $k_cps | $k_p50 | $k_p99 | $k_fail |"
           "| $rate | anchored / Kamailio | $(ratio "$e_cps" "$k_cps") | | | |")
done

echo
echo "### Call benchmark ($(date -u +%Y-%m-%d))"
echo
echo "$CALLS calls per step: INVITE, 407, ACK, INVITE with credentials (MD5), 180, 200, ACK,"
echo "BYE, 200; no talk time. SIPp $(sipp -v 2>&1 | sed -n 's/.*SIPp v\([0-9.]*[0-9]\).*/\1/p' | head -1) over UDP on loopback; $(nproc) cores ($(cpu_model)),"
echo "servers and SIPp on the same machine. $BUILD_NOTE;"
echo "Kamailio $(kamailio -v | awk '/^version:/ {print $3; exit}') with $KAMAILIO_CHILDREN UDP workers (bench/calls/kamailio.cfg)."
echo "INVITE -> 180 as SIPp measures it, in whole milliseconds."
echo
echo "| offered calls/s | server | calls/s | p50 INVITE→180 (ms) | p99 INVITE→180 (ms) | failed |"
echo "|---:|---|---:|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
