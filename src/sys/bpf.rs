//! bpf(2) commands: program and map introspection, map updates, link creation, through the
//! raw system call (no C library: the `attach` feature builds no C). Each command's attribute
//! is a `#[repr(C)]` prefix of the kernel's `union bpf_attr` member; the kernel takes a size
//! and zero-fills what a shorter attribute leaves out.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

// Commands and attach types of `linux/bpf.h` (stable UAPI numbers).
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_MAP_GET_FD_BY_ID: libc::c_long = 14;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_PERF_EVENT: u32 = 41;
const BPF_TRACE_UPROBE_MULTI: u32 = 48;
const BPF_ANY: u64 = 0;
/// `BPF_F_MMAPABLE`: an array map whose values user space can map.
pub(crate) const BPF_F_MMAPABLE: u32 = 1 << 10;

/// `bpf(cmd, attr, sizeof attr)`: the raw return value, or the errno as an error.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<i64> {
    // SAFETY: `attr` is an initialised `#[repr(C)]` attribute of this command, readable and
    // writable for its whole size; every pointer inside it refers to memory the caller keeps
    // alive for the call (the kernel copies what it reads before returning).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A bpf(2) command that returns a new file descriptor.
fn bpf_fd<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<OwnedFd> {
    let fd = bpf(cmd, attr)?;
    // SAFETY: a non-negative return of these commands is a new file descriptor that nothing
    // else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `union bpf_attr` for `BPF_MAP_*_ELEM`.
#[repr(C)]
struct ElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// `union bpf_attr` for `BPF_MAP_*_BATCH`.
#[repr(C)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// `union bpf_attr` for `BPF_*_GET_FD_BY_ID`.
#[repr(C)]
#[derive(Default)]
struct IdAttr {
    id: u32,
    next_id: u32,
    open_flags: u32,
}

/// `union bpf_attr` for `BPF_OBJ_GET_INFO_BY_FD`.
#[repr(C)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// `union bpf_attr` for `BPF_LINK_CREATE`: the common part, then the attach type's own
/// fields (`perf_event.bpf_cookie` is `a`; `uprobe_multi` uses them all).
#[repr(C)]
#[derive(Default)]
struct LinkAttr {
    prog_fd: u32,
    target_fd: u32,
    attach_type: u32,
    flags: u32,
    a: u64,
    b: u64,
    c: u64,
    d: u64,
    cnt: u32,
    multi_flags: u32,
    pid: u32,
    _pad: u32,
}

/// The first fields of `struct bpf_prog_info`, up to `map_ids`.
#[repr(C)]
#[derive(Default)]
struct ProgInfo {
    prog_type: u32,
    id: u32,
    tag: [u8; 8],
    jited_prog_len: u32,
    xlated_prog_len: u32,
    jited_prog_insns: u64,
    xlated_prog_insns: u64,
    load_time: u64,
    created_by_uid: u32,
    nr_map_ids: u32,
    map_ids: u64,
}

/// The first fields of `struct bpf_map_info`, up to `name`.
#[repr(C)]
#[derive(Default)]
struct RawMapInfo {
    map_type: u32,
    id: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    name: [u8; 16],
}

/// Fill `info` (a prefix of the kernel's info struct for this kind of object) for `fd`.
fn obj_info<T>(fd: BorrowedFd<'_>, info: &mut T) -> io::Result<()> {
    let mut attr = InfoAttr {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: std::mem::size_of::<T>() as u32,
        info: info as *mut T as u64,
    };
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr).map(drop)
}

/// What usdtkit needs to know of a map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MapInfo {
    pub id: u32,
    pub name: String,
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
}

/// The ids of the maps a loaded program uses.
pub(crate) fn prog_map_ids(prog: BorrowedFd<'_>) -> io::Result<Vec<u32>> {
    let mut info = ProgInfo::default();
    obj_info(prog, &mut info)?;
    let n = info.nr_map_ids;
    let mut ids = vec![0u32; n as usize];
    let mut info = ProgInfo {
        nr_map_ids: n,
        map_ids: ids.as_mut_ptr() as u64,
        ..ProgInfo::default()
    };
    // The kernel writes at most `nr_map_ids` ids to `map_ids`, which holds that many.
    obj_info(prog, &mut info)?;
    ids.truncate(info.nr_map_ids.min(n) as usize);
    Ok(ids)
}

/// A new file descriptor for the program with `id`.
pub(crate) fn prog_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = IdAttr {
        id,
        ..IdAttr::default()
    };
    bpf_fd(BPF_PROG_GET_FD_BY_ID, &mut attr)
}

/// The id of a loaded program.
pub(crate) fn prog_id(prog: BorrowedFd<'_>) -> io::Result<u32> {
    let mut info = ProgInfo::default();
    obj_info(prog, &mut info)?;
    Ok(info.id)
}

