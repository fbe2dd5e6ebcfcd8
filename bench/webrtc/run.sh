#!/usr/bin/env bash
# WebRTC ↔ RTP bridged calls: CPU per call of edgepbx against rtpengine
# doing the same bridging, in the same run.
#
# A load client of our own (bench/webrtc/load: str0m browsers, full ICE,
# DTLS-SRTP, 20 ms G.711 μ-law) places N calls at RATE per second. Each
# browser streams 50 packets a second; the far side of the bridge is a
# plain RTP echo in the load client that sends every packet back, so each
# call carries 50 packets a second each way on both legs.
# - edgepbx: each browser calls extension 2001 over its own SIP WebSocket
#   (digest as 1001); 2001 is a SIPp callee (bench/webrtc/answer.xml)
#   whose answer points the media at the echo. edgepbx terminates
#   ICE/DTLS-SRTP with str0m and relays plain RTP to the echo.
# - rtpengine (Debian, userspace forwarding: --table=-1): the load client
#   sends the browser's offer over ng with ICE=remove and RTP/AVP, and the
#   echo's answer with ICE=force, DTLS=passive, SDES off and
#   UDP/TLS/RTP/SAVPF, exactly the bridging edgepbx does.
# Once every call is up and SETTLE seconds have passed, the server's CPU
# time, the load client's, and the packets sent and echoed back are read
# over WINDOW seconds.
#
# Usage: bench/webrtc/run.sh
# Environment (all optional):
#   COUNTS="100 250 500"  simultaneous calls per step
#   RATE=25               calls set up per second
#   SETTLE=5 WINDOW=10    seconds before and of the measurement
#   EDGEPBX_BIN=path      edgepbx binary to use instead of building one
#   KEEP=1                keep the work directory
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
# shellcheck source=../common.sh
. "$ROOT/bench/common.sh"
require sipp rtpengine ss awk
COUNTS=${COUNTS:-"100 250 500"}
RATE=${RATE:-25}
SETTLE=${SETTLE:-5}
WINDOW=${WINDOW:-10}
select_edgepbx
(cd bench/webrtc/load && cargo build --release --locked >&2)
LOAD=${CARGO_TARGET_DIR:-$ROOT/bench/webrtc/load/target}/release/edgepbx-bench-webrtc
[ -x "$LOAD" ] || die "no load client at $LOAD"
make_workdir webrtc
# shellcheck source=../calls/lib.sh
. "$ROOT/bench/calls/lib.sh"

export EDGEPBX_LOG=${EDGEPBX_LOG:-warn} NO_COLOR=1
# One WebSocket per browser, all from 127.0.0.1.
start_bench_edgepbx edgepbx 'max_connections_per_ip = 4000
[media]
port_min = 20000
port_max = 39999'
EDGEPBX_PID=$LAST_PID
ECHO_PORT=$(free_udp_port)
CALLEE_SCENARIO=$ROOT/bench/webrtc/answer.xml start_callee edgepbx "$STARTED_ADDR" -key echo_port "$ECHO_PORT"
WS="ws://$STARTED_HTTP/ws"

NG_PORT=$(free_udp_port)
rtpengine --config-file=none --foreground --log-stderr --log-level=4 --table=-1 \
    --interface=127.0.0.1 --listen-ng="127.0.0.1:$NG_PORT" \
    --port-min=40000 --port-max=59999 --num-threads="$(nproc)" >"$WORK/rtpengine.log" 2>&1 &
RTPENGINE_PID=$!
PIDS+=("$RTPENGINE_PID")
sleep 1
kill -0 "$RTPENGINE_PID" 2>/dev/null || die "rtpengine exited: $(tail -5 "$WORK/rtpengine.log")"

# load COUNT SERVER-PID ARGS...: one step; prints the load's figures.
load() {
    local count=$1 pid=$2
    shift 2
    "$LOAD" --calls "$count" --rate "$RATE" --settle "$SETTLE" --window "$WINDOW" \
        --hz "$(getconf CLK_TCK)" --server-pid "$pid" --echo-port "$ECHO_PORT" "$@" 2>>"$WORK/load.log"
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }

ROWS=()
for count in $COUNTS; do
    echo "$count calls through edgepbx..." >&2
    e=$(load "$count" "$EDGEPBX_PID" --ws "$WS" --user 1001 --password pw-1001-Bench \
        --domain "$DOMAIN" --callee 2001)
    echo "  $e" >&2
    sleep 3
    echo "$count calls through rtpengine..." >&2
    r=$(load "$count" "$RTPENGINE_PID" --ng "127.0.0.1:$NG_PORT")
    echo "  $r" >&2
    sleep 3
    ecpu=$(field server_cpu "$e") rcpu=$(field server_cpu "$r")
    ratio=$(awk -v a="$ecpu" -v b="$rcpu" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "-"}')
    ROWS+=("| $count | $(field connected "$e") / $(field connected "$r") | $ecpu | $rcpu | $ratio | $(field loss "$e") / $(field loss "$r") | $(field load_cpu "$e") / $(field load_cpu "$r") |")
done

echo
echo "### WebRTC ↔ RTP bridged calls ($(date -u +%Y-%m-%d))"
echo
echo "Browsers made with str0m (ICE, DTLS-SRTP, 20 ms G.711 both ways) bridged to a plain RTP"
echo "echo; CPU of the server process over $WINDOW s with every call up (100% = one core);"
echo "loss: packets sent by the browsers in that window that did not come back through both legs."
echo "$(nproc) cores ($(cpu_model)); load client, echo and SIPp on the same machine."
echo "$BUILD_NOTE; rtpengine $(rtpengine --version 2>&1 | sed -n 's/Version: //p') with userspace forwarding."
echo
echo "| calls | connected (edgepbx / rtpengine) | edgepbx CPU % | rtpengine CPU % | ratio | loss % (edgepbx / rtpengine) | load client CPU % |"
echo "|---:|---|---:|---:|---:|---|---|"
printf '%s\n' "${ROWS[@]}"
