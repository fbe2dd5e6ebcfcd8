//! What one subscription costs the engine in heap: a PBX holds one per
//! BLF key of every phone, tens of thousands. Counted with a counting
//! allocator around a batch of subscriptions made the way phones make
//! them (through the digest challenge, every NOTIFY answered), once every
//! transaction of the batch has ended. A batch as large goes first, so
//! that what the engine grows once (transaction tables at their peak) is
//! not counted against the subscriptions.

mod sim;

use std::alloc::System;
use std::time::Duration;

use edgepbx_engine::subscriptions::SubscriptionsConfig;
use sim::watcher::Watcher;
use sim::{Sim, acme, config, ring_dialled};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Phones per batch...
const PHONES: u16 = 200;

/// ...each with this many BLF keys (a subscription each), as in the BLF
/// benchmark.
const KEYS: u16 = 10;

/// Most heap bytes one subscription may hold: half the 2 KiB the product
/// promises per subscription, the rest being the allocator's share.
const MOST_BYTES: usize = 1_024;

/// Subscribes `PHONES` phones on ports from `first_port`, each to `KEYS`
/// of ACME's extensions, and lets every transaction end.
fn subscribe_batch(sim: &mut Sim, first_port: u16) {
    for phone in 0..PHONES {
        let port = first_port + phone;
        let own = 100 + phone % 10;
        let mut watcher = Watcher::new(&own.to_string(), port);
        for key in 0..KEYS {
            watcher.call_id = format!("blf-{port}-{key}");
            watcher.tag = None;
            let target = (100 + (own + key) % 10).to_string();
            let answer = watcher.subscribe(sim, &target, "dialog", 3_600);
            assert_eq!(answer.status, 200);
            watcher.notifies(sim, 200);
        }
        // What the simulated network kept for this phone is the
        // harness's, not the engine's.
        sim.inbox.remove(&watcher.ua.addr);
        sim.flows.remove(&watcher.ua.addr);
    }
    sim.advance(Duration::from_secs(40));
}

#[test]
fn a_subscription_holds_under_a_kibibyte() {
    let mut cfg = config();
    cfg.subscriptions = SubscriptionsConfig {
        max_per_extension: usize::from(PHONES * KEYS),
        max_per_tenant: usize::from(PHONES * KEYS) * 2,
        ..SubscriptionsConfig::default()
    };
    let mut sim = Sim::new(cfg, acme(false, &[]), &[], ring_dialled(20));
    subscribe_batch(&mut sim, 10_000);
    let region = Region::new(ALLOCATOR);
    subscribe_batch(&mut sim, 20_000);
    let change = region.change();
    // A reallocation counts its growth as allocated, its shrinking as
    // deallocated.
    let held = change
        .bytes_allocated
        .saturating_sub(change.bytes_deallocated);
    let per_subscription = held / usize::from(PHONES * KEYS);
    eprintln!("heap per subscription: {per_subscription} bytes");
    assert!(
        per_subscription < MOST_BYTES,
        "{per_subscription} bytes per subscription"
    );
}
