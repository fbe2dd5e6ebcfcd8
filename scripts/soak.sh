#!/usr/bin/env bash
# Soak: edgepbx under a steady mixed load for SOAK_SECS (30 minutes by
# default), killed with SIGKILL and restarted on the same data directory
# partway, with what it holds compared before and after. Not for CI: a
# script to run by hand (nice -n 5 scripts/soak.sh). Everything on
# 127.0.0.1.
#
# Setup: a fresh data directory in a temporary directory, tenant SOAK
# (soak.test) with EXTENSIONS extensions 1001... added with the CLI (through
# the running server's control socket), a callee 2001, an API key; edgepbx
# on free loopback ports, media relay ports 50000-59999, keepalive OPTIONS
# on (every 30 s, its default).
#
# The load, all of it for the whole run:
#   - registrations: one SIPp process (bench/soak/register.xml, -aa answers
#     the keepalives) registers every extension from one port, then keeps
#     refreshing each every REG_EXPIRES/2 s with Expires: REG_EXPIRES;
#     each 200 is logged with SIPp's time;
#   - calls with media: a SIPp caller (bench/calls/call_media.xml, from the
#     last extension) calls 2001 at CALLS calls per TALK seconds, each
#     streaming G.711 for TALK s (so about CALLS calls up at once); the
#     callee is one SIPp that registered 2001 once for the whole run and
#     echoes the RTP back (as bench/calls/concurrent.sh); edgepbx relays it;
#   - subscriptions: SUBSCRIPTIONS SUBSCRIBE dialogs (bench/soak/watch.py),
#     dialog and presence, from extensions 1001..., watching 2001, the
#     caller and other extensions, refreshed at half their expiry
#     (SUB_EXPIRES), every NOTIFY answered;
#   - API: bench/soak/api.py at API_RATE requests a second, a new
#     connection each: lists, reads, calls, call records, presence, and
#     writes on the extensions 3000-3199 (create, patch, delete), every
#     write and its outcome in a ledger.
#
# Samples (RSS and peak RSS from /proc/PID/status, open descriptors in
# /proc/PID/fd, threads, CPU time, the data directory's size with du, and
# through the API: extensions, registered extensions, devices, calls in
# progress, call records; stored bindings through the CLI): idle (before
# the load), warm (WARMUP_SECS into the load), before the kill, warm again
# after the restart, at the end under load, and quiet (the load stopped
# and QUIET_SECS later), plus a timeline every SAMPLE_EVERY s. edgepbx
# exposes no count of its tokio tasks: threads, descriptors, calls and
# subscriptions stand for them.
#
# The kill, at KILL_AT s (2/3 of the run by default; 0: none): SIGKILL;
# the registering SIPp is stopped (SIGSTOP) and the API traffic paused;
# then, with no server running, `edgepbx ext list --json` reads the store
# itself: every user whose REGISTER was answered 200 more than MARGIN s
# before the kill (store.write_delay_ms, the write-behind window, is
# 50 ms) and had not expired must have its binding stored
# (bench/soak/bindings.py). edgepbx starts again on the same directory and
# ports; those bindings must show as registered devices through the API
# at once; every number of the API ledger must read back as its last
# acknowledged (2xx) write left it, present with those fields or absent
# (a number whose last write got no answer is left out). Then the load
# goes on to the end, where the ledger is checked again.
#
# Checks (exit 1 when one fails; the work directory is then kept): the
# kill -9 checks above; no crash; RSS from warm to before the kill, and
# from warm after the restart to the end, grows by at most RSS_GROWTH_PCT
# percent; descriptors when quiet are the idle count +- FD_SLACK, threads
# +- THREAD_SLACK; every extension registered and every subscription
# alive at the end; no anomaly in the API ledger.
#
# Prints progress on stderr and a Markdown report on stdout.
#
# Usage: scripts/soak.sh
# Environment (all optional):
#   SOAK_SECS=1800         length of the load
#   KILL_AT=SOAK_SECS*2/3  seconds into the load of the kill -9 (0: none)
#   WARMUP_SECS=min(120, SOAK_SECS/6)  load before the "warm" samples
#   EXTENSIONS=200         registering extensions (1001...)
#   REG_EXPIRES=120        registration expiry (refreshed at half)
#   CALLS=8 TALK=30        calls per TALK seconds, seconds each streams
#   SUBSCRIPTIONS=50 SUB_EXPIRES=120
#   API_RATE=4             API requests a second
#   SAMPLE_EVERY=30        timeline period
#   QUIET_SECS=40          wait after the load before the quiet sample
#   MARGIN=2               seconds a registration must precede the kill
#   RSS_GROWTH_PCT=20 FD_SLACK=10 THREAD_SLACK=4
#   EDGEPBX_BIN=path       edgepbx binary to use instead of building one
#   KEEP=1                 keep the work directory (logs, ledger, samples)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=../bench/common.sh
. "$ROOT/bench/common.sh"
require sipp python3 ss awk sort du
SOAK=$ROOT/bench/soak

