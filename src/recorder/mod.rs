//! The recorder: usdtkit's BPF program (`src/bpf/recorder.bpf.c`) attached to probes, and
//! the hits it reports, each argument interpreted per its site's note (size, sign, `f`).

mod event;
mod libbpf;
mod sites;
pub(crate) mod skel;

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::os::fd::AsFd;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, OpenObject, RingBuffer, RingBufferBuilder};

use self::sites::{records, SiteInfo};
use self::skel::{RecorderSkel, RecorderSkelBuilder};
use crate::attach::{glob, AttachMode, ProbeSelector, UsdtAttacher, UsdtLink};

use self::event::MAX_ARGS;
pub use self::event::{ArgValue, Hit, HitString};
use crate::error::{Error, Result};
use crate::probe::MappedFile;

/// Capacity of each string slot by default, with its NUL.
pub const DEFAULT_STR_LEN: u32 = 256;
/// Largest string slot (`MAX_STR_LEN` of recorder.bpf.c).
pub const MAX_STR_LEN: u32 = 4096;
/// Ring buffer size by default: a burst of about 300,000 hits of four arguments.
pub const DEFAULT_BUFFER_SIZE: u32 = 16 << 20;
/// Records taken from the ring buffer between two reads of what was taken.
const BATCH: usize = 4096;

/// How the recorder attaches and what it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RecorderOptions {
    /// [`AttachMode::Multi`] (default: one link per file) or [`AttachMode::PerfEvent`].
    pub mode: AttachMode,
    /// Use the sleepable program (uprobe_multi only): strings are read with page faults
    /// allowed, so a string not yet faulted in is still read.
    pub sleepable: bool,
    /// Capacity of `__bpf_usdt_specs` (default 65536 specs, one per attached site).
    pub max_specs: Option<u32>,
    /// Load the `SEC("usdt")` program for libbpf's own `bpf_program__attach_usdt` instead
    /// (see [`Recorder::attach_libbpf`]); libbpf picks its attach type at load.
    pub libbpf: bool,
    /// Benchmarks: read every argument and count the hit ([`Recorder::hit_count`]), but send
    /// no event.
    pub count_only: bool,
    /// Count hits per site and process in BPF ([`Recorder::counts`]) instead of sending
    /// them: nothing is lost at any rate.
    pub count: bool,
    /// Ring buffer size in bytes: a power of two, at least a page (default
    /// [`DEFAULT_BUFFER_SIZE`]).
    pub buffer_size: Option<u32>,
    /// Capacity of each string slot with its NUL: 8 to [`MAX_STR_LEN`], rounded up to a
    /// multiple of 8 (default [`DEFAULT_STR_LEN`]).
    pub str_len: Option<u32>,
}

/// What the recorder's BPF side counted since it was loaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RecorderStats {
    /// Hits the program ran for.
    pub hits: u64,
    /// Hits whose record did not fit in the ring buffer: never delivered.
    pub lost: u64,
    /// Count mode: hits not counted because the count table was full.
    pub uncounted: u64,
    /// Records read but not handed over: shorter than their header says (none expected).
    pub malformed: u64,
    /// Records naming a site this recorder did not attach: hits of links another process
    /// made through the same loaded program (theirs to read, not ours).
    pub foreign: u64,
}

/// Count mode: hits of one site by one process.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SiteCount {
    /// The file holding the probe.
    pub object: Arc<Path>,
    /// Provider.
    pub provider: Arc<str>,
    /// Probe name.
    pub name: Arc<str>,
    /// Link-time address of the site.
    pub pc: u64,
    /// Process id.
    pub pid: u32,
    /// Hits.
    pub count: u64,
}

/// Which arguments of which probes to read as strings: arguments `args` of the probes
/// matching `provider:name` (patterns with `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct StringArgs {
    /// Provider pattern.
    pub provider: String,
    /// Probe name pattern.
    pub name: String,
    /// Argument indexes.
    pub args: Vec<usize>,
}

impl StringArgs {
    /// Arguments `args` of every probe.
    pub fn all(args: Vec<usize>) -> Self {
        StringArgs {
            provider: "*".into(),
            name: "*".into(),
            args,
        }
    }

    fn mask(list: &[StringArgs], provider: &str, name: &str) -> u32 {
        list.iter()
            .filter(|s| glob(&s.provider, provider) && glob(&s.name, name))
            .flat_map(|s| s.args.iter())
            .filter(|&&i| i < MAX_ARGS)
            .fold(0, |m, &i| m | (1 << i))
    }
}

