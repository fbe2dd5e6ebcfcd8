#!/usr/bin/env bash
# BLF benchmark: dialog subscriptions fan-out, edgepbx against Kamailio 5.6
# (presence + pua_dialoginfo) on the same machine, in the same run, under
# the same load; everything on loopback.
#
# Each server gets EXTENSIONS extensions (1001...), each watched by
# WATCHERS dialog subscriptions (RFC 4235) over UDP: the phone of
# extension N has BLF keys for N+1...N+WATCHERS. The subscriptions and the
# calls come from bench/blf/load (edgepbx-bench-blf, built here): SIPp 3.6
# answers every digest challenge of a process for one URI (-auth_uri),
# and edgepbx checks the digest URI against the Request-URI, which is a
# different extension for each subscription and call. One SIPp process
# registers every extension from one port and then answers the calls on it
# (bench/blf/answer.xml: 180 at once, 200 after RING_MS). A caller that
# nobody watches (extension 3001) calls the extensions in turn and hangs
# up TALK_MS after the answer: each call is three state changes of the
# called extension (ringing, answered, ended), CALLS calls at CHANGES/3
# calls per second, i.e. CHANGES state changes per second, each told to
# WATCHERS subscriptions.
#
# Per server, in this order:
#   1. the call stream without subscriptions (the server's CPU for the
#      calls alone);
#   2. memory (the Pss of the server's processes, /proc/PID/smaps_rollup),
#      each read after SETTLE seconds of quiet so that the transactions
#      of the SUBSCRIBEs have ended: before any subscription, with the
#      WATCHERS x EXTENSIONS subscriptions, with as many more from a second
#      process (what one more costs, without what the first ones paid
#      once), and after that second process ended its subscriptions
#      (Expires: 0); for Kamailio also its own count of shared memory in
#      use (kamcmd core.shmmem real_used);
#   3. the same call stream with the first subscriptions: every datagram to and
#      from the server is captured on the loopback device (tcpdump), and
#      each NOTIFY's fan-out latency is the time from the datagram that
#      changed the state reaching the server to the NOTIFY leaving it,
#      both as the kernel timestamped them. The state changes are the
#      caller's INVITE with credentials (edgepbx shows a called extension
#      ringing as soon as it routes the call to it) or the callee's 180
#      (Kamailio's dialog module: early on the 18x), the callee's 200 and
#      the caller's BYE. CPU per NOTIFY is the server's CPU time during
#      the stream (utime + stime of its processes, /proc) divided by the
#      NOTIFYs it sent, and, "marginal", the same less the CPU time of
#      the stream without subscriptions.
#
# edgepbx runs with `[security] digest_algorithms = ["MD5"]` (SIPp 3.6,
# which registers the callees, answers nothing else), no keepalive pings,
# direct media between parties on one network (no relay: Kamailio relays
# no media either) and subscription limits raised for any EXTENSIONS x
# WATCHERS. Kamailio runs bench/blf/kamailio.cfg with the TLSF memory
# managers.
#
# Usage: bench/blf/run.sh
# Environment (all optional):
#   EXTENSIONS=1000      watched extensions
#   WATCHERS=10          subscriptions per watched extension
#   CHANGES=100          state changes per second (calls per second x 3)
#   CALLS=2000           calls per stream (CALLS x 3 / CHANGES seconds)
#   RING_MS=1000 TALK_MS=1000  ringing and talking time of each call
#   SUBSCRIBE_RATE=500   new subscriptions per second while subscribing
#   SETTLE=40            seconds of quiet before each memory reading
#   SERVERS="edgepbx kamailio"
#   EDGEPBX_BIN=path     edgepbx binary to use instead of building one
#   KAMAILIO_CHILDREN=2  Kamailio UDP worker processes
#   KEEP=1               keep the work directory (captures, logs)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
# shellcheck source=../common.sh
. "$ROOT/bench/common.sh"
require sipp kamailio kamcmd tcpdump curl md5sum ss awk sort