SOAK_SECS=${SOAK_SECS:-1800}
KILL_AT=${KILL_AT:-$((SOAK_SECS * 2 / 3))}
default_warmup=$((SOAK_SECS / 6)); [ "$default_warmup" -gt 120 ] && default_warmup=120
WARMUP_SECS=${WARMUP_SECS:-$default_warmup}
EXTENSIONS=${EXTENSIONS:-200}
REG_EXPIRES=${REG_EXPIRES:-120}
CALLS=${CALLS:-8}
TALK=${TALK:-30}
SUBSCRIPTIONS=${SUBSCRIPTIONS:-50}
SUB_EXPIRES=${SUB_EXPIRES:-120}
API_RATE=${API_RATE:-4}
SAMPLE_EVERY=${SAMPLE_EVERY:-30}
QUIET_SECS=${QUIET_SECS:-40}
MARGIN=${MARGIN:-2}
RSS_GROWTH_PCT=${RSS_GROWTH_PCT:-20}
FD_SLACK=${FD_SLACK:-10}
THREAD_SLACK=${THREAD_SLACK:-4}
TENANT=SOAK
DOMAIN=soak.test
FIRST=1001
LAST=$((FIRST + EXTENSIONS - 1))
CALLEE=2001
CALLER=$LAST
POOL=3000-3199
[ "$EXTENSIONS" -ge "$SUBSCRIPTIONS" ] || die "SUBSCRIPTIONS must not exceed EXTENSIONS"
[ "$REG_EXPIRES" -ge 60 ] && [ "$SUB_EXPIRES" -ge 60 ] || die "expiries below 60 s get 423"
if [ "$KILL_AT" -ne 0 ] && { [ "$KILL_AT" -le "$WARMUP_SECS" ] || [ "$KILL_AT" -ge "$SOAK_SECS" ]; }; then
    die "KILL_AT must lie between WARMUP_SECS and SOAK_SECS (or be 0)"
fi

select_edgepbx
make_workdir soak
FAILURES=()
fail() { FAILURES+=("$*"); echo "FAIL: $*" >&2; }
# The work directory is kept when a check fails: its logs are the evidence.
# A stopped SIPp (during the kill) must be continued to take its SIGTERM.
trap 'rc=$?; [ ${#FAILURES[@]} -eq 0 ] || KEEP=1; [ -z "${REG_PID:-}" ] || kill -CONT "$REG_PID" 2>/dev/null || true; cleanup; exit $rc' EXIT
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
password() { echo "pw-$1-Soak"; }
# The server logs at info (relay packet counts, warnings); the CLI quietly.
SERVER_LOG=${EDGEPBX_LOG:-info}
export NO_COLOR=1 EDGEPBX_LOG=warn

DATA=$WORK/data
mkdir -p "$DATA"
SIP_PORT=$(free_udp_port)
HTTP_PORT=$(free_udp_port)
while [ "$HTTP_PORT" = "$SIP_PORT" ]; do HTTP_PORT=$(free_udp_port); done
SERVER=127.0.0.1:$SIP_PORT
HTTP=127.0.0.1:$HTTP_PORT
# The callee registers once for the whole run, the restart included.
CALLEE_EXPIRES=$((SOAK_SECS + 1800))
cat > "$WORK/edgepbx.toml" <<TOML
[security]
# SIPp 3.6 reads only the first challenge.
digest_algorithms = ["MD5", "SHA-256"]
[registrar]
# The callee SIPp registers once, for longer than the run.
max_expires = $((CALLEE_EXPIRES > 3600 ? CALLEE_EXPIRES : 3600))
[media]
# Above the ports free_udp_port hands to SIPp.
port_min = 50000
port_max = 59999
TOML

# start_server N: edgepbx on the fixed ports; sets SERVER_PID.
start_server() {
    local n=$1 out=$WORK/edgepbx-$1.out
    EDGEPBX_LOG=$SERVER_LOG "$EDGEPBX_BIN" serve --config "$WORK/edgepbx.toml" --data "$DATA" \
        --sip-udp "$SERVER" --sip-tcp "$SERVER" --http "$HTTP" >"$out" 2>"$WORK/edgepbx-$n.log" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    for _ in $(seq 1 600); do
        grep -q '^edgepbx ready' "$out" && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || die "edgepbx exited: $(tail -5 "$WORK/edgepbx-$n.log")"
        sleep 0.1
    done
    die "edgepbx not ready after 60 s"
}

