//! A bounded map for caches of things a client can make more of (API users, bearers): two
//! generations of at most half the bound each. Entries go into the young one; when it is
//! full, the old one is dropped and the young one becomes old. A hit in the old generation
//! through [`Generations::get`] moves the entry back into the young one, so what is in use
//! stays and the least recently used half is forgotten, never everything at once. A lookup
//! that finds nothing costs its caller one read of the store, so the bound is on memory only.

use foldhash::{HashMap, HashMapExt};
use std::hash::Hash;

#[derive(Debug)]
pub struct Generations<K, V> {
    young: HashMap<K, V>,
    old: HashMap<K, V>,
    half: usize,
}

impl<K: Eq + Hash, V> Generations<K, V> {
    /// A map of at most `limit` entries (at least two).
    pub fn new(limit: usize) -> Generations<K, V> {
        Generations {
            young: HashMap::new(),
            old: HashMap::new(),
            half: (limit / 2).max(1),
        }
    }

    /// The entry, without moving it (for callers holding a shared lock).
    pub fn peek(&self, key: &K) -> Option<&V> {
        self.young.get(key).or_else(|| self.old.get(key))
    }

    /// The entry; found in the old generation, it moves into the young one.
    pub fn get(&mut self, key: &K) -> Option<&V> {
        if !self.young.contains_key(key) {
            let (key, value) = self.old.remove_entry(key)?;
            self.insert(key, value);
        }
        self.young.get(key)
    }

    pub fn insert(&mut self, key: K, value: V) {
        if self.young.len() >= self.half && !self.young.contains_key(&key) {
            self.old = std::mem::take(&mut self.young);
        }
        self.old.remove(&key);
        self.young.insert(key, value);
    }

    /// Entries held now (at most the bound).
    pub fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_half_is_forgotten_never_all() {
        let limit = 1_000;
        let mut map = Generations::new(limit);
        for i in 0..limit / 2 + 10 {
            map.insert(i, i);
        }
        // Key 0 is in the old generation now, and used again: it moves along.
        assert_eq!(map.get(&0), Some(&0));
        for i in limit / 2 + 10..limit + 10 {
            map.insert(i, i);
            assert!(map.len() <= limit, "{} entries", map.len());
        }
        assert_eq!(map.get(&limit), Some(&limit), "recent entries stay");
        assert_eq!(map.peek(&0), Some(&0), "an entry in use stays");
        assert_eq!(map.peek(&1), None, "the oldest are forgotten");
        assert!(map.len() >= limit / 2);
    }

    #[test]
    fn a_key_inserted_again_is_held_once() {
        let mut map = Generations::new(4);
        map.insert("a", 1);
        map.insert("b", 2);
        map.insert("c", 3);
        // "a" is now old; inserting it again replaces it rather than keeping both.
        map.insert("a", 4);
        assert_eq!(map.len(), 3);
        assert_eq!(map.peek(&"a"), Some(&4));
        for i in 0..100 {
            map.insert(["a", "b", "c"][i % 3], i);
            assert!(map.len() <= 4);
        }
    }
}