/// The loaded recorder and what it is attached to.
pub struct Recorder<'obj> {
    // Fields drop in declaration order, and libbpf's USDT links point into the BPF object
    // (its USDT manager): links and the ring buffer must go before the skeleton. `Drop`
    // below makes that explicit.
    ring: Option<RingBuffer<'obj>>,
    libbpf_links: Vec<libbpf_rs::Link>,
    links: Vec<UsdtLink>,
    opts: RecorderOptions,
    sites: Vec<SiteInfo>,
    /// libbpf mode: the cookie is a probe index; its sites and the object's load bias.
    probes: Vec<(Vec<usize>, u64)>,
    /// Records taken from the ring buffer and not yet read (each a native-endian u32
    /// length, the record, padding to 4 bytes): one buffer reused, not one per record.
    taken: Rc<RefCell<Vec<u8>>>,
    /// The hit handed to callers, refilled from record to record.
    hit: Hit,
    str_len: usize,
    /// Records skipped by [`Recorder::poll_each`]: (malformed, foreign).
    skipped: (u64, u64),
    /// What attaching noticed that the caller should hear (see [`Recorder::take_warnings`]).
    warnings: Vec<String>,
    skel: RecorderSkel<'obj>,
}

impl Drop for Recorder<'_> {
    fn drop(&mut self) {
        // Detach everything while the BPF object is still alive.
        self.ring = None;
        self.libbpf_links.clear();
        self.links.clear();
    }
}

impl std::fmt::Debug for Recorder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("opts", &self.opts)
            .field("sites", &self.sites.len())
            .field("links", &self.links)
            .finish()
    }
}

fn bpf_err(what: &str) -> impl Fn(libbpf_rs::Error) -> Error + '_ {
    move |e| Error::Invalid(format!("recorder: {what}: {e}"))
}

