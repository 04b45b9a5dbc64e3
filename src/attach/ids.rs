//! The spec ids of one `__bpf_usdt_specs` map in this process: which spec each id holds, how
//! many sites use it, and which ids are free. Identical specs share an id.
//!
//! A spec is kept to find it again (an attach whose site has the same spec shares the id),
//! but not whole: a spec is mostly zeros (twelve argument slots, most sites use three), so
//! each is kept as its bytes up to its last non-zero 8-byte word before the fixed tail
//! (cookie and argument count), then the tail. Two specs of one map are equal exactly when these short
//! forms are, and 50,000 specs take a few megabytes, not fifteen.
//!
//! A spec that carries a cookie of its own (an attach numbering its sites' cookies) cannot
//! be shared: it takes an id [unshared](Alloc::hold), neither looked up nor kept (a bit
//! says the id is held).

use std::collections::VecDeque;
use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use hashbrown::HashTable;

/// Bytes at the end of a spec kept whole: the cookie and the argument count (and padding),
/// in both of libbpf's layouts.
const TAIL: usize = 16;

/// The spec ids of one map.
#[derive(Debug, Default)]
pub(super) struct Alloc {
    /// Bytes of one spec.
    size: usize,
    /// Ids this process claimed (see [`super::registry`]) and never handed out, in order.
    unclaimed: VecDeque<(u32, u32)>,
    /// Whether this process holds claims on the map (to give back with its last link).
    pub claimed: bool,
    /// Ids handed out and released since.
    free: Vec<u32>,
    /// The ids in use, found by their spec's hash and short form.
    by_spec: HashTable<u32>,
    /// By id.
    slots: Vec<Slot>,
    /// Ids held unshared, one bit each (their slots are unused).
    held: Vec<u64>,
    /// The short forms of the specs, back to back (`Slot::at`, `Slot::len`).
    kept: Vec<u8>,
    /// Bytes of `kept` that no id holds any more.
    garbage: usize,
    /// The short form of the spec being looked up (no allocation per spec).
    scratch: Vec<u8>,
    /// References held, over all ids.
    pub refs: usize,
    /// Ids with at least one reference, shared or not.
    live: usize,
    hasher: RandomState,
}

#[derive(Debug, Default, Clone)]
struct Slot {
    hash: u64,
    /// Sites using the id (0: free).
    refs: usize,
    /// Where the id's short form is in `kept`.
    at: usize,
    len: usize,
}

/// A spec looked up and not found: its hash, to [`Alloc::fill`] an id with it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Missing(u64);

impl Alloc {
    /// An allocator for specs of `size` bytes.
    pub fn new(size: usize) -> Self {
        Alloc {
            size,
            ..Default::default()
        }
    }

    /// Ids in use.
    pub fn in_use(&self) -> usize {
        self.live
    }

    /// Room for `n` more specs in the table (for specs to share: `shared`).
    pub fn reserve(&mut self, n: usize, shared: bool) {
        if shared {
            let slots = &self.slots;
            self.by_spec.reserve(n, |&i| slots[i as usize].hash);
        }
    }

    /// The slot of `id`, made when new (room made for every id below `end` at once).
    fn slot(&mut self, id: u32, end: usize) -> &mut Slot {
        let at = id as usize;
        if self.slots.len() <= at {
            self.slots.reserve(end.max(at + 1) - self.slots.len());
            self.slots.resize(at + 1, Slot::default());
        }
        &mut self.slots[at]
    }

    fn kept(&self, id: u32) -> &[u8] {
        let s = &self.slots[id as usize];
        &self.kept[s.at..s.at + s.len]
    }

    /// The spec `id` holds, whole.
    #[cfg(test)]
    pub fn spec(&self, id: u32) -> Vec<u8> {
        let short = self.kept(id);
        let tail = TAIL.min(self.size);
        let mut whole = short[..short.len() - tail].to_vec();
        whole.resize(self.size - tail, 0);
        whole.extend_from_slice(&short[short.len() - tail..]);
        whole
    }

    /// Take one reference on the id holding `bytes` (a whole spec), if some id does.
    pub fn share(&mut self, bytes: &[u8]) -> Result<u32, Missing> {
        debug_assert_eq!(bytes.len(), self.size);
        let body = bytes.len() - TAIL.min(bytes.len());
        let used = used_words(&bytes[..body]);
        self.scratch.clear();
        self.scratch.extend_from_slice(&bytes[..used]);
        self.scratch.extend_from_slice(&bytes[body..]);
        let hash = self.hasher.hash_one(&self.scratch[..]);
        let found = self
            .by_spec
            .find(hash, |&id| self.kept(id) == &self.scratch[..])
            .copied();
        match found {
            Some(id) => {
                self.slots[id as usize].refs += 1;
                self.refs += 1;
                Ok(id)
            }
            None => Err(Missing(hash)),
        }
    }

