# Shared by the benchmark scripts (sourced, not run): tool checks, ports,
# percentiles, and the edgepbx binary to measure. Expects ROOT (repository
# root) to be set.

die() { echo "$(basename "$0"): $*" >&2; exit 1; }

# require TOOL... : fail early, naming the Debian package, when one is missing.
require() {
    for tool in "$@"; do
        command -v "$tool" >/dev/null || die "$tool is missing (Debian: sip-tester, kamailio, coreutils, iproute2, gawk)"
    done
}

# A UDP port nobody listens on (checked, not reserved: good enough here).
free_udp_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 30000))
        if [ -z "$(ss -Hlun "sport = :$port")" ] && [ -z "$(ss -Hltn "sport = :$port")" ]; then
            echo "$port"; return
        fi
    done
}

# percentile P (0-100) of the numbers on stdin
percentile() { sort -n | awk -v p="$1" '{v[NR]=$1} END {if (NR==0) {print "-"; exit} i=int((p/100)*NR+0.999999); if (i<1) i=1; print v[i]}'; }

# Sets EDGEPBX_BIN and BUILD_NOTE: EDGEPBX_BIN as given, else the
# bench-server profile if the workspace defines one, else release.
select_edgepbx() {
    local target=${CARGO_TARGET_DIR:-$ROOT/target}
    if [ -n "${EDGEPBX_BIN:-}" ]; then
        BUILD_NOTE="edgepbx binary given as EDGEPBX_BIN=$EDGEPBX_BIN"
    elif grep -q '^\[profile\.bench-server\]' "$ROOT/Cargo.toml"; then
        cargo build --profile bench-server -p edgepbx >&2
        EDGEPBX_BIN=$target/bench-server/edgepbx
        BUILD_NOTE="edgepbx built with --profile bench-server"
    else
        cargo build --release -p edgepbx >&2
        EDGEPBX_BIN=$target/release/edgepbx
        BUILD_NOTE="edgepbx built with --release (no bench-server profile defined)"
    fi
    [ -x "$EDGEPBX_BIN" ] || die "no edgepbx binary at $EDGEPBX_BIN"
    case "$EDGEPBX_BIN" in */debug/*) BUILD_NOTE="$BUILD_NOTE (a DEBUG build: numbers understate edgepbx)";; esac
}

# start_edgepbx CONFIG DATA OUT LOG: starts `edgepbx serve` on loopback
# port 0 and waits for its ready line; sets STARTED_ADDR (its UDP address),
# STARTED_HTTP (its HTTP address) and LAST_PID. Not in a subshell: the pid
# must reach the caller.
start_edgepbx() {
    local config=$1 data=$2 out=$3 log=$4 addr=""
    "$EDGEPBX_BIN" serve --config "$config" --data "$data" \
        --sip-udp 127.0.0.1:0 --sip-tcp 127.0.0.1:0 --http 127.0.0.1:0 >"$out" 2>"$log" &
    LAST_PID=$!
    for _ in $(seq 1 600); do
        addr=$(sed -n 's/^edgepbx ready sip-udp=\([^ ]*\) .*/\1/p' "$out")
        [ -n "$addr" ] && break
        kill -0 "$LAST_PID" 2>/dev/null || die "edgepbx exited: $(tail -5 "$log")"
        sleep 0.1
    done
    [ -n "$addr" ] || die "edgepbx not ready after 60 s"
    STARTED_ADDR=$addr
    STARTED_HTTP=$(sed -n 's/^edgepbx ready .* http=\([^ ]*\).*/\1/p' "$out")
}

# The machine, for report headers.
cpu_model() { awk -F: '/model name/ {gsub(/^ /,"",$2); print $2; exit}' /proc/cpuinfo; }

# make_workdir NAME: a fresh work directory in WORK, the PIDS array, and a
# trap that stops those processes and removes the directory on exit
# (KEEP=1 keeps it).
make_workdir() {
    WORK=$(mktemp -d "/tmp/edgepbx-bench-$1.XXXXXX")
    PIDS=()
    trap cleanup EXIT
}
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; else echo "work directory kept: $WORK" >&2; fi
}