impl<'obj> Recorder<'obj> {
    /// Open and load the recorder program into `storage`.
    pub fn load(storage: &'obj mut MaybeUninit<OpenObject>, opts: RecorderOptions) -> Result<Self> {
        let mut open = RecorderSkelBuilder::default()
            .open(storage)
            .map_err(bpf_err("open"))?;
        // Only the entry point this recorder attaches is loaded (the attach type is fixed at
        // load); the sleepable one needs a kernel with sleepable uprobe_multi programs.
        let (perf, sleepable) = match (opts.mode, opts.sleepable) {
            (AttachMode::PerfEvent, _) => (true, false),
            (_, s) => (false, s),
        };
        // Specs are then written through a mapping of the map: no syscall and no kernel
        // copy per spec (see `attach::write`).
        let specs = &mut open.maps.__bpf_usdt_specs;
        let flags = specs.map_flags() | crate::sys::bpf::BPF_F_MMAPABLE;
        specs
            .set_map_flags(flags)
            .map_err(bpf_err("spec map flags"))?;
        if let Some(n) = opts.max_specs {
            open.maps
                .__bpf_usdt_specs
                .set_max_entries(n)
                .map_err(bpf_err("spec map size"))?;
        }
        let str_len = match opts.str_len {
            None => DEFAULT_STR_LEN,
            Some(n) if (1..=MAX_STR_LEN).contains(&n) => n.div_ceil(8).max(1) * 8,
            Some(n) => {
                return Err(Error::Invalid(format!(
                    "recorder: string length {n}: must be 1 to {MAX_STR_LEN} bytes"
                )))
            }
        };
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.mode = match (opts.count, opts.count_only) {
                (_, true) => 2,
                (true, false) => 1,
                (false, false) => 0,
            };
            ro.str_len = str_len;
        }
        let size = opts.buffer_size.unwrap_or(DEFAULT_BUFFER_SIZE);
        if !size.is_power_of_two() || size < 4096 {
            return Err(Error::Invalid(format!(
                "recorder: buffer size {size}: must be a power of two of at least 4096 bytes"
            )));
        }
        open.maps
            .events
            .set_max_entries(size)
            .map_err(bpf_err("ring buffer size"))?;
        let lib = opts.libbpf;
        open.progs.usdtkit_record.set_autoload(lib);
        open.progs.usdtkit_record_perf.set_autoload(!lib && perf);
        open.progs
            .usdtkit_record_multi
            .set_autoload(!lib && !perf && !sleepable);
        open.progs
            .usdtkit_record_multi_s
            .set_autoload(!lib && !perf && sleepable);
        let skel = open.load().map_err(bpf_err("load"))?;
        Ok(Recorder {
            skel,
            opts,
            sites: Vec::new(),
            links: Vec::new(),
            probes: Vec::new(),
            libbpf_links: Vec::new(),
            taken: Rc::default(),
            hit: Hit::default(),
            str_len: str_len as usize,
            skipped: (0, 0),
            warnings: Vec::new(),
            ring: None,
        })
    }

    fn program(&self) -> &libbpf_rs::ProgramMut<'obj> {
        match (self.opts.mode, self.opts.sleepable) {
            (AttachMode::PerfEvent, _) => &self.skel.progs.usdtkit_record_perf,
            (_, true) => &self.skel.progs.usdtkit_record_multi_s,
            _ => &self.skel.progs.usdtkit_record_multi,
        }
    }

    /// Attach to the probes of `binary` matched by `selectors` (`provider`, `name` patterns),
    /// for `pid` (-1 every process), reading the arguments `strings` names as C strings.
    pub fn attach(
        &mut self,
        binary: &str,
        selectors: &[(&str, &str)],
        pid: i32,
        strings: &[StringArgs],
    ) -> Result<&UsdtLink> {
        let first = self.sites.len() as u64;
        let sels: Vec<ProbeSelector> = selectors
            .iter()
            .map(|(p, n)| ProbeSelector::new(p, n, 0))
            .collect();
        let mode = match self.opts.mode {
            AttachMode::Auto => AttachMode::Multi,
            m => m,
        };
        let path = crate::attach::resolve::resolve(binary, (pid > 0).then_some(pid as u32))
            .map_err(|kind| Error::attach(crate::Context::file(binary), kind))?;
        let mapped = MappedFile::open(&path)?;
        let object: Arc<Path> = Arc::from(path.as_path());
        // What reading this attach's hits needs, built while the kernel makes the link (in
        // the attach's site order).
        let attacher = UsdtAttacher::new(self.program().as_fd())
            .pid(pid)
            .mode(mode)
            .site_cookies(first);
        let mask = |provider: &str, name: &str| StringArgs::mask(strings, provider, name);
        let (link, records) =
            attacher.attach_with(&path, &mapped, None, &sels, |a| records(a, &object, mask))?;
        if records.infos.len() != link.sites().len() {
            return Err(Error::Invalid(format!(
                "{}: internal error: {} sites attached, {} recorded",
                path.display(),
                link.sites().len(),
                records.infos.len()
            )));
        }
        if self.sites.is_empty() {
            self.sites = records.infos;
        } else {
            self.sites.extend(records.infos);
        }
        for w in records.warnings {
            if !self.warnings.contains(&w) {
                self.warnings.push(w);
            }
        }
        for (cookie, mask) in records.masks {
            self.skel
                .maps
                .str_args
                .update(&cookie.to_ne_bytes(), &mask.to_ne_bytes(), MapFlags::ANY)
                .map_err(bpf_err("str_args"))?;
        }
        self.links.push(link);
        Ok(self.links.last().expect("just pushed"))
    }

    /// The loaded program usdtkit's attach uses (uprobe_multi or perf event).
    pub fn multi_program_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.program().as_fd()
    }

    fn stat(&self, which: u32) -> Result<u64> {
        let v = self
            .skel
            .maps
            .stats
            .lookup_percpu(&which.to_ne_bytes(), MapFlags::ANY)
            .map_err(bpf_err("stats"))?
            .unwrap_or_default();
        Ok(v.iter()
            .map(|b| u64::from_ne_bytes(b[..8].try_into().expect("8 bytes")))
            .sum())
    }

    /// What the BPF side counted so far, summed over CPUs.
    pub fn stats(&self) -> Result<RecorderStats> {
        Ok(RecorderStats {
            hits: self.stat(0)?,
            lost: self.stat(1)?,
            uncounted: self.stat(2)?,
            malformed: self.skipped.0,
            foreign: self.skipped.1,
        })
    }

    /// Hits the program ran for, summed over CPUs (count-only benchmarks).
    pub fn hit_count(&self) -> Result<u64> {
        self.stat(0)
    }

    /// Count mode: hits so far per site and process, in no particular order.
    pub fn counts(&self) -> Result<Vec<SiteCount>> {
        let map = &self.skel.maps.counts;
        let mut out = Vec::new();
        for key in map.keys() {
            let Some(v) = map.lookup(&key, MapFlags::ANY).map_err(bpf_err("counts"))? else {
                continue; // removed meanwhile
            };
            let cookie = u64::from_ne_bytes(key[..8].try_into().expect("8-byte cookie"));
            let pid = u32::from_ne_bytes(key[8..12].try_into().expect("4-byte pid"));
            let count = u64::from_ne_bytes(v[..8].try_into().expect("8-byte count"));
            let site = if self.opts.libbpf {
                self.probes
                    .get(cookie as usize)
                    .and_then(|(s, _)| s.first())
                    .map(|&i| &self.sites[i])
            } else {
                self.sites.get(cookie as usize)
            };
            if let Some(site) = site {
                out.push(SiteCount {
                    object: Arc::clone(&site.object),
                    provider: Arc::clone(&site.provider),
                    name: Arc::clone(&site.name),
                    pc: site.pc,
                    pid,
                    count,
                });
            }
        }
        Ok(out)
    }

    /// What attaching noticed since the last call: strings asked of arguments a probe
    /// does not have.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// Every link held.
    pub fn links(&self) -> &[UsdtLink] {
        &self.links
    }

    /// For a process held right after its `exec` (see [`crate::sys::held`]) with this
    /// recorder attached to it: move the semaphore counts the kernel raised in the wrong
    /// mapping (see [`crate::attach::semaphore`]). Returns what was done, a line per file.
    #[cfg(feature = "harness")]
    pub fn settle(&self, held: &mut crate::sys::held::Held) -> Result<Vec<String>> {
        crate::attach::semaphore::settle(held, self.objects())
    }

    /// Detach everything (the program stays loaded).
    pub fn detach_all(&mut self) {
        self.links.clear();
        self.libbpf_links.clear();
    }

    fn ring(&mut self) -> Result<&RingBuffer<'obj>> {
        if self.ring.is_none() {
            let taken = Rc::clone(&self.taken);
            let mut b = RingBufferBuilder::new();
            b.add(&self.skel.maps.events, move |data: &[u8]| {
                let mut t = taken.borrow_mut();
                t.extend_from_slice(&(data.len() as u32).to_ne_bytes());
                t.extend_from_slice(data);
                let padded = t.len().next_multiple_of(4);
                t.resize(padded, 0);
                0
            })
            .map_err(bpf_err("ring buffer"))?;
            self.ring = Some(b.build().map_err(bpf_err("ring buffer"))?);
        }
        Ok(self.ring.as_ref().expect("just built"))
    }

    /// Wait up to `timeout` for hits, then hand each hit in the ring buffer to `f` (the same
    /// [`Hit`], refilled: clone what you keep). Returns how many were handed over. A signal
    /// ends the wait early, without error.
    pub fn poll_each(&mut self, timeout: Duration, f: impl FnMut(&Hit)) -> Result<usize> {
        let fd = self.ring()?.epoll_fd();
        crate::sys::process::wait_readable(fd, timeout)
            .map_err(|e| Error::Invalid(format!("recorder: waiting for hits: {e}")))?;
        self.drain_each(f)
    }

    /// Hand each hit already in the ring buffer to `f`, without waiting.
    pub fn drain_each(&mut self, mut f: impl FnMut(&Hit)) -> Result<usize> {
        let mut total = 0;
        loop {
            let n = self.ring()?.consume_raw_n(BATCH);
            if n < 0 {
                return Err(Error::Invalid(format!(
                    "recorder: reading the ring buffer: {}",
                    std::io::Error::from_raw_os_error(-n)
                )));
            }
            total += self.read_taken(&mut f);
            if (n as usize) < BATCH {
                return Ok(total);
            }
        }
    }

    /// Wait up to `timeout` for hits; returns those that arrived (possibly none).
    pub fn poll(&mut self, timeout: Duration) -> Result<Vec<Hit>> {
        let mut v = Vec::new();
        self.poll_each(timeout, |h| v.push(h.clone()))?;
        Ok(v)
    }

    /// Hits already in the ring buffer, without waiting.
    pub fn drain(&mut self) -> Result<Vec<Hit>> {
        let mut v = Vec::new();
        self.drain_each(|h| v.push(h.clone()))?;
        Ok(v)
    }

    /// Read the records taken so far; malformed records and records naming no site this
    /// recorder attached are skipped and counted ([`RecorderStats`]).
    fn read_taken(&mut self, f: &mut impl FnMut(&Hit)) -> usize {
        let taken = Rc::clone(&self.taken);
        let mut t = taken.borrow_mut();
        let mut hit = std::mem::take(&mut self.hit);
        let (mut o, mut n) = (0, 0);
        while o + 4 <= t.len() {
            let len = u32::from_ne_bytes(t[o..o + 4].try_into().expect("4 bytes")) as usize;
            let rec = &t[o + 4..o + 4 + len];
            o = (o + 4 + len).next_multiple_of(4);
            let Some(h) = event::header(rec, self.str_len) else {
                self.skipped.0 += 1;
                continue;
            };
            let site = if self.opts.libbpf {
                self.libbpf_site(h.cookie, h.ip).map(|i| &self.sites[i])
            } else {
                self.sites.get(h.cookie as usize)
            };
            match site {
                Some(site) => {
                    event::fill(&mut hit, rec, &h, site, self.str_len);
                    f(&hit);
                    n += 1;
                }
                None => self.skipped.1 += 1,
            }
        }
        t.clear();
        self.hit = hit;
        n
    }

    /// The file a probe of this recorder lives in, for reports.
    pub fn objects(&self) -> Vec<&Path> {
        let mut v: Vec<&Path> = self.links.iter().map(|l| l.binary()).collect();
        v.dedup();
        v
    }
}
