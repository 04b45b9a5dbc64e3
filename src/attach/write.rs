//! Writing new specs into `__bpf_usdt_specs`, before any link uses their ids.
//!
//! A map made with `BPF_F_MMAPABLE` (the recorder's) is written through a mapping of the
//! entries concerned: each spec is encoded straight into the map's memory, with no syscall
//! and no kernel copy per spec. Any other map takes batched updates, a chunk of specs at a
//! time; a large attach encodes the chunks on this thread while writer threads (two with two
//! cores: the kernel's copy of a spec costs more than encoding it) hand them to the kernel.

use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use super::maps::SpecMaps;
use crate::sys::bpf::{self, ArrayWindow};

/// New specs written to the map at a time (a few chunks in flight stay in cache).
const WRITE_CHUNK: usize = 512;

/// Chunks encoded and waiting for a writer, at most.
const QUEUED_CHUNKS: usize = 4;

/// Specs at least this many are encoded into a mapped map from two threads.
const PARALLEL_SPECS: usize = 4096;

/// How specs went into the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Written {
    /// Through a mapping of the map.
    Mapped,
    /// By batched updates (or none: no specs).
    Batched,
}

/// Write each spec `i` of `new` (spec index, id) at its id: `encode(i, buf)` writes spec `i`
/// over `buf` (a whole value). The mappings written through come back: the specs are in
/// the map already, and the caller unmaps them when it has time (during the link).
pub(super) fn write_specs(
    maps: &SpecMaps,
    new: &[(u32, u32)],
    encode: &(impl Fn(usize, &mut [u8]) + Sync),
) -> std::io::Result<(Written, Vec<ArrayWindow>)> {
    if new.is_empty() {
        return Ok((Written::Batched, Vec::new()));
    }
    if maps.info.map_flags & bpf::BPF_F_MMAPABLE != 0 {
        let lo = new.iter().map(|&(_, id)| id).min().unwrap_or(0);
        let hi = new.iter().map(|&(_, id)| id).max().unwrap_or(0) + 1;
        // Mapped when the ids are not scattered over a much larger range (mapping costs
        // per page, used or not); a map that cannot be mapped is written by syscalls.
        if (hi - lo) as usize <= 2 * new.len() + 1024 {
            if let Some(windows) = mapped(maps, new, lo..hi, encode) {
                return Ok((Written::Mapped, windows));
            }
        }
    }
    batched(maps, new, encode).map(|()| (Written::Batched, Vec::new()))
}

/// Encode the specs straight into a mapping of the map, and give the mapping back; `None`
/// (nothing written) when the map cannot be mapped.
fn mapped(
    maps: &SpecMaps,
    new: &[(u32, u32)],
    ids: std::ops::Range<u32>,
    encode: &(impl Fn(usize, &mut [u8]) + Sync),
) -> Option<Vec<ArrayWindow>> {
    let (fd, size, max) = (
        maps.specs.as_fd(),
        maps.info.value_size as usize,
        maps.info.max_entries,
    );
    let fill = |mut w: ArrayWindow, part: std::ops::Range<u32>| {
        for &(i, id) in new.iter().filter(|(_, id)| part.contains(id)) {
            encode(i as usize, w.value_mut(id));
        }
        w
    };
    if new.len() >= PARALLEL_SPECS && crate::parallel::two_cores() {
        // Two windows, split at the middle id: each thread writes the specs in its own.
        let mid = ids.start + (ids.end - ids.start) / 2;
        let (low, high) = (ids.start..mid, mid..ids.end);
        let (Ok(a), Ok(b)) = (
            ArrayWindow::map(fd, low.clone(), size, max),
            ArrayWindow::map(fd, high.clone(), size, max),
        ) else {
            return None;
        };
        let (a, b) = crate::parallel::join(|| fill(a, low), || fill(b, high));
        return Some(vec![a, b]);
    }
    let w = ArrayWindow::map(fd, ids.clone(), size, max).ok()?;
    Some(vec![fill(w, ids)])
}

/// New specs on their way to the map: their ids and their bytes, back to back.
struct Chunk {
    ids: Vec<u32>,
    bytes: Vec<u8>,
}

impl Chunk {
    /// An empty chunk with room for `specs` specs of `size` bytes.
    fn with_room(specs: usize, size: usize) -> Self {
        Chunk {
            ids: Vec::with_capacity(specs),
            bytes: Vec::with_capacity(specs * size),
        }
    }

    /// Write the specs into the map (`size` bytes each) and empty the chunk for reuse.
    fn write(&mut self, fd: BorrowedFd<'_>, size: usize) -> std::io::Result<()> {
        let r = bpf::map_update_batch(fd, &self.ids, &self.bytes, size);
        self.clear();
        r
    }

    fn clear(&mut self) {
        self.ids.clear();
        self.bytes.clear();
    }
}

