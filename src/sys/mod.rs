//! Everything that talks to the operating system through `unsafe`: one place, each block with
//! the reason it is sound. `bpf` wraps the bpf(2) commands usdtkit uses (through libbpf's
//! thin syscall wrappers), `perf` the uprobe PMU's perf_event_open(2), `text`
//! the one conversion of bytes to `str` that skips validation (proven ASCII by its own scan).

pub(crate) mod bpf;
pub mod held;
pub(crate) mod perf;
pub mod process;
pub(crate) mod text;

use std::fs::File;
use std::io;
use std::path::Path;

/// A read-only memory map of a whole file (empty files give an empty slice).
#[derive(Debug)]
pub(crate) struct Mapping {
    map: Option<memmap2::Mmap>,
}

impl Mapping {
    /// Map `path` read-only.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "is a directory",
            ));
        }
        if meta.len() == 0 {
            return Ok(Mapping { map: None });
        }
        // SAFETY: the map is private and read-only. If another process truncates or rewrites
        // the file while it is mapped, reads may see the new bytes or fault (SIGBUS); every
        // reader of these bytes bounds-checks, so changed bytes give errors, not unsoundness
        // beyond that documented mmap hazard, which every ELF tool mapping binaries accepts.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        Ok(Mapping { map: Some(map) })
    }

    /// The mapped bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}
