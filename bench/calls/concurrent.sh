#!/usr/bin/env bash
# Concurrent relayed calls: how much CPU edgepbx spends relaying G.711 for
# N simultaneous calls (both directions, 50 packets a second each way per
# call), and whether packets are lost.
#
# One edgepbx anchoring media; a callee SIPp (bench/calls/answer.xml) that
# echoes every RTP packet back (sipp -rtp_echo); a caller SIPp
# (bench/calls/call_media.xml) that places N calls at N/10 per second, each
# streaming 20 ms G.711 packets for TALK seconds. Once all N calls are up,
# edgepbx's CPU time is read from /proc over WINDOW seconds; when the
# calls have ended, the relayed packet counts of every call (from the
# server's call log) are compared with what was sent.
#
# Usage: bench/calls/concurrent.sh
# Environment (all optional):
#   COUNTS="250 500 1000"  simultaneous calls per step
#   TALK=40                seconds each call streams
#   WINDOW=10              seconds of CPU measurement
#   EDGEPBX_BIN=path       edgepbx binary to use instead of building one
#   KEEP=1                 keep the work directory
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
# shellcheck source=../common.sh
. "$ROOT/bench/common.sh"
require sipp ss awk sort python3
COUNTS=${COUNTS:-"250 500 1000"}
TALK=${TALK:-40}
WINDOW=${WINDOW:-10}
select_edgepbx
make_workdir concurrent
# shellcheck source=lib.sh
. "$ROOT/bench/calls/lib.sh"

# 10 s of G.711 u-law silence in a WAV file (format 7), for SIPp's stream.
tone() {
    python3 - "$1" <<'PY'
import struct, sys
data = b"\xff" * 80000
fmt = struct.pack("<HHIIHH", 7, 1, 8000, 8000, 1, 8)
wav = b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE"
wav += b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
open(sys.argv[1], "wb").write(wav)
PY
}

export EDGEPBX_LOG=info NO_COLOR=1
start_bench_edgepbx edgepbx '[media]
port_min = 20000
port_max = 59999'
EDGEPBX_PID=$LAST_PID
ADDR=$STARTED_ADDR
# The callee answers and echoes every RTP packet back.
start_callee edgepbx "$ADDR" -mp "$(free_udp_port)" -rtp_echo

# CPU seconds (user + system) of a process so far.
cpu_secs() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }

ROWS=()
for count in $COUNTS; do
    dir=$WORK/calls-$count
    mkdir -p "$dir"
    tone "$dir/bench-tone.wav"
    rate=$(( count / 10 > 0 ? count / 10 : 1 ))
    echo "$count calls: ramping up at $rate/s..." >&2
    ended_before=$(grep -c "media relay ended" "$WORK/edgepbx.log" || true)
    (cd "$dir" && sipp "$ADDR" -sf "$ROOT/bench/calls/call_media.xml" -s 2001 \
        -key domain "$DOMAIN" -key user 1001 -key password pw-1001-Bench \
        -auth_uri "2001@$DOMAIN" -d $((TALK * 1000)) \
        -m "$count" -r "$rate" -l $((count + 10)) \
        -i 127.0.0.1 -p "$(free_udp_port)" -t u1 -nostdin -timeout $((TALK * 3 + 60))s \
        -trace_stat -stf stats.csv -fd 1 >screen.log 2>&1) &
    caller=$!
    # All calls are up 10 s after the start; measure in the middle of the talk.
    sleep $(( 10 + (TALK - 10 - WINDOW) / 2 ))
    before=$(cpu_secs "$EDGEPBX_PID")
    sleep "$WINDOW"
    after=$(cpu_secs "$EDGEPBX_PID")
    wait "$caller" || true
    sleep 2
    cpu=$(awk -v a="$before" -v b="$after" -v w="$WINDOW" 'BEGIN {printf "%.0f", (b - a) * 100 / w}')
    failed=$(awk -F';' 'NR==1 {for (i=1;i<=NF;i++) if ($i=="FailedCall(C)") c=i} NR>1 && c {v=$c} END {print v+0}' "$dir/stats.csv" 2>/dev/null || echo "?")
    # Packets each call relayed, against TALK seconds at 50 a second.
    grep "media relay ended" "$WORK/edgepbx.log" | tail -n +$((ended_before + 1)) \
        | sed -n 's/.*packets_from_caller=\([0-9]*\) packets_from_callee=\([0-9]*\).*/\1 \2/p' > "$dir/packets"
    ended=$(wc -l < "$dir/packets")
    expected=$(( TALK * 50 ))
    loss=$(awk -v e="$expected" '{a += $1; b += $2; n++} END {if (n == 0) {print "-"; exit} printf "%.2f%% / %.2f%%", 100 * (1 - a / (n * e)), 100 * (1 - b / (n * e))}' "$dir/packets")
    ROWS+=("| $count | $cpu | $ended | $failed | $loss |")
done

echo
echo "### Concurrent relayed calls ($(date -u +%Y-%m-%d))"
echo
echo "G.711 at 50 packets/s each way per call (the callee echoes the caller's stream), $TALK s per"
echo "call, CPU of the edgepbx process over $WINDOW s with every call up (100% = one core)."
echo "$(nproc) cores ($(cpu_model)); SIPp (caller and echoing callee) on the same machine."
echo "$BUILD_NOTE. Loss: packets not relayed, caller→callee / callee→caller, against"
echo "$TALK s × 50 packets (stream start and stop make a little of it)."
echo
echo "| calls | edgepbx CPU % | calls ended | failed | loss (A→B / B→A) |"
echo "|---:|---:|---:|---:|---|"
printf '%s\n' "${ROWS[@]}"