EXTENSIONS=${EXTENSIONS:-1000}
WATCHERS=${WATCHERS:-10}
CHANGES=${CHANGES:-100}
CALLS=${CALLS:-2000}
RING_MS=${RING_MS:-1000}
TALK_MS=${TALK_MS:-1000}
SUBSCRIBE_RATE=${SUBSCRIBE_RATE:-500}
SETTLE=${SETTLE:-40}
SERVERS=${SERVERS:-"edgepbx kamailio"}
KAMAILIO_CHILDREN=${KAMAILIO_CHILDREN:-2}
DOMAIN=bench.test
TENANT=BENCH
FIRST=1001
CALLER=3001
SUBSCRIPTIONS=$((EXTENSIONS * WATCHERS))
[ "$WATCHERS" -lt "$EXTENSIONS" ] || die "WATCHERS must be less than EXTENSIONS"
BLF=$ROOT/bench/blf
HZ=$(getconf CLK_TCK)

select_edgepbx
(cd "$BLF/load" && cargo build --release --locked >&2)
LOAD=${CARGO_TARGET_DIR:-$BLF/load/target}/release/edgepbx-bench-blf
[ -x "$LOAD" ] || die "no load generator at $LOAD"
make_workdir blf
export EDGEPBX_LOG=warn

# ---- injection files and credentials ------------------------------------
password() { echo "pw-$1-Bench"; }
LAST=$((FIRST + EXTENSIONS - 1))
{
    echo SEQUENTIAL
    for n in $(seq "$FIRST" "$LAST"); do echo "$DOMAIN;$n;$(password "$n")"; done
} > "$WORK/callees.csv"
# The phone of extension N watches N+1 ... N+WATCHERS (wrapping around).
for i in $(seq 0 $((EXTENSIONS - 1))); do
    n=$((FIRST + i))
    for k in $(seq 1 "$WATCHERS"); do
        echo "$n;$(password "$n");$((FIRST + (i + k) % EXTENSIONS))"
    done
done > "$WORK/watchers.txt"
seq "$FIRST" "$LAST" > "$WORK/targets.txt"

# ---- measuring ----------------------------------------------------------
# The processes of a server: edgepbx is one; Kamailio's main process and
# the workers it forked.
server_pids() {
    local main=$1
    echo "$main"
    ps -o pid= --ppid "$main" 2>/dev/null | tr -d ' ' || true
}
# CPU ticks (user + system) of the given processes.
cpu_ticks() {
    local total=0 pid t
    for pid in "$@"; do
        t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
        total=$((total + t))
    done
    echo "$total"
}
# Proportional set size of the given processes together, KiB.
pss_kib() {
    local total=0 pid k
    for pid in "$@"; do
        k=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0)
        total=$((total + k))
    done
    echo "$total"
}

# memory NAME MAIN: "<Pss of the server's processes, KiB> <Kamailio's
# shared memory in use, bytes, or ->" after SETTLE seconds of quiet.
memory() {
    local name=$1 main=$2 pids shm=-
    sleep "$SETTLE"
    mapfile -t pids < <(server_pids "$main")
    [ "$name" = kamailio ] && shm=$(kamcmd -s "$KAM_CTL" core.shmmem | awk '/real_used/ {print $2}')
    echo "$(pss_kib "${pids[@]}") $shm"
}

