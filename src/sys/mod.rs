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