# ---- setup ----------------------------------------------------------------
log "work directory $WORK; edgepbx on sip $SERVER, http $HTTP"
"$EDGEPBX_BIN" tenant add "$TENANT" --domain "$DOMAIN" --data "$DATA" >/dev/null
start_server 1
setup_start=$(date +%s)
for n in $(seq "$FIRST" "$LAST") "$CALLEE"; do
    "$EDGEPBX_BIN" ext add "$TENANT" "$n" --name "Soak $n" --password "$(password "$n")" --data "$DATA" >/dev/null
done
log "$((EXTENSIONS + 1)) extensions added with the CLI in $(( $(date +%s) - setup_start )) s"
KEY=$("$EDGEPBX_BIN" apikey add "$TENANT" --data "$DATA" | grep -o 'epk_[A-Za-z0-9_-]*')
[ -n "$KEY" ] || die "no API key"

{
    echo SEQUENTIAL
    for n in $(seq "$FIRST" "$LAST"); do echo "$DOMAIN;$n;$(password "$n")"; done
} > "$WORK/users.csv"
printf 'SEQUENTIAL\n%s;%s;%s\n' "$DOMAIN" "$CALLEE" "$(password "$CALLEE")" > "$WORK/callee.csv"
# Subscriptions: extension FIRST+i watches, alternately, the dialogs of
# the callee or of the caller (they change with every call) and the
# presence of another extension.
for i in $(seq 0 $((SUBSCRIPTIONS - 1))); do
    n=$((FIRST + i))
    case $((i % 4)) in
        0) echo "$n;$(password "$n");$CALLEE;dialog" ;;
        2) echo "$n;$(password "$n");$CALLER;dialog" ;;
        *) echo "$n;$(password "$n");$((FIRST + (i * 7 + 3) % EXTENSIONS));presence" ;;
    esac
done > "$WORK/watchers.txt"

# ---- measuring --------------------------------------------------------------
HZ=$(getconf CLK_TCK)
api() { python3 "$SOAK/api.py" "$@" --http "$HTTP" --key "$KEY"; }
# sample NAME: the server's figures into $WORK/sample-NAME (key value lines).
sample() {
    local name=$1 file=$WORK/sample-$1 pid=$SERVER_PID
    {
        echo "name $name"
        echo "elapsed $(( $(date +%s) - ${LOAD_START:-$(date +%s)} ))"
        echo "pid $pid"
        awk '/^VmRSS:/ {print "rss_kb", $2} /^VmHWM:/ {print "hwm_kb", $2} /^Threads:/ {print "threads", $2}' "/proc/$pid/status"
        echo "fds $(ls "/proc/$pid/fd" | wc -l)"
        # What the descriptors are: sockets; /proc files (sysinfo, through
        # SurrealDB, keeps one open per process and thread of the machine it
        # listed at start); other files; the rest (epoll, eventfd, pipes).
        ls -l "/proc/$pid/fd" | awk 'NR > 1 {t = $NF; if (t ~ /^socket:/) s++; else if (t ~ /^\/proc\//) p++; else if (t ~ /^\//) f++; else o++}
            END {print "fd_sockets", s + 0; print "fd_proc", p + 0; print "fd_files", f + 0; print "fd_other", o + 0; print "fds_own", s + f + o}'
        echo "cpu_s $(awk -v hz="$HZ" '{printf "%.1f", ($14 + $15) / hz}' "/proc/$pid/stat")"
        echo "data_kb $(du -sk "$DATA" | cut -f1)"
        api counts | python3 -c 'import json,sys; [print(k, "-" if v is None else v) for k, v in json.load(sys.stdin).items()]'
        echo "stored_bindings $("$EDGEPBX_BIN" ext list "$TENANT" --json --data "$DATA" | python3 -c 'import json,sys; print(sum(len(e["bindings"]) for e in json.load(sys.stdin)))')"
        [ -f "$WORK/watch.status" ] && python3 -c 'import json,sys; print("subscriptions_alive", json.load(open(sys.argv[1]))["alive"])' "$WORK/watch.status"
    } > "$file" 2>>"$WORK/sample.err"
    log "sample $name: $(awk '{printf "%s=%s ", $1, $2}' "$file")"
}
val() { awk -v k="$2" '$1 == k {print $2; found = 1} END {if (!found) print "-"}' "$WORK/sample-$1"; }
# timeline: one line per SAMPLE_EVERY.
echo "elapsed_s pid rss_kb fds threads cpu_s data_kb" > "$WORK/timeline"
timeline() {
    local pid=$SERVER_PID
    [ -r "/proc/$pid/status" ] || return 0
    echo "$(( $(date +%s) - LOAD_START )) $pid $(awk '/^VmRSS:/ {r = $2} /^Threads:/ {t = $2} END {print r}' "/proc/$pid/status") $(ls "/proc/$pid/fd" | wc -l) $(awk '/^Threads:/ {print $2}' "/proc/$pid/status") $(awk -v hz="$HZ" '{printf "%.1f", ($14 + $15) / hz}' "/proc/$pid/stat") $(du -sk "$DATA" | cut -f1)" >> "$WORK/timeline"
}

