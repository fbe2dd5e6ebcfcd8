//! Prunes history past its retention ([`RetentionConfig`]): at start, then
//! every hour. A failed round is logged and tried again an hour later.

use std::time::{Duration, SystemTime};

use edgepbx_store::{History, Store};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::RetentionConfig;

/// Time between two rounds.
const EVERY: Duration = Duration::from_secs(3_600);
const DAY: Duration = Duration::from_secs(86_400);

/// Runs rounds until shutdown.
pub async fn run(store: Store, config: RetentionConfig, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = round(&store, &config) => {}
            _ = shutdown.changed() => return,
        }
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One round: each kind of history with a retention, pruned.
async fn round(store: &Store, config: &RetentionConfig) {
    for (history, days) in [
        (History::RegistrationEvents, config.registration_events_days),
        (History::CallRecords, config.call_records_days),
        (History::Audit, config.audit_days),
    ] {
        if days == 0 {
            continue;
        }
        let cutoff = SystemTime::now()
            .checked_sub(DAY * days)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        match store.retention().prune(history, cutoff).await {
            Ok(0) => {}
            Ok(deleted) => info!(
                ?history,
                deleted, days, "history past its retention deleted"
            ),
            Err(error) => {
                warn!(?history, %error, "pruning history failed; trying again in an hour")
            }
        }
    }
}
