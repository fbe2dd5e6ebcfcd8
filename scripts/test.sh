#!/usr/bin/env bash
# Runs the style checks (rustfmt, clippy with warnings as errors) and every
# test of the workspace, of the guest policies' workspace and of the
# console, first installing what the tests need when it is missing: the
# SIP peers the end-to-end tests drive (SIPp is Debian's sip-tester, baresip
# is Debian's baresip, the svmap/svwar/svcrack scanners are Debian's
# sipvicious), Chromium, Node and playwright-core for the console's
# browser tests, schemathesis for the API's schema test, and the wasm
# targets pinned in rust-toolchain.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
command -v baresip >/dev/null 2>&1 || missing+=(baresip)
command -v svwar >/dev/null 2>&1 || missing+=(sipvicious)
# Voicemail tests: speech synthesised, measured and converted.
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v sox >/dev/null 2>&1 || missing+=(sox)
command -v flite >/dev/null 2>&1 || missing+=(flite)
# The console's browser tests: Debian's chromium driven from Node.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# schemathesis runs in a virtual environment of its own.
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# playwright-core, pinned by tests/browser/package-lock.json.
if ! cmp -s tests/browser/package-lock.json tests/browser/node_modules/.installed-lock.json; then
    (cd tests/browser && npm ci --no-audit --no-fund && cp package-lock.json node_modules/.installed-lock.json)
fi

# schemathesis (PyPI), for the API schema test.
schemathesis_version=4.32.5
venv="$HOME/.cache/edgepbx/schemathesis-$schemathesis_version"
if [ ! -x "$venv/bin/st" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "schemathesis==$schemathesis_version"
fi
export EDGEPBX_SCHEMATHESIS="$venv/bin/st"

# The tests' Python peers (tests/python: the transcriber, the mail server)
# in a virtual environment of their own, remade when the pins change.
test_python="$HOME/.cache/edgepbx/test-python"
if ! cmp -s tests/python/requirements.txt "$test_python/.installed-requirements.txt"; then
    rm -rf "$test_python"
    python3 -m venv "$test_python"
    "$test_python/bin/pip" install --quiet -r tests/python/requirements.txt
    cp tests/python/requirements.txt "$test_python/.installed-requirements.txt"
fi
export EDGEPBX_TEST_PYTHON="$test_python/bin/python"

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
# The style guide's checks: formatting, and clippy with warnings as errors.
cargo fmt --all --check || status=$?
cargo clippy --workspace --all-targets --locked -- -D warnings || status=$?
cargo test --workspace --no-fail-fast || status=$?

# The guest policies' own tests (SDK, built-in policy, examples), natively.
guest_target=${EDGEPBX_GUEST_TARGET_DIR:-guest-policies/target}
(cd guest-policies && CARGO_TARGET_DIR="$(cd .. && mkdir -p "$guest_target" && cd "$guest_target" && pwd)" \
    cargo test --locked --workspace --no-fail-fast) || status=$?

# The console's own unit tests, natively.
console_target=${EDGEPBX_CONSOLE_TARGET_DIR:-console/target}
(cd console && CARGO_TARGET_DIR="$(cd .. && mkdir -p "$console_target" && cd "$console_target" && pwd)" \
    cargo test --locked --no-fail-fast) || status=$?
exit "$status"
