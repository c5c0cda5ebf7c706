//! Failures counted by [`Cause`]: a fixed table, one slot per cause.

use crate::outcome::Cause;

/// Failed attempts per cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CauseCounts {
    counts: [u64; Cause::COUNT],
}

impl CauseCounts {
    pub fn add(&mut self, cause: Cause, count: u64) {
        self.counts[cause.index()] += count;
    }

    #[must_use]
    pub fn get(&self, cause: Cause) -> u64 {
        self.counts[cause.index()]
    }

    /// Every failure counted.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Causes with a non-zero count, in [`Cause::all`]'s order.
    pub fn iter(&self) -> impl Iterator<Item = (Cause, u64)> + '_ {
        Cause::all()
            .map(|cause| (cause, self.get(cause)))
            .filter(|(_, count)| *count > 0)
    }

    /// The cause with the most failures (the first in [`Cause::all`]'s order on a tie); `None`
    /// without failures.
    #[must_use]
    pub fn dominant(&self) -> Option<Cause> {
        self.iter()
            .fold(
                None,
                |best: Option<(Cause, u64)>, (cause, count)| match best {
                    Some((_, most)) if most >= count => best,
                    _ => Some((cause, count)),
                },
            )
            .map(|(cause, _)| cause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dominant_cause_has_the_most_failures_and_ties_go_to_the_first() {
        let mut counts = CauseCounts::default();
        assert_eq!(counts.dominant(), None);
        counts.add(Cause::Network, 2);
        counts.add(Cause::Target, 2);
        assert_eq!(counts.dominant(), Some(Cause::Target));
        counts.add(Cause::Network, 1);
        assert_eq!(counts.dominant(), Some(Cause::Network));
        assert_eq!(counts.total(), 5);
        assert_eq!(
            counts.iter().collect::<Vec<_>>(),
            vec![(Cause::Target, 2), (Cause::Network, 3)]
        );
    }
}
