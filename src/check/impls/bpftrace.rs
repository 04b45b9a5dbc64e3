//! bpftrace: a generated script with one `usdt:` probe per probe name, printing every
//! argument; attached to the waiting fixture's pid with `-p`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::{version_of, Implementation};
use crate::check::compare::{Observed, ObservedHit, Run};
use crate::check::run::{Peer, Waiting};
use crate::error::Result;
use crate::gen::Fixture;

/// bpftrace.
#[derive(Debug, Clone, Copy)]
pub struct Bpftrace;

/// (provider, name) → (object path, argument count, signedness per argument).
pub(crate) type ProbeInfo = BTreeMap<(String, String), (String, usize, Vec<bool>)>;

/// What a fixture's probes look like, from its notes.
pub(crate) fn probe_info(dir: &Path, fx: &Fixture) -> Result<ProbeInfo> {
    let mut m = ProbeInfo::new();
    for h in &fx.hits {
        let key = (h.provider.clone(), h.name.clone());
        if m.contains_key(&key) {
            continue;
        }
        let path = dir.join(&h.object);
        let mapped = crate::MappedFile::open(&path)?;
        let usdt = mapped.usdt()?;
        let Some(p) = usdt.probe(&h.provider, &h.name) else {
            continue;
        };
        let n = p.sites.iter().map(|s| s.args.len()).max().unwrap_or(0);
        let signs = (0..n)
            .map(|i| {
                p.sites
                    .iter()
                    .find_map(|s| s.args.get(i).and_then(|a| a.decoded.as_ref().ok()))
                    .is_some_and(|s| s.signed)
            })
            .collect();
        m.insert(key, (path.to_string_lossy().into_owned(), n, signs));
    }
    Ok(m)
}

/// Raw 64 bits as the note's signedness says.
pub(crate) fn as_value(raw: u64, signed: bool) -> Observed {
    Observed::Int(if signed {
        (raw as i64).into()
    } else {
        raw.into()
    })
}

impl Implementation for Bpftrace {
    fn name(&self) -> String {
        "bpftrace".into()
    }

    fn detect(&self) -> std::result::Result<String, String> {
        version_of("bpftrace", "--version")
    }

    fn run(&self, dir: &Path, fx: &Fixture, limit: Duration) -> Result<Run> {
        let info = probe_info(dir, fx)?;
        let mut script = String::new();
        let quote = |s: &str| {
            if s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                s.to_string()
            } else {
                format!("\"{s}\"")
            }
        };
        for ((provider, name), (path, n, _)) in &info {
            script.push_str(&format!(
                "usdt:\"{path}\":{}:{} {{ printf(\"USDTKIT {provider}:{name}\"); ",
                quote(provider),
                quote(name)
            ));
            for i in 0..*n {
                script.push_str(&format!("printf(\" %lu\", arg{i}); "));
            }
            script.push_str("printf(\"\\n\"); }\n");
        }
        let proc_ = Waiting::start(dir, fx)?;
        let mut cmd = Command::new("bpftrace");
        cmd.args(["-B", "line", "-p", &proc_.pid().to_string(), "-e", &script]);
        let mut tracer = Peer::start(cmd)?;
        // bpftrace prints "Attaching N probes..." on stdout once attached; errors (and a
        // harmless RLIMIT_MEMLOCK complaint on kernels with memcg accounting) on stderr.
        let mut run = Run::default();
        if !tracer.wait_for(limit, |l| l.starts_with("Attaching")) {
            let errors = tracer.kill();
            let reason: Vec<&str> = errors
                .lines()
                .filter(|l| !l.contains("RLIMIT_MEMLOCK") && !l.trim_start().starts_with('-'))
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .take(3)
                .collect();
            let reason = if reason.is_empty() {
                "exited without attaching".to_string()
            } else {
                reason.join(" ")
            };
            run.refused
                .insert("*".into(), format!("bpftrace refused the script: {reason}"));
            return Ok(run);
        }
        let (_, stdout) = proc_.release(limit, || {})?;
        run.stdout = stdout;
        std::thread::sleep(Duration::from_millis(200));
        let out = tracer.stop();
        for l in &out {
            let Some(rest) = l.strip_prefix("USDTKIT ") else {
                continue;
            };
            let mut f = rest.split_whitespace();
            let key = f.next().unwrap_or_default();
            let (p, n) = key.split_once(':').unwrap_or((key, ""));
            let signs = info
                .get(&(p.to_string(), n.to_string()))
                .map(|i| i.2.clone())
                .unwrap_or_default();
            let args = f
                .enumerate()
                .map(|(i, v)| match v.parse::<u64>() {
                    Ok(raw) => as_value(raw, signs.get(i).copied().unwrap_or(false)),
                    Err(_) => Observed::Error(format!("unparsable output `{v}`")),
                })
                .collect();
            run.hits.push(ObservedHit {
                provider: p.into(),
                name: n.into(),
                pc: None,
                args,
            });
        }
        Ok(run)
    }
}
