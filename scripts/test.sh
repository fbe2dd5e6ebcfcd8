#!/usr/bin/env bash
# Runs every test of the workspace and of the guest policies' workspace,
# first installing what the tests need when it is missing: the SIP peers the end-to-end tests drive (SIPp is
# Debian's sip-tester, baresip is Debian's baresip) and the wasm targets
# pinned in rust-toolchain.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
command -v baresip >/dev/null 2>&1 || missing+=(baresip)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

installed_targets=$(rustup target list --installed)
for target in wasm32-unknown-unknown wasm32-wasip2; do
    grep -qx "$target" <<<"$installed_targets" || rustup target add "$target"
done

# One build of everything the tests need, the end-to-end tests' binary
# included. Building the workspace with all targets resolves features the
# way `cargo test --workspace` does, so the test step compiles nothing twice.
cargo build --workspace --all-targets
export EDGEPBX_BIN="${CARGO_TARGET_DIR:-target}/debug/edgepbx"
export EDGEPBX_BIN="$(cd "$(dirname "$EDGEPBX_BIN")" && pwd)/edgepbx"
status=0
cargo test --workspace --no-fail-fast || status=$?

# The guest policies' own tests (SDK, built-in policy, examples), natively.
guest_target=${EDGEPBX_GUEST_TARGET_DIR:-guest-policies/target}
(cd guest-policies && CARGO_TARGET_DIR="$(cd .. && mkdir -p "$guest_target" && cd "$guest_target" && pwd)" \
    cargo test --locked --workspace --no-fail-fast) || status=$?
exit "$status"