    /// A fresh id: a released one, else the next of the claimed ranges; `None` when both
    /// are used up.
    pub fn take(&mut self) -> Option<u32> {
        if let Some(id) = self.free.pop() {
            return Some(id);
        }
        let (first, end) = self.unclaimed.front_mut()?;
        let id = *first;
        *first += 1;
        if first == end {
            self.unclaimed.pop_front();
        }
        Some(id)
    }

    /// Ids `first..end` may be handed out.
    pub fn add_range(&mut self, first: u32, end: u32) {
        if first < end {
            self.unclaimed.push_back((first, end));
        }
    }

    /// The end of the highest range of ids this allocator may hand out.
    fn ids_end(&self) -> usize {
        self.unclaimed
            .iter()
            .map(|r| r.1 as usize)
            .max()
            .unwrap_or(0)
    }

    /// Record that `id` holds a spec no other site can have (its own cookie), used once:
    /// neither kept nor found by [`Alloc::share`].
    pub fn hold(&mut self, id: u32) {
        let (word, bit) = (id as usize / 64, id % 64);
        if self.held.len() <= word {
            self.held.resize(word + 1, 0);
        }
        self.held[word] |= 1 << bit;
        self.refs += 1;
        self.live += 1;
    }

    /// Record that `id` now holds the spec [`Alloc::share`] just missed, used once (the
    /// spec is the one `share` left in `scratch`: nothing may look up another in between).
    pub fn fill(&mut self, id: u32, missing: Missing) {
        debug_assert_eq!(self.hasher.hash_one(&self.scratch[..]), missing.0);
        let (end, at, len) = (self.ids_end(), self.kept.len(), self.scratch.len());
        *self.slot(id, end) = Slot {
            hash: missing.0,
            refs: 1,
            at,
            len,
        };
        self.kept.extend_from_slice(&self.scratch);
        self.refs += 1;
        self.live += 1;
        let slots = &self.slots;
        self.by_spec
            .insert_unique(missing.0, id, |&i| slots[i as usize].hash);
    }

    /// Drop one reference on `id`; the last one frees it.
    pub fn release(&mut self, id: u32) {
        let (word, bit) = (id as usize / 64, id % 64);
        if let Some(w) = self.held.get_mut(word).filter(|w| **w & (1 << bit) != 0) {
            *w &= !(1 << bit);
            self.refs -= 1;
            self.live -= 1;
            self.free.push(id);
            return;
        }
        let Some(slot) = self.slots.get_mut(id as usize).filter(|s| s.refs > 0) else {
            return;
        };
        slot.refs -= 1;
        self.refs -= 1;
        if slot.refs == 0 {
            self.live -= 1;
            self.garbage += slot.len;
            if let Ok(e) = self.by_spec.find_entry(slot.hash, |&i| i == id) {
                e.remove();
            }
            self.free.push(id);
            if self.garbage > 4096 && self.garbage > self.kept.len() / 2 {
                self.compact();
            }
        }
    }

    /// Keep only the short forms of ids in use.
    fn compact(&mut self) {
        let mut kept = Vec::with_capacity(self.kept.len() - self.garbage);
        for s in self.slots.iter_mut().filter(|s| s.refs > 0) {
            let at = kept.len();
            kept.extend_from_slice(&self.kept[s.at..s.at + s.len]);
            s.at = at;
        }
        self.kept = kept;
        self.garbage = 0;
    }
}