sample idle

# ---- load ---------------------------------------------------------------------
REG_PORT=$(free_udp_port)
mkdir -p "$WORK/reg" "$WORK/callee" "$WORK/caller"
log "registering $EXTENSIONS extensions..."
(cd "$WORK/reg" && sipp "$SERVER" -sf "$SOAK/register.xml" -inf "$WORK/users.csv" \
    -key expires "$REG_EXPIRES" -m "$EXTENSIONS" -r 50 -l 1000 -aa \
    -i 127.0.0.1 -p "$REG_PORT" -t u1 -nostdin -timeout 60s \
    -trace_logs -log_file first.log >first.out 2>&1) \
    || die "the first registrations failed: $(tail -3 "$WORK/reg/first.out")"
(cd "$WORK/reg" && exec sipp "$SERVER" -sf "$SOAK/register.xml" -inf "$WORK/users.csv" \
    -key expires "$REG_EXPIRES" -r "$EXTENSIONS" -rp $((REG_EXPIRES * 500)) -l 100000 -aa \
    -i 127.0.0.1 -p "$REG_PORT" -t u1 -nostdin -buff_size 4194304 \
    -trace_logs -log_file steady.log -trace_stat -stf stats.csv -fd 30 >steady.out 2>&1) &
REG_PID=$!
PIDS+=("$REG_PID")

CALLEE_PORT=$(free_udp_port)
(cd "$WORK/callee" && sipp "$SERVER" -sf "$SOAK/register.xml" -inf "$WORK/callee.csv" \
    -key expires "$CALLEE_EXPIRES" -m 1 -i 127.0.0.1 -p "$CALLEE_PORT" -t u1 -nostdin -timeout 20s \
    -trace_logs -log_file register.log >register.out 2>&1) \
    || die "the callee did not register: $(tail -3 "$WORK/callee/register.out")"
(cd "$WORK/callee" && exec sipp -sf "$ROOT/bench/calls/answer.xml" -i 127.0.0.1 -p "$CALLEE_PORT" -t u1 \
    -nostdin -l 100000 -aa -mp "$(free_udp_port)" -rtp_echo >answer.out 2>&1) &
CALLEE_PID=$!
PIDS+=("$CALLEE_PID")
sleep 0.5

# 10 s of G.711 u-law silence (format 7) for SIPp's stream, as
# bench/calls/concurrent.sh makes it.
python3 - "$WORK/caller/bench-tone.wav" <<'PY'
import struct, sys
data = b"\xff" * 80000
fmt = struct.pack("<HHIIHH", 7, 1, 8000, 8000, 1, 8)
wav = b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE"
wav += b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
open(sys.argv[1], "wb").write(wav)
PY
(cd "$WORK/caller" && exec sipp "$SERVER" -sf "$ROOT/bench/calls/call_media.xml" -s "$CALLEE" \
    -key domain "$DOMAIN" -key user "$CALLER" -key password "$(password "$CALLER")" \
    -auth_uri "$CALLEE@$DOMAIN" -d $((TALK * 1000)) -r "$CALLS" -rp $((TALK * 1000)) -l $((CALLS * 3)) \
    -i 127.0.0.1 -p "$(free_udp_port)" -mp "$(free_udp_port)" -t u1 -nostdin \
    -trace_stat -stf stats.csv -fd 30 -trace_err -error_file errors.log >screen.out 2>&1) &
CALLER_PID=$!
PIDS+=("$CALLER_PID")

python3 "$SOAK/watch.py" --server "$SERVER" --domain "$DOMAIN" --pairs "$WORK/watchers.txt" \
    --expires "$SUB_EXPIRES" --status "$WORK/watch.status" >"$WORK/watch.out" 2>&1 &
WATCH_PID=$!
PIDS+=("$WATCH_PID")

LEDGER=$WORK/ledger.jsonl
python3 "$SOAK/api.py" traffic --http "$HTTP" --key "$KEY" --ledger "$LEDGER" --pool "$POOL" \
    --base-first "$FIRST" --base-last "$LAST" --rate "$API_RATE" \
    --pause "$WORK/api.pause" --paused "$WORK/api.paused" --stop "$WORK/api.stop" \
    >"$WORK/api.out" 2>&1 &
