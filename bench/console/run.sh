#!/usr/bin/env bash
# The console's budgets (issue: console and REST API):
#  1. transfer size: the compressed wasm, JS and CSS the browser loads, as
#     the server sends them (gzip), at most 500 KB;
#  2. BLF latency: with EXTENSIONS extensions and PAGES consoles open on the
#     live dashboard, the time from a REGISTER's 200 OK to the tile's change
#     in every console's DOM; p99 under 1 s.
#
#   bench/console/run.sh            # 1000 extensions, 20 consoles, 100 rounds
#   EXTENSIONS=200 PAGES=5 ROUNDS=20 bench/console/run.sh
#
# Needs node, chromium and tests/browser/node_modules (./scripts/test.sh
# installs them), curl, and the bench-server build of edgepbx (built here).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/bench/common.sh"
require node chromium curl gzip
[ -d "$ROOT/tests/browser/node_modules/playwright-core" ] || die "run ./scripts/test.sh first (playwright-core)"
EXTENSIONS=${EXTENSIONS:-1000}
PAGES=${PAGES:-20}
ROUNDS=${ROUNDS:-100}
FIRST=1000
select_edgepbx
make_workdir console
cat >"$WORK/edgepbx.toml" <<TOML
[registrar]
keepalive_interval_secs = 0
[security]
digest_algorithms = ["MD5", "SHA-256"]
TOML
cli() { "$EDGEPBX_BIN" --data "$WORK/data" "$@" 2>>"$WORK/cli.log"; }
cli tenant add ACME --domain acme.test >/dev/null
cli user add bench@acme.test --role tenant-admin --tenant ACME --password "bench password 1" >/dev/null
key=$(cli apikey add ACME | grep '^epk_')
start_edgepbx "$WORK/edgepbx.toml" "$WORK/data" "$WORK/out" "$WORK/log"
PIDS+=("$LAST_PID")
http="http://$STARTED_HTTP"

# 1. Transfer size, as served.
total=0
echo "## console transfer size (gzip, as served)"
for file in edgepbx_console_bg.wasm edgepbx_console.js style.css main.js index.html; do
    bytes=$(curl -s -H 'Accept-Encoding: gzip' "$http/$file" | wc -c)
    printf '%-26s %8d bytes\n' "$file" "$bytes"
    total=$((total + bytes))
done
printf '%-26s %8d bytes (budget 500000)\n' "total" "$total"

# 2. BLF latency: the extensions come in by CSV import through the API.
{
    echo "number,name,password"
    for n in $(seq "$FIRST" $((FIRST + EXTENSIONS - 1))); do echo "$n,Bench $n,pw-bench-$n"; done
} >"$WORK/extensions.csv"
started=$(date +%s%N)
job=$(curl -sf -H "Authorization: Bearer $key" -H 'Content-Type: text/csv' \
    --data-binary @"$WORK/extensions.csv" "$http/api/v1/imports?dry_run=false" | sed 's/.*"id":"\([^"]*\)".*/\1/')
for _ in $(seq 1 300); do
    state=$(curl -sf -H "Authorization: Bearer $key" "$http/api/v1/imports/$job")
    case "$state" in *'"state":"running"'*) sleep 0.2;; *) break;; esac
done
case "$state" in *'"committed":true'*) ;; *) die "import failed: $state";; esac
echo
echo "## CSV import of $EXTENSIONS extensions (one transaction): $(( ($(date +%s%N) - started) / 1000000 )) ms"
echo
echo "## BLF latency: $EXTENSIONS extensions, $PAGES consoles, $((ROUNDS * 2)) changes"
URL="$http/" EMAIL=bench@acme.test PASSWORD="bench password 1" SIP="$STARTED_ADDR" DOMAIN=acme.test \
    FIRST=$FIRST COUNT="$EXTENSIONS" CHANGES="$ROUNDS" PAGES="$PAGES" PASSWORD_PREFIX=pw-bench- \
    node "$ROOT/bench/console/blf.mjs" >"$WORK/latencies"
samples=$(wc -l <"$WORK/latencies")
printf 'samples %d  p50 %s ms  p99 %s ms  max %s ms (budget: p99 < 1000 ms)\n' "$samples" \
    "$(percentile 50 <"$WORK/latencies")" "$(percentile 99 <"$WORK/latencies")" \
    "$(percentile 100 <"$WORK/latencies")"
echo "$BUILD_NOTE; $(nproc) cores, $(cpu_model)"
