//! bpf(2) commands: program and map introspection, map updates, link creation.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use libbpf_sys as sys;

/// libbpf's wrappers return `-errno` (and set errno); turn that into an `io::Error`.
fn check(ret: i32) -> io::Result<i32> {
    if ret < 0 {
        Err(io::Error::from_raw_os_error(-ret))
    } else {
        Ok(ret)
    }
}

fn owned(fd: i32) -> io::Result<OwnedFd> {
    let fd = check(fd)?;
    // SAFETY: a non-negative return of these bpf(2) wrappers is a new file descriptor that
    // nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
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
}

/// The ids of the maps a loaded program uses.
pub(crate) fn prog_map_ids(prog: BorrowedFd<'_>) -> io::Result<Vec<u32>> {
    // SAFETY: bpf_prog_info is plain old data; all-zero is a valid value.
    let mut info: sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<sys::bpf_prog_info>() as u32;
    // SAFETY: `info` is a writable bpf_prog_info of `len` bytes.
    check(unsafe { sys::bpf_prog_get_info_by_fd(prog.as_raw_fd(), &mut info, &mut len) })?;
    let n = info.nr_map_ids;
    let mut ids = vec![0u32; n as usize];
    // SAFETY: as above, zeroed POD.
    let mut info: sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    info.nr_map_ids = n;
    info.map_ids = ids.as_mut_ptr() as u64;
    let mut len = std::mem::size_of::<sys::bpf_prog_info>() as u32;
    // SAFETY: `map_ids` points at `n` writable u32s, as `nr_map_ids` tells the kernel.
    check(unsafe { sys::bpf_prog_get_info_by_fd(prog.as_raw_fd(), &mut info, &mut len) })?;
    ids.truncate(info.nr_map_ids.min(n) as usize);
    Ok(ids)
}

/// A new file descriptor for the program with `id`.
pub(crate) fn prog_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    // SAFETY: takes a plain integer; returns a new fd or -errno.
    owned(unsafe { sys::bpf_prog_get_fd_by_id(id) })
}

/// The id of a loaded program.
pub(crate) fn prog_id(prog: BorrowedFd<'_>) -> io::Result<u32> {
    // SAFETY: bpf_prog_info is plain old data; all-zero is a valid value.
    let mut info: sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<sys::bpf_prog_info>() as u32;
    // SAFETY: `info` is a writable bpf_prog_info of `len` bytes.
    check(unsafe { sys::bpf_prog_get_info_by_fd(prog.as_raw_fd(), &mut info, &mut len) })?;
    Ok(info.id)
}

/// A new file descriptor for the map with `id`.
pub(crate) fn map_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    // SAFETY: takes a plain integer; returns a new fd or -errno.
    owned(unsafe { sys::bpf_map_get_fd_by_id(id) })
}

/// A map's type, name and sizes.
pub(crate) fn map_info(map: BorrowedFd<'_>) -> io::Result<MapInfo> {
    // SAFETY: bpf_map_info is plain old data; all-zero is a valid value.
    let mut info: sys::bpf_map_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<sys::bpf_map_info>() as u32;
    // SAFETY: `info` is a writable bpf_map_info of `len` bytes.
    check(unsafe { sys::bpf_map_get_info_by_fd(map.as_raw_fd(), &mut info, &mut len) })?;
    // SAFETY: the kernel NUL-terminates the 16-byte name.
    let name = unsafe { CStr::from_ptr(info.name.as_ptr()) };
    Ok(MapInfo {
        id: info.id,
        name: name.to_string_lossy().into_owned(),
        map_type: info.type_,
        key_size: info.key_size,
        value_size: info.value_size,
        max_entries: info.max_entries,
    })
}

/// Write `value` at `key` (sizes must be the map's; checked by the caller).
pub(crate) fn map_update(map: BorrowedFd<'_>, key: &[u8], value: &[u8]) -> io::Result<()> {
    // SAFETY: key and value are readable buffers of the map's key and value sizes.
    check(unsafe {
        sys::bpf_map_update_elem(
            map.as_raw_fd(),
            key.as_ptr().cast(),
            value.as_ptr().cast(),
            u64::from(sys::BPF_ANY),
        )
    })
    .map(drop)
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
    let mut count = keys.len() as u32;
    // SAFETY: bpf_map_batch_opts is plain old data; `sz` is set as libbpf requires.
    let mut opts: sys::bpf_map_batch_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<sys::bpf_map_batch_opts>() as _;
    opts.elem_flags = u64::from(sys::BPF_ANY);
    // SAFETY: `keys` holds `count` 4-byte keys and `values` `count` values of the map's
    // value size; `count` is read and written back by the kernel.
    let ret = unsafe {
        sys::bpf_map_update_batch(
            map.as_raw_fd(),
            keys.as_ptr().cast(),
            values.as_ptr().cast(),
            &mut count,
            &opts,
        )
    };
    match check(ret) {
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
    // SAFETY: bpf_link_create_opts is plain old data; all-zero is its default.
    let mut opts: sys::bpf_link_create_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<sys::bpf_link_create_opts>() as _;
    opts.__bindgen_anon_1.uprobe_multi = sys::bpf_link_create_opts__bindgen_ty_1__bindgen_ty_3 {
        flags: 0,
        cnt: offsets.len() as u32,
        path: path.as_ptr(),
        offsets: offsets.as_ptr().cast(),
        ref_ctr_offsets: ref_ctr_offsets.as_ptr().cast(),
        cookies: cookies.as_ptr(),
        pid,
        __bindgen_padding_0: [0; 4],
    };
    // SAFETY: every pointer in `opts` refers to a live slice of `cnt` elements (u64 and
    // unsigned long have the same size on the 64-bit hosts this builds for) or to `path`, all
    // borrowed for the duration of the call; the kernel copies them.
    owned(unsafe { sys::bpf_link_create(prog.as_raw_fd(), 0, sys::BPF_TRACE_UPROBE_MULTI, &opts) })
}

/// A `BPF_PERF_EVENT` link of a program to a perf event, with a BPF cookie (Linux 5.15+).
pub(crate) fn link_perf_event(
    prog: BorrowedFd<'_>,
    perf: BorrowedFd<'_>,
    cookie: u64,
) -> io::Result<OwnedFd> {
    // SAFETY: all-zero is the default of these options.
    let mut opts: sys::bpf_link_create_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<sys::bpf_link_create_opts>() as _;
    opts.__bindgen_anon_1.perf_event =
        sys::bpf_link_create_opts__bindgen_ty_1__bindgen_ty_1 { bpf_cookie: cookie };
    // SAFETY: `opts` is fully initialised and outlives the call.
    owned(unsafe {
        sys::bpf_link_create(
            prog.as_raw_fd(),
            perf.as_raw_fd(),
            sys::BPF_PERF_EVENT,
            &opts,
        )
    })
}

/// The version of the libbpf usdtkit links (vendored by libbpf-sys).
pub(crate) fn libbpf_version() -> (u32, u32) {
    // SAFETY: plain getters without arguments.
    unsafe { (sys::libbpf_major_version(), sys::libbpf_minor_version()) }
}