API_PID=$!
PIDS+=("$API_PID")

LOAD_START=$(date +%s)
log "load started: $SOAK_SECS s, kill -9 at ${KILL_AT:-none} s, warm-up $WARMUP_SECS s"

# ---- the kill --------------------------------------------------------------------
KILL_REPORT=()
kill_and_restart() {
    sample before-kill
    local old=$SERVER_PID
    KILL_EPOCH=$(date +%s.%N)
    kill -9 "$old"
    wait "$old" 2>/dev/null || true
    kill -STOP "$REG_PID"
    log "kill -9 $old; registrations stopped, API traffic pausing"
    touch "$WORK/api.pause"
    for _ in $(seq 1 300); do [ -e "$WORK/api.paused" ] && break; sleep 0.1; done
    [ -e "$WORK/api.paused" ] || fail "the API traffic did not pause"

    # The store as the crash left it, read by the CLI with no server.
    "$EDGEPBX_BIN" ext list "$TENANT" --json --data "$DATA" > "$WORK/stored.json" 2>"$WORK/stored.err" \
        || fail "edgepbx ext list on the killed server's data: $(tail -3 "$WORK/stored.err")"
    local bindings_out
    bindings_out=$(python3 "$SOAK/bindings.py" --kill "$KILL_EPOCH" --margin "$MARGIN" \
        --stored "$WORK/stored.json" --expected "$WORK/expected-bound" \
        --log "$WORK/reg/first.log,$REG_EXPIRES,127.0.0.1:$REG_PORT" \
        --log "$WORK/reg/steady.log,$REG_EXPIRES,127.0.0.1:$REG_PORT" \
        --log "$WORK/callee/register.log,$CALLEE_EXPIRES,127.0.0.1:$CALLEE_PORT") \
        || fail "stored bindings after kill -9: $(echo "$bindings_out" | tail -n +2 | head -5)"
    echo "$bindings_out" > "$WORK/check-stored-bindings"
    log "stored bindings: $(head -1 <<<"$bindings_out")"

    local t0 t1
    t0=$(date +%s.%N)
    start_server 2
    t1=$(date +%s.%N)
    RESTART_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
    log "restarted as $SERVER_PID in $RESTART_SECS s"

    # The restored registrations, before any REGISTER reaches the new server.
    api registered > "$WORK/registered-after-restart" || fail "reading registrations after the restart"
    local expected restored missing
    expected=$(wc -l < "$WORK/expected-bound")
    missing=$(sort "$WORK/expected-bound" | comm -23 - <(sort "$WORK/registered-after-restart"))
    restored=$((expected - $(grep -c . <<<"$missing" || true)))
    [ -z "$missing" ] || fail "registrations not restored after the restart: $(echo $missing | cut -c1-200)"
    RESTORED="$restored of $expected"
    log "registrations restored: $RESTORED"

    local ledger_out
    ledger_out=$(api check --ledger "$LEDGER" --pool "$POOL" --base-first "$FIRST" --base-last "$LAST" \
        --also "$CALLEE" --kill-time "$KILL_EPOCH") \
        || fail "acknowledged API writes after kill -9: $(echo "$ledger_out" | tail -n +2 | head -5)"
    echo "$ledger_out" > "$WORK/check-ledger-after-kill"
    log "API ledger: $(head -1 <<<"$ledger_out")"
    STORED_SUMMARY=$(head -1 <<<"$bindings_out")
    LEDGER_SUMMARY=$(head -1 <<<"$ledger_out")

    rm -f "$WORK/api.pause"
    kill -CONT "$REG_PID"
    KILLED=1
}

# ---- the run -------------------------------------------------------------------------
END=$((LOAD_START + SOAK_SECS))
WARM_AT=$((LOAD_START + WARMUP_SECS))
KILL_EPOCH_AT=$((KILL_AT > 0 ? LOAD_START + KILL_AT : 0))
WARM2_AT=$((KILL_AT > 0 ? LOAD_START + KILL_AT + WARMUP_SECS : 0))
[ "$WARM2_AT" -lt "$END" ] || WARM2_AT=$((END - 5))
next_tick=$LOAD_START
warm_done="" killed="" warm2_done=""
KILLED=""
while :; do
    now=$(date +%s)
    [ "$now" -ge "$END" ] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        fail "edgepbx (pid $SERVER_PID) exited by itself $((now - LOAD_START)) s into the load: $(tail -5 "$WORK/edgepbx-$([ -n "$KILLED" ] && echo 2 || echo 1).log" | tr '\n' ' ')"
        break
    fi
    for pid in "$REG_PID" "$CALLEE_PID" "$CALLER_PID" "$WATCH_PID" "$API_PID"; do
        kill -0 "$pid" 2>/dev/null || { fail "a load process (pid $pid) exited early"; break 2; }
    done
    if [ "$now" -ge "$next_tick" ]; then timeline; next_tick=$((next_tick + SAMPLE_EVERY)); fi
    if [ -z "$warm_done" ] && [ "$now" -ge "$WARM_AT" ]; then sample warm; warm_done=1; fi
    if [ -z "$killed" ] && [ "$KILL_EPOCH_AT" -gt 0 ] && [ "$now" -ge "$KILL_EPOCH_AT" ]; then
        kill_and_restart; killed=1
    fi
    if [ -n "$killed" ] && [ -z "$warm2_done" ] && [ "$now" -ge "$WARM2_AT" ]; then sample warm-after-restart; warm2_done=1; fi
    sleep 1
