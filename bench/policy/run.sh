#!/usr/bin/env bash
# Decision latency of the built-in policy: in the wasmtime sandbox (fresh
# store and instantiation per decision, as the server runs it) and compiled
# natively, in the same process. Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --locked >&2
exec ./target/release/edgepbx-bench-policy "$@"