# register_and_answer NAME ADDR: every extension registers from one port,
# then SIPp answers every call on it; sets ANSWER_PID.
register_and_answer() {
    local name=$1 addr=$2 port dir=$WORK/$1
    port=$(free_udp_port)
    (cd "$dir" && sipp "$addr" -sf "$ROOT/tests/sipp/register_auth.xml" -inf "$WORK/callees.csv" \
        -key expires 3600 -auth_uri "$DOMAIN" -m "$EXTENSIONS" -r 500 -l 1000 \
        -i 127.0.0.1 -p "$port" -t u1 -nostdin -timeout 60s \
        -trace_stat -stf register-stats.csv >register.log 2>&1) \
        || die "$name: the callees did not all register: $(tail -3 "$dir/register.log")"
    (cd "$dir" && exec sipp -sf "$BLF/answer.xml" -i 127.0.0.1 -p "$port" -t u1 \
        -nostdin -d "$RING_MS" -l 100000 -buff_size 4194304 >answer.log 2>&1) &
    ANSWER_PID=$!
    PIDS+=("$ANSWER_PID")
    sleep 0.5
}

# subscribe NAME ADDR TAG: WATCHERS x EXTENSIONS subscriptions from one
# process (logs NAME/TAG.log) that stays and answers every NOTIFY; waits
# until every one has had its first NOTIFY. Sets LAST_WATCH_PID. The
# process ends its subscriptions and exits once NAME/TAG.stop exists.
subscribe() {
    local name=$1 addr=$2 tag=$3 dir=$WORK/$1 n=0 notified=0 failed=0
    "$LOAD" watch --server "$addr" --domain "$DOMAIN" --pairs "$WORK/watchers.txt" \
        --rate "$SUBSCRIBE_RATE" --expires 3600 --stop-file "$dir/$tag.stop" \
        >"$dir/$tag.log" 2>"$dir/$tag.err" &
    LAST_WATCH_PID=$!
    PIDS+=("$LAST_WATCH_PID")
    for _ in $(seq 1 $((SUBSCRIPTIONS / SUBSCRIBE_RATE * 4 + 60))); do
        sleep 1
        kill -0 "$LAST_WATCH_PID" 2>/dev/null || die "$name: the watchers exited: $(tail -3 "$dir/$tag.err")"
        # "<secs> subscribed N notified N notifies N failed N ended N"
        read -r n notified failed < <(tail -1 "$dir/$tag.log" | awk '{print $3 + 0, $5 + 0, $9 + 0}')
        [ $((n + failed)) -ge "$SUBSCRIPTIONS" ] && [ "$notified" -ge "$n" ] && break
    done
    [ "$n" -ge "$SUBSCRIPTIONS" ] || die "$name: $n of $SUBSCRIPTIONS subscriptions answered 200 ($failed failed): $(head -3 "$dir/$tag.err")"
    echo "$name: $n subscriptions ($tag), $notified first NOTIFYs" >&2
}

# stream NAME ADDR PORT TAG SERVER_PIDS...: the call stream, captured;
# prints "<server CPU ticks> <load generators' CPU ticks> <seconds>
# <calls completed> <calls failed>".
stream() {
    local name=$1 addr=$2 port=$3 tag=$4 dir=$WORK/$1 tcpdump_pid before gen_before after gen_after t0 t1
    shift 4
    local gens=("$ANSWER_PID")
    [ -n "${WATCH_PID:-}" ] && gens+=("$WATCH_PID")
    tcpdump -i lo -n -s 0 -B 65536 -w "$dir/$tag.pcap" "udp port $port" >"$dir/$tag-tcpdump.log" 2>&1 &
    tcpdump_pid=$!
    sleep 1
    before=$(cpu_ticks "$@")
    gen_before=$(cpu_ticks "${gens[@]}" "$tcpdump_pid")
    t0=$(date +%s.%N)
    "$LOAD" call --server "$addr" --domain "$DOMAIN" --user "$CALLER" --password "$(password "$CALLER")" \
        --targets "$WORK/targets.txt" --calls "$CALLS" --rate "$(awk -v c="$CHANGES" 'BEGIN {print c / 3}')" \
        --talk-ms "$TALK_MS" >"$dir/$tag-caller.log" 2>"$dir/$tag-caller.err" &
    local caller=$! caller_ticks=0
    # The caller's own CPU, read until it exits.
    while kill -0 "$caller" 2>/dev/null; do
        caller_ticks=$(awk '{print $14 + $15}' "/proc/$caller/stat" 2>/dev/null || echo "$caller_ticks")
        sleep 0.2
    done
    wait "$caller" || true
    sleep 2  # the last NOTIFYs
    t1=$(date +%s.%N)
    after=$(cpu_ticks "$@")
    gen_after=$(cpu_ticks "${gens[@]}" "$tcpdump_pid")
    kill "$tcpdump_pid"; wait "$tcpdump_pid" 2>/dev/null || true
    grep -q '^0 packets dropped by kernel' "$dir/$tag-tcpdump.log" \
        || echo "$name: tcpdump dropped packets: $(grep dropped "$dir/$tag-tcpdump.log")" >&2
    echo "$((after - before)) $((gen_after - gen_before + caller_ticks))" \
        "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')" \
        "$(awk '$1 == "calls" {print $4, $6}' "$dir/$tag-caller.log")"
}

