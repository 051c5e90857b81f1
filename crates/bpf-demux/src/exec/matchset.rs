//! [`MatchSet`]: the filters that accepted one frame, with their return
//! values; a lookup by filter id is one array read.

use super::FilterId;

/// Every filter that accepts a frame, with its return value (non-zero).
///
/// Filled by [`Automaton::matches_into`](super::Automaton::matches_into);
/// [`get`](Self::get) is O(1): `slot[id]` holds the position the filter's
/// match was pushed at, and it is the filter's iff that position holds it
/// now (a filter matches at most once per frame, so a stale slot points
/// past the end or at another filter). Clearing is O(1) for the same
/// reason.
#[derive(Clone, Debug, Default)]
pub struct MatchSet {
    matches: Vec<(FilterId, u32)>,
    slot: Vec<u32>,
}

impl PartialEq for MatchSet {
    fn eq(&self, other: &MatchSet) -> bool {
        self.matches == other.matches
    }
}
impl Eq for MatchSet {}

impl MatchSet {
    /// An empty set.
    pub fn new() -> MatchSet {
        MatchSet::default()
    }
    /// Empties the set (O(1)).
    pub fn clear(&mut self) {
        self.matches.clear();
    }
    /// Filters that matched.
    pub fn len(&self) -> usize {
        self.matches.len()
    }
    /// Whether no filter matched.
    pub fn is_empty(&self) -> bool {
        self.matches.is_empty()
    }
    /// `(filter, return value)` pairs, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (FilterId, u32)> + '_ {
        self.matches.iter().copied()
    }
    /// The return value of `filter`, if it matched: O(1).
    pub fn get(&self, filter: FilterId) -> Option<u32> {
        let at = *self.slot.get(filter.index())? as usize;
        self.matches.get(at).filter(|m| m.0 == filter).map(|m| m.1)
    }
    /// Sorts by filter id (for comparisons and stable output).
    pub fn sort(&mut self) {
        self.matches.sort_unstable();
        for (i, m) in self.matches.iter().enumerate() {
            self.slot[m.0.index()] = i as u32;
        }
    }
    /// The pairs, in the order [`iter`](Self::iter) gives them.
    pub fn as_slice(&self) -> &[(FilterId, u32)] {
        &self.matches
    }
    /// Clears the set for a frame of a set whose ids are below `bound`.
    pub(crate) fn start(&mut self, bound: usize) {
        self.matches.clear();
        if self.slot.len() < bound {
            self.slot.resize(bound, u32::MAX);
        }
    }
    /// Records `f`'s match (at most one per filter between two `start`s).
    #[inline]
    pub(crate) fn push(&mut self, f: FilterId, v: u32) {
        self.slot[f.index()] = self.matches.len() as u32;
        self.matches.push((f, v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_see_only_this_frames_matches() {
        let mut m = MatchSet::new();
        m.start(8);
        m.push(FilterId(5), 50);
        m.push(FilterId(2), 20);
        assert_eq!(
            (m.get(FilterId(5)), m.get(FilterId(2))),
            (Some(50), Some(20))
        );
        m.sort();
        assert_eq!(m.as_slice(), [(FilterId(2), 20), (FilterId(5), 50)]);
        assert_eq!(
            (m.get(FilterId(5)), m.get(FilterId(2))),
            (Some(50), Some(20))
        );
        // Next frame: 2 matches again at another position, 5 does not.
        m.start(8);
        m.push(FilterId(7), 70);
        m.push(FilterId(2), 21);
        assert_eq!(m.get(FilterId(5)), None, "a stale slot of 5 points at 2");
        assert_eq!(m.get(FilterId(2)), Some(21));
        assert_eq!(m.get(FilterId(100)), None, "past every slot");
        m.start(8);
        assert_eq!(m.get(FilterId(7)), None);
    }
}
