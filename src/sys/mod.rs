//! Everything that talks to the operating system through `unsafe`: one place, each block with
//! the reason it is sound. `bpf` wraps the bpf(2) commands usdtkit uses (through libbpf's
//! thin syscall wrappers), `perf` the uprobe PMU's perf_event_open(2), `text`
//! the one conversion of bytes to `str` that skips validation (proven ASCII by its own scan).
#![allow(unsafe_code)]

#[cfg(feature = "attach")]
pub(crate) mod bpf;
#[cfg(feature = "harness")]
pub mod held;
#[cfg(feature = "attach")]
pub(crate) mod perf;
#[cfg(feature = "recorder")]
pub mod process;
pub(crate) mod text;

use std::io;
use std::path::Path;

/// Take an exclusive lock on `file` (flock(2)), waiting for it; it is released when the file
/// is closed. (`File::lock` does the same from Rust 1.89, past this crate's MSRV.)
#[cfg(feature = "attach")]
pub(crate) fn lock_exclusive(file: &std::fs::File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: flock(2) takes a descriptor `file` keeps open and a flag; no memory.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Close `fd`, returning the kernel's error (dropping an `OwnedFd` ignores it).
#[cfg(feature = "attach")]
pub(crate) fn close(fd: std::os::fd::OwnedFd) -> io::Result<()> {
    use std::os::fd::IntoRawFd;
    // SAFETY: `into_raw_fd` gives up ownership; the descriptor is closed exactly once here.
    if unsafe { libc::close(fd.into_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// An anonymous file of `len` zero bytes that only this process can reach (memfd_create(2),
/// close-on-exec), for a uprobe no process will ever run into.
#[cfg(feature = "attach")]
pub(crate) fn private_file(name: &std::ffi::CStr, len: u64) -> io::Result<std::fs::File> {
    use std::os::fd::FromRawFd;
    // SAFETY: `name` is a NUL-terminated string the call only reads; no other memory.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nothing else.
    let file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.set_len(len)?;
    Ok(file)
}

/// A read-only memory map of a whole file (empty files give an empty slice).
#[derive(Debug)]
pub(crate) struct Mapping {
    map: Option<memmap2::Mmap>,
}

impl Mapping {
    /// Map `path` read-only.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
        // Refused before opening: opening a FIFO blocks until a writer comes.
        let not_plain = |t: std::fs::FileType| {
            let what = if t.is_dir() {
                "is a directory"
            } else if t.is_fifo() {
                "is a FIFO, not a file"
            } else if t.is_socket() {
                "is a socket, not a file"
            } else if t.is_block_device() || t.is_char_device() {
                "is a device, not a file"
            } else {
                return None;
            };
            Some(io::Error::new(io::ErrorKind::InvalidInput, what))
        };
        if let Some(e) = not_plain(std::fs::metadata(path)?.file_type()) {
            return Err(e);
        }
        // Non-blocking too, for a FIFO put in its place since.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)?;
        let meta = file.metadata()?;
        if let Some(e) = not_plain(meta.file_type()) {
            return Err(e);
        }
        if meta.len() == 0 {
            return Ok(Mapping { map: None });
        }
        // SAFETY: the map is private and read-only. If another process truncates or rewrites
        // the file while it is mapped, reads may see the new bytes or fault (SIGBUS); every
        // reader of these bytes bounds-checks, so changed bytes give errors, not unsoundness
        // beyond that mmap hazard, which every ELF tool mapping binaries accepts. Reading the
        // whole file instead would cost a copy of every binary (tens of MB for libjvm.so)
        // on every parse; the README's robustness section tells users of this limit.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        Ok(Mapping { map: Some(map) })
    }

    /// The mapped bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}

/// The slots of a vector being made in runs (see [`vec_in_two`]), filled in order.
#[cfg(feature = "attach")]
pub(crate) struct Filler<'a, T> {
    slots: &'a mut [std::mem::MaybeUninit<T>],
    len: usize,
}

#[cfg(feature = "attach")]
impl<T> Filler<'_, T> {
    /// Put the next item (panics past the run's slots).
    #[inline]
    pub(crate) fn push(&mut self, item: T) {
        self.slots[self.len].write(item);
        self.len += 1;
    }
}

/// A vector of `n` items made in two runs at once, on two threads, each item written in
/// place (no second copy, and each thread takes the page faults of its own run):
/// `fill(0..mid, f)` and `fill(mid..n, f)` push their run's items in order. A run that
/// pushes other than its length panics (what was made is leaked, never read).
#[cfg(feature = "attach")]
pub(crate) fn vec_in_two<T: Send>(
    n: usize,
    mid: usize,
    fill: impl Fn(std::ops::Range<usize>, &mut Filler<'_, T>) + Sync,
) -> Vec<T> {
    assert!(mid <= n);
    let mut v: Vec<T> = Vec::with_capacity(n);
    let (a, b) = v.spare_capacity_mut()[..n].split_at_mut(mid);
    let run = |range: std::ops::Range<usize>, slots| {
        let mut f = Filler { slots, len: 0 };
        fill(range, &mut f);
        f.len
    };
    let (made_a, made_b) = match mid < n {
        true => crate::parallel::join(|| run(0..mid, a), || run(mid..n, b)),
        false => (run(0..mid, a), 0),
    };
    assert!(
        made_a == mid && made_b == n - mid,
        "a run made {made_a} and {made_b} items of {mid} and {}",
        n - mid
    );
    // SAFETY: the first `mid` slots were written by the first run and the next `n - mid` by
    // the second (each counted its writes, checked just above), so the first `n` elements
    // are initialised; `n` is within the capacity reserved.
    unsafe { v.set_len(n) };
    v
}

#[cfg(all(test, feature = "attach"))]
mod tests {
    use super::*;

    #[test]
    fn a_vector_made_in_two_runs_holds_every_item_in_order() {
        for (n, mid) in [(0, 0), (5, 5), (1000, 500), (1001, 3)] {
            let v = vec_in_two(n, mid, |range, out| {
                for i in range {
                    out.push(format!("item {i}"));
                }
            });
            let want: Vec<String> = (0..n).map(|i| format!("item {i}")).collect();
            assert_eq!(v, want);
        }
    }

    #[test]
    #[should_panic(expected = "a run made")]
    fn a_run_that_makes_too_few_is_refused() {
        vec_in_two(10, 5, |range, out| {
            for i in range.skip(1) {
                out.push(i);
            }
        });
    }
}
