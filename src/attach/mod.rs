//! Attaching BPF programs to USDT probes: libbpf's `bpf_program__attach_usdt` in Rust,
//! compatible with programs built against libbpf's `usdt.bpf.h`, and more.
//!
//! - Any number of probes (names, `provider:*`-style patterns, or all of them) of one file go
//!   through **one** `uprobe_multi` link, not one link per probe name.
//! - `__bpf_usdt_specs` is filled in the layout the program was built with (libbpf up to 1.6,
//!   or 1.7 and later, told apart by the map's value size); identical specs share an id; ids
//!   are freed when the last link using them detaches; a full map fails the attach cleanly.
//! - A file given by path is planned straight from its notes (no full parse when nothing in
//!   it needs one), and a spec map made with `BPF_F_MMAPABLE` is written through a mapping
//!   (no syscall or kernel copy per spec): most of a large attach is the kernel's link.
//! - Forms libbpf refuses are encoded within its ABI (see [`plan`]); an argument no spec can
//!   express does not fail the attach: it reads as an error, with the reason in
//!   [`UsdtLink::warnings`].
//!
//! ## Which kernel interface
//!
//! The kernel fixes a program's attach type when it is loaded: a program loaded for
//! `BPF_TRACE_UPROBE_MULTI` (libbpf does this for `SEC("usdt")` programs whenever the kernel
//! has uprobe_multi, Linux 6.6+; also `SEC("uprobe.multi")`) can only be attached through a
//! uprobe_multi link, and any other uprobe program only through perf events. With
//! [`AttachMode::Auto`], usdtkit tries the uprobe_multi link first and, if the kernel rejects
//! it for this program, one perf-event uprobe per site (uprobe PMU, `ref_ctr_offset` for
//! semaphores) with a BPF perf link carrying the spec id as cookie (Linux 5.15+); when both
//! fail, the error keeps both reasons. Choose the program's section (or set its expected
//! attach type) before loading accordingly.

mod error;
pub mod plan;
pub mod resolve;
pub mod semaphore;
pub mod spec;

mod direct;
mod ids;
mod maps;
mod registry;
mod select;
mod table;
mod warm;
mod write;

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use self::error::AttachErrorKind;
pub(crate) use self::plan::ArgShape;
use self::plan::Unencodable;
pub(crate) use self::select::selected;
pub use self::select::{glob, ProbeSelector};
use crate::arch::Arch;
use crate::elf::{ByteOrder, ElfFile};
use crate::error::{Context, Error, Result};
use crate::probe::{MappedFile, UsdtFile};
use crate::sys::{bpf, perf};

/// How to attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum AttachMode {
    /// uprobe_multi when the program allows it, else perf events.
    #[default]
    Auto,
    /// One `uprobe_multi` link for every site.
    Multi,
    /// One perf-event uprobe and BPF perf link per site.
    PerfEvent,
}

/// A file descriptor for the loaded BPF program with kernel id `id` (another process's
/// program, for instance, to attach through it).
pub fn program_by_id(id: u32) -> std::io::Result<std::os::fd::OwnedFd> {
    crate::sys::bpf::prog_fd_by_id(id)
}

/// The kernel id of the loaded BPF program `prog`.
pub fn program_id(prog: BorrowedFd<'_>) -> std::io::Result<u32> {
    crate::sys::bpf::prog_id(prog)
}

/// One attached site.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct AttachedSite {
    /// Provider (one allocation shared by every site of the probe).
    pub provider: Arc<str>,
    /// Probe name (shared like `provider`).
    pub name: Arc<str>,
    /// Link-time site address.
    pub pc: u64,
    /// File offset the uprobe is at.
    pub offset: u64,
    /// The user cookie.
    pub cookie: u64,
    /// The spec id (the BPF cookie).
    pub spec_id: u32,
    /// Arguments that read as errors: (index, reason).
    pub unreadable: Vec<(usize, Unencodable)>,
    /// Index of the site in [`UsdtFile::sites`] of the file it was attached from.
    pub site_index: usize,
}

