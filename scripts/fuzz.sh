#!/usr/bin/env bash
# Runs every cargo-fuzz target of the repository for a bounded time each,
# then prints a summary (executions, coverage, corpus, crashes) and exits
# non-zero when any target crashed. FUZZING.md describes the targets.
#
#   scripts/fuzz.sh [-t SECONDS] [TARGET...]
#
# SECONDS per target: -t, else $EDGEPBX_FUZZ_SECONDS, else 120. Without
# TARGETs, all of them run. Builds go to $EDGEPBX_FUZZ_TARGET_DIR (default
# ~/.cache/edgepbx/fuzz-target), outside the clone; corpora and crash
# artifacts stay in each fuzz package (corpus/, artifacts/, ignored by
# git). Corpora are seeded from testdata/ where it has inputs of the kind.
#
# Needs the nightly toolchain (libFuzzer with AddressSanitizer); installs
# cargo-fuzz when missing. The policy target is built with the pinned
# toolchain and no sanitizer, see host/policy/fuzz/Cargo.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

seconds=${EDGEPBX_FUZZ_SECONDS:-120}
if [ "${1:-}" = "-t" ]; then
    seconds=${2:?"-t needs a number of seconds"}
    shift 2
fi
case $seconds in
    '' | *[!0-9]*) echo "not a number of seconds: $seconds" >&2; exit 2 ;;
esac
target_dir=${EDGEPBX_FUZZ_TARGET_DIR:-$HOME/.cache/edgepbx/fuzz-target}
mkdir -p "$target_dir/logs"
# The policy crate's build script compiles the built-in policy; its
# target directory too stays outside the clone.
export EDGEPBX_GUEST_TARGET_DIR=${EDGEPBX_GUEST_TARGET_DIR:-$target_dir/guests}

command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked

# package directory, toolchain (empty: rust-toolchain.toml), sanitizer, target
targets=(
    "host/sip/fuzz nightly address parse_datagram"
    "host/sip/fuzz nightly address stream_framer"
    "host/sip/fuzz nightly address digest_header"
    "host/sip/fuzz nightly address digest_exchange"
    "media/fuzz nightly address sdp"
    "media/fuzz nightly address rtp"
    "host/model/fuzz nightly address csv_import"
    "host/policy/fuzz - none policy_decision"
)

torture=testdata/sip-torture
# Copies every file named on stdin into the corpus directory $1.
seed_files() {
    while read -r file; do cp "$file" "$1/seed-$(basename "$file")"; done
}
# Seeds the corpus of a target from testdata/, where testdata has inputs.
seed() {
    local target=$1 corpus=$2
    case $target in
        parse_datagram | stream_framer)
            find "$torture" -type f \( -name '*.dat' -o -path '*/rfc5118/wire/*' \) | seed_files "$corpus"
            ;;
        digest_header)
            # The values of the authentication headers of the messages.
            local n=0
            while IFS= read -r line; do
                n=$((n + 1))
                printf '%s' "${line#*:}" | tr -d '\r' >"$corpus/seed-header-$n"
            done < <(cat "$torture"/*.dat | grep -aiE '^(proxy-)?(authorization|www-authenticate|proxy-authenticate):' || true)
            ;;
        sdp)
            # The bodies of the messages that carry a session description.
            local file
            while read -r file; do
                awk 'body { print } /^\r?$/ { body = 1 }' "$file" >"$corpus/seed-$(basename "$file")"
            done < <(grep -ail '^content-type: *application/sdp' "$torture"/*.dat "$torture"/rfc5118/wire/* || true)
            ;;
    esac
}

declare -a summary
crashed=0
for entry in "${targets[@]}"; do
    read -r package toolchain sanitizer target <<<"$entry"
    if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$target"; then
        continue
    fi
    corpus=$root/$package/corpus/$target
    artifacts=$root/$package/artifacts/$target
    mkdir -p "$corpus" "$artifacts"
    seed "$target" "$corpus"
    before=$(find "$corpus" -type f | wc -l)
    cargo=(cargo)
    [ "$toolchain" = - ] || cargo+=("+$toolchain")
    log=$target_dir/logs/$target.log
    echo "== $target: $seconds s (log: $log)"
    started=$(date +%s)
    status=0
    (cd "$package" && "${cargo[@]}" fuzz run --fuzz-dir . --target-dir "$target_dir" \
        --sanitizer "$sanitizer" "$target" "$corpus" -- \
        -max_total_time="$seconds" -print_final_stats=1) \
        >"$log" 2>&1 || status=$?
    elapsed=$(($(date +%s) - started))
    runs=$(grep -aoE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1 || true)
    stats=$(grep -aE '^#[0-9]+' "$log" | grep -a 'cov:' | tail -1 || true)
    cov=$(grep -oE 'cov: [0-9]+' <<<"$stats" | grep -oE '[0-9]+' || true)
    features=$(grep -oE 'ft: [0-9]+' <<<"$stats" | grep -oE '[0-9]+' || true)
    after=$(find "$corpus" -type f | wc -l)
    found=$(grep -aoE "Test unit written to [^ ]+" "$log" | awk '{print $NF}' | sed "s|^\./|$package/|" || true)
    crashes=$(grep -c . <<<"$found" || true)
    if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then
        crashes="build or run failed"
    fi
    if [ "$status" -ne 0 ]; then
        crashed=1
        echo "   $target failed ($status); see $log"
        [ -z "$found" ] || echo "   artifact: $found"
    fi
    summary+=("$(printf '%-16s %12s %7s %8s %8s %7s  %s' "$target" "${runs:-?}" "${cov:-?}" \
        "${features:-?}" "$before>$after" "${elapsed}s" "$crashes")")
done

echo
printf '%-16s %12s %7s %8s %8s %7s  %s\n' target runs cov features corpus time crashes
printf '%s\n' "${summary[@]}"
exit "$crashed"
