//! The tables a parse fills as it reads notes: distinct argument strings (each decoded
//! once) and the grouping of sites into probes.

use std::hash::{BuildHasher, Hasher};

use hashbrown::hash_table::Entry;
use hashbrown::HashTable;

use super::ProbeEntry;

/// The hash of one string used alone as a key (its bytes, with no length or terminator
/// mixed in: nothing follows it in the key).
pub(crate) fn hash_str(hasher: &foldhash::fast::RandomState, s: &str) -> u64 {
    let mut h = hasher.build_hasher();
    h.write(s.as_bytes());
    h.finish()
}

/// One distinct argument string of a file and where its decoded list is.
pub(crate) struct Part<'data> {
    text: &'data str,
    hash: u64,
    pub(crate) start: u32,
    pub(crate) len: u32,
}

/// How many distinct keys a table of [`Lists`] or [`Grouping`] holds before it hashes: up to
/// this many, a scan of the keys is cheaper than hashing one (and most files have few probes).
const SCAN_KEYS: usize = 8;

/// The distinct argument strings of a file, each decoded once. The table holds indexes into
/// `parts` (4 bytes a slot, so it stays in cache for 100,000 distinct strings), and each part
/// keeps its hash so growing the table rehashes nothing. The table is built only once there
/// are more than [`SCAN_KEYS`] parts; until then the parts are scanned.
pub(crate) struct Lists<'data> {
    hasher: foldhash::fast::RandomState,
    table: HashTable<u32>,
    parts: Vec<Part<'data>>,
    /// The table's first capacity.
    capacity: usize,
}

impl<'data> Lists<'data> {
    /// Room for `n` distinct strings before growing.
    pub(crate) fn with_capacity(n: usize) -> Self {
        Lists {
            hasher: Default::default(),
            table: HashTable::new(),
            parts: Vec::with_capacity(n),
            capacity: n,
        }
    }

    /// How many distinct strings it holds.
    #[cfg(feature = "attach")]
    pub(crate) fn len(&self) -> usize {
        self.parts.len()
    }

    /// `text`'s part, decoding it with `decode` (giving start and length) the first time it
    /// is seen.
    pub(crate) fn intern(
        &mut self,
        text: &'data str,
        decode: impl FnOnce(&'data str) -> (u32, u32),
    ) -> &Part<'data> {
        // Sites often repeat their predecessor's arguments: one comparison, no hashing.
        if self.parts.last().is_some_and(|p| p.text == text) {
            return &self.parts[self.parts.len() - 1];
        }
        if self.parts.len() <= SCAN_KEYS {
            let id = match self.parts.iter().position(|p| p.text == text) {
                Some(id) => id,
                None => {
                    let (start, len) = decode(text);
                    self.parts.push(Part {
                        text,
                        hash: 0,
                        start,
                        len,
                    });
                    if self.parts.len() > SCAN_KEYS {
                        self.build_table();
                    }
                    self.parts.len() - 1
                }
            };
            return &self.parts[id];
        }
        let hash = hash_str(&self.hasher, text);
        let parts = &mut self.parts;
        let entry = self.table.entry(
            hash,
            |&i| parts[i as usize].text == text,
            |&i| parts[i as usize].hash,
        );
        let id = match entry {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => {
                let (start, len) = decode(text);
                parts.push(Part {
                    text,
                    hash,
                    start,
                    len,
                });
                *e.insert(parts.len() as u32 - 1).get()
            }
        };
        &self.parts[id as usize]
    }

    /// Hash the parts scanned so far into the table.
    fn build_table(&mut self) {
        for part in &mut self.parts {
            part.hash = hash_str(&self.hasher, part.text);
        }
        let parts = &self.parts;
        self.table = HashTable::with_capacity(self.capacity.max(2 * SCAN_KEYS));
        for (i, part) in parts.iter().enumerate() {
            self.table
                .insert_unique(part.hash, i as u32, |&j| parts[j as usize].hash);
        }
    }
}

