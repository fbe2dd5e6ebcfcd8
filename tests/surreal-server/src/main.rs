//! `edgepbx-surreal-server start ...` is `surreal start ...`: SurrealDB's
//! server, with the storage engines the tests use (SurrealKV and memory).
//! The end-to-end tests of several nodes and the scale-out benchmark start
//! it on loopback; production runs the official `surreal` binary or
//! SurrealDB on TiKV.

use std::process::ExitCode;

use surrealdb_server::core::CommunityComposer;

fn main() -> ExitCode {
    surrealdb_server::init(CommunityComposer())
}