done

# ---- the end ----------------------------------------------------------------------
RUN_SECS=$(( $(date +%s) - LOAD_START ))
if kill -0 "$SERVER_PID" 2>/dev/null; then
    sample end
    timeline
    [ "$(val end registered)" = "$((EXTENSIONS + 1))" ] \
        || fail "at the end $(val end registered) extensions are registered, not $((EXTENSIONS + 1))"
    alive=$(val end subscriptions_alive)
    [ "$alive" = "$SUBSCRIPTIONS" ] || fail "at the end $alive of $SUBSCRIPTIONS subscriptions are alive"
fi
log "stopping the load..."
touch "$WORK/api.stop"
kill -USR1 "$CALLER_PID" 2>/dev/null || true
kill -TERM "$WATCH_PID" 2>/dev/null || true
kill -USR1 "$REG_PID" 2>/dev/null || true
for _ in $(seq 1 $((TALK + 20))); do
    kill -0 "$CALLER_PID" 2>/dev/null || break
    sleep 1
done
kill "$CALLER_PID" "$REG_PID" 2>/dev/null || true
wait "$API_PID" "$WATCH_PID" 2>/dev/null || true
kill "$CALLEE_PID" 2>/dev/null || true
if kill -0 "$SERVER_PID" 2>/dev/null; then
    sleep "$QUIET_SECS"
    sample quiet
    final_ledger=$(api check --ledger "$LEDGER" --pool "$POOL" --base-first "$FIRST" --base-last "$LAST" --also "$CALLEE") \
        || fail "API ledger at the end: $(echo "$final_ledger" | tail -n +2 | head -5)"
    echo "$final_ledger" > "$WORK/check-ledger-end"
    FINAL_LEDGER=$(head -1 <<<"$final_ledger")
fi

# ---- figures ------------------------------------------------------------------------
pct() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "-" || b == "-" || a + 0 == 0) print "-"; else printf "%+.1f%%", (b - a) * 100 / a}'; }
mib() { awk -v k="$1" 'BEGIN {if (k == "-") print "-"; else printf "%.1f", k / 1024}'; }
have() { [ -f "$WORK/sample-$1" ]; }
# RSS growth checks: warm -> before the kill (first process), warm after
# the restart -> end (second process); with no kill, warm -> end.
rss_check() {
    local from=$1 to=$2 what=$3 a b
    have "$from" && have "$to" || return 0
    a=$(val "$from" rss_kb); b=$(val "$to" rss_kb)
    awk -v a="$a" -v b="$b" -v t="$RSS_GROWTH_PCT" 'BEGIN {exit !((b - a) * 100 / a > t)}' \
        && fail "RSS grew $(pct "$a" "$b") ($(mib "$a") -> $(mib "$b") MiB) $what"
    return 0
}
if [ -n "$KILLED" ]; then
    rss_check warm before-kill "from warm-up to the kill ($((KILL_AT - WARMUP_SECS)) s, first process)"
    rss_check warm-after-restart end "from warm-up after the restart to the end (second process)"
else
    rss_check warm end "from warm-up to the end"
fi
# Descriptors: the /proc ones left out (their number follows the processes
# on the machine when the server started, not the server's work).
if have idle && have quiet; then
    fi_=$(val idle fds_own); fq=$(val quiet fds_own)
    [ $((fq - fi_)) -le "$FD_SLACK" ] && [ $((fi_ - fq)) -le "$FD_SLACK" ] \
        || fail "open descriptors (without /proc) when quiet: $fq, idle before the load: $fi_ (slack $FD_SLACK)"
    ti=$(val idle threads); tq=$(val quiet threads)
    [ $((tq - ti)) -le "$THREAD_SLACK" ] \
        || fail "threads when quiet: $tq, idle before the load: $ti (slack $THREAD_SLACK)"
fi

