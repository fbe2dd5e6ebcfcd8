//! The range of UDP ports media legs use: an even port for RTP, the next
//! odd one for RTCP (RFC 3550 §11), handed out round-robin so a port just
//! freed is not reused at once (late packets of the old call land nowhere).

use std::collections::BTreeSet;

/// Why no pair could be handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PortError {
    /// The range is too small or not ordered.
    #[error("the media port range {first}–{last} holds no RTP/RTCP pair")]
    EmptyRange {
        /// First port.
        first: u16,
        /// Last port.
        last: u16,
    },
    /// Every pair is in use.
    #[error("every media port pair is in use")]
    Exhausted,
}

/// Hands out RTP/RTCP port pairs from a range.
#[derive(Debug, Clone)]
pub struct PortRange {
    /// First RTP port (even).
    first: u16,
    /// Number of pairs.
    pairs: u16,
    /// Where the next search starts, as a pair index.
    next: u16,
    in_use: BTreeSet<u16>,
}

impl PortRange {
    /// The pairs within `first..=last`.
    pub fn new(first: u16, last: u16) -> Result<PortRange, PortError> {
        let even = first.checked_add(first % 2).filter(|&f| f < last);
        let Some(start) = even else {
            return Err(PortError::EmptyRange { first, last });
        };
        // Pairs whose RTCP port is still within the range.
        let pairs = (last - start).div_ceil(2);
        if pairs == 0 {
            return Err(PortError::EmptyRange { first, last });
        }
        Ok(PortRange {
            first: start,
            pairs,
            next: 0,
            in_use: BTreeSet::new(),
        })
    }

    /// Starts the round-robin at the pair `seed` selects (modulo the number
    /// of pairs): servers sharing a range (or one restarted) do not all
    /// begin with its first port, and a call's ports are harder to guess.
    pub fn starting_at(mut self, seed: u64) -> PortRange {
        self.next = u16::try_from(seed % u64::from(self.pairs)).unwrap_or(0);
        self
    }

    /// A free pair: its RTP port (RTCP is the next one).
    pub fn allocate(&mut self) -> Result<u16, PortError> {
        for step in 0..self.pairs {
            let index = (self.next + step) % self.pairs;
            if self.in_use.insert(index) {
                self.next = (index + 1) % self.pairs;
                return Ok(self.first + 2 * index);
            }
        }
        Err(PortError::Exhausted)
    }

    /// Returns a pair (by its RTP port); unknown ports are ignored.
    pub fn release(&mut self, rtp_port: u16) {
        if let Some(offset) = rtp_port.checked_sub(self.first)
            && offset % 2 == 0
        {
            self.in_use.remove(&(offset / 2));
        }
    }

    /// Pairs in use.
    pub fn in_use(&self) -> usize {
        self.in_use.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_moves_the_start() {
        let mut range = PortRange::new(10_000, 10_009)
            .expect("a range")
            .starting_at(7);
        // Five pairs: 7 % 5 = 2, so 10004 first, then on round the range.
        let ports: Vec<u16> = (0..5).filter_map(|_| range.allocate().ok()).collect();
        assert_eq!(ports, [10_004, 10_006, 10_008, 10_000, 10_002]);
    }

    #[test]
    fn pairs_are_even_round_robin_and_limited() {
        let mut range = PortRange::new(10_001, 10_008).expect("a range");
        // 10002/3, 10004/5, 10006/7: three pairs (10008 has no partner).
        assert_eq!(range.allocate(), Ok(10_002));
        assert_eq!(range.allocate(), Ok(10_004));
        range.release(10_002);
        assert_eq!(range.allocate(), Ok(10_006), "a freed pair waits its turn");
        assert_eq!(range.allocate(), Ok(10_002));
        assert_eq!(range.allocate(), Err(PortError::Exhausted));
        assert_eq!(range.in_use(), 3);
        range.release(10_003); // an RTCP port: not a pair
        range.release(9_000);
        assert_eq!(range.in_use(), 3);
    }

    #[test]
    fn empty_ranges_are_refused() {
        assert!(PortRange::new(10_000, 10_000).is_err());
        assert!(PortRange::new(10_001, 10_002).is_err());
        assert!(PortRange::new(20_000, 10_000).is_err());
        assert!(PortRange::new(u16::MAX, u16::MAX).is_err());
        assert!(PortRange::new(10_000, 10_001).is_ok());
    }
}
