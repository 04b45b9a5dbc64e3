//! Semaphores the kernel raises in the wrong mapping, and moving their counts where the
//! program reads them.
//!
//! The kernel keeps a semaphore (`ref_ctr_offset`) counting the attached sites by raising
//! the two bytes at that file offset in the *first writable mapping of the file* that covers
//! it, in every process. When a writable segment below the semaphore's own maps the same
//! file page (lld's RELRO segment ends on the page where the data segment starts, see
//! [`crate::elf::SemaphoreAlias`]), a process that maps the file after the probe was
//! attached gets its count in the RELRO mapping: the loader write-protects RELRO only later,
//! so at that moment it is the first writable mapping. The program's semaphore stays 0 and
//! the guarded probes never fire. Processes already running when the probe is attached are
//! fine (their RELRO is read-only by then), and so is the detach: by then the kernel finds
//! the real semaphore, and lowers that one.
//!
//! For a process usdtkit holds at its entry point (the loader done, no program code run),
//! [`move_misplaced`] moves what the kernel added at the alias to the real semaphore: after
//! that the count is where the kernel will look for it on detach.

use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::elf::{ByteOrder, SemaphoreAlias};
use crate::error::{Error, Result};
use crate::probe::UsdtFile;
use crate::procmaps;

/// A count moved from an alias to its semaphore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Moved {
    /// The semaphore (link-time address).
    pub semaphore: u64,
    /// How much the kernel had added at the alias.
    pub count: u16,
}

/// What [`move_misplaced`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Fixed {
    /// Counts moved.
    pub moved: Vec<Moved>,
    /// Aliased semaphores left as they were, and why (the alias still writable, the file
    /// not mapped yet...).
    pub left: Vec<(u64, String)>,
}

fn u16_of(b: [u8; 2], order: ByteOrder) -> u16 {
    match order {
        ByteOrder::Little => u16::from_le_bytes(b),
        ByteOrder::Big => u16::from_be_bytes(b),
    }
}

fn bytes_of(v: u16, order: ByteOrder) -> [u8; 2] {
    match order {
        ByteOrder::Little => v.to_le_bytes(),
        ByteOrder::Big => v.to_be_bytes(),
    }
}

/// Move the counts the kernel left at the aliases of `usdt`'s semaphores (`file` is where
/// it was read from, `data` its bytes) to the semaphores themselves, in process `pid`,
/// which must not be running (held at its entry point): the alias must be read-only there
/// (the loader has protected RELRO) and the semaphore writable.
pub fn move_misplaced(
    pid: u32,
    file: impl AsRef<Path>,
    usdt: &UsdtFile<'_>,
    data: &[u8],
) -> Result<Fixed> {
    let file = file.as_ref();
    let aliases = usdt.semaphore_aliases();
    let mut out = Fixed::default();
    if aliases.is_empty() {
        return Ok(out);
    }
    let io = |source| Error::Io {
        path: format!("/proc/{pid}/maps").into(),
        source,
    };
    let mine = procmaps::of_file(pid, file).map_err(io)?;
    let elf = usdt.elf();
    let bias = if elf.file_type == 2 {
        Some(0)
    } else {
        elf.segments
            .first()
            .and_then(|s| procmaps::load_bias(&mine, s.vaddr, s.offset))
    };
    let Some(bias) = bias else {
        for a in &aliases {
            out.left
                .push((a.semaphore, "the process does not map the file yet".into()));
        }
        return Ok(out);
    };
    let all = procmaps::read(pid).map_err(io)?;
    let mem_path = format!("/proc/{pid}/mem");
    let mem = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&mem_path)
        .map_err(|source| Error::Io {
            path: mem_path.clone().into(),
            source,
        })?;
    let mem_err = |source| Error::Io {
        path: mem_path.clone().into(),
        source,
    };
    for a in &aliases {
        let SemaphoreAlias {
            semaphore,
            alias,
            file_offset,
        } = *a;
        let (real, at) = (semaphore.wrapping_add(bias), alias.wrapping_add(bias));
        let writable = |addr: u64| all.iter().find(|m| m.contains(addr)).map(|m| m.write);
        match (writable(real), writable(at)) {
            (Some(true), Some(false)) => {}
            (r, x) => {
                out.left.push((
                    semaphore,
                    format!(
                        "semaphore mapping {}, alias mapping {}",
                        r.map_or("absent", |w| if w { "writable" } else { "read-only" }),
                        x.map_or("absent", |w| if w {
                            "writable (the kernel keeps using it)"
                        } else {
                            "read-only"
                        })
                    ),
                ));
                continue;
            }
        }
        let Some(orig) = data
            .get(file_offset as usize..file_offset as usize + 2)
            .map(|b| u16_of([b[0], b[1]], elf.byte_order))
        else {
            continue;
        };
        let mut b = [0u8; 2];
        mem.read_exact_at(&mut b, at).map_err(mem_err)?;
        let count = u16_of(b, elf.byte_order).wrapping_sub(orig);
        if count == 0 {
            continue;
        }
        if count > 0x7fff {
            out.left.push((
                semaphore,
                format!("the alias holds less than the file ({count:#x} below): left alone"),
            ));
            continue;
        }
        mem.read_exact_at(&mut b, real).map_err(mem_err)?;
        let now = u16_of(b, elf.byte_order);
        mem.write_all_at(&bytes_of(now.wrapping_add(count), elf.byte_order), real)
            .map_err(mem_err)?;
        mem.write_all_at(&bytes_of(orig, elf.byte_order), at)
            .map_err(mem_err)?;
        out.moved.push(Moved { semaphore, count });
    }
    Ok(out)
}

