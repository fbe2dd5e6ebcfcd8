//! The timers of RFC 3261 §17 (table 4) and RFC 6026, and the set of
//! armed deadlines every transaction shares.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::{Next, TransactionKey};

/// Shortest interval between two retransmissions of one message. Guards
/// against a configured T1 or T2 of zero turning a retransmission timer
/// into a busy loop.
const MIN_RETRANSMIT_INTERVAL: Duration = Duration::from_millis(1);

/// Timer D's floor on unreliable transports (§17.1.1.2: "at least 32
/// seconds").
const TIMER_D_FLOOR: Duration = Duration::from_secs(32);

// ---------------------------------------------------------------------------
// Configuration

/// The base timer values of RFC 3261 §17.1.1.1 and table 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Round-trip time estimate; first retransmission interval.
    pub t1: Duration,
    /// Longest retransmission interval for non-INVITE requests and INVITE
    /// responses.
    pub t2: Duration,
    /// Longest time a message stays in the network.
    pub t4: Duration,
}

impl Default for Timers {
    /// T1 = 500 ms, T2 = 4 s, T4 = 5 s.
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Timers {
    /// First retransmission interval (timers A, E, G).
    pub(super) fn first_interval(&self) -> Duration {
        self.t1.max(MIN_RETRANSMIT_INTERVAL)
    }

    /// The cap on timers E and G.
    pub(super) fn cap(&self) -> Duration {
        self.t2.max(MIN_RETRANSMIT_INTERVAL)
    }

    /// 64·T1: timers B, F, H, and J on unreliable transports; RFC 6026
    /// timers L and M.
    pub(super) fn transaction_timeout(&self) -> Duration {
        self.t1.saturating_mul(64)
    }

    /// Timer D: at least 32 s (and at least 64·T1, so a server with the
    /// same T1 has stopped retransmitting) on unreliable transports, zero
    /// on reliable ones.
    pub(super) fn timer_d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            TIMER_D_FLOOR.max(self.transaction_timeout())
        }
    }

    /// Timers I and K: T4 on unreliable transports, zero on reliable ones.
    pub(super) fn t4_or_zero(&self, reliable: bool) -> Duration {
        if reliable { Duration::ZERO } else { self.t4 }
    }

    /// Timer J: 64·T1 on unreliable transports, zero on reliable ones.
    pub(super) fn timer_j(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.transaction_timeout()
        }
    }
}

/// Settings of a [`TransactionLayer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransactionConfig {
    /// T1, T2, T4.
    pub timers: Timers,
    /// Most live transactions (client and server together). At the limit,
    /// the non-INVITE server transactions that have answered and only wait
    /// out timer J on UDP, to absorb retransmissions, make room, oldest
    /// first: a retransmission of such a request is then handled as a new
    /// request. Only when none is left is a new request returned as
    /// [`Incoming::Rejected`] with [`TransactionError::TooManyTransactions`]
    /// (answer 503), and a new client transaction refused with the same
    /// error.
    pub max_transactions: usize,
    /// When set, an INVITE server transaction whose TU has sent no response
    /// after this long sends `100 Trying` itself (§17.2.1). `None` leaves
    /// provisional responses entirely to the TU.
    pub auto_trying: Option<Duration>,
}

impl Default for TransactionConfig {
    /// Default timers, 50 000 transactions, automatic 100 after 200 ms.
    fn default() -> Self {
        TransactionConfig {
            timers: Timers::default(),
            max_transactions: 50_000,
            auto_trying: Some(Duration::from_millis(200)),
        }
    }
}

/// The timers of RFC 3261 table 4 and RFC 6026, plus the automatic 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Timer {
    A,
    B,
    D,
    E,
    F,
    G,
    H,
    I,
    J,
    K,
    L,
    M,
    /// Send 100 Trying for an INVITE the TU has not answered.
    Trying,
}

// ---------------------------------------------------------------------------
// Shared output of the state machines

/// Armed timers of every transaction, ordered by deadline.
#[derive(Debug, Default)]
pub(super) struct Deadlines {
    pub(super) set: BTreeSet<(Instant, TransactionKey, Timer)>,
}

/// The timers one transaction has armed, with their deadlines, so that
/// disarming finds their entries in [`Deadlines`].
#[derive(Debug)]
pub(super) struct Armed {
    key: TransactionKey,
    list: Vec<(Timer, Instant)>,
}

impl Armed {
    /// No timer armed yet for transaction `key`.
    pub(super) fn new(key: TransactionKey) -> Armed {
        Armed {
            key,
            list: Vec::new(),
        }
    }

    /// Arms (or re-arms) `timer` at `at`; `None` (a deadline beyond what
    /// `Instant` can hold) leaves it disarmed.
    pub(super) fn arm(&mut self, deadlines: &mut Deadlines, timer: Timer, at: Option<Instant>) {
        self.disarm(deadlines, timer);
        if let Some(at) = at {
            deadlines.set.insert((at, self.key, timer));
            self.list.push((timer, at));
        }
    }

    /// Disarms `timer` if it is armed.
    pub(super) fn disarm(&mut self, deadlines: &mut Deadlines, timer: Timer) {
        if let Some(at) = self.list.iter().position(|(t, _)| *t == timer) {
            let (_, deadline) = self.list.swap_remove(at);
            deadlines.set.remove(&(deadline, self.key, timer));
        }
    }

    /// Disarms every timer (the transaction ends).
    pub(super) fn disarm_all(&mut self, deadlines: &mut Deadlines) {
        for (timer, deadline) in self.list.drain(..) {
            deadlines.set.remove(&(deadline, self.key, timer));
        }
    }

    /// `timer` fired: it is no longer armed.
    pub(super) fn fired(&mut self, timer: Timer) {
        self.list.retain(|(t, _)| *t != timer);
    }

    /// Waits `after` with `timer` before the transaction terminates; zero
    /// (reliable transports) terminates now.
    pub(super) fn linger(
        &mut self,
        deadlines: &mut Deadlines,
        now: Instant,
        timer: Timer,
        after: Duration,
    ) -> Next {
        if after.is_zero() {
            Next::Terminate
        } else {
            self.arm(deadlines, timer, deadline(now, after));
            Next::Stay
        }
    }
}

/// `now + after`, or `None` past the end of `Instant`'s range.
pub(super) fn deadline(now: Instant, after: Duration) -> Option<Instant> {
    now.checked_add(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_values() {
        let t = Timers::default();
        assert_eq!(t.transaction_timeout(), Duration::from_secs(32));
        assert_eq!(t.timer_d(false), Duration::from_secs(32));
        assert_eq!(t.timer_d(true), Duration::ZERO);
        assert_eq!(t.t4_or_zero(false), Duration::from_secs(5));
        assert_eq!(t.t4_or_zero(true), Duration::ZERO);
        assert_eq!(t.timer_j(false), Duration::from_secs(32));
        assert_eq!(t.timer_j(true), Duration::ZERO);
        let slow = Timers {
            t1: Duration::from_secs(1),
            ..t
        };
        assert_eq!(slow.timer_d(false), Duration::from_secs(64));
        let zero = Timers {
            t1: Duration::ZERO,
            t2: Duration::ZERO,
            t4: Duration::ZERO,
        };
        assert_eq!(zero.first_interval(), MIN_RETRANSMIT_INTERVAL);
        assert_eq!(zero.cap(), MIN_RETRANSMIT_INTERVAL);
    }
}