/// Attaches of this many sites make the kernel link on a second thread (below, a thread
/// costs more than it saves).
const OVERLAP_SITES: usize = 4096;

/// Attached probes. Dropping the link detaches them; [`UsdtLink::detach`] does the same and
/// reports errors.
#[derive(Debug)]
pub struct UsdtLink {
    binary: PathBuf,
    mode: AttachMode,
    // Field order matters: links close before perf events, and spec ids are freed last.
    links: Vec<OwnedFd>,
    _perf_events: Vec<OwnedFd>,
    _lease: maps::SpecLease,
    sites: Vec<AttachedSite>,
    warnings: Vec<String>,
}

impl UsdtLink {
    /// The file the probes are in.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The interface used: [`AttachMode::Multi`] or [`AttachMode::PerfEvent`].
    pub fn mode(&self) -> AttachMode {
        self.mode
    }

    /// Every attached site.
    pub fn sites(&self) -> &[AttachedSite] {
        &self.sites
    }

    /// Kernel links held (1 for uprobe_multi, one per site for perf events).
    pub fn link_count(&self) -> usize {
        self.links.len()
    }

    /// Arguments that will read as errors, one line per distinct reason (file, probe, site,
    /// argument and why).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Detach now: close every link and perf event and release the spec ids, reporting the
    /// first error the kernel or the spec-id registry gave (everything is released even
    /// then). Dropping the link does the same silently.
    pub fn detach(mut self) -> Result<()> {
        let ctx = || Context::file(&self.binary);
        let mut first: Option<Error> = None;
        let links = std::mem::take(&mut self.links);
        let events = std::mem::take(&mut self._perf_events);
        for (fd, what) in links
            .into_iter()
            .map(|l| (l, "closing a BPF link"))
            .chain(events.into_iter().map(|e| (e, "closing a perf event")))
        {
            if let Err(e) = crate::sys::close(fd) {
                first.get_or_insert(Error::attach(ctx(), AttachErrorKind::os(what, e)));
            }
        }
        if let Err(e) = self._lease.give_back() {
            let what = "releasing spec ids in the registry";
            first.get_or_insert(Error::attach(ctx(), AttachErrorKind::os(what, e)));
        }
        first.map_or(Ok(()), Err)
    }
}

/// Attaches one loaded BPF program to USDT probes.
#[derive(Debug, Clone, Copy)]
pub struct UsdtAttacher<'p> {
    prog: BorrowedFd<'p>,
    pid: i32,
    mode: AttachMode,
    optimize_nop5: Option<bool>,
    site_cookies: Option<u64>,
}

impl<'p> UsdtAttacher<'p> {
    /// An attacher for the loaded program `prog` (any process, automatic mode).
    pub fn new(prog: BorrowedFd<'p>) -> Self {
        UsdtAttacher {
            prog,
            pid: -1,
            mode: AttachMode::Auto,
            optimize_nop5: None,
            site_cookies: None,
        }
    }

    /// An attacher for a `libbpf_rs` program.
    #[cfg(feature = "libbpf-rs")]
    #[cfg_attr(docsrs, doc(cfg(feature = "libbpf-rs")))]
    pub fn for_program(prog: &'p libbpf_rs::Program<'_>) -> Self {
        Self::new(prog.as_fd())
    }

    /// Which processes: `-1` every process, `0` this one, or a pid (libbpf's convention).
    pub fn pid(mut self, pid: i32) -> Self {
        self.pid = pid;
        self
    }

    /// Force an attach mode.
    pub fn mode(mut self, mode: AttachMode) -> Self {
        self.mode = mode;
        self
    }

    /// Attach `nop; nop5` sites at +1 (the kernel's optimized uprobe path) or not; by default
    /// when the kernel has the `uprobe()` syscall, as libbpf 1.7 does.
    pub fn optimize_nop5(mut self, on: bool) -> Self {
        self.optimize_nop5 = Some(on);
        self
    }

    /// Give every site its own user cookie, `first`, `first + 1`, ... in attach order,
    /// instead of the selectors' cookies (what a recorder needs to tell sites apart).
    pub fn site_cookies(mut self, first: u64) -> Self {
        self.site_cookies = Some(first);
        self
    }

