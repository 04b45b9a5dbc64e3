//! Finding a program's `__bpf_usdt_specs` and `__bpf_usdt_ip_to_spec_id` maps from its fd,
//! and handing out spec ids: identical specs share an id, ids are freed when the last link
//! using them detaches, and a full map fails the attach with nothing written.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Mutex;

use super::spec::Layout;
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
pub(crate) fn find(prog: BorrowedFd<'_>) -> Result<SpecMaps, String> {
    let ids =
        bpf::prog_map_ids(prog).map_err(|e| format!("cannot list the program's maps: {e}"))?;
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
        "the program has no __bpf_usdt_specs map: build it with libbpf's usdt.bpf.h".to_string()
    })?;
    let layout = Layout::from_value_size(info.value_size).ok_or_else(|| {
        format!(
            "__bpf_usdt_specs has {}-byte values: neither libbpf <= 1.6 (208) nor >= 1.7 (304)",
            info.value_size
        )
    })?;
    if info.key_size != 4 {
        return Err(format!(
            "__bpf_usdt_specs has {}-byte keys, not 4",
            info.key_size
        ));
    }
    Ok(SpecMaps {
        specs: fd,
        info,
        layout,
        ip_to_spec: ip,
    })
}

#[derive(Debug, Default)]
struct Alloc {
    next: u32,
    free: Vec<u32>,
    by_spec: HashMap<Vec<u8>, (u32, usize)>,
    by_id: HashMap<u32, Vec<u8>>,
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

impl Drop for SpecLease {
    fn drop(&mut self) {
        // A lease emptied by a failed acquire is dropped while that acquire holds the lock.
        if self.ids.is_empty() {
            return;
        }
        let mut g = ALLOCATORS.lock().unwrap_or_else(|p| p.into_inner());
        let Some(a) = g.get_or_insert_with(HashMap::new).get_mut(&self.map_id) else {
            return;
        };
        for id in &self.ids {
            let Some(bytes) = a.by_id.get(id).cloned() else {
                continue;
            };
            let entry = a.by_spec.get_mut(&bytes).expect("id and spec tables agree");
            entry.1 -= 1;
            if entry.1 == 0 {
                a.by_spec.remove(&bytes);
                a.by_id.remove(id);
                a.free.push(*id);
            }
        }
    }
}

/// Give every spec an id, writing new specs into the map. All or nothing: when the map is
/// full or a write fails, no id stays taken.
pub(crate) fn acquire(maps: &SpecMaps, specs: &[Vec<u8>]) -> Result<SpecLease, String> {
    let mut g = ALLOCATORS.lock().unwrap_or_else(|p| p.into_inner());
    let a = g
        .get_or_insert_with(HashMap::new)
        .entry(maps.info.id)
        .or_default();
    let mut lease = SpecLease {
        map_id: maps.info.id,
        ids: Vec::with_capacity(specs.len()),
    };
    let fail = |a: &mut Alloc, lease: &mut SpecLease, why: String| {
        // Undo: drop this lease's references and forget specs written for it.
        for id in lease.ids.drain(..) {
            let bytes = a.by_id[&id].clone();
            let e = a.by_spec.get_mut(&bytes).expect("consistent");
            e.1 -= 1;
            if e.1 == 0 {
                a.by_spec.remove(&bytes);
                a.by_id.remove(&id);
                a.free.push(id);
            }
        }
        why
    };
    for bytes in specs {
        if let Some(entry) = a.by_spec.get_mut(bytes) {
            entry.1 += 1;
            lease.ids.push(entry.0);
            continue;
        }
        let id = match a.free.pop() {
            Some(id) => id,
            None if a.next < maps.info.max_entries => {
                a.next += 1;
                a.next - 1
            }
            None => {
                let distinct = a.by_spec.len();
                let why = format!(
                    "__bpf_usdt_specs is full ({} entries, {distinct} distinct specs in use); \
                     raise BPF_USDT_MAX_SPEC_CNT in the BPF program",
                    maps.info.max_entries
                );
                return Err(fail(a, &mut lease, why));
            }
        };
        if let Err(e) = write(maps, id, bytes) {
            a.free.push(id);
            let why = format!("writing spec {id} into __bpf_usdt_specs: {e}");
            return Err(fail(a, &mut lease, why));
        }
        a.by_spec.insert(bytes.clone(), (id, 1));
        a.by_id.insert(id, bytes.clone());
        lease.ids.push(id);
    }
    Ok(lease)
}

fn write(maps: &SpecMaps, id: u32, bytes: &[u8]) -> io::Result<()> {
    bpf::map_update(maps.specs.as_fd(), &id.to_ne_bytes(), bytes)
}
