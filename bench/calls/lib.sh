# Shared by the call benchmarks (sourced after ../common.sh, with ROOT,
# WORK, PIDS and EDGEPBX_BIN set): an edgepbx installation with a caller
# (1001) and a callee (2001), and the callee SIPp.

DOMAIN=bench.test
TENANT=BENCH

# start_bench_edgepbx NAME EXTRA_TOML: installs and starts an edgepbx with
# the two extensions; sets STARTED_ADDR and LAST_PID (in PIDS too).
start_bench_edgepbx() {
    local name=$1 extra=$2 data=$WORK/$1-data
    mkdir -p "$data"
    "$EDGEPBX_BIN" tenant add "$TENANT" --domain "$DOMAIN" --data "$data" >/dev/null
    for number in 1001 2001; do
        "$EDGEPBX_BIN" ext add "$TENANT" "$number" --name "Bench $number" \
            --password "pw-$number-Bench" --data "$data" >/dev/null
    done
    cat > "$WORK/$name.toml" <<TOML
[security]
# SIPp 3.6 reads only the first challenge.
digest_algorithms = ["MD5", "SHA-256"]
[registrar]
keepalive_interval_secs = 0
[calls]
max_calls_per_tenant = 100000
[sip]
max_transactions = 200000
$extra
TOML
    start_edgepbx "$WORK/$name.toml" "$data" "$WORK/$name.out" "$WORK/$name.log"
    PIDS+=("$LAST_PID")
}

# start_callee NAME SERVER [SIPP ARGS...]: the callee registers 2001 from a
# port of its own, then answers every INVITE on it (the scenario
# CALLEE_SCENARIO, bench/calls/answer.xml by default) with the extra SIPp
# arguments (e.g. -rtp_echo).
start_callee() {
    local name=$1 server=$2 port dir=$WORK/$1-callee
    shift 2
    port=$(free_udp_port)
    mkdir -p "$dir"
    printf 'SEQUENTIAL\n%s;2001;pw-2001-Bench\n' "$DOMAIN" > "$dir/callee.csv"
    (cd "$dir" && sipp "$server" -sf "$ROOT/tests/sipp/register_auth.xml" -inf callee.csv \
        -key expires 3600 -auth_uri "$DOMAIN" -m 1 -i 127.0.0.1 -p "$port" -t u1 \
        -nostdin -timeout 20s >register.log 2>&1) || die "the callee did not register with $name"
    (cd "$dir" && exec sipp -sf "${CALLEE_SCENARIO:-$ROOT/bench/calls/answer.xml}" -i 127.0.0.1 -p "$port" -t u1 \
        -nostdin -l 100000 "$@" >answer.log 2>&1) &
    PIDS+=($!)
    sleep 0.5
}