/// The warning for a file whose semaphores alias another writable segment, when usdtkit
/// cannot hold the processes that will map it (every process, or a library loaded later).
pub fn warning(file: impl AsRef<Path>, aliases: &[SemaphoreAlias]) -> String {
    let file = file.as_ref();
    format!(
        "{}: {} semaphore{} share{} a file page with a writable segment mapped below {} \
         (lld's RELRO layout); in processes that map the file after this attach, the kernel \
         raises {} in that other mapping and the guarded probes do not fire. Processes \
         already running are not affected; trace a new process with `usdtkit trace -- \
         COMMAND` (which holds it until the counts are moved), or link with \
         `-z separate-loadable-segments` (lld) or GNU ld",
        file.display(),
        aliases.len(),
        if aliases.len() == 1 { "" } else { "s" },
        if aliases.len() == 1 { "s" } else { "" },
        if aliases.len() == 1 { "it" } else { "them" },
        if aliases.len() == 1 { "it" } else { "them" },
    )
}

/// For a process held right after its `exec` with probes of `files` attached: when some of
/// their semaphores alias another writable segment, run it to its entry point and move the
/// counts there (see the module's documentation). Returns one line per file saying what was
/// done, or why nothing could be.
#[cfg(feature = "harness")]
pub fn settle<'a>(
    held: &mut crate::sys::held::Held,
    files: impl IntoIterator<Item = &'a Path>,
) -> Result<Vec<String>> {
    let mut todo = Vec::new();
    for f in files {
        let mapped = crate::MappedFile::open(f)?;
        if !mapped.usdt()?.semaphore_aliases().is_empty() {
            todo.push(mapped);
        }
    }
    if todo.is_empty() {
        return Ok(Vec::new());
    }
    let pid = held.pid();
    let reached = held.run_to_entry().map_err(|source| Error::Io {
        path: format!("/proc/{pid}").into(),
        source,
    })?;
    let mut notes = Vec::new();
    for m in &todo {
        let usdt = m.usdt()?;
        if !reached {
            notes.push(warning(m.path(), &usdt.semaphore_aliases()));
            continue;
        }
        let fixed = move_misplaced(pid, m.path(), &usdt, m.bytes())?;
        let moved: Vec<String> = fixed
            .moved
            .iter()
            .map(|x| format!("{:#x} (+{})", x.semaphore, x.count))
            .collect();
        let left: Vec<String> = fixed
            .left
            .iter()
            .map(|(s, why)| format!("{s:#x}: {why}"))
            .collect();
        notes.push(format!(
            "{}: semaphores sharing a page with RELRO: counts the kernel raised in the RELRO mapping moved to {}{}",
            m.path().display(),
            if moved.is_empty() { "none".to_string() } else { moved.join(", ") },
            if left.is_empty() { String::new() } else { format!("; left: {}", left.join(", ")) }
        ));
    }
    Ok(notes)
}
