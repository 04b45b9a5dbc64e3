//! The recorder attached by libbpf itself (`bpf_program__attach_usdt` through libbpf-rs), so
//! that libbpf and usdtkit can be compared on the same BPF program.

use std::path::Path;
use std::sync::{Arc, Mutex};

use libbpf_rs::{MapCore, MapFlags, PrintLevel, UsdtOpts};

use super::{Recorder, SiteInfo};
use crate::error::{Error, Result};
use crate::probe::MappedFile;

/// What libbpf attached: probes attached, and probes it refused with its error.
#[derive(Debug, Clone, Default)]
pub struct LibbpfAttach {
    /// `provider:name` of the probes attached, with the cookie given to each.
    pub attached: Vec<(String, u64)>,
    /// `provider:name` and libbpf's error, for the probes it refused.
    pub refused: Vec<(String, String)>,
}

/// libbpf's warnings since the last [`take_log`], captured instead of printed.
static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn capture(level: PrintLevel, msg: String) {
    if matches!(level, PrintLevel::Warn) {
        LOG.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(msg.trim().to_string());
    }
}

fn take_log() -> Vec<String> {
    std::mem::take(&mut *LOG.lock().unwrap_or_else(|p| p.into_inner()))
}

/// The load bias of `object` in process `pid`: where its first page is mapped minus the
/// link-time address of its first loadable segment.
fn load_bias(pid: i32, object: &Path, first_vaddr: u64) -> Option<u64> {
    let maps = crate::procmaps::of_file(u32::try_from(pid).ok()?, object).ok()?;
    maps.iter()
        .find(|m| m.offset == 0)
        .map(|m| m.start.wrapping_sub(first_vaddr & !0xfff))
}

impl Recorder<'_> {
    /// Attach the recorder to every probe of `binary` with libbpf's own
    /// `bpf_program__attach_usdt`, one call per probe name (libbpf's API), for `pid`. Each
    /// probe gets its index as cookie. Needs [`super::RecorderOptions::libbpf`].
    /// Only the probes `keep(provider, name)` accepts are attached.
    pub fn attach_libbpf(
        &mut self,
        binary: &Path,
        pid: i32,
        keep: impl Fn(&str, &str) -> bool,
    ) -> Result<LibbpfAttach> {
        if !self.opts.libbpf {
            return Err(Error::Invalid("recorder not loaded for libbpf".into()));
        }
        let mapped = MappedFile::open(binary)?;
        let usdt = mapped.usdt()?;
        let first = usdt
            .elf()
            .segments
            .iter()
            .map(|s| s.vaddr)
            .min()
            .unwrap_or(0);
        let bias = if usdt.elf().file_type == 2 {
            0
        } else {
            load_bias(pid, binary, first).unwrap_or(0)
        };
        let mut out = LibbpfAttach::default();
        let object: Arc<Path> = Arc::from(binary);
        // libbpf explains a refusal only in its log: capture it for the report.
        let previous = libbpf_rs::set_print(Some((PrintLevel::Warn, capture)));
        for probe in usdt.probes().filter(|p| keep(p.provider, p.name)) {
            take_log();
            let cookie = self.probes.len() as u64;
            let key = format!("{}:{}", probe.provider, probe.name);
            let opts = UsdtOpts {
                cookie,
                ..UsdtOpts::default()
            };
            let r = self.skel.progs.usdtkit_record.attach_usdt_with_opts(
                pid,
                binary,
                probe.provider,
                probe.name,
                opts,
            );
            match r {
                Ok(link) => {
                    self.libbpf_links.push(link);
                    let mut idx = Vec::new();
                    let (provider, name): (Arc<str>, Arc<str>) =
                        (probe.provider.into(), probe.name.into());
                    let args = super::sites::share_args(probe.sites.iter().map(|s| &s.args));
                    for (s, args) in probe.sites.iter().zip(args) {
                        idx.push(self.sites.len());
                        self.sites.push(SiteInfo {
                            object: Arc::clone(&object),
                            provider: Arc::clone(&provider),
                            name: Arc::clone(&name),
                            pc: s.pc,
                            args,
                            unreadable: Vec::new(),
                        });
                    }
                    self.probes.push((idx, bias));
                    out.attached.push((key, cookie));
                }
                Err(e) => {
                    // Keep cookies aligned with probe indexes.
                    self.probes.push((Vec::new(), bias));
                    let log = take_log();
                    let why = log
                        .iter()
                        .find(|l| l.starts_with("libbpf: usdt:"))
                        .or(log.last())
                        .cloned()
                        .unwrap_or_else(|| format!("libbpf: {e}"));
                    out.refused.push((key, why));
                }
            }
        }
        libbpf_rs::set_print(previous);
        Ok(out)
    }

    /// Which site a libbpf hit came from: the probe's site whose address (or address + 1,
    /// for an optimized `nop; nop5`) is the hit's ip less the load bias.
    pub(super) fn libbpf_site(&self, cookie: u64, ip: u64) -> Option<usize> {
        let (sites, bias) = self.probes.get(cookie as usize)?;
        let pc = ip.wrapping_sub(*bias);
        // An exact match first: sites can be adjacent (0x1276 and 0x1277).
        sites
            .iter()
            .copied()
            .find(|&i| self.sites[i].pc == pc)
            .or_else(|| sites.iter().copied().find(|&i| self.sites[i].pc + 1 == pc))
            .or_else(|| sites.first().copied())
    }

    /// The raw `__bpf_usdt_specs` entries with ids `0..n` that are in use (non-zero).
    pub fn spec_entries(&self, n: u32) -> Vec<(u32, Vec<u8>)> {
        (0..n)
            .filter_map(|id| {
                let v = self
                    .skel
                    .maps
                    .__bpf_usdt_specs
                    .lookup(&id.to_ne_bytes(), MapFlags::ANY)
                    .ok()??;
                v.iter().any(|&b| b != 0).then_some((id, v))
            })
            .collect()
    }
}