# latencies NAME PORT EARLY: the fan-out latency of every NOTIFY of the
# capture, in microseconds, one per line with its state, into
# NAME/latencies; prints "<NOTIFYs> <matched> <expected> <changes>".
# EARLY is the event that shows a call ringing (INVITE or RINGING).
latencies() {
    local name=$1 port=$2 early=$3 dir=$WORK/$1
    tcpdump -r "$dir/subscribed.pcap" -tt -n -A 2>/dev/null \
        | awk -v port="$port" -f "$BLF/events.awk" | sort -n -k1,1 > "$dir/events.txt"
    # A NOTIFY answers the latest change, before it, of the watched
    # extension to a state its body shows (a body may show a call that
    # ended next to one that rings).
    awk -v early="$early" -v watchers="$WATCHERS" -v out="$dir/latencies" '
        $2 == early || $2 == "ANSWER" || $2 == "BYE" { last[$2 " " $3] = $1; changes++; next }
        $2 == "NOTIFY" {
            notifies++
            n = split($6, shown, ",")
            best = ""; state = ""
            for (i = 1; i <= n; i++) {
                trigger = (shown[i] == "early") ? early : (shown[i] == "confirmed") ? "ANSWER" : "BYE"
                key = trigger " " $3
                if ((key in last) && (best == "" || last[key] > best)) { best = last[key]; state = shown[i] }
            }
            if (best != "" && $1 - best < 10) {
                printf "%.0f %s\n", ($1 - best) * 1e6, state > out
                matched++
            }
        }
        END { printf "%d %d %d %d\n", notifies, matched, changes * watchers, changes }
    ' "$dir/events.txt"
}

ms() { awk -v us="$1" 'BEGIN {if (us == "-") print "-"; else printf "%.2f", us / 1000}'; }

# run_server NAME: the three phases against one server; appends its row.
ROWS=()
STATE_ROWS=()
MEM_ROWS=()
run_server() {
    local name=$1 addr port main pids early extra_mem=""
    mkdir -p "$WORK/$name"
    case $name in
    edgepbx)
        local data=$WORK/edgepbx-data
        mkdir -p "$data"
        "$EDGEPBX_BIN" tenant add "$TENANT" --domain "$DOMAIN" --data "$data" >/dev/null
        local key
        key=$("$EDGEPBX_BIN" apikey add "$TENANT" --data "$data" 2>/dev/null | grep '^epk_')
        cat > "$WORK/edgepbx.toml" <<TOML