# stat_of FILE COLUMN [EPOCH]: the last value of a cumulative SIPp
# statistics column (-trace_stat, a line every 30 s), or its last value
# dumped before EPOCH.
stat_of() {
    awk -F';' -v col="$2" -v before="${3:-0}" 'NR == 1 {for (i = 1; i <= NF; i++) if ($i == col) c = i}
        NR > 1 && c {split($3, now, "\t"); if (before == 0 || now[3] < before) v = $c}
        END {print v + 0}' "$1" 2>/dev/null || echo "?"
}
REG_OK=$(cat "$WORK/reg/first.log" "$WORK/reg/steady.log" 2>/dev/null | wc -l)
REG_FAILED=$(stat_of "$WORK/reg/stats.csv" "FailedCall(C)")
CALLS_OK=$(stat_of "$WORK/caller/stats.csv" "SuccessfulCall(C)")
CALLS_FAILED=$(stat_of "$WORK/caller/stats.csv" "FailedCall(C)")
if [ -n "$KILLED" ]; then
    # SIPp's statistics come every 30 s: failures up to its last line before the kill.
    k=${KILL_EPOCH%.*}
    CALLS_FAILED="$CALLS_FAILED ($(stat_of "$WORK/caller/stats.csv" "FailedCall(C)" "$k") of them before the kill)"
    REG_FAILED="$REG_FAILED ($(stat_of "$WORK/reg/stats.csv" "FailedCall(C)" "$k") of them before the kill)"
fi
WATCH=$(python3 - "$WORK/watch.status" <<'PY' 2>/dev/null || echo "no status"
import json, sys
s = json.load(open(sys.argv[1]))
print(f"{s['subscribed']} made, {s['refreshed']} refreshes, {s['notifies']} NOTIFYs answered, "
      f"{s['resubscribed']} made again (after {s['errors']}), {s['timeouts']} transactions timed out, "
      f"{s['unsubscribed']} of {s['total']} ended with Expires: 0 at the stop")
PY
)
API_SUMMARY=$(python3 - "$LEDGER" <<'PY'
import collections, json, sys
c = collections.Counter()
for line in open(sys.argv[1]):
    e = json.loads(line)
    c[(e["op"], e["outcome"])] += 1
print(", ".join(f"{op} {outcome} {n}" for (op, outcome), n in sorted(c.items())))
PY
)
cat "$WORK"/edgepbx-*.log > "$WORK/edgepbx-all.log"
RELAYS=$(grep -c 'media relay ended' "$WORK/edgepbx-all.log" || true)
PACKETS=$(sed -n 's/.*media relay ended.*packets_from_caller=\([0-9]*\) packets_from_callee=\([0-9]*\).*/\1 \2/p' "$WORK/edgepbx-all.log" \
    | awk -v e=$((TALK * 50)) '{a += $1; b += $2; n++; if ($1 >= e * 0.95 && $2 >= e * 0.95) full++} END {printf "%d relays, %d with at least 95%% of %d packets each way", n, full, e}')
WARNS=$(grep -c ' WARN ' "$WORK/edgepbx-all.log" || true)
ERRORS=$(grep -c ' ERROR ' "$WORK/edgepbx-all.log" || true)
PANICS=$(grep -c 'panicked' "$WORK/edgepbx-all.log" || true)
[ "$PANICS" -eq 0 ] || fail "the server log has $PANICS panics: $(grep -m 3 panicked "$WORK/edgepbx-all.log")"
TOP_WARN=$(grep -E ' (WARN|ERROR) ' "$WORK/edgepbx-all.log" | sed -E 's/^[^ ]+ +//; s/(call_id|source|branch|tag|contact)=[^ ]*//g; s/[0-9]+/N/g' \
    | cut -c1-160 | sort | uniq -c | sort -rn | head -8 || true)