/// The bytes of `body` up to the end of its last 8-byte word with a non-zero byte (words
/// counted from the start; a shorter piece at the end counts as a word). Read backwards a
/// word at a time: the zeros are at the end.
fn used_words(body: &[u8]) -> usize {
    let whole = body.len() - body.len() % 8;
    if body[whole..].iter().any(|&b| b != 0) {
        return body.len();
    }
    body[..whole]
        .chunks_exact(8)
        .rposition(|w| <[u8; 8]>::try_from(w).map_or(true, |w| u64::from_ne_bytes(w) != 0))
        .map_or(0, |i| 8 * (i + 1))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Take ids for `specs` as `acquire` does, without a map.
    pub(in crate::attach) fn take_all(
        a: &mut Alloc,
        specs: &[&[u8]],
        capacity: u32,
    ) -> Option<Vec<u32>> {
        // A fresh allocator is given ids 0..capacity, as if it had claimed them.
        if a.unclaimed.is_empty() && a.slots.is_empty() {
            a.add_range(0, capacity);
        }
        let mut ids = Vec::new();
        for bytes in specs {
            match a.share(bytes) {
                Ok(id) => ids.push(id),
                Err(missing) => {
                    let id = a.take()?;
                    a.fill(id, missing);
                    ids.push(id);
                }
            }
        }
        Some(ids)
    }

    #[test]
    fn identical_specs_share_an_id_until_the_last_release() {
        let mut a = Alloc::new(2);
        let ids = take_all(&mut a, &[b"aa", b"bb", b"aa"], 8).unwrap();
        assert_eq!(ids, [0, 1, 0]);
        // A second lease of the same spec shares it too.
        assert_eq!(take_all(&mut a, &[b"bb"], 8).unwrap(), [1]);
        a.release(0);
        assert_eq!(a.share(b"aa").ok(), Some(0), "one reference left");
        a.release(0);
        a.release(0);
        assert!(a.share(b"aa").is_err(), "freed with its last reference");
        // The freed id is reused, with its new spec.
        assert_eq!(take_all(&mut a, &[b"cc"], 8).unwrap(), [0]);
        assert_eq!(a.share(b"cc").ok(), Some(0));
        // Releasing a free or unknown id changes nothing.
        a.release(7);
        a.release(1);
        a.release(1);
        a.release(1);
        assert!(a.share(b"bb").is_err());
        assert_eq!(a.free, [1]);
    }

    /// A spec of `size` bytes: `body` at the start, zeros, then a tail of `tail`.
    fn spec(size: usize, body: &[u8], tail: u8) -> Vec<u8> {
        let mut s = vec![0; size];
        s[..body.len()].copy_from_slice(body);
        s[size - TAIL..].fill(tail);
        s
    }

    #[test]
    fn specs_that_differ_in_any_byte_do_not_share_and_short_forms_restore_whole() {
        let size = 304;
        let specs = [
            spec(size, &[1, 2, 3], 9),
            spec(size, &[1, 2, 3, 0], 9), // the same spec: trailing zeros are zeros
            spec(size, &[1, 2, 3, 0, 0, 5], 9),
            spec(size, &[1, 2], 9),
            spec(size, &[1, 2, 3], 8),
            spec(size, &[], 9),
            spec(size, &[], 0),
        ];
        let mut last_body_byte = spec(size, &[1, 2, 3], 9);
        last_body_byte[size - TAIL - 1] = 4;
        let mut refs: Vec<&[u8]> = specs.iter().map(|s| &s[..]).collect();
        refs.push(&last_body_byte);
        let mut a = Alloc::new(size);
        let ids = take_all(&mut a, &refs, 100).unwrap();
        assert_eq!(ids, [0, 0, 1, 2, 3, 4, 5, 6]);
        for (id, s) in ids.iter().zip(&refs) {
            assert_eq!(a.spec(*id), s.to_vec(), "id {id}");
        }
        // Six short specs, and one whose last body byte is set (kept whole).
        assert!(
            a.kept.len() <= 6 * 32 + size,
            "short forms: {} bytes",
            a.kept.len()
        );
    }

    #[test]
    fn released_specs_are_dropped_from_the_store_and_the_rest_still_found() {
        let size = 304;
        let specs: Vec<Vec<u8>> = (0..2000u32)
            .map(|i| spec(size, &i.to_le_bytes(), 1))
            .collect();
        let refs: Vec<&[u8]> = specs.iter().map(|s| &s[..]).collect();
        let mut a = Alloc::new(size);
        let ids = take_all(&mut a, &refs, 4000).unwrap();
        let full = a.kept.len();
        for id in ids.iter().filter(|&&id| id % 4 != 0) {
            a.release(*id);
        }
        assert!(
            a.kept.len() < full / 2,
            "{} of {full} bytes kept",
            a.kept.len()
        );
        for (i, s) in refs.iter().enumerate() {
            match a.share(s) {
                Ok(id) => {
                    assert_eq!(i % 4, 0);
                    assert_eq!(id as usize, i);
                    assert_eq!(a.spec(id), s.to_vec());
                }
                Err(_) => assert_ne!(i % 4, 0),
            }
        }
    }

    #[test]
    fn unshared_ids_are_held_counted_and_freed_without_a_short_form() {
        let mut a = Alloc::new(4);
        a.add_range(0, 4);
        let shared = take_all(&mut a, &[b"aaaa"], 4).unwrap();
        let own = a.take().unwrap();
        a.hold(own);
        assert_eq!((a.in_use(), a.refs, a.kept.len()), (2, 2, 4));
        // Not found by content, even when equal to a kept spec.
        assert_eq!(a.share(b"aaaa").ok(), Some(shared[0]));
        a.release(own);
        assert_eq!((a.in_use(), a.free.clone()), (1, vec![own]));
        a.release(shared[0]);
        a.release(shared[0]);
        assert_eq!(a.in_use(), 0);
        assert_eq!(a.take(), Some(shared[0]));
    }

    #[test]
    fn capacity_is_enforced() {
        let mut a = Alloc::new(1);
        assert!(take_all(&mut a, &[b"a", b"b"], 2).is_some());
        assert!(take_all(&mut a, &[b"c"], 2).is_none());
        assert!(
            take_all(&mut a, &[b"a"], 2).is_some(),
            "sharing needs no new id"
        );
    }
}
