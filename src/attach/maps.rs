//! Finding a program's `__bpf_usdt_specs` and `__bpf_usdt_ip_to_spec_id` maps from its fd,
//! and handing out spec ids: identical specs share an id, ids are freed when the last link
//! using them detaches, and a full map fails the attach with nothing written.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use super::ids::Alloc;
use super::spec::Layout;
use super::AttachErrorKind;
use crate::sys::bpf::{self, MapInfo};

/// `BPF_MAP_TYPE_ARRAY`.
const ARRAY: u32 = 2;
/// `BPF_MAP_TYPE_HASH`.
const HASH: u32 = 1;

/// The USDT maps of one loaded program.
#[derive(Debug)]
pub(crate) struct SpecMaps {
    pub specs: OwnedFd,
    pub info: MapInfo,
    pub layout: Layout,
    /// `__bpf_usdt_ip_to_spec_id`, used only on kernels without BPF cookies.
    #[allow(dead_code)]
    pub ip_to_spec: Option<(OwnedFd, MapInfo)>,
}

/// Find the USDT maps among the maps `prog` uses. The kernel keeps 15 characters of a map
/// name, so `__bpf_usdt_specs` shows as `__bpf_usdt_spec` and `__bpf_usdt_ip_to_spec_id` as
/// `__bpf_usdt_ip_t`.
pub(crate) fn find(prog: BorrowedFd<'_>) -> Result<SpecMaps, AttachErrorKind> {
    let ids = bpf::prog_map_ids(prog)
        .map_err(|e| AttachErrorKind::os("listing the BPF program's maps", e))?;
    let mut specs = None;
    let mut ip = None;
    for id in ids {
        let Ok(fd) = bpf::map_fd_by_id(id) else {
            continue;
        };
        let Ok(info) = bpf::map_info(fd.as_fd()) else {
            continue;
        };
        if info.name.starts_with("__bpf_usdt_spec") && info.map_type == ARRAY {
            specs = Some((fd, info));
        } else if info.name.starts_with("__bpf_usdt_ip_t") && info.map_type == HASH {
            ip = Some((fd, info));
        }
    }
    let (fd, info) = specs.ok_or_else(|| {
        AttachErrorKind::Program(
            "the program has no __bpf_usdt_specs map: build it with libbpf's usdt.bpf.h".into(),
        )
    })?;
    let layout = Layout::from_value_size(info.value_size).ok_or_else(|| {
        AttachErrorKind::Program(format!(
            "__bpf_usdt_specs has {}-byte values: neither libbpf <= 1.6 (208) nor >= 1.7 (304)",
            info.value_size
        ))
    })?;
    if info.key_size != 4 {
        return Err(AttachErrorKind::Program(format!(
            "__bpf_usdt_specs has {}-byte keys, not 4",
            info.key_size
        )));
    }
    Ok(SpecMaps {
        specs: fd,
        info,
        layout,
        ip_to_spec: ip,
    })
}

/// Spec-id allocators, one per spec map (by map id), shared by every link of the process.
static ALLOCATORS: Mutex<Option<HashMap<u32, Alloc>>> = Mutex::new(None);

/// Spec ids held by one link; released on drop.
#[derive(Debug)]
pub(crate) struct SpecLease {
    map_id: u32,
    ids: Vec<u32>,
}

impl SpecLease {
    /// The spec id of each spec given to [`acquire`], in order.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }
}

impl SpecLease {
    /// Give the ids back; the map's last lease in this process also gives its claims back to
    /// other processes, which can fail (the registry file): that error is returned.
    pub(crate) fn give_back(&mut self) -> std::io::Result<()> {
        // A lease emptied by a failed acquire is dropped while that acquire holds the lock.
        if self.ids.is_empty() {
            return Ok(());
        }
        let ids = std::mem::take(&mut self.ids);
        let mut g = ALLOCATORS.lock().unwrap_or_else(|p| p.into_inner());
        let all = g.get_or_insert_with(Default::default);
        let Some(a) = all.get_mut(&self.map_id) else {
            return Ok(());
        };
        // The map's last link (it holds every reference): forget the allocator whole rather
        // than release 50,000 ids one by one.
        let last = a.refs == ids.len();
        if !last {
            for &id in &ids {
                a.release(id);
            }
        }
        // The map's last link: forget it (and the specs it keeps), and give its ids back
        // to other processes.
        if last || a.in_use() == 0 {
            if let Some(a) = all.remove(&self.map_id) {
                if a.claimed {
                    return super::registry::release(self.map_id);
                }
            }
        }
        Ok(())
    }
}

impl Drop for SpecLease {
    fn drop(&mut self) {
        // Failing here leaves a claim that ends with this process (dead owners' claims are
        // dropped by the next claimant); `UsdtLink::detach` reports it.
        let _ = self.give_back();
    }
}

/// Claim more ids of the map for this process (at least one, up to `left` specs' worth and
/// never fewer than 64) and take one.
fn claim_more(a: &mut Alloc, maps: &SpecMaps, left: usize) -> Result<u32, AttachErrorKind> {
    let capacity = maps.info.max_entries;
    let want = (left as u32).max(64);
    let ranges = super::registry::claim(maps.info.id, capacity, want).map_err(|e| {
        AttachErrorKind::os(
            format!(
                "claiming spec ids of __bpf_usdt_specs (map {})",
                maps.info.id
            ),
            e,
        )
    })?;
    a.claimed = true;
    for (first, end) in ranges {
        a.add_range(first, end);
    }
    a.take().ok_or_else(|| {
        let (others, pids) = super::registry::held_by_others(maps.info.id);
        AttachErrorKind::SpecsFull {
            capacity,
            in_use: a.in_use(),
            others,
            pids,
        }
    })
}

