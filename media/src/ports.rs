//! The range of UDP ports media legs use: an even port for RTP, the next
//! odd one for RTCP (RFC 3550 §11). Each call's pair is drawn at random
//! (the caller supplies the randomness: a CSPRNG in the server), so a
//! stranger cannot predict the next call's ports from the last one's; a
//! freed pair cools down before it is drawn again, so late packets of the
//! old call land nowhere.

use std::collections::{BTreeSet, VecDeque};

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
    /// Pairs in use or cooling down, by index.
    taken: BTreeSet<u16>,
    /// Freed pairs, oldest first, not drawn until the queue is full.
    cooling: VecDeque<u16>,
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
            taken: BTreeSet::new(),
            cooling: VecDeque::new(),
        })
    }

    /// Freed pairs kept out of the draw: an eighth of the range, at most
    /// 1,024.
    fn cooling_capacity(&self) -> usize {
        usize::from(self.pairs / 8).min(1024)
    }

    /// A free pair, drawn with `random` (uniform over `u64`): its RTP port
    /// (RTCP is the next one). The first free pair from the drawn one on.
    pub fn allocate(&mut self, random: u64) -> Result<u16, PortError> {
        let start = u16::try_from(random % u64::from(self.pairs)).unwrap_or(0);
        let free = (0..self.pairs)
            .map(|step| (start + step) % self.pairs)
            .find(|index| !self.taken.contains(index));
        let index = match free {
            Some(index) => index,
            // Only cooling pairs are left: the one freed longest ago.
            None => self.cooling.pop_front().ok_or(PortError::Exhausted)?,
        };
        self.taken.insert(index);
        Ok(self.first + 2 * index)
    }

    /// Returns a pair (by its RTP port); unknown ports are ignored.
    pub fn release(&mut self, rtp_port: u16) {
        let Some(offset) = rtp_port.checked_sub(self.first) else {
            return;
        };
        let index = offset / 2;
        if offset % 2 != 0 || !self.taken.contains(&index) || self.cooling.contains(&index) {
            return;
        }
        self.cooling.push_back(index);
        while self.cooling.len() > self.cooling_capacity() {
            if let Some(cooled) = self.cooling.pop_front() {
                self.taken.remove(&cooled);
            }
        }
    }

    /// Pairs in use.
    pub fn in_use(&self) -> usize {
        self.taken.len() - self.cooling.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_drawn_from_the_random_value() {
        let mut range = PortRange::new(10_000, 10_009).expect("a range");
        // Five pairs: 7 % 5 = 2 draws 10004; a taken pair moves the draw
        // to the next free one.
        assert_eq!(range.allocate(7), Ok(10_004));
        assert_eq!(range.allocate(2), Ok(10_006));
        assert_eq!(range.allocate(u64::MAX), Ok(10_000));
    }

    #[test]
    fn pairs_are_even_limited_and_cool_down_once_freed() {
        // 10002/3 … 10016/7: eight pairs (10018 has no partner), one of
        // which cools down.
        let mut range = PortRange::new(10_001, 10_018).expect("a range");
        let ports: Vec<u16> = (0..8).filter_map(|i| range.allocate(i).ok()).collect();
        assert_eq!(
            ports,
            [
                10_002, 10_004, 10_006, 10_008, 10_010, 10_012, 10_014, 10_016
            ]
        );
        assert_eq!(range.allocate(0), Err(PortError::Exhausted));
        range.release(10_004);
        range.release(10_006);
        assert_eq!(range.in_use(), 6);
        // 10004 cools (the queue holds one); 10006 pushed it out.
        assert_eq!(range.allocate(1), Ok(10_004));
        // Only the cooling pair is left: it is taken rather than failing.
        assert_eq!(range.allocate(2), Ok(10_006));
        assert_eq!(range.allocate(0), Err(PortError::Exhausted));
        range.release(10_005); // an RTCP port: not a pair
        range.release(9_000);
        range.release(10_004);
        range.release(10_004); // twice: once
        assert_eq!(range.in_use(), 7);
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