    fn pid_filter(&self) -> Option<u32> {
        match self.pid {
            p if p > 0 => Some(p as u32),
            0 => Some(std::process::id()),
            _ => None,
        }
    }

    /// Attach to the probe `provider:name` of `binary` (every site), like libbpf's
    /// `bpf_program__attach_usdt`.
    pub fn attach(
        &self,
        binary: &str,
        provider: &str,
        name: &str,
        cookie: u64,
    ) -> Result<UsdtLink> {
        self.attach_many(binary, &[ProbeSelector::new(provider, name, cookie)])
    }

    /// Attach to every probe of `binary` that a selector matches, through one link.
    pub fn attach_many(&self, binary: &str, selectors: &[ProbeSelector]) -> Result<UsdtLink> {
        let path = resolve::resolve(binary, self.pid_filter())
            .map_err(|kind| Error::attach(Context::file(binary), kind))?;
        let mapped = MappedFile::open(&path)?;
        self.attach_with(&path, &mapped, None, selectors, |_| ())
            .map(|(link, ())| link)
    }

    /// Attach to probes of an already-read file.
    pub fn attach_file(
        &self,
        path: impl AsRef<Path>,
        mapped: &MappedFile,
        usdt: &UsdtFile<'_>,
        selectors: &[ProbeSelector],
    ) -> Result<UsdtLink> {
        self.attach_with(path.as_ref(), mapped, Some(usdt), selectors, |_| ())
            .map(|(link, ())| link)
    }

