//! Decision latency of the built-in routing policy.
//!
//! For each scenario, the same call is decided 20 000 times (after 2 000
//! warm-up decisions) through `PolicyEngine::run`: a fresh store,
//! instantiation from the pre-instantiated module, the call, the answer's
//! validation; then by the same policy compiled natively (the SDK's test
//! host standing in for the host functions). Each decision is timed on its
//! own. That is one round; the scenarios take turns for `ROUNDS` rounds (5
//! unless the environment says otherwise), so that a slow phase of a noisy
//! machine falls on one round rather than on one scenario. The table gives,
//! per scenario, the median over the rounds of p50 and p99 in
//! microseconds (with the range of p99), decisions per second on one
//! thread (1 / mean), and the sandbox/native ratio of the medians. A last
//! row measures the machine rather than the sandbox: native decisions,
//! repeated to take as long as a sandboxed one, show the p99 that any task
//! of that length gets here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use edgepbx_policy::bindings as host;
use edgepbx_policy::{Limits, MemoryKv, PolicyEngine, StaticDirectory};
use edgepbx_policy_default::Builtin;
use edgepbx_policy_sdk::testing::{self as sdk, CallBuilder, TestHost};
use edgepbx_policy_sdk::{GroupStrategy, Policy};

const WARMUP: usize = 2_000;
/// Rounds when `ROUNDS` is not set.
const DEFAULT_ROUNDS: usize = 5;
/// The server's global allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RUNS: usize = 20_000;

fn host_extension(number: &str) -> host::Extension {
    host::Extension {
        number: number.into(),
        name: format!("Extension {number}"),
        ring_timeout_secs: 20,
        dnd: false,
        forwarding: host::Forwarding {
            unconditional: None,
            busy: None,
            no_answer: None,
            offline: None,
        },
        follow_me: None,
        voicemail: true,
        presence: host::Presence::Available,
        devices: vec![host::Device {
            id: "desk".into(),
            user_agent: None,
        }],
    }
}

fn host_call(number: &str, destination: host::Destination) -> host::Call {
    host::Call {
        id: "bench".into(),
        tenant: "BENCH".into(),
        caller: host::Caller {
            number: "200".into(),
            name: Some("Caller 200".into()),
            kind: host::CallerKind::Internal,
            source: "200".into(),
        },
        dialled: host::Dialled {
            number: number.into(),
            alias_of: None,
            destination,
        },
        now: host::LocalTime {
            year: 2026,
            month: 1,
            day: 7,
            weekday: host::Weekday::Wednesday,
            hour: 10,
            minute: 0,
            time_zone: "Europe/Berlin".into(),
        },
        entropy: 0,
        history: Vec::new(),
    }
}

struct Stats {
    p50: f64,
    p99: f64,
    per_second: f64,
}

fn measure(mut decide: impl FnMut()) -> Stats {
    for _ in 0..WARMUP {
        decide();
    }
    let mut samples: Vec<Duration> = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        decide();
        samples.push(start.elapsed());
    }
    let total: Duration = samples.iter().sum();
    samples.sort();
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    Stats {
        p50: micros(samples[RUNS / 2]),
        p99: micros(samples[RUNS * 99 / 100]),
        per_second: RUNS as f64 / total.as_secs_f64(),
    }
}