/// Write the specs by batched map updates.
fn batched(
    maps: &SpecMaps,
    new: &[(u32, u32)],
    encode: &(impl Fn(usize, &mut [u8]) + Sync),
) -> std::io::Result<()> {
    let (fd, size) = (maps.specs.as_fd(), maps.info.value_size as usize);
    let writers = match new.len() >= 2 * WRITE_CHUNK {
        false => 0,
        true if crate::parallel::two_cores() => 2,
        true => 1,
    };
    let (tx, rx) = std::sync::mpsc::sync_channel::<Chunk>(QUEUED_CHUNKS);
    let rx = Mutex::new(rx);
    // After a failed write the writers keep taking chunks (so the encoder never waits on a
    // full queue) but write no more; the first error is reported.
    let failed = AtomicBool::new(false);
    std::thread::scope(|scope| {
        // Written chunks come back to be refilled: a few buffers in all, not a fresh
        // allocation (and its page faults) per chunk.
        let (back, spare) = std::sync::mpsc::channel::<Chunk>();
        let (rx, failed) = (&rx, &failed);
        let handles: Vec<_> = (0..writers)
            .map(|_| {
                let back = back.clone();
                scope.spawn(move || -> std::io::Result<()> {
                    let mut result = Ok(());
                    loop {
                        let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        let Ok(mut chunk) = next else { break };
                        if failed.load(Ordering::Relaxed) {
                            chunk.clear();
                        } else if let Err(e) = chunk.write(fd, size) {
                            failed.store(true, Ordering::Relaxed);
                            result = Err(e);
                        }
                        let _ = back.send(chunk);
                    }
                    result
                })
            })
            .collect();
        let tx = (writers > 0).then_some(tx);
        let room = new.len().min(WRITE_CHUNK);
        let mut chunk = Chunk::with_room(room, size);
        let mut inline = Ok(());
        for &(i, id) in new {
            let start = chunk.bytes.len();
            chunk.bytes.resize(start + size, 0);
            encode(i as usize, &mut chunk.bytes[start..]);
            chunk.ids.push(id);
            if chunk.ids.len() < WRITE_CHUNK {
                continue;
            }
            match &tx {
                Some(sender) => {
                    if failed.load(Ordering::Relaxed) {
                        break; // a writer failed: its error is taken below
                    }
                    let next = spare
                        .try_recv()
                        .unwrap_or_else(|_| Chunk::with_room(room, size));
                    let _ = sender.send(std::mem::replace(&mut chunk, next));
                }
                None => {
                    inline = chunk.write(fd, size);
                    if inline.is_err() {
                        break;
                    }
                }
            }
        }
        if inline.is_ok() && !chunk.ids.is_empty() {
            match &tx {
                Some(sender) => {
                    let _ = sender.send(chunk);
                }
                None => inline = chunk.write(fd, size),
            }
        }
        drop(tx);
        let mut result = inline;
        for h in handles {
            let r = h
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("a spec writer thread panicked")));
            result = result.and(r);
        }
        result
    })
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;
    use crate::attach::spec::{encode, ArgEncoding, ArgType, Layout};
    use crate::sys::bpf::{array_map_create, map_info, map_lookup};

    /// A spec map as a program would have it (`None`: no BPF here, said; a failure under
    /// `CI=true`, where the machine must have it).
    fn spec_map(entries: u32, flags: u32) -> Option<SpecMaps> {
        let fd = match array_map_create("__bpf_usdt_spec", 304, entries, flags) {
            Ok(fd) => fd,
            Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("creating an array map under CI=true: {e}")
            }
            Err(e) => {
                eprintln!("SKIP: creating an array map needs root with BPF: {e}");
                return None;
            }
        };
        let info = map_info(fd.as_fd()).expect("map info");
        Some(SpecMaps {
            specs: fd,
            info,
            layout: Layout::V2,
            ip_to_spec: None,
        })
    }

    /// Spec `i`: one constant argument `i` and cookie `1000 + i`, or (`long`) six.
    fn args(i: usize, long: bool) -> Vec<ArgEncoding> {
        let arg = |v: u64| ArgEncoding {
            arg_type: ArgType::Const,
            val_off: v,
            reg_off: 0,
            idx_reg_off: 0,
            scale_bitshift: 0,
            signed: false,
            bitshift: 0,
        };
        (0..if long { 6 } else { 1 })
            .map(|k| arg((i * 7 + k) as u64))
            .collect()
    }

    /// Write specs at `ids` (spec `i` at `ids[i]`), read every one back; how they went.
    fn round_trip(maps: &SpecMaps, ids: &[u32], long: bool) -> Written {
        let new: Vec<(u32, u32)> = ids
            .iter()
            .enumerate()
            .map(|(i, &id)| (i as u32, id))
            .collect();
        let write = |i: usize, buf: &mut [u8]| {
            crate::attach::spec::encode_to(Layout::V2, false, &args(i, long), 1000 + i as u64, buf)
        };
        let (way, windows) = write_specs(maps, &new, &write).expect("written");
        drop(windows);
        for (i, &id) in ids.iter().enumerate() {
            let got = map_lookup(maps.specs.as_fd(), id, 304).expect("lookup");
            let want = encode(Layout::V2, false, &args(i, long), 1000 + i as u64);
            assert_eq!(got, want, "spec {i} at id {id}");
        }
        way
    }

    #[test]
    fn every_way_of_writing_puts_each_spec_at_its_id_whole() {
        let n = 6000u32;
        // Mapped (two windows, then one), batched (a map that cannot be mapped, and ids
        // scattered too widely to map): the same specs read back.
        for flags in [bpf::BPF_F_MMAPABLE, 0] {
            let Some(maps) = spec_map(4 * n, flags) else {
                return;
            };
            let mappable = if flags == 0 {
                Written::Batched
            } else {
                Written::Mapped
            };
            let dense: Vec<u32> = (7..7 + n).rev().collect();
            assert_eq!(round_trip(&maps, &dense, true), mappable);
            // Rewritten shorter: the stale argument slots read as zeros.
            assert_eq!(round_trip(&maps, &dense[..100], false), mappable);
            let scattered: Vec<u32> = (0..50).map(|i| i * (4 * n / 50)).collect();
            assert_eq!(round_trip(&maps, &scattered, false), Written::Batched);
        }
    }
}