    /// Attach to probes of a mapped file, read already (`usdt`) or not (then planned from
    /// its notes directly when it can be: see [`direct`]), running `meanwhile` on this
    /// thread while the kernel makes a large link on another (or after a small one): work of
    /// the caller's that costs no time there. Not run when the attach fails before the link.
    pub(crate) fn attach_with<T>(
        &self,
        path: &Path,
        mapped: &MappedFile,
        usdt: Option<&UsdtFile<'_>>,
        selectors: &[ProbeSelector],
        meanwhile: impl FnOnce(&Attaching<'_>) -> T,
    ) -> Result<(UsdtLink, T)> {
        let err = |kind| Error::attach(Context::file(path), kind);
        // The architecture is checked first, as always; headers that do not read send the
        // attach to the full parse, which says why.
        let headers = match usdt {
            Some(u) => Some((u.arch(), None)),
            None => ElfFile::parse(mapped.bytes())
                .ok()
                .map(|e| (Arch::from_elf(e.machine, e.is_64), Some(e))),
        };
        let host = Arch::host();
        if let Some((arch, _)) = &headers {
            if !host.is_some_and(|h| plan::runs_on(h, *arch)) {
                return Err(err(AttachErrorKind::WrongArch { file: *arch, host }));
            }
        }
        // A large attach waits out the kernel's first-registration wait while it plans.
        let notes = match (usdt, &headers) {
            (Some(u), _) => u.elf().stapsdt_notes,
            (None, Some((_, Some(elf)))) => elf.stapsdt_notes,
            _ => None,
        };
        let warmup = (self.mode != AttachMode::PerfEvent
            && notes.is_some_and(|n| n.len() >= warm::NOTES_BYTES))
        .then(|| warm::Warmup::start(self.prog))
        .flatten();
        let maps = maps::find(self.prog).map_err(err)?;
        let nop5 = self.optimize_nop5.unwrap_or_else(perf::has_uprobe_syscall);
        let setting = table::Setting {
            path,
            file: mapped.bytes(),
            layout: maps.layout,
            nop5,
            site_cookies: self.site_cookies,
        };
        let direct = match &headers {
            Some((arch, Some(elf))) => direct::build(elf, *arch, selectors, &setting)
                .filter(|t| !t.plans.is_empty())
                .map(|t| (t, elf.byte_order)),
            _ => None,
        };
        let (table, order) = match (direct, usdt) {
            (Some(planned), _) => planned,
            (None, Some(u)) => (
                plan_parsed(path, u, selectors, &setting)?,
                u.elf().byte_order,
            ),
            (None, None) => {
                let u = mapped.usdt()?;
                (
                    plan_parsed(path, &u, selectors, &setting)?,
                    u.elf().byte_order,
                )
            }
        };
        let big = order == ByteOrder::Big;
        let table::Table {
            plans,
            args,
            unreadable,
            names,
            warnings,
        } = table;
        // With site cookies no two specs are equal: none is looked up or kept for sharing.
        let shared = self.site_cookies.is_none();
        // Mappings the specs were written through, unmapped while the kernel makes the link.
        let (lease, windows) = maps::acquire(&maps, plans.len(), shared, |i, buf| {
            let p = &plans[i];
            spec::encode_to(maps.layout, big, args.encodings(&p.args), p.cookie, buf);
        })
        .map_err(err)?;
        let build_sites = || -> Vec<AttachedSite> {
            plans
                .iter()
                .zip(lease.ids())
                .map(|(p, id)| AttachedSite {
                    provider: Arc::clone(&names[p.probe as usize].0),
                    name: Arc::clone(&names[p.probe as usize].1),
                    pc: p.pc,
                    offset: p.offset,
                    cookie: p.cookie,
                    spec_id: *id,
                    unreadable: unreadable[p.unreadable.start as usize..p.unreadable.end as usize]
                        .to_vec(),
                    site_index: p.site as usize,
                })
                .collect()
        };
        let cpath = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| err(AttachErrorKind::NulInPath))?;
        let offsets: Vec<u64> = plans.iter().map(|p| p.offset).collect();
        let ref_ctrs: Vec<u64> = plans.iter().map(|p| p.ref_ctr_offset).collect();
        let cookies: Vec<u64> = lease.ids().iter().map(|&i| u64::from(i)).collect();

        type Links = (Vec<OwnedFd>, Vec<OwnedFd>);
        let multi = || -> std::result::Result<Links, AttachErrorKind> {
            let pid = self.pid_filter().unwrap_or(0);
            bpf::link_uprobe_multi(self.prog, &cpath, &offsets, &ref_ctrs, &cookies, pid)
                .map(|l| (vec![l], Vec::new()))
                .map_err(|e| AttachErrorKind::os("uprobe_multi link", e))
        };
        let per_site = |sites: &[AttachedSite]| -> std::result::Result<Links, AttachErrorKind> {
            let pmu = perf::uprobe_pmu_type()
                .map_err(|e| AttachErrorKind::os("reading the uprobe PMU's type", e))?;
            let pid = self.pid_filter().map_or(-1, |p| p as i32);
            let (mut links, mut events) = (Vec::new(), Vec::new());
            for (i, s) in sites.iter().enumerate() {
                let ev =
                    perf::open_uprobe(pmu, &cpath, offsets[i], ref_ctrs[i], pid).map_err(|e| {
                        let what = format!(
                            "perf_event_open for {}:{} at {:#x}",
                            s.provider, s.name, s.pc
                        );
                        AttachErrorKind::os(what, e)
                    })?;
                let l = bpf::link_perf_event(self.prog, ev.as_fd(), cookies[i]).map_err(|e| {
                    let what =
                        format!("BPF perf link for {}:{} at {:#x}", s.provider, s.name, s.pc);
                    AttachErrorKind::os(what, e)
                })?;
                events.push(ev);
                links.push(l);
            }
            Ok((links, events))
        };
        // The uprobe_multi link (the kernel's part, most of a large attach) is made on a
        // second thread while this one lists the attached sites. The warm-up has done its
        // part: it stops before the link (and may close its own links meanwhile).
        drop(warmup);
        let (sites, multi_result, extra) = match self.mode {
            AttachMode::PerfEvent => {
                let sites = build_sites();
                let extra = meanwhile(&Attaching {
                    sites: &sites,
                    plans: &plans,
                    args: &args,
                });
                (sites, None, extra)
            }
            _ if plans.len() >= OVERLAP_SITES => std::thread::scope(|scope| {
                let link = scope.spawn(multi);
                drop(windows);
                let sites = build_sites();
                let extra = meanwhile(&Attaching {
                    sites: &sites,
                    plans: &plans,
                    args: &args,
                });
                let link = link.join().unwrap_or_else(|_| {
                    Err(AttachErrorKind::Program("the link thread panicked".into()))
                });
                (sites, Some(link), extra)
            }),
            _ => {
                let link = multi();
                let sites = build_sites();
                let extra = meanwhile(&Attaching {
                    sites: &sites,
                    plans: &plans,
                    args: &args,
                });
                (sites, Some(link), extra)
            }
        };
        let (mode, (links, perf_events)) = match (self.mode, multi_result) {
            (AttachMode::Multi, Some(r)) => (AttachMode::Multi, r.map_err(err)?),
            (AttachMode::Auto, Some(Ok(l))) => (AttachMode::Multi, l),
            (AttachMode::Auto, Some(Err(m))) => match per_site(&sites) {
                Ok(l) => (AttachMode::PerfEvent, l),
                Err(p) => {
                    return Err(err(AttachErrorKind::BothFailed {
                        multi: Box::new(m),
                        per_site: Box::new(p),
                    }))
                }
            },
            _ => (AttachMode::PerfEvent, per_site(&sites).map_err(err)?),
        };
        let link = UsdtLink {
            binary: path.to_path_buf(),
            mode,
            links,
            _perf_events: perf_events,
            _lease: lease,
            sites,
            warnings,
        };
        Ok((link, extra))
    }
}