fn main() {
    let engine = PolicyEngine::new(Limits::default(), None).expect("the engine starts");
    let builtin = engine.builtin().clone();
    let members = ["101", "102", "103", "104"];
    let directory = Arc::new(StaticDirectory {
        extensions: members.iter().map(|m| host_extension(m)).collect(),
        groups: Vec::new(),
    });
    let kv = Arc::new(MemoryKv::new(1000));
    let test_host = members.iter().fold(TestHost::default(), |h, m| {
        h.with_extension(sdk::extension(m))
    });

    let scenarios: Vec<(&str, host::Call, edgepbx_policy_sdk::Call)> = vec![
        (
            "extension: ring all devices",
            host_call("100", host::Destination::Extension(host_extension("100"))),
            CallBuilder::to_extension(sdk::extension("100")).build(),
        ),
        (
            "round-robin group of 4 (4 host lookups, 1 counter)",
            host_call(
                "600",
                host::Destination::Group(host::Group {
                    number: "600".into(),
                    name: "Sales".into(),
                    strategy: host::GroupStrategy::RoundRobin,
                    members: members.iter().map(|m| (*m).to_owned()).collect(),
                    ring_timeout_secs: 15,
                    no_answer: None,
                }),
            ),
            CallBuilder::to_group(sdk::group("600", GroupStrategy::RoundRobin, &members)).build(),
        ),
    ];

    let rounds = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&r| r > 0)
        .unwrap_or(DEFAULT_ROUNDS);
    let mut results: Vec<(Vec<Stats>, Vec<Stats>)> =
        scenarios.iter().map(|_| (Vec::new(), Vec::new())).collect();
    let mut reference = Vec::new();
    for _ in 0..rounds {
        for ((_, call, native_call), (sandbox, native)) in scenarios.iter().zip(&mut results) {
            sandbox.push(measure(|| {
                let decision = engine
                    .run(&builtin, "BENCH", call, directory.clone(), kv.clone())
                    .expect("the built-in policy decides");
                std::hint::black_box(decision);
            }));
            native.push(measure(|| {
                std::hint::black_box(Builtin::decide(native_call, &test_host));
            }));
        }
        // What this machine gives any task of that length: the native
        // decision of the first scenario, repeated until it takes as long
        // as the sandboxed one, measured the same way.
        let Some(sandbox) = results[0].0.last() else {
            continue;
        };
        let first_call = &scenarios[0].2;
        let start = Instant::now();
        for _ in 0..WARMUP {
            std::hint::black_box(Builtin::decide(first_call, &test_host));
        }
        let each = start.elapsed().as_secs_f64() * 1e6 / WARMUP as f64;
        let repeat = (sandbox.p50 / each.max(0.001)).round().max(1.0) as usize;
        reference.push(measure(|| {
            for _ in 0..repeat {
                std::hint::black_box(Builtin::decide(first_call, &test_host));
            }
        }));
    }

    println!("{rounds} rounds of {RUNS} decisions per scenario; medians over the rounds.\n");
    println!(
        "| scenario | sandbox p50 (µs) | sandbox p99 (µs) | p99 range (µs) | sandbox decisions/s (1 thread) | native p50 (µs) | native p99 (µs) | sandbox / native (p50) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for ((name, _, _), (sandbox, native)) in scenarios.iter().zip(&results) {
        let p50 = median(sandbox, |s| s.p50);
        let (low, high) = range(sandbox, |s| s.p99);
        println!(
            "| {name} | {p50:.1} | {:.1} | {low:.1}–{high:.1} | {:.0} | {:.2} | {:.2} | {:.0} |",
            median(sandbox, |s| s.p99),
            median(sandbox, |s| s.per_second),
            median(native, |s| s.p50),
            median(native, |s| s.p99),
            p50 / median(native, |s| s.p50).max(0.001)
        );
    }
    let (low, high) = range(&reference, |s| s.p99);
    println!(
        "| reference: the first scenario's native decision, repeated to last as long as its sandboxed one | {:.1} | {:.1} | {low:.1}–{high:.1} | | | | |",
        median(&reference, |s| s.p50),
        median(&reference, |s| s.p99),
    );
}

/// The median of one statistic over the rounds.
fn median(rounds: &[Stats], statistic: impl Fn(&Stats) -> f64) -> f64 {
    let mut values: Vec<f64> = rounds.iter().map(statistic).collect();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The smallest and largest value of one statistic over the rounds.
fn range(rounds: &[Stats], statistic: impl Fn(&Stats) -> f64) -> (f64, f64) {
    rounds
        .iter()
        .map(statistic)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), v| {
            (low.min(v), high.max(v))
        })
}
