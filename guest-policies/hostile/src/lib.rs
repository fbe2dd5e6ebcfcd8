//! A policy that misbehaves in the way the dialled number asks, so that
//! the host's tests can show that the sandbox holds:
//!
//! | dialled | behaviour |
//! |---|---|
//! | `loop` | never returns |
//! | `bomb` | allocates until memory runs out |
//! | `trap`, or `8727` (its letters on a phone's keypad: SIP calls dial digits) | panics (a trap) |
//! | `deep` | recurses until the stack overflows |
//! | `huge` | answers with 1000 ring targets |
//! | `long` | forwards to a 1 MiB "number" |
//! | `spam` | writes 10 000 log lines and oversized key-value entries, then answers |
//! | `count` | increments the counter `calls` and rejects with 486 |
//! | `fresh` | counts its decisions in a static and rejects with 400 + that count |
//! | anything else | rejects with 486 and the reason "hostile" |

use std::sync::atomic::{AtomicU16, Ordering};

use edgepbx_policy_sdk::{Call, Decision, Host, Level, Policy, Ring};

/// Decisions this instance has made: 1 in each decision if every decision
/// gets a fresh instance.
static DECISIONS: AtomicU16 = AtomicU16::new(0);

/// Recurses without end (the optimiser cannot see through `black_box`).
#[allow(unconditional_recursion, reason = "overflowing the stack is the point")]
fn depth(n: u64) -> u64 {
    let next = std::hint::black_box(n + 1);
    depth(next).wrapping_add(std::hint::black_box(n))
}

/// The misbehaving policy.
pub struct Hostile;

edgepbx_policy_sdk::export_policy!(Hostile);

impl Policy for Hostile {
    fn decide(call: &Call, host: &impl Host) -> Decision {
        match call.dialled.number.as_str() {
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "trap" | "8727" => panic!("hostile trap"),
            "deep" => Decision::reject(u16::try_from(depth(0) % 200 + 400).unwrap_or(486)),
            "huge" => Decision::ring((0..1000).fold(Ring::simultaneous(), |ring, i| {
                ring.extension(i.to_string(), 20)
            })),
            "long" => Decision::forward("1".repeat(1 << 20)),
            "spam" => {
                for i in 0..10_000 {
                    host.log(Level::Info, &format!("line {i}\nforged line"));
                }
                let refused = host.kv_set("k", &"v".repeat(4096)).is_err()
                    && host.kv_set(&"k".repeat(4096), "v").is_err();
                Decision::reject_with(
                    486,
                    if refused {
                        "limits held"
                    } else {
                        "limits broken"
                    },
                )
            }
            "count" => {
                let _ = host.kv_increment("calls", 1);
                Decision::reject(486)
            }
            "fresh" => {
                Decision::reject(400 + DECISIONS.fetch_add(1, Ordering::Relaxed).min(99) + 1)
            }
            _ => Decision::reject_with(486, "hostile"),
        }
    }
}
