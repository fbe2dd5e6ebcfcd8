//! Brute-force protection: authentication failures are counted per source
//! (an IPv4 address, or an IPv6 /64, which one host may hold whole) over a
//! sliding window. Past a first threshold the source is
//! throttled (its failing requests are answered at most once a second, the
//! rest dropped); past a second it is blocked (everything it sends is
//! ignored) for a while, and the block is logged.
//!
//! Time is passed in, so the rules are tested with virtual time.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::config::SecurityConfig;

/// Most sources tracked at once; past it, idle entries are evicted first,
/// then the least-failing of a sample.
const MAX_TRACKED_SOURCES: usize = 65_536;
/// Entries a full table looks at to choose which one to forget.
const EVICTION_SAMPLE: usize = 64;

/// What to do with a request from a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Process it.
    Allow,
    /// Ignore it: the source is blocked.
    Blocked,
}

/// What to do with a failure response to a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReply {
    /// Send the response.
    Send,
    /// Drop it: the source is throttled and was answered less than a second ago.
    Suppress,
}

#[derive(Debug)]
struct Source {
    /// Start of the current counting window.
    window_start: Instant,
    /// Failures inside the window.
    failures: u32,
    /// When the last failure response was sent (throttling).
    last_reply: Option<Instant>,
    /// Blocked until this time.
    blocked_until: Option<Instant>,
}

/// Failure counters for every source that failed recently.
#[derive(Debug)]
pub struct Throttle {
    window: Duration,
    throttle_after: u32,
    block_after: u32,
    block_for: Duration,
    sources: HashMap<IpAddr, Source>,
    /// When a full table was last swept of idle sources (a sweep reads
    /// every entry: at most one a second).
    swept: Option<Instant>,
}

impl Throttle {
    /// Builds the throttle from the security settings.
    pub fn new(config: &SecurityConfig) -> Self {
        Throttle {
            window: Duration::from_secs(config.failure_window_secs),
            throttle_after: config.throttle_after_failures,
            block_after: config.block_after_failures,
            block_for: Duration::from_secs(config.block_secs),
            sources: HashMap::new(),
            swept: None,
        }
    }

    /// Decides whether a request from `ip` is processed at all.
    pub fn admit(&mut self, now: Instant, ip: IpAddr) -> Admission {
        match self
            .sources
            .get(&source_of(ip))
            .and_then(|s| s.blocked_until)
        {
            Some(until) if now < until => Admission::Blocked,
            _ => Admission::Allow,
        }
    }

    /// Records an authentication failure of `ip` and says whether its
    /// failure response is sent. Returns whether this failure started a block
    /// as the second value, so the caller logs it once.
    pub fn record_failure(&mut self, now: Instant, ip: IpAddr) -> (FailureReply, bool) {
        let ip = source_of(ip);
        if self.sources.len() >= MAX_TRACKED_SOURCES
            && !self.sources.contains_key(&ip)
            && !self.make_room(now)
        {
            // Full of blocked sources: this one is answered, not counted.
            return (FailureReply::Send, false);
        }
        let window = self.window;
        let source = self.sources.entry(ip).or_insert(Source {
            window_start: now,
            failures: 0,
            last_reply: None,
            blocked_until: None,
        });
        if now.duration_since(source.window_start) > window {
            source.window_start = now;
            source.failures = 0;
        }
        source.failures = source.failures.saturating_add(1);
        if source.failures >= self.block_after {
            let started = source.blocked_until.is_none_or(|until| until <= now);
            source.blocked_until = Some(now.checked_add(self.block_for).unwrap_or(now));
            source.failures = 0;
            source.window_start = now;
            return (FailureReply::Suppress, started);
        }
        if source.failures > self.throttle_after {
            let recent = source
                .last_reply
                .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1));
            if recent {
                return (FailureReply::Suppress, false);
            }
        }
        source.last_reply = Some(now);
        (FailureReply::Send, false)
    }

    /// Forgets sources whose window and block have both ended.
    pub fn evict(&mut self, now: Instant) {
        let window = self.window;
        self.sources.retain(|_, s| {
            let blocked = s.blocked_until.is_some_and(|until| until > now);
            blocked || now.duration_since(s.window_start) <= window
        });
    }

    /// Makes room for one more source in a full table; false when every
    /// source in it is blocked. Idle sources go first; when all are live
    /// (a wide attack), the one with the fewest failures of a sample goes,
    /// never a block: the sources closest to a block stay counted, so an
    /// attacker cannot wash its own count away by failing from many other
    /// addresses.
    fn make_room(&mut self, now: Instant) -> bool {
        if self
            .swept
            .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1))
        {
            self.swept = Some(now);
            self.evict(now);
            if self.sources.len() < MAX_TRACKED_SOURCES {
                return true;
            }
        }
        let victim = self
            .sources
            .iter()
            .filter(|(_, s)| s.blocked_until.is_none_or(|until| until <= now))
            .take(EVICTION_SAMPLE)
            .min_by_key(|(_, s)| (s.failures, s.window_start))
            .map(|(ip, _)| *ip);
        victim.is_some_and(|ip| self.sources.remove(&ip).is_some())
    }

    /// Number of sources tracked.
    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.sources.len()
    }
}