/// Sites grouped by `provider:name` as they are read: the probes in order of first
/// appearance, and each site's probe.
pub(crate) struct Grouping<'data> {
    hasher: foldhash::fast::RandomState,
    /// Probe ids, hashed by name; built once there are more than [`SCAN_KEYS`] probes (until
    /// then the keys are scanned).
    index: HashTable<u32>,
    /// The index's first capacity.
    capacity: usize,
    /// Each probe's `provider\0name` and its hash (compared and rehashed without hashing).
    keys: Vec<(&'data str, u64)>,
    probes: Vec<ProbeEntry<'data>>,
    probe_of: Vec<u32>,
    /// The previous site's probe: sites of one probe are often adjacent (unrolled loops,
    /// inlined helpers), so it is checked before hashing.
    last: Option<(&'data str, u32)>,
}

impl<'data> Grouping<'data> {
    /// Room for `probes` probes and `sites` sites before growing.
    pub(crate) fn with_capacity(probes: usize, sites: usize) -> Self {
        Grouping {
            hasher: Default::default(),
            index: HashTable::new(),
            capacity: probes,
            keys: Vec::with_capacity(probes),
            probes: Vec::with_capacity(probes),
            probe_of: Vec::with_capacity(sites),
            last: None,
        }
    }

    /// The next site is of the probe `provider:name`; `key` is `provider\0name` (one string,
    /// so one comparison and one hash; unambiguous, as a provider holds no NUL).
    // Inlined into both readers' loops (the parse's and the attach's).
    #[inline(always)]
    pub(crate) fn add(&mut self, key: &'data str, provider: &'data str, name: &'data str) {
        let id = match self.last {
            Some((k, id)) if k == key => id,
            _ => self.find_or_add(key, provider, name),
        };
        self.probes[id as usize].len += 1;
        self.probe_of.push(id);
        self.last = Some((key, id));
    }

    // Inlined into the parse's loop (it was, with one caller), not called from it.
    #[inline(always)]
    fn find_or_add(&mut self, key: &'data str, provider: &'data str, name: &'data str) -> u32 {
        if self.keys.len() <= SCAN_KEYS {
            if let Some(id) = self.keys.iter().position(|&(k, _)| k == key) {
                return id as u32;
            }
            let id = self.push(key, 0, provider, name);
            if self.keys.len() > SCAN_KEYS {
                self.build_index();
            }
            return id;
        }
        let hash = hash_str(&self.hasher, key);
        let keys = &self.keys;
        let entry = self.index.entry(
            hash,
            |&i| keys[i as usize].0 == key,
            |&i| keys[i as usize].1,
        );
        match entry {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => {
                let id = keys.len() as u32;
                e.insert(id);
                self.push(key, hash, provider, name)
            }
        }
    }

    /// A new probe; its id.
    fn push(&mut self, key: &'data str, hash: u64, provider: &'data str, name: &'data str) -> u32 {
        self.probes.push(ProbeEntry {
            provider,
            name,
            start: 0,
            len: 0,
        });
        self.keys.push((key, hash));
        self.keys.len() as u32 - 1
    }

    /// The sites `other` grouped, read after this one's: its probes join these (those this
    /// one has not met come last, in their order).
    pub(crate) fn append(&mut self, other: Grouping<'data>) {
        let ids: Vec<u32> = other
            .keys
            .iter()
            .zip(&other.probes)
            .map(|(&(key, _), p)| self.find_or_add(key, p.provider, p.name))
            .collect();
        self.probe_of.reserve(other.probe_of.len());
        for &id in &other.probe_of {
            let id = ids[id as usize];
            self.probes[id as usize].len += 1;
            self.probe_of.push(id);
        }
        self.last = None;
    }

    /// Hash the keys scanned so far into the index.
    fn build_index(&mut self) {
        for (key, hash) in &mut self.keys {
            *hash = hash_str(&self.hasher, key);
        }
        let keys = &self.keys;
        self.index = HashTable::with_capacity(self.capacity.max(2 * SCAN_KEYS));
        for (i, &(_, hash)) in keys.iter().enumerate() {
            self.index
                .insert_unique(hash, i as u32, |&j| keys[j as usize].1);
        }
    }

    /// The probes, and the site indexes of each probe, contiguous and in note order.
    pub(crate) fn finish(self) -> (Vec<ProbeEntry<'data>>, Vec<u32>) {
        let mut probes = self.probes;
        // Counting sort of the site indexes by probe: each probe's `start` serves as its next
        // free slot, and ends `len` slots past where it began.
        let mut next = 0;
        for p in &mut probes {
            p.start = next;
            next += p.len;
        }
        let mut by_probe = vec![0; self.probe_of.len()];
        for (i, &id) in self.probe_of.iter().enumerate() {
            let slot = &mut probes[id as usize].start;
            by_probe[*slot as usize] = i as u32;
            *slot += 1;
        }
        for p in &mut probes {
            p.start -= p.len;
        }
        (probes, by_probe)
    }
}
