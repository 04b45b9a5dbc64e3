//! Linux perf: `perf probe -x OBJECT sdt_PROVIDER:NAME` creates a uprobe trace event per
//! probe (one per site, sharing the event when their arguments convert alike), `perf
//! record -e ... -p PID` records the fixture, and `perf script` prints each hit's fields. What
//! `perf script` prints is what a user sees, so that is what is judged; where it differs
//! from the kernel's own value (the event field's declared type says how to read the bits),
//! the run's notes say so. The buildid cache is private to the run, and every event created
//! is removed afterwards.
//!
//! perf needs tracefs; it is mounted at /sys/kernel/tracing when it is not.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{peer_column, version_in, Implementation};
use crate::check::compare::{Observed, ObservedHit, Run};
use crate::check::env::Env;
use crate::check::run::{output_within, Peer, Waiting};
use crate::check::select::Selection;
use crate::error::{Error, Result};
use crate::gen::Fixture;

const TRACEFS: &str = "/sys/kernel/tracing";

/// Linux perf, on this machine or in another Debian root.
#[derive(Debug, Clone)]
pub struct Perf {
    /// Where it runs.
    pub env: Env,
}

/// Mount tracefs when it is not mounted; the reason when that fails.
fn ensure_tracefs() -> std::result::Result<(), String> {
    let events = Path::new(TRACEFS).join("uprobe_events");
    if events.exists() {
        return Ok(());
    }
    let out = std::process::Command::new("mount")
        .args(["-t", "tracefs", "nodev", TRACEFS])
        .output()
        .map_err(|e| format!("mount: {e}"))?;
    if events.exists() {
        Ok(())
    } else {
        Err(format!(
            "not available: perf needs tracefs at {TRACEFS}, and mounting it failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// One trace event perf created: `group/name` and where it is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Event {
    group: String,
    name: String,
}

/// The uprobe events defined now, as `group/name` with their definition lines.
fn uprobe_events() -> Vec<(Event, String)> {
    std::fs::read_to_string(Path::new(TRACEFS).join("uprobe_events"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let id = l.split_whitespace().next()?.split_once(':')?.1;
            let (group, name) = id.split_once('/')?;
            Some((
                Event {
                    group: group.into(),
                    name: name.into(),
                },
                l.to_string(),
            ))
        })
        .collect()
}

/// A note when perf put a probe's uprobes at file offsets where none of its sites is (from
/// the event definitions `p:GROUP/NAME PATH:0xOFFSET ...`): the hits at those sites cannot
/// arrive, and the breakpoint sits on whatever the file has there.
fn misplaced(
    object: &Path,
    provider: &str,
    name: &str,
    created: &[(Event, String)],
) -> Option<String> {
    let mapped = crate::MappedFile::open(object).ok()?;
    let usdt = mapped.usdt().ok()?;
    let probe = usdt.probe(provider, name)?;
    let sites: Vec<(u64, u64)> = probe.sites.iter().map(|s| (s.pc, s.file_offset)).collect();
    let wrong: Vec<String> = created
        .iter()
        .filter_map(|(_, line)| {
            let target = line.split_whitespace().nth(1)?;
            let off = target.rsplit_once(":0x")?.1;
            let off = u64::from_str_radix(off.split('(').next()?, 16).ok()?;
            (!sites.iter().any(|s| s.1 == off)).then(|| match sites.iter().find(|s| s.0 == off) {
                Some(s) => format!(
                    "{off:#x} (the site's link-time address; its file offset is {:#x})",
                    s.1
                ),
                None => format!("{off:#x}"),
            })
        })
        .collect();
    (!wrong.is_empty()).then(|| {
        format!(
            "sdt_{provider}:{name}: perf probe put the uprobe at file offset {}, where no site of the probe is",
            wrong.join(", ")
        )
    })
}

/// Field name to (size, signed) from an event's `format` file.
fn field_types(e: &Event) -> BTreeMap<String, (usize, bool)> {
    let path = Path::new(TRACEFS)
        .join("events")
        .join(&e.group)
        .join(&e.name)
        .join("format");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut m = BTreeMap::new();
    for l in text.lines() {
        // field:s8 arg2;	offset:16;	size:1;	signed:1;
        let mut name = None;
        let (mut size, mut signed) = (0, false);
        for part in l.trim().split(';') {
            let part = part.trim();
            if let Some(f) = part.strip_prefix("field:") {
                name = f.split_whitespace().last().map(str::to_string);
            } else if let Some(s) = part.strip_prefix("size:") {
                size = s.parse().unwrap_or(0);
            } else if let Some(s) = part.strip_prefix("signed:") {
                signed = s == "1";
            }
        }
        if let Some(n) = name {
            m.insert(n, (size, signed));
        }
    }
    m
}

/// The kernel's value of a field perf printed as `printed`.
fn kernel_value(printed: i128, (size, signed): (usize, bool)) -> i128 {
    if !(1..8).contains(&size) {
        return printed;
    }
    let bits = 8 * size as u32;
    let raw = (printed as u128 & ((1u128 << bits) - 1)) as u64;
    if signed && raw >> (bits - 1) == 1 {
        i128::from(raw) - (1i128 << bits)
    } else {
        i128::from(raw)
    }
}

/// A value as `perf script` prints it: decimal, or hex with `0x`.
fn parse_value(v: &str) -> Option<i128> {
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok().map(i128::from),
        None => v.parse().ok(),
    }
}

/// A private scratch directory for one run (buildid cache, data file, control FIFOs), removed
/// on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Result<Scratch> {
        let dir = crate::check::run::scratch_path(&format!("perf-{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A FIFO opened read-write (never blocks on open), non-blocking.
fn fifo(path: &Path) -> Result<std::fs::File> {
    let st = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .map_err(|source| Error::Io {
            path: path.into(),
            source,
        })?;
    if !st.success() {
        return Err(Error::Invalid(format!("mkfifo {} failed", path.display())));
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|source| Error::Io {
            path: path.into(),
            source,
        })
}

/// Removes the events it holds when dropped.
struct Events<'a> {
    perf: &'a Perf,
    buildid: PathBuf,
    made: Vec<Event>,
}

impl Drop for Events<'_> {
    fn drop(&mut self) {
        if self.made.is_empty() {
            return;
        }
        let mut c = self.perf.env.command("perf");
        c.arg("--buildid-dir")
            .arg(&self.buildid)
            .args(["probe", "-q"]);
        for e in &self.made {
            c.arg("-d").arg(format!("{}:{}", e.group, e.name));
        }
        let _ = output_within(c, Duration::from_secs(30));
    }
}

impl Implementation for Perf {
    fn name(&self) -> String {
        self.env.id("perf")
    }

    fn detect(&self) -> std::result::Result<String, String> {
        self.env.check("/usr/bin/perf")?;
        ensure_tracefs()?;
        let v = version_in(&self.env, "perf", "--version")?;
        if v.starts_with("perf version") {
            Ok(v)
        } else {
            Err(format!("not available: `perf --version` printed `{v}`"))
        }
    }

    fn column(&self, version: std::result::Result<&str, &str>) -> String {
        peer_column("perf", &self.env, version)
    }

    // Every perf names its events sdt_PROVIDER:NAME in the one tracefs.
    fn exclusive(&self) -> Option<&'static str> {
        Some("tracefs")
    }

    fn run(&self, dir: &Path, fx: &Fixture, sel: &Selection, limit: Duration) -> Result<Run> {
        let scratch = Scratch::new(self.env.tag())?;
        let env = self.env.with_bind(dir);
        let buildid = scratch.0.join("buildid");
        let perf = |args: &[&str]| {
            let mut c = env.command("perf");
            c.arg("--buildid-dir").arg(&buildid).args(args);
            c
        };
        let mut run = Run::default();
        for obj in sel.objects() {
            let mut c = perf(&["buildid-cache", "--add"]);
            c.arg(obj);
            let (st, _, err) = output_within(c, limit)?;
            if !st.success() {
                return Err(Error::Invalid(format!(
                    "perf buildid-cache --add {}: {}",
                    obj.display(),
                    err.trim()
                )));
            }
        }
        // Events left on these files by a check that was killed would make every probe
        // "already exist": removed first.
        let stale: Vec<Event> = uprobe_events()
            .into_iter()
            .filter(|(_, line)| {
                line.split_whitespace()
                    .nth(1)
                    .is_some_and(|target| Path::new(target).starts_with(dir))
            })
            .map(|e| e.0)
            .collect();
        drop(Events {
            perf: self,
            buildid: buildid.clone(),
            made: stale,
        });
        let mut events = Events {
            perf: self,
            buildid: buildid.clone(),
            made: Vec::new(),
        };
        // Event of each probe, and the field types of each event.
        let mut event_of: BTreeMap<String, Event> = BTreeMap::new();
        let mut types: BTreeMap<Event, BTreeMap<String, (usize, bool)>> = BTreeMap::new();
        for w in &sel.probes {
            let p = &w.probe;
            let before: BTreeSet<String> = uprobe_events().into_iter().map(|e| e.1).collect();
            let mut c = perf(&["probe", "-x"]);
            c.arg(&p.object)
                .arg(format!("sdt_{}:{}", p.provider, p.name));
            let (st, out, err) = output_within(c, limit)?;
            let created: Vec<(Event, String)> = uprobe_events()
                .into_iter()
                .filter(|e| !before.contains(&e.1))
                .collect();
            if let Some(n) = misplaced(&p.object, &p.provider, &p.name, &created) {
                run.notes.push(n);
            }
            let new: Vec<Event> = created.into_iter().map(|e| e.0).collect();
            let words = || {
                let w: Vec<&str> = err
                    .lines()
                    .chain(out.lines())
                    .map(str::trim)
                    .filter(|l| {
                        !l.is_empty() && !l.contains("perf record") && !l.contains("You can now")
                    })
                    .collect();
                format!("perf probe: {}", w.join(" | "))
            };
            let Some(first) = new.first().cloned() else {
                run.refused.insert(p.key(), words());
                continue;
            };
            if !st.success() {
                // Some sites got the event, others were refused (their arguments convert
                // differently): the hits of those are refused in perf's words.
                run.refused.insert(
                    p.key(),
                    format!(
                        "{} ({} of the probe's sites got the event)",
                        words(),
                        new.len()
                    ),
                );
            }
            for e in &new {
                if !events.made.contains(e) {
                    events.made.push(e.clone());
                }
            }
            types.insert(first.clone(), field_types(&first));
            event_of.insert(p.key(), first);
        }
        if event_of.is_empty() {
            if run.refused.is_empty() {
                run.refused
                    .insert("*".into(), "perf probe created no event".into());
            }
            return Ok(run);
        }
        let data = scratch.0.join("perf.data");
        let (ctl, ack) = (scratch.0.join("ctl"), scratch.0.join("ack"));
        let mut ctl_f = fifo(&ctl)?;
        let mut ack_f = fifo(&ack)?;
        let proc_ = Waiting::start(dir, fx)?;
        let mut c = perf(&["record", "-q", "-D", "-1", "-o"]);
        c.arg(&data)
            .arg("--control")
            .arg(format!("fifo:{},{}", ctl.display(), ack.display()));
        for e in event_of.values().collect::<BTreeSet<_>>() {
            c.arg("-e").arg(format!("{}:{}", e.group, e.name));
        }
        c.arg("-p").arg(proc_.pid().to_string());
        let mut recorder = Peer::start(c)?;
        // Events start disabled; once enabled, perf acknowledges on the second FIFO.
        let _ = ctl_f.write_all(b"enable\n");
        let deadline = Instant::now() + limit;
        let mut acked = String::new();
        while Instant::now() < deadline && !acked.contains("ack") && !recorder.exited() {
            let mut buf = [0u8; 16];
            if let Ok(n) = ack_f.read(&mut buf) {
                acked.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if !acked.contains("ack") {
            let (err, _) = recorder.kill_reporting();
            let last = err
                .lines()
                .rev()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("no acknowledgement on its control FIFO")
                .to_string();
            run.refused
                .insert("*".into(), format!("perf record did not start: {last}"));
            return Ok(run);
        }
        let (_, stdout) = proc_.release(limit, || {})?;
        run.stdout = stdout;
        std::thread::sleep(Duration::from_millis(100));
        let (_, failed) = recorder.stop_reporting();
        if let Some(why) = failed {
            run.failure = Some(format!("perf record failed: {why}"));
        }
        let mut c = perf(&["script", "-F", "event,trace", "-i"]);
        c.arg(&data);
        let (st, out, err) = output_within(c, limit)?;
        if !st.success() {
            run.failure = Some(format!("perf script failed: {}", err.trim()));
        }
        let by_event: BTreeMap<String, &crate::check::select::Wanted> = sel
            .probes
            .iter()
            .filter_map(|w| {
                let e = event_of.get(&w.probe.key())?;
                Some((format!("{}:{}", e.group, e.name), w))
            })
            .collect();
        let mut differ: BTreeSet<String> = BTreeSet::new();
        for line in out.lines() {
            let mut f = line.split_whitespace();
            let Some(ev) = f.next().map(|e| e.trim_end_matches(':')) else {
                continue;
            };
            let Some(w) = by_event.get(ev) else { continue };
            let e = &event_of[&w.probe.key()];
            let n = w.probe.args.len();
            let mut args = vec![
                Observed::Error(
                    "dropped: perf probe created the event without this argument".into()
                );
                n
            ];
            for field in f {
                let Some((k, v)) = field.split_once('=') else {
                    continue;
                };
                let Some(i) = k
                    .strip_prefix("arg")
                    .and_then(|i| i.parse::<usize>().ok())
                    .and_then(|i| i.checked_sub(1))
                    .filter(|&i| i < n)
                else {
                    continue;
                };
                args[i] = match parse_value(v) {
                    Some(x) => {
                        if let Some(t) = types.get(e).and_then(|t| t.get(k)) {
                            let kv = kernel_value(x, *t);
                            if kv != x {
                                differ.insert(format!(
                                    "{} arg {i} (`{}`): perf script printed {x} where the kernel recorded {kv} ({}-byte {} field)",
                                    w.probe.key(),
                                    w.probe.args[i].text,
                                    t.0,
                                    if t.1 { "signed" } else { "unsigned" }
                                ));
                            }
                        }
                        Observed::Int(x)
                    }
                    None => Observed::Error(format!("unparsable output `{v}`")),
                };
            }
            run.hits.push(ObservedHit {
                provider: w.probe.provider.clone(),
                name: w.probe.name.clone(),
                pc: None,
                args,
            });
        }
        // One note per argument is enough: the first value seen shows the difference.
        let mut seen = BTreeSet::new();
        for d in differ {
            let key: String = d.split(": perf script").next().unwrap_or_default().into();
            if seen.insert(key) {
                run.notes.push(d);
            }
        }
        drop(events);
        Ok(run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_values_follow_the_field_type() {
        assert_eq!(kernel_value(253, (1, true)), -3);
        assert_eq!(kernel_value(253, (1, false)), 253);
        assert_eq!(kernel_value(49061, (2, true)), 49061 - 65536);
        assert_eq!(kernel_value(-5, (4, true)), -5);
        assert_eq!(kernel_value(u64::MAX as i128, (8, false)), u64::MAX as i128);
        assert_eq!(parse_value("0x10"), Some(16));
        assert_eq!(parse_value("-7"), Some(-7));
        assert_eq!(parse_value("x"), None);
    }
}
