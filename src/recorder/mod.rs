//! The recorder: usdtkit's BPF program (`src/bpf/recorder.bpf.c`) attached to probes, and
//! the hits it reports, each argument interpreted per its site's note (size, sign, `f`).

mod libbpf;
pub mod skel;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::mem::MaybeUninit;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, OpenObject, RingBuffer, RingBufferBuilder};

use self::skel::{RecorderSkel, RecorderSkelBuilder};
use crate::arg::{Arg, ArgList, ArgSpec};
use crate::attach::{AttachMode, ProbeSelector, UsdtAttacher, UsdtLink};
use crate::error::{Error, Result};
use crate::probe::MappedFile;

/// Arguments the BPF side reads, at most (`BPF_USDT_MAX_ARG_CNT`).
const MAX_ARGS: usize = 12;
/// String arguments read per hit, at most.
pub const MAX_STRINGS: usize = 4;
const STR_LEN: usize = 128;
/// Size of `struct event` in recorder.bpf.c.
const EVENT_SIZE: usize =
    8 + 8 + 4 + 4 + 4 + 4 + 8 * MAX_ARGS + 4 * MAX_ARGS + MAX_STRINGS * STR_LEN;

/// How the recorder attaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
}

/// One argument of a hit.
#[derive(Debug, Clone, PartialEq)]
pub enum ArgValue {
    /// An integer, interpreted per the note's size and sign.
    Int(i128),
    /// A value marked `f` in the note.
    Float(f64),
    /// The argument could not be read; why.
    Error(String),
}

/// One recorded hit.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The file holding the probe.
    pub object: PathBuf,
    /// Provider.
    pub provider: String,
    /// Probe name.
    pub name: String,
    /// Link-time address of the site.
    pub pc: u64,
    /// Process id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Run-time instruction pointer the probe saw.
    pub ip: u64,
    /// The site's user cookie.
    pub cookie: u64,
    /// Arguments, in order.
    pub args: Vec<ArgValue>,
    /// Strings read behind the arguments asked for (argument index, string).
    pub strings: Vec<(usize, String)>,
}

#[derive(Debug, Clone)]
pub(crate) struct SiteInfo {
    // Shared by every site of a file (or probe): one allocation, not one per site.
    object: Arc<Path>,
    provider: Arc<str>,
    name: Arc<str>,
    pc: u64,
    args: SiteArgs,
    unreadable: Vec<(usize, String)>,
}

/// What reading a hit's argument needs of its spec (`bpf_usdt_arg()` did the rest).
#[derive(Debug, Clone, Copy)]
struct ArgShape {
    size: u32,
    signed: bool,
    float: bool,
}

impl From<&ArgSpec> for ArgShape {
    fn from(s: &ArgSpec) -> Self {
        ArgShape {
            size: s.size,
            signed: s.signed,
            float: s.float,
        }
    }
}

/// A site's arguments (`None`: not decoded), shared by the sites attached together that
/// have the same argument list.
type SiteArgs = Arc<[Option<ArgShape>]>;