/// Plan the sites of a parsed file that `selectors` take; an error naming the file's probes
/// when they take none.
fn plan_parsed(
    path: &Path,
    usdt: &UsdtFile<'_>,
    selectors: &[ProbeSelector],
    how: &table::Setting<'_>,
) -> Result<table::Table> {
    let planned = table::build(usdt, selectors, how)?;
    if !planned.plans.is_empty() {
        return Ok(planned);
    }
    let wanted: Vec<String> = selectors
        .iter()
        .map(|s| format!("{}:{}", s.provider, s.name))
        .collect();
    let total = usdt.probes().count();
    if total == 0 {
        return Err(Error::attach(
            Context::file(path),
            AttachErrorKind::NoProbes,
        ));
    }
    let some: Vec<String> = usdt
        .probes()
        .take(8)
        .map(|p| format!("{}:{}", p.provider, p.name))
        .collect();
    Err(Error::attach(
        Context::file(path).probe(wanted.join(", ")),
        AttachErrorKind::NoSuchProbe { total, some },
    ))
}

/// An attach's sites as the caller's work during the link sees them.
#[cfg_attr(not(feature = "recorder"), allow(dead_code))]
pub(crate) struct Attaching<'a> {
    /// The sites, in attach order.
    pub sites: &'a [AttachedSite],
    plans: &'a [table::Planned],
    args: &'a table::Args,
}

#[cfg_attr(not(feature = "recorder"), allow(dead_code))]
impl Attaching<'_> {
    /// The shapes of site `i`'s arguments (`None`: not decoded).
    pub fn shapes(&self, i: usize) -> &[Option<ArgShape>] {
        self.args.shapes(&self.plans[i].args)
    }
}

/// The kernel's floor, for benchmarks: one uprobe_multi link of `prog` over `offsets` of
/// `path`, with no note parsing, no specs and no semaphores. Harness API.
#[cfg(feature = "harness")]
#[doc(hidden)]
pub fn raw_uprobe_multi(prog: BorrowedFd<'_>, path: &Path, offsets: &[u64]) -> Result<OwnedFd> {
    let err = |kind| Error::attach(Context::file(path), kind);
    let cpath =
        CString::new(path.as_os_str().as_bytes()).map_err(|_| err(AttachErrorKind::NulInPath))?;
    let zeros = vec![0u64; offsets.len()];
    bpf::link_uprobe_multi(prog, &cpath, offsets, &zeros, &zeros, 0)
        .map_err(|e| err(AttachErrorKind::os("uprobe_multi link", e)))
}