/// Give each of `count` specs an id, writing new specs into the map; `encode(i, buf)`
/// appends spec `i` to `buf`. Identical specs share an id when `shared`; otherwise (each
/// spec has a cookie of its own) every spec takes an id. All or nothing: when the map is
/// full or a write fails, no id stays taken.
pub(crate) fn acquire(
    maps: &SpecMaps,
    count: usize,
    shared: bool,
    mut encode: impl FnMut(usize, &mut Vec<u8>),
) -> Result<SpecLease, AttachErrorKind> {
    let size = maps.info.value_size as usize;
    let mut g = ALLOCATORS.lock().unwrap_or_else(|p| p.into_inner());
    let a = g
        .get_or_insert_with(Default::default)
        .entry(maps.info.id)
        .or_insert_with(|| Alloc::new(size));
    let mut lease = SpecLease {
        map_id: maps.info.id,
        ids: Vec::with_capacity(count),
    };
    let fail = |a: &mut Alloc, lease: &mut SpecLease, why: AttachErrorKind| {
        // Undo: drop this lease's references (forgetting specs written for it).
        for id in lease.ids.drain(..) {
            a.release(id);
        }
        why
    };
    a.reserve(count, shared);
    // New specs go into the map a chunk at a time. A large attach writes them from other
    // threads (two with two cores: the kernel's copy of each spec costs more than encoding
    // it) while the rest are still being encoded; either way every spec is in the map
    // before the caller makes the links that use it.
    let writers = match count >= 2 * WRITE_CHUNK {
        false => 0,
        true if crate::parallel::two_cores() => 2,
        true => 1,
    };
    let fd = maps.specs.as_fd();
    let (tx, rx) = std::sync::mpsc::sync_channel::<Chunk>(QUEUED_CHUNKS);
    let rx = Mutex::new(rx);
    // After a failed write the writers keep taking chunks (so the encoder never waits on a
    // full queue) but write no more; the first error is reported.
    let failed = AtomicBool::new(false);
    let written = std::thread::scope(|scope| {
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
        let room = count.min(WRITE_CHUNK);
        let mut chunk = Chunk::with_room(room, size);
        let mut inline = Ok(());
        for i in 0..count {
            // Encoded straight into the chunk; taken back out when an id has it already.
            let start = chunk.bytes.len();
            encode(i, &mut chunk.bytes);
            let spec = &chunk.bytes[start..];
            if spec.len() != size {
                return Err(AttachErrorKind::Program(format!(
                    "a spec of {} bytes for a map of {size}-byte values",
                    spec.len()
                )));
            }
            let missing = match shared.then(|| a.share(spec)) {
                Some(Ok(id)) => {
                    chunk.bytes.truncate(start);
                    lease.ids.push(id);
                    continue;
                }
                Some(Err(missing)) => Some(missing),
                None => None,
            };
            let id = match a.take() {
                Some(id) => id,
                None => claim_more(a, maps, count - i)?,
            };
            match missing {
                Some(missing) => a.fill(id, missing),
                None => a.hold(id),
            }
            lease.ids.push(id);
            chunk.ids.push(id);
            if chunk.ids.len() == WRITE_CHUNK {
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
        result.map_err(|e| {
            let what = format!("writing {count} specs into __bpf_usdt_specs");
            AttachErrorKind::os(what, e)
        })
    });
    match written {
        Ok(()) => Ok(lease),
        Err(why) => Err(fail(a, &mut lease, why)),
    }
}

/// New specs written to the map at a time (a few chunks in flight stay in cache).
const WRITE_CHUNK: usize = 512;

/// Chunks encoded and waiting for a writer, at most.
const QUEUED_CHUNKS: usize = 4;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attach::ids::tests::take_all;

    #[test]
    fn the_last_lease_forgets_the_allocator_and_earlier_ones_release_their_ids() {
        // No kernel map has this id: the test owns the entry.
        let map_id = u32::MAX - 7;
        let mut a = Alloc::new(2);
        let first = take_all(&mut a, &[b"aa", b"bb"], 8).unwrap();
        let second = take_all(&mut a, &[b"bb", b"cc"], 8).unwrap();
        assert_eq!(
            (a.refs, a.spec(0), a.spec(2)),
            (4, b"aa".to_vec(), b"cc".to_vec())
        );
        ALLOCATORS
            .lock()
            .unwrap()
            .get_or_insert_with(Default::default)
            .insert(map_id, a);
        drop(SpecLease { map_id, ids: first });
        {
            let mut g = ALLOCATORS.lock().unwrap();
            let a = g.as_mut().unwrap().get_mut(&map_id).unwrap();
            assert_eq!((a.refs, a.in_use()), (2, 2));
            assert_eq!(a.spec(1), b"bb");
            // `aa` had no other user: freed, and its id is the next one handed out.
            assert!(a.share(b"aa").is_err());
            assert_eq!(a.take(), Some(0));
            a.add_range(0, 1);
        }
        drop(SpecLease {
            map_id,
            ids: second,
        });
        let g = ALLOCATORS.lock().unwrap();
        assert!(!g.as_ref().unwrap().contains_key(&map_id));
    }
}