[registrar]
# Kamailio does no reachability pings either.
keepalive_interval_secs = 0
[security]
# SIPp 3.6 (the callees' registrations) answers MD5 challenges only.
digest_algorithms = ["MD5"]
[media]
# Every party is on 127.0.0.1: no relay (Kamailio relays no media).
direct_same_network = true
[calls]
max_calls_per_tenant = 100000
[subscriptions]
max_per_device = 100000
max_per_extension = 100000
max_per_tenant = 1000000
TOML
        start_edgepbx "$WORK/edgepbx.toml" "$data" "$WORK/edgepbx.out" "$WORK/edgepbx.log"
        addr=$STARTED_ADDR
        main=$LAST_PID
        PIDS+=("$main")
        # The extensions come in as one CSV import through the API (the
        # CLI takes about a second per extension here).
        {
            echo "number,name,password"
            for n in $(seq "$FIRST" "$LAST") "$CALLER"; do echo "$n,Bench $n,$(password "$n")"; done
        } > "$WORK/extensions.csv"
        local job state
        job=$(curl -sf -H "Authorization: Bearer $key" -H 'Content-Type: text/csv' \
            --data-binary @"$WORK/extensions.csv" "http://$STARTED_HTTP/api/v1/imports?dry_run=false" \
            | sed 's/.*"id":"\([^"]*\)".*/\1/')
        for _ in $(seq 1 300); do
            state=$(curl -sf -H "Authorization: Bearer $key" "http://$STARTED_HTTP/api/v1/imports/$job")
            case "$state" in *'"state":"running"'*) sleep 0.2;; *) break;; esac
        done
        case "$state" in *'"committed":true'*) ;; *) die "import failed: $state";; esac
        early=INVITE
        ;;
    kamailio)
        local kdb=$WORK/kamailio-db ha1
        mkdir -p "$kdb"
        printf 'table_name(string) table_version(int)\ncred:2\npua:7\n' > "$kdb/version"
        cp /usr/share/kamailio/dbtext/kamailio/pua "$kdb/pua"
        echo 'key_name(string) key_type(int) value_type(int) key_value(string) expires(int)' > "$kdb/cred"
        for n in $(seq "$FIRST" "$LAST") "$CALLER"; do
            ha1=$(printf '%s' "$n:$DOMAIN:$(password "$n")" | md5sum | cut -d' ' -f1)
            echo "$n@$DOMAIN:0:0:$ha1:0" >> "$kdb/cred"
        done
        port=$(free_udp_port)
        addr=127.0.0.1:$port
        KAM_CTL=unix:$WORK/kamailio.ctl
        kamailio -f "$BLF/kamailio.cfg" -l "udp:$addr" \
            -A "DBURL=\"text://$kdb\"" -A "CHILDREN=$KAMAILIO_CHILDREN" \
            -A "SELF=\"sip:$addr\"" -A "PORT=$port" -A "CTL=\"$KAM_CTL\"" \
            -P "$WORK/kamailio.pid" -E -DD -m 512 -M 16 -x tlsf -X tlsf >"$WORK/kamailio.log" 2>&1 &
        main=$!
        PIDS+=("$main")
        sleep 2
        grep -q 'ERROR' "$WORK/kamailio.log" && die "kamailio: $(grep ERROR "$WORK/kamailio.log" | head -3)"
        early=RINGING
        ;;
    esac
    port=${addr##*:}
    WATCH_PID=""
    register_and_answer "$name" "$addr"
    mapfile -t pids < <(server_pids "$main")

    echo "$name: calls without subscriptions..." >&2
    local base_cpu base_gen base_secs base_done base_failed
    read -r base_cpu base_gen base_secs base_done base_failed < <(stream "$name" "$addr" "$port" plain "${pids[@]}")

    # Memory: before, with SUBSCRIPTIONS, with as many again (what one
    # more costs, without what the first ones paid once or left in the
    # allocator), and once the second ones have ended.
    echo "$name: memory, then $SUBSCRIPTIONS subscriptions, twice..." >&2
    local mem0 mem1 mem2 mem3 shm0 shm1 shm2 shm3
    read -r mem0 shm0 < <(memory "$name" "$main")
    subscribe "$name" "$addr" watch
    WATCH_PID=$LAST_WATCH_PID
    read -r mem1 shm1 < <(memory "$name" "$main")
    subscribe "$name" "$addr" watch2
    local watch2_pid=$LAST_WATCH_PID
    read -r mem2 shm2 < <(memory "$name" "$main")
    touch "$WORK/$name/watch2.stop"
    for _ in $(seq 1 $((SUBSCRIPTIONS / SUBSCRIBE_RATE * 4 + 60))); do
        kill -0 "$watch2_pid" 2>/dev/null || break
        sleep 1
    done
    kill -9 "$watch2_pid" 2>/dev/null || true
    local ended
    ended=$(tail -1 "$WORK/$name/watch2.log" | awk '{print $13 + 0}')
    [ "$ended" -eq "$SUBSCRIPTIONS" ] || echo "$name: only $ended of the second $SUBSCRIPTIONS subscriptions ended" >&2
    read -r mem3 shm3 < <(memory "$name" "$main")
    mapfile -t pids < <(server_pids "$main")

    echo "$name: calls with $SUBSCRIPTIONS subscriptions..." >&2
    local cpu gen secs calls_done calls_failed
    read -r cpu gen secs calls_done calls_failed < <(stream "$name" "$addr" "$port" subscribed "${pids[@]}")
    local notifies matched expected changes
    read -r notifies matched expected changes < <(latencies "$name" "$port" "$early")
    kill -0 "$main" 2>/dev/null || die "$name died: $(tail -5 "$WORK/$name.log" 2>/dev/null)"
    local lat=$WORK/$name/latencies
    [ -s "$lat" ] || die "$name: no NOTIFY matched a state change"
    local p50 p99 max
    p50=$(awk '{print $1}' "$lat" | percentile 50)
    p99=$(awk '{print $1}' "$lat" | percentile 99)
    max=$(awk '{print $1}' "$lat" | percentile 100)
    local per_notify marginal per_sub per_sub2 gen_pct
    per_notify=$(awk -v c="$cpu" -v n="$notifies" -v hz="$HZ" 'BEGIN {printf "%.1f", c / hz / n * 1e6}')
    marginal=$(awk -v c="$cpu" -v b="$base_cpu" -v n="$notifies" -v hz="$HZ" 'BEGIN {printf "%.1f", (c - b) / hz / n * 1e6}')
    gen_pct=$(awk -v g="$gen" -v s="$secs" -v hz="$HZ" 'BEGIN {printf "%.0f", g / hz / s * 100}')
    local pct base_pct
    pct=$(awk -v c="$cpu" -v s="$secs" -v hz="$HZ" 'BEGIN {printf "%.0f", c / hz / s * 100}')
    base_pct=$(awk -v c="$base_cpu" -v s="$base_secs" -v hz="$HZ" 'BEGIN {printf "%.0f", c / hz / s * 100}')
    local st
    for st in early confirmed terminated; do
        STATE_ROWS+=("| $name | $st | $(awk -v s="$st" '$2 == s' "$lat" | wc -l) | $(ms "$(awk -v s="$st" '$2 == s {print $1}' "$lat" | percentile 50)") | $(ms "$(awk -v s="$st" '$2 == s {print $1}' "$lat" | percentile 99)") |")
    done
    echo "$name: $notifies NOTIFYs ($matched matched) for $changes state changes; p50 $(ms "$p50") ms, p99 $(ms "$p99") ms" >&2

    per_sub=$(awk -v a="$mem1" -v b="$mem0" -v n="$SUBSCRIPTIONS" 'BEGIN {printf "%.0f", (a - b) * 1024 / n}')
    per_sub2=$(awk -v a="$mem2" -v b="$mem1" -v n="$SUBSCRIPTIONS" 'BEGIN {printf "%.0f", (a - b) * 1024 / n}')
    if [ "$shm0" != - ]; then
        extra_mem=" ($(awk -v a="$shm1" -v b="$shm0" -v n="$SUBSCRIPTIONS" 'BEGIN {printf "%.0f", (a - b) / n}') / $(awk -v a="$shm2" -v b="$shm1" -v n="$SUBSCRIPTIONS" 'BEGIN {printf "%.0f", (a - b) / n}') by its shm count)"
    fi
    ROWS+=("| $name | $calls_done / $CALLS | $notifies | $matched / $expected | $(ms "$p50") | $(ms "$p99") | $(ms "$max") | $per_notify | $marginal | $per_sub / $per_sub2$extra_mem | $pct ($base_pct) | $gen_pct |")
    mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
    mib_b() { awk -v b="$1" 'BEGIN {if (b == "-") print "-"; else printf "%.1f", b / 1048576}'; }
    MEM_ROWS+=("| $name | $(mib "$mem0") | $(mib "$mem1") | $(mib "$mem2") | $(mib "$mem3") | $(mib_b "$shm0") | $(mib_b "$shm1") | $(mib_b "$shm2") | $(mib_b "$shm3") |")

    # Stop this server and its load before the next one.
    kill -9 "$WATCH_PID" "$ANSWER_PID" 2>/dev/null || true
    kill "$main" 2>/dev/null || true
    wait "$main" 2>/dev/null || true
    sleep 1
}

