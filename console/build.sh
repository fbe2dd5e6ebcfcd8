#!/usr/bin/env bash
# Builds the console into OUT_DIR: index.html, style.css, the JS glue and
# the WebAssembly module, ready to be served at `/` (the server embeds them).
#
#   console/build.sh OUT_DIR
#
# Environment:
#   EDGEPBX_CONSOLE_TARGET_DIR  cargo target directory (default: console/target)
#   EDGEPBX_TOOLS_DIR           where wasm-bindgen-cli is installed when the one
#                               on PATH is missing or another version
#                               (default: $HOME/.cache/edgepbx/tools)
#   CARGO_BUILD_JOBS            parallel jobs (default here: 1)
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUT_DIR" >&2
    exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$1"
out="$(cd "$1" && pwd)"
target_dir="${EDGEPBX_CONSOLE_TARGET_DIR:-$here/target}"
tools_dir="${EDGEPBX_TOOLS_DIR:-$HOME/.cache/edgepbx/tools}"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"

cd "$here"

# The pinned toolchain (rust-toolchain.toml) needs the wasm target.
if command -v rustup >/dev/null 2>&1; then
    if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
        rustup target add wasm32-unknown-unknown
    fi
fi

cargo build --release --locked --target wasm32-unknown-unknown --target-dir "$target_dir"
wasm="$target_dir/wasm32-unknown-unknown/release/edgepbx-console.wasm"

# wasm-bindgen must be the version of the wasm-bindgen crate in Cargo.lock.
want="$(awk '
    $0 == "name = \"wasm-bindgen\"" { found = 1; next }
    found && /^version = / { gsub(/"/, "", $3); print $3; exit }
' Cargo.lock)"
if [[ -z "$want" ]]; then
    echo "build.sh: no wasm-bindgen in Cargo.lock" >&2
    exit 1
fi
bindgen=""
for candidate in "$(command -v wasm-bindgen || true)" "$tools_dir/bin/wasm-bindgen"; do
    if [[ -n "$candidate" && -x "$candidate" ]] &&
        [[ "$("$candidate" --version 2>/dev/null)" == "wasm-bindgen $want" ]]; then
        bindgen="$candidate"
        break
    fi
done
if [[ -z "$bindgen" ]]; then
    echo "build.sh: installing wasm-bindgen-cli $want into $tools_dir" >&2
    # --locked first (the versions its authors tested); without it when a
    # locked dependency is not to be had.
    cargo install wasm-bindgen-cli --version "$want" --root "$tools_dir" --locked ||
        cargo install wasm-bindgen-cli --version "$want" --root "$tools_dir"
    bindgen="$tools_dir/bin/wasm-bindgen"
fi

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
"$bindgen" --target web --no-typescript --remove-name-section --remove-producers-section --out-dir "$stage" --out-name edgepbx_console "$wasm"

# No wasm-opt: measured on this app, -Oz shrinks the module by 7% raw but
# leaves the gzipped transfer the same (315 KB either way).

cp "$stage/edgepbx_console.js" "$stage/edgepbx_console_bg.wasm" "$out/"
cp "$here/static/style.css" "$out/style.css"
cat >"$out/index.html" <<'HTML'
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgepbx console</title>
<link rel="stylesheet" href="style.css">
<link rel="preload" href="edgepbx_console_bg.wasm" as="fetch" type="application/wasm" crossorigin>
</head>
<body>
<noscript>The edgepbx console needs JavaScript and WebAssembly.</noscript>
<script type="module" src="main.js"></script>
</body>
</html>
HTML

# The loader is a file of its own: the server's Content-Security-Policy
# allows no inline script.
cat >"$out/main.js" <<'JS'
import init from "./edgepbx_console.js";
init({ module_or_path: "./edgepbx_console_bg.wasm" }).catch((e) => {
  document.body.textContent = "The console could not start: " + e;
});
JS

ls -l "$out" >&2
