//! Keys gathered into a number: ended by `#`, by a pause after the last
//! key, or by reaching the longest length.

use std::time::{Duration, Instant};

/// The most keys a number may have (a PIN's maximum, and more than any
/// extension number).
pub const MAX_KEYS: usize = 16;

/// A number being typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collector {
    keys: String,
    /// When the number ends if no key comes.
    deadline: Option<Instant>,
}

/// What a key did to the number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Collected {
    /// More keys may come.
    More,
    /// The number is complete.
    Done(String),
}

impl Collector {
    /// Nothing typed yet.
    pub fn new() -> Collector {
        Collector::default()
    }

    /// Whether a key has been typed.
    pub fn started(&self) -> bool {
        !self.keys.is_empty()
    }

    /// A key: `#` ends the number, `*` starts it over, a digit is added.
    pub fn key(&mut self, now: Instant, key: char, pause: Duration) -> Collected {
        match key {
            '#' => return Collected::Done(std::mem::take(&mut self.keys)),
            '*' => self.keys.clear(),
            '0'..='9' => self.keys.push(key),
            _ => {}
        }
        if self.keys.len() >= MAX_KEYS {
            return Collected::Done(std::mem::take(&mut self.keys));
        }
        self.deadline = Some(now + pause);
        Collected::More
    }

    /// When the pause after the last key ends the number.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline.filter(|_| self.started())
    }

    /// The number, if the pause after its last key has passed.
    pub fn timeout(&mut self, now: Instant) -> Option<String> {
        let due = self.deadline().is_some_and(|d| now >= d);
        due.then(|| {
            self.deadline = None;
            std::mem::take(&mut self.keys)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pound_a_pause_or_the_length_ends_a_number() {
        let t0 = Instant::now();
        let pause = Duration::from_secs(4);
        let mut c = Collector::new();
        assert_eq!(c.key(t0, '1', pause), Collected::More);
        assert_eq!(c.key(t0, '2', pause), Collected::More);
        assert_eq!(c.key(t0, '#', pause), Collected::Done("12".into()));
        assert!(!c.started());
        c.key(t0, '9', pause);
        c.key(t0, '*', pause);
        c.key(t0, '4', pause);
        assert_eq!(c.timeout(t0 + Duration::from_secs(3)), None);
        assert_eq!(c.timeout(t0 + pause), Some("4".into()));
        assert_eq!(c.deadline(), None);
        let mut last = Collected::More;
        for _ in 0..MAX_KEYS {
            last = c.key(t0, '7', pause);
        }
        assert_eq!(last, Collected::Done("7".repeat(MAX_KEYS)));
    }
}