# ---- report -----------------------------------------------------------------------------
row() {  # row LABEL KEY FORMAT(raw|mib)
    local label=$1 key=$2 fmt=${3:-raw} line="| $1 |" s v
    for s in idle warm before-kill warm-after-restart end quiet; do
        if have "$s"; then v=$(val "$s" "$key"); [ "$fmt" = mib ] && v=$(mib "$v"); else v=""; fi
        line="$line $v |"
    done
    echo "$line"
}
echo
echo "### Soak: $((SOAK_SECS / 60)) minutes with a kill -9 ($(date -u +%Y-%m-%d))"
echo
echo "\`SOAK_SECS=$SOAK_SECS scripts/soak.sh\` ($RUN_SECS s of load): $EXTENSIONS extensions refreshing their"
echo "registrations every $((REG_EXPIRES / 2)) s (Expires $REG_EXPIRES, keepalive OPTIONS every 30 s answered), $CALLS calls"
echo "per $TALK s to one callee with G.711 relayed both ways for $TALK s, $SUBSCRIPTIONS dialog and presence"
echo "subscriptions refreshed every $((SUB_EXPIRES / 2)) s, $API_RATE API requests a second (60 % writes on"
echo "extensions $POOL); kill -9 at $KILL_AT s. SIPp $(sipp -v 2>&1 | sed -n 's/.*SIPp v\([0-9.]*[0-9]\).*/\1/p' | head -1) and the Python load on the same"
echo "machine: $(nproc) cores ($(cpu_model)). $BUILD_NOTE."
echo
echo "| | idle | warm ($WARMUP_SECS s) | before kill | warm after restart | end | quiet (load stopped $QUIET_SECS s) |"
echo "|---|---:|---:|---:|---:|---:|---:|"
row "pid" pid
row "seconds into the load" elapsed
row "RSS (MiB)" rss_kb mib
row "peak RSS (MiB)" hwm_kb mib
row "open descriptors" fds
row "of them sockets" fd_sockets
row "of them /proc files (sysinfo)" fd_proc
row "of them other files" fd_files
row "of them epoll, eventfd, pipes" fd_other
row "threads" threads
row "CPU time (s)" cpu_s
row "data directory (MiB)" data_kb mib
row "extensions" extensions
row "registered extensions" registered
row "stored bindings" stored_bindings
row "calls in progress" calls
row "call records (API caps at 1000)" call_records
row "subscriptions alive (client's view)" subscriptions_alive
echo
# The timeline, thinned to about a dozen points.
echo "RSS over the run (s: MiB, descriptors; every $SAMPLE_EVERY s in the work directory's timeline):"
awk 'NR > 1 {row[++n] = $0} END {step = int((n + 11) / 12); if (step < 1) step = 1
    line = ""; prev = ""
    for (i = 1; i <= n; i += step) {split(row[i], f, " "); mark = (prev != "" && f[2] != prev) ? " (restarted)" : ""; prev = f[2]
        line = line sprintf("%s%d s: %.1f, %d%s", line == "" ? "" : "; ", f[1], f[3] / 1024, f[4], mark)}
    print line "."}' "$WORK/timeline"
# Growth per hour of each process once warm: least squares over its
# timeline from WARMUP_SECS after its first point.
awk -v w="$WARMUP_SECS" 'NR > 1 {
        if (!($2 in first)) {first[$2] = $1; order[++n] = $2}
        if ($1 - first[$2] >= w) {p = $2; c[p]++; sx[p] += $1; sxx[p] += $1 * $1
            sy[p] += $3; sxy[p] += $1 * $3; sz[p] += $7; sxz[p] += $1 * $7}}
    END {line = ""
        for (i = 1; i <= n; i++) {p = order[i]; if (c[p] < 3) continue
            d = c[p] * sxx[p] - sx[p] ^ 2; if (d == 0) continue
            line = line sprintf("%sprocess %d (%d points): RSS %+.1f MiB/h, data directory %+.1f MiB/h", line == "" ? "" : "; ", i, c[p],
                (c[p] * sxy[p] - sx[p] * sy[p]) / d * 3600 / 1024, (c[p] * sxz[p] - sx[p] * sz[p]) / d * 3600 / 1024)}
        if (line != "") print "Growth once warm (least squares over the timeline): " line "."}' "$WORK/timeline"
echo
echo "Load over the run:"
echo "- registrations: $REG_OK answered 200; failed: $REG_FAILED"
echo "- calls: $CALLS_OK completed; failed: $CALLS_FAILED; media: $PACKETS"
echo "- subscriptions: $WATCH"
echo "- API writes (op, outcome, count): $API_SUMMARY"
echo
if [ -n "$KILLED" ]; then
    echo "kill -9 at $KILL_AT s, restart in $RESTART_SECS s:"
    echo "- stored bindings (CLI on the data directory, no server): \`$STORED_SUMMARY\`"
    echo "- registrations restored through the API before any new REGISTER: $RESTORED"
    echo "- API ledger read back: \`$LEDGER_SUMMARY\`"
fi
[ -n "${FINAL_LEDGER:-}" ] && echo "- API ledger at the end: \`$FINAL_LEDGER\`"
echo
echo "Server log: $WARNS WARN, $ERRORS ERROR, $PANICS panics."
if [ -n "$TOP_WARN" ]; then
    echo
    echo '```'
    echo "$TOP_WARN"
    echo '```'
fi
echo
if [ ${#FAILURES[@]} -eq 0 ]; then
    echo "Every check passed."
else
    echo "Checks failed:"
    printf -- '- %s\n' "${FAILURES[@]}"
    echo
    echo "Work directory kept: $WORK"
    exit 1
fi