/// A new file descriptor for the map with `id`.
pub(crate) fn map_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = IdAttr {
        id,
        ..IdAttr::default()
    };
    bpf_fd(BPF_MAP_GET_FD_BY_ID, &mut attr)
}

/// A map's type, name and sizes.
pub(crate) fn map_info(map: BorrowedFd<'_>) -> io::Result<MapInfo> {
    let mut info = RawMapInfo::default();
    obj_info(map, &mut info)?;
    let len = info
        .name
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(info.name.len());
    Ok(MapInfo {
        id: info.id,
        name: String::from_utf8_lossy(&info.name[..len]).into_owned(),
        map_type: info.map_type,
        key_size: info.key_size,
        value_size: info.value_size,
        max_entries: info.max_entries,
        map_flags: info.map_flags,
    })
}

/// Write `value` at `key` (sizes must be the map's; checked by the caller).
pub(crate) fn map_update(map: BorrowedFd<'_>, key: &[u8], value: &[u8]) -> io::Result<()> {
    let mut attr = ElemAttr {
        map_fd: map.as_raw_fd() as u32,
        _pad: 0,
        key: key.as_ptr() as u64,
        value: value.as_ptr() as u64,
        flags: BPF_ANY,
    };
    bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(drop)
}

/// Write `values` (back to back, `value_size` bytes each) at the 4-byte `keys`, in one
/// `BPF_MAP_UPDATE_BATCH` (Linux 5.6+ for arrays); on a kernel without it, one update each.
pub(crate) fn map_update_batch(
    map: BorrowedFd<'_>,
    keys: &[u32],
    values: &[u8],
    value_size: usize,
) -> io::Result<()> {
    assert_eq!(keys.len() * value_size, values.len());
    if keys.is_empty() {
        return Ok(());
    }
    let mut attr = BatchAttr {
        in_batch: 0,
        out_batch: 0,
        keys: keys.as_ptr() as u64,
        values: values.as_ptr() as u64,
        count: keys.len() as u32,
        map_fd: map.as_raw_fd() as u32,
        elem_flags: BPF_ANY,
        flags: 0,
    };
    match bpf(BPF_MAP_UPDATE_BATCH, &mut attr) {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOTSUP | 524)) => {
            // 524: ENOTSUPP, the kernel's own "not supported".
            for (k, v) in keys.iter().zip(values.chunks(value_size)) {
                map_update(map, &k.to_ne_bytes(), v)?;
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// One `BPF_TRACE_UPROBE_MULTI` link over many offsets of one file (Linux 6.6+).
pub(crate) fn link_uprobe_multi(
    prog: BorrowedFd<'_>,
    path: &CStr,
    offsets: &[u64],
    ref_ctr_offsets: &[u64],
    cookies: &[u64],
    pid: u32,
) -> io::Result<OwnedFd> {
    assert!(offsets.len() == ref_ctr_offsets.len() && offsets.len() == cookies.len());
    let mut attr = LinkAttr {
        prog_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_TRACE_UPROBE_MULTI,
        a: path.as_ptr() as u64,
        b: offsets.as_ptr() as u64,
        c: ref_ctr_offsets.as_ptr() as u64,
        d: cookies.as_ptr() as u64,
        cnt: offsets.len() as u32,
        pid,
        ..LinkAttr::default()
    };
    bpf_fd(BPF_LINK_CREATE, &mut attr)
}

/// A `BPF_PERF_EVENT` link of a program to a perf event, with a BPF cookie (Linux 5.15+).
pub(crate) fn link_perf_event(
    prog: BorrowedFd<'_>,
    perf: BorrowedFd<'_>,
    cookie: u64,
) -> io::Result<OwnedFd> {
    let mut attr = LinkAttr {
        prog_fd: prog.as_raw_fd() as u32,
        target_fd: perf.as_raw_fd() as u32,
        attach_type: BPF_PERF_EVENT,
        a: cookie,
        ..LinkAttr::default()
    };
    bpf_fd(BPF_LINK_CREATE, &mut attr)
}

/// The version of the libbpf that libbpf-rs links (vendored by libbpf-sys).
#[cfg(feature = "harness")]
pub(crate) fn libbpf_version() -> (u32, u32) {
    // SAFETY: plain getters without arguments.
    unsafe {
        (
            libbpf_sys::libbpf_major_version(),
            libbpf_sys::libbpf_minor_version(),
        )
    }
}

/// The values of array map entries `first..end` mapped writable into this process (a map
/// made with [`BPF_F_MMAPABLE`]): writing an entry is a store, not a syscall and a copy.
/// Unmapped on drop.
pub(crate) struct ArrayWindow {
    base: *mut u8,
    len: usize,
    /// Byte offset of `base` in the map's values.
    start: usize,
    value_size: usize,
    entries: std::ops::Range<u32>,
}

// SAFETY: the window is plain memory owned by this value; nothing ties it to a thread.
unsafe impl Send for ArrayWindow {}

impl ArrayWindow {
    /// Map entries `entries` of the array map `map` (values of `value_size` bytes, a multiple
    /// of 8 as the kernel lays them out; `max_entries` in all).
    pub(crate) fn map(
        map: BorrowedFd<'_>,
        entries: std::ops::Range<u32>,
        value_size: usize,
        max_entries: u32,
    ) -> io::Result<Self> {
        let page = 4096;
        let (first, end) = (entries.start as usize, entries.end as usize);
        if value_size % 8 != 0 || first >= end || end > max_entries as usize {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        let start = first * value_size / page * page;
        let len = (end * value_size).div_ceil(page) * page - start;
        // SAFETY: a fresh shared mapping of the map's pages at a page-aligned offset within
        // its values (the kernel checks the range); no existing memory is touched. The
        // pointer is owned by the returned value and unmapped exactly once, on drop.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                map.as_raw_fd(),
                start as libc::off_t,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(ArrayWindow {
            base: base.cast(),
            len,
            start,
            value_size,
            entries,
        })
    }

    /// The value of entry `index` (within the mapped entries).
    pub(crate) fn value_mut(&mut self, index: u32) -> &mut [u8] {
        assert!(self.entries.contains(&index), "entry {index} is not mapped");
        let at = index as usize * self.value_size - self.start;
        // SAFETY: `at..at + value_size` lies within the mapping (the entry is one of those
        // mapped), and `&mut self` makes this the only reference into it from this process.
        // Other writers of the same entry would be other processes or BPF programs: the
        // caller writes only entries it holds and no link uses yet (as with a map update).
        unsafe { std::slice::from_raw_parts_mut(self.base.add(at), self.value_size) }
    }
}

impl Drop for ArrayWindow {
    fn drop(&mut self) {
        // SAFETY: `base..base + len` is the mapping made in `map`, unmapped only here; no
        // slice into it outlives the `&mut self` it was borrowed from.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

/// A new array map with 4-byte keys (tests: usdtkit maps only programs' own maps).
#[cfg(test)]
pub(crate) fn array_map_create(
    name: &str,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
) -> io::Result<OwnedFd> {
    /// The prefix of `union bpf_attr` for `BPF_MAP_CREATE`, to the name.
    #[repr(C)]
    #[derive(Default)]
    struct CreateAttr {
        map_type: u32,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        map_flags: u32,
        inner_map_fd: u32,
        numa_node: u32,
        map_name: [u8; 16],
    }
    let mut attr = CreateAttr {
        map_type: 2, // BPF_MAP_TYPE_ARRAY
        key_size: 4,
        value_size,
        max_entries,
        map_flags,
        ..CreateAttr::default()
    };
    let n = name.len().min(15);
    attr.map_name[..n].copy_from_slice(&name.as_bytes()[..n]);
    bpf_fd(0, &mut attr) // BPF_MAP_CREATE
}

/// The value at `key` of a map with 4-byte keys (tests).
#[cfg(test)]
pub(crate) fn map_lookup(map: BorrowedFd<'_>, key: u32, value_size: usize) -> io::Result<Vec<u8>> {
    let mut value = vec![0u8; value_size];
    let mut attr = ElemAttr {
        map_fd: map.as_raw_fd() as u32,
        _pad: 0,
        key: &key as *const u32 as u64,
        value: value.as_mut_ptr() as u64,
        flags: 0,
    };
    bpf(1, &mut attr)?; // BPF_MAP_LOOKUP_ELEM
    Ok(value)
}

#[cfg(test)]
mod tests {
    use std::mem::{offset_of, size_of};

    use super::*;

    /// Offsets of `linux/bpf.h` (Linux 6.6+, as libbpf 1.7's copy has them).
    #[test]
    fn attributes_match_the_uapi() {
        assert_eq!(offset_of!(LinkAttr, a), 16);
        assert_eq!(offset_of!(LinkAttr, cnt), 48);
        assert_eq!(offset_of!(LinkAttr, pid), 56);
        assert_eq!(offset_of!(BatchAttr, count), 32);
        assert_eq!(offset_of!(BatchAttr, elem_flags), 40);
        assert_eq!(offset_of!(ElemAttr, flags), 24);
        assert_eq!(offset_of!(ProgInfo, nr_map_ids), 52);
        assert_eq!(offset_of!(ProgInfo, map_ids), 56);
        assert_eq!(offset_of!(RawMapInfo, name), 24);
        assert_eq!(size_of::<RawMapInfo>(), 40);
    }
}