/// The source failures of `ip` count against: the address itself for
/// IPv4 (and IPv4-mapped IPv6), its /64 for IPv6.
pub(crate) fn source_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_host_counts_per_64_however_many_addresses_it_uses() {
        let mut t = Throttle::new(&config());
        let now = Instant::now();
        for i in 1..=6u16 {
            let ip = IpAddr::V6([0x2001, 0xdb8, 0, 0, 0, 0, 0, i].into());
            t.record_failure(now, ip);
        }
        let same_64 = IpAddr::V6([0x2001, 0xdb8, 0, 0, 9, 9, 9, 9].into());
        assert_eq!(t.admit(now, same_64), Admission::Blocked);
        let next_64 = IpAddr::V6([0x2001, 0xdb8, 0, 1, 0, 0, 0, 1].into());
        assert_eq!(t.admit(now, next_64), Admission::Allow);
        // An IPv4-mapped address is its IPv4 address.
        let v4: IpAddr = [192, 0, 2, 9].into();
        let mapped = IpAddr::V6(std::net::Ipv4Addr::new(192, 0, 2, 9).to_ipv6_mapped());
        for _ in 0..6 {
            t.record_failure(now, mapped);
        }
        assert_eq!(t.admit(now, v4), Admission::Blocked);
        assert_eq!(t.tracked(), 2);
    }

    fn config() -> SecurityConfig {
        SecurityConfig {
            failure_window_secs: 60,
            throttle_after_failures: 3,
            block_after_failures: 6,
            block_secs: 600,
            ..SecurityConfig::default()
        }
    }

    #[test]
    fn throttles_then_blocks_then_releases() {
        let mut t = Throttle::new(&config());
        let ip: IpAddr = [192, 0, 2, 1].into();
        let t0 = Instant::now();
        for i in 0..3 {
            let now = t0 + Duration::from_millis(i * 10);
            assert_eq!(t.record_failure(now, ip), (FailureReply::Send, false));
        }
        // Fourth failure 10 ms after the last answer: throttled.
        let now = t0 + Duration::from_millis(40);
        assert_eq!(t.record_failure(now, ip), (FailureReply::Suppress, false));
        // A second later it is answered again.
        let now = t0 + Duration::from_millis(1_100);
        assert_eq!(t.record_failure(now, ip), (FailureReply::Send, false));
        assert_eq!(t.admit(now, ip), Admission::Allow);
        let (_, started) = t.record_failure(now, ip);
        assert!(started, "sixth failure starts the block");
        assert_eq!(t.admit(now, ip), Admission::Blocked);
        let later = now + Duration::from_secs(601);
        assert_eq!(t.admit(later, ip), Admission::Allow);
    }

    #[test]
    fn window_resets_count() {
        let mut t = Throttle::new(&config());
        let ip: IpAddr = [192, 0, 2, 2].into();
        let t0 = Instant::now();
        for i in 0..5u64 {
            t.record_failure(t0 + Duration::from_secs(i * 61), ip);
        }
        assert_eq!(t.admit(t0 + Duration::from_secs(400), ip), Admission::Allow);
    }

    #[test]
    fn other_sources_are_unaffected() {
        let mut t = Throttle::new(&config());
        let bad: IpAddr = [192, 0, 2, 3].into();
        let good: IpAddr = [192, 0, 2, 4].into();
        let now = Instant::now();
        for _ in 0..6 {
            t.record_failure(now, bad);
        }
        assert_eq!(t.admit(now, bad), Admission::Blocked);
        assert_eq!(t.admit(now, good), Admission::Allow);
    }

    #[test]
    fn a_full_table_keeps_counting_the_sources_closest_to_a_block() {
        let mut t = Throttle::new(&config());
        let now = Instant::now();
        let attacker: IpAddr = [198, 51, 100, 1].into();
        for _ in 0..5 {
            t.record_failure(now, attacker);
        }
        // A wide attack fills the table with one failure per address...
        for n in 0..(MAX_TRACKED_SOURCES as u32 + 1_000) {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n));
            t.record_failure(now, ip);
        }
        assert!(t.tracked() <= MAX_TRACKED_SOURCES);
        // ...and the attacker's count is still there: its sixth failure
        // blocks it.
        let (_, started) = t.record_failure(now, attacker);
        assert!(started);
        assert_eq!(t.admit(now, attacker), Admission::Blocked);
    }

    #[test]
    fn eviction_forgets_idle_sources() {
        let mut t = Throttle::new(&config());
        let now = Instant::now();
        t.record_failure(now, [192, 0, 2, 5].into());
        t.evict(now + Duration::from_secs(120));
        assert_eq!(t.tracked(), 0);
    }
}