for server in $SERVERS; do
    run_server "$server"
done

# ---- report ------------------------------------------------------------
echo
echo "### BLF benchmark ($(date -u +%Y-%m-%d))"
echo
echo "$EXTENSIONS extensions, each watched by $WATCHERS dialog subscriptions ($SUBSCRIPTIONS over UDP, from"
echo "bench/blf/load); $CALLS calls to them in turn at $CHANGES state changes per second (ringing,"
echo "answered after $RING_MS ms, ended after $TALK_MS ms), each change notified to $WATCHERS subscriptions;"
echo "the callees are one SIPp $(sipp -v 2>&1 | sed -n 's/.*SIPp v\([0-9.]*[0-9]\).*/\1/p' | head -1) process. Loopback; $(nproc) cores ($(cpu_model)),"
echo "servers and load on the same machine."
echo "$BUILD_NOTE; Kamailio $(kamailio -v | awk '/^version:/ {print $3; exit}') with $KAMAILIO_CHILDREN UDP workers,"
echo "presence + presence_dialoginfo + pua + pua_dialoginfo in memory, TLSF memory managers (bench/blf/kamailio.cfg)."
echo "Latency: state change reaching the server to NOTIFY leaving it (loopback capture), ms, of the"
echo "NOTIFYs answering a change (a server may send others, e.g. when a published state expires)."
echo "CPU per NOTIFY: server CPU time over the stream / NOTIFYs sent, µs; marginal: less the same"
echo "stream without subscriptions. Memory: Pss of the server's processes with the subscriptions"
echo "less without, per subscription, bytes; then with as many more again (what each one more"
echo "costs), and once those have ended; for Kamailio also its own count of shared memory in use."
echo
echo "| server | calls completed | NOTIFYs sent | answering a change / expected | p50 (ms) | p99 (ms) | max (ms) | CPU per NOTIFY (µs) | marginal (µs) | memory per subscription, first / next $SUBSCRIPTIONS (B) | server CPU, % of a core (without subscriptions) | load and capture CPU (% of a core) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
echo
echo "| server | Pss before (MiB) | with $SUBSCRIPTIONS | with $((2 * SUBSCRIPTIONS)) | with $SUBSCRIPTIONS again | Kamailio shm in use before (MiB) | with $SUBSCRIPTIONS | with $((2 * SUBSCRIPTIONS)) | with $SUBSCRIPTIONS again |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${MEM_ROWS[@]}"
echo
echo "| server | state shown | NOTIFYs | p50 (ms) | p99 (ms) |"
echo "|---|---|---:|---:|---:|"
printf '%s\n' "${STATE_ROWS[@]}"
