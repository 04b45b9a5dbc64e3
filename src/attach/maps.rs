//! Finding a program's `__bpf_usdt_specs` and `__bpf_usdt_ip_to_spec_id` maps from its fd,
//! and handing out spec ids: identical specs share an id, ids are freed when the last link
//! using them detaches, and a full map fails the attach with nothing written.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
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
/// writes spec `i` over `buf` (a whole value). Identical specs share an id when `shared`;
/// otherwise (each spec has a cookie of its own) every spec takes an id. All or nothing:
/// when the map is full or a write fails, no id stays taken.
pub(crate) fn acquire(
    maps: &SpecMaps,
    count: usize,
    shared: bool,
    encode: impl Fn(usize, &mut [u8]) + Sync,
) -> Result<(SpecLease, Vec<bpf::ArrayWindow>), AttachErrorKind> {
    let size = maps.info.value_size as usize;
    if maps.layout.spec_size() != size {
        return Err(AttachErrorKind::Program(format!(
            "{}-byte specs for a map of {size}-byte values",
            maps.layout.spec_size()
        )));
    }
    let mut lease = SpecLease {
        map_id: maps.info.id,
        ids: Vec::with_capacity(count),
    };
    // The ids first, under the allocator's lock: a spec already in the map shares its id
    // (when `shared`); the others are new. A new spec that can be shared is found by other
    // attaches of this process as soon as its id is filled, so it is written before the
    // lock is released (no link may use an id whose spec is not in the map yet); unshared
    // ids are this lease's alone, and are written with the lock released. A new shared spec
    // is encoded again to be written: cheaper than keeping its 304 bytes.
    let mut new: Vec<(u32, u32)> = Vec::with_capacity(if shared { 0 } else { count });
    let mut g = ALLOCATORS.lock().unwrap_or_else(|p| p.into_inner());
    let a = g
        .get_or_insert_with(Default::default)
        .entry(maps.info.id)
        .or_insert_with(|| Alloc::new(size));
    a.reserve(count, shared);
    let mut scratch = vec![0u8; size];
    let mut take = |a: &mut Alloc, i: usize| -> Result<(), AttachErrorKind> {
        let missing = if shared {
            encode(i, &mut scratch);
            match a.share(&scratch) {
                Ok(id) => {
                    lease.ids.push(id);
                    return Ok(());
                }
                Err(missing) => Some(missing),
            }
        } else {
            None
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
        new.push((i as u32, id));
        Ok(())
    };
    if let Err(why) = (0..count).try_for_each(|i| take(a, i)) {
        release(a, &mut lease);
        return Err(why);
    }
    let held = if shared {
        Some(g)
    } else {
        drop(g);
        None
    };
    let written = super::write::write_specs(maps, &new, &encode);
    match written {
        Ok((_, windows)) => Ok((lease, windows)),
        Err(e) => {
            let mut g =
                held.unwrap_or_else(|| ALLOCATORS.lock().unwrap_or_else(|p| p.into_inner()));
            if let Some(a) = g.as_mut().and_then(|all| all.get_mut(&maps.info.id)) {
                release(a, &mut lease);
            }
            let what = format!("writing {} specs into __bpf_usdt_specs", new.len());
            Err(AttachErrorKind::os(what, e))
        }
    }
}

/// Undo a lease: drop its references (forgetting the specs written for it).
fn release(a: &mut Alloc, lease: &mut SpecLease) {
    for id in lease.ids.drain(..) {
        a.release(id);
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