/// The arguments of each list of `lists`, in order; a list that several sites share (a
/// file's sites with one argument string share one slice) is converted once.
fn share_args<'a, 'd: 'a>(lists: impl Iterator<Item = &'a ArgList<'d>>) -> Vec<SiteArgs> {
    let mut seen: foldhash::HashMap<*const Arg<'d>, SiteArgs> = Default::default();
    lists
        .map(|list| {
            let args = seen.entry(list.as_ptr()).or_insert_with(|| {
                list.iter()
                    .map(|a| a.decoded.as_ref().ok().map(ArgShape::from))
                    .collect()
            });
            Arc::clone(args)
        })
        .collect()
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
    queue: Rc<RefCell<VecDeque<Vec<u8>>>>,
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
        if let Some(n) = opts.max_specs {
            open.maps
                .__bpf_usdt_specs
                .set_max_entries(n)
                .map_err(bpf_err("spec map size"))?;
        }
        if opts.count_only {
            if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
                ro.count_only = true;
            }
        }
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
        let queue: Rc<RefCell<VecDeque<Vec<u8>>>> = Rc::default();
        Ok(Recorder {
            skel,
            opts,
            sites: Vec::new(),
            links: Vec::new(),
            probes: Vec::new(),
            libbpf_links: Vec::new(),
            queue,
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
    /// for `pid` (-1 every process), reading `strings` (argument indexes) as C strings.
    pub fn attach(
        &mut self,
        binary: &str,
        selectors: &[(&str, &str)],
        pid: i32,
        strings: &[usize],
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
            .map_err(|cause| Error::Attach {
                file: binary.into(),
                probe: None,
                site: None,
                cause,
            })?;
        let mapped = MappedFile::open(&path)?;
        let usdt = mapped.usdt()?;
        let link = UsdtAttacher::new(self.program().as_fd())
            .pid(pid)
            .mode(mode)
            .site_cookies(first)
            .attach_file(&path, &mapped, &usdt, &sels)?;
        let mask: u32 = strings
            .iter()
            .filter(|&&i| i < MAX_ARGS)
            .fold(0, |m, &i| m | (1 << i));
        let by_pc: foldhash::HashMap<u64, &crate::Site<'_>> =
            usdt.sites().iter().map(|x| (x.pc, x)).collect();
        let object: Arc<Path> = Arc::from(path.as_path());
        let args = share_args(link.sites().iter().map(|s| &by_pc[&s.pc].args));
        self.sites.reserve(link.sites().len());
        for (s, args) in link.sites().iter().zip(args) {
            self.sites.push(SiteInfo {
                object: Arc::clone(&object),
                provider: Arc::clone(&s.provider),
                name: Arc::clone(&s.name),
                pc: s.pc,
                args,
                unreadable: s.unreadable.clone(),
            });
            if mask != 0 {
                self.skel
                    .maps
                    .str_args
                    .update(&s.cookie.to_ne_bytes(), &mask.to_ne_bytes(), MapFlags::ANY)
                    .map_err(bpf_err("str_args"))?;
            }
        }
        self.links.push(link);
        Ok(self.links.last().expect("just pushed"))
    }

    /// The loaded program usdtkit's attach uses (uprobe_multi or perf event).
    pub fn multi_program_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.program().as_fd()
    }

    /// Hits counted in count-only mode, summed over CPUs.
    pub fn hit_count(&self) -> Result<u64> {
        let v = self
            .skel
            .maps
            .hit_count
            .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(bpf_err("hit_count"))?
            .unwrap_or_default();
        Ok(v.iter()
            .map(|b| u64::from_ne_bytes(b[..8].try_into().expect("8 bytes")))
            .sum())
    }

    /// Every link held.
    pub fn links(&self) -> &[UsdtLink] {
        &self.links
    }

    /// For a process held right after its `exec` (see [`crate::sys::held`]) with this
    /// recorder attached to it: move the semaphore counts the kernel raised in the wrong
    /// mapping (see [`crate::attach::semaphore`]). Returns what was done, a line per file.
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
            let q = Rc::clone(&self.queue);
            let mut b = RingBufferBuilder::new();
            b.add(&self.skel.maps.events, move |data: &[u8]| {
                q.borrow_mut().push_back(data.to_vec());
                0
            })
            .map_err(bpf_err("ring buffer"))?;
            self.ring = Some(b.build().map_err(bpf_err("ring buffer"))?);
        }
        Ok(self.ring.as_ref().expect("just built"))
    }

    /// Wait up to `timeout` for hits; returns those that arrived (possibly none).
    pub fn poll(&mut self, timeout: Duration) -> Result<Vec<Hit>> {
        self.ring()?.poll(timeout).map_err(bpf_err("poll"))?;
        Ok(self.drain_queue())
    }

    /// Hits already in the ring buffer, without waiting.
    pub fn drain(&mut self) -> Result<Vec<Hit>> {
        self.ring()?.consume().map_err(bpf_err("consume"))?;
        Ok(self.drain_queue())
    }

    fn drain_queue(&mut self) -> Vec<Hit> {
        let raw: Vec<Vec<u8>> = self.queue.borrow_mut().drain(..).collect();
        raw.iter().filter_map(|r| self.decode(r)).collect()
    }

    fn decode(&self, b: &[u8]) -> Option<Hit> {
        if b.len() < EVENT_SIZE {
            return None;
        }
        let u64_at = |o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().expect("8 bytes"));
        let u32_at = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().expect("4 bytes"));
        let cookie = u64_at(0);
        let ip = u64_at(8);
        let site = if self.opts.libbpf {
            &self.sites[self.libbpf_site(cookie, ip)?]
        } else {
            self.sites.get(cookie as usize)?
        };
        let arg_cnt = u32_at(24) as i32;
        let str_mask = u32_at(28);
        let mut args = Vec::new();
        for i in 0..(arg_cnt.max(0) as usize).min(MAX_ARGS) {
            let raw = u64_at(32 + 8 * i);
            let err = u32_at(32 + 8 * MAX_ARGS + 4 * i) as i32;
            args.push(interpret(site, i, raw, err));
        }
        if arg_cnt < 0 {
            args.push(ArgValue::Error(format!(
                "bpf_usdt_arg_cnt: {}",
                std::io::Error::from_raw_os_error(-arg_cnt)
            )));
        }
        let mut strings = Vec::new();
        let mut n = 0;
        for i in 0..MAX_ARGS {
            if str_mask & (1 << i) != 0 && n < MAX_STRINGS {
                let o = 32 + 12 * MAX_ARGS + STR_LEN * n;
                let s = &b[o..o + STR_LEN];
                let end = s.iter().position(|&c| c == 0).unwrap_or(STR_LEN);
                strings.push((i, String::from_utf8_lossy(&s[..end]).into_owned()));
                n += 1;
            }
        }
        Some(Hit {
            object: site.object.to_path_buf(),
            provider: site.provider.to_string(),
            name: site.name.to_string(),
            pc: site.pc,
            pid: u32_at(16),
            tid: u32_at(20),
            ip: u64_at(8),
            cookie,
            args,
            strings,
        })
    }

    /// The file a probe of this recorder lives in, for reports.
    pub fn objects(&self) -> Vec<&Path> {
        let mut v: Vec<&Path> = self.links.iter().map(|l| l.binary()).collect();
        v.dedup();
        v
    }
}

fn interpret(site: &SiteInfo, i: usize, raw: u64, err: i32) -> ArgValue {
    if err != 0 {
        let why = site
            .unreadable
            .iter()
            .find(|u| u.0 == i)
            .map(|u| u.1.clone())
            .unwrap_or_else(|| format!("read failed: {}", std::io::Error::from_raw_os_error(-err)));
        return ArgValue::Error(why);
    }
    let Some(Some(spec)) = site.args.get(i) else {
        return ArgValue::Error("argument not decoded".into());
    };
    if spec.float {
        return match spec.size {
            4 => ArgValue::Float(f64::from(f32::from_bits(raw as u32))),
            8 => ArgValue::Float(f64::from_bits(raw)),
            n => ArgValue::Error(format!("{n}-byte float")),
        };
    }
    // bpf_usdt_arg() already sign- or zero-extended the value to 64 bits.
    ArgValue::Int(if spec.signed {
        i128::from(raw as i64)
    } else {
        i128::from(raw)
    })
}
