//! `usdtkit trace TARGET... [--pid PID] [--str SPEC] [--count] [--json] [-o FILE]
//! [-- COMMAND ARGS...]`.

use std::mem::MaybeUninit;
use std::path::PathBuf;
use std::process::{Child, ExitCode};
use std::time::{Duration, Instant};

use usdtkit::attach::glob;
use usdtkit::recorder::{Recorder, RecorderOptions, StringArgs};
use usdtkit::sys::held;
use usdtkit::sys::process::{self, PidWatch};
use usdtkit::Error;

use super::trace_out::{say, Out, Summary};

/// Options of `trace`.
#[derive(Debug, Clone, Default)]
pub(super) struct TraceArgs {
    pub targets: Vec<String>,
    pub pid: Option<i32>,
    pub strings: Vec<String>,
    pub str_len: Option<u32>,
    pub buffer_size: Option<u32>,
    pub json: bool,
    pub output: Option<PathBuf>,
    pub count: bool,
    pub interval: Option<f64>,
    pub command: Vec<String>,
}

/// How long a command gets to end after the signal we pass on, before SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

/// `PATH[:PROVIDER[:NAME]]`, missing parts meaning `*`.
fn split_target(t: &str) -> (&str, &str, &str) {
    // `memfd:NAME` names a file, colon included.
    let skip = if t.starts_with("memfd:") { 6 } else { 0 };
    let end = t[skip..].find(':').map_or(t.len(), |i| skip + i);
    let path = &t[..end];
    let mut it = t[end..].strip_prefix(':').unwrap_or("").splitn(2, ':');
    let provider = it.next().filter(|s| !s.is_empty()).unwrap_or("*");
    let name = it.next().filter(|s| !s.is_empty()).unwrap_or("*");
    (path, provider, name)
}

/// `--str [[PROVIDER:]NAME=]N[,N...]`.
fn parse_strings(spec: &str) -> Result<StringArgs, String> {
    let (probe, list) = match spec.rsplit_once('=') {
        Some((p, l)) => (Some(p), l),
        None => (None, spec),
    };
    let args = list
        .split(',')
        .map(|n| {
            n.trim()
                .parse::<usize>()
                .ok()
                .filter(|&i| i < 12)
                .ok_or_else(|| format!("--str {spec}: `{n}` is not an argument index (0 to 11)"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (provider, name) = match probe {
        None => ("*", "*"),
        Some(p) => p.split_once(':').unwrap_or(("*", p)),
    };
    Ok(StringArgs {
        provider: provider.into(),
        name: name.into(),
        args,
    })
}

/// `16M`, `512K`, `1G` or plain bytes.
pub(super) fn parse_size(s: &str) -> Result<u32, String> {
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'K' | 'k')) => (&s[..i], 1 << 10),
        Some((i, 'M' | 'm')) => (&s[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("{s}: not a size (bytes, or with K, M or G; below 4G)"))
}

/// Run `trace`; the exit code is the command's when one is run.
pub(super) fn run(a: TraceArgs) -> ExitCode {
    match trace(a) {
        Ok(code) => code,
        Err(e) => {
            say!("usdtkit trace: {e}");
            ExitCode::from(1)
        }
    }
}

fn load<'a>(
    storage: &'a mut MaybeUninit<libbpf_rs::OpenObject>,
    opts: RecorderOptions,
) -> usdtkit::Result<Recorder<'a>> {
    Recorder::load(storage, opts)
}

/// Semaphores the kernel will raise in the wrong mapping of processes that map `file` after
/// this attach: every process started later (pid -1). Said once.
fn warn_aliases(file: &std::path::Path, mapped: bool) {
    let Ok(m) = usdtkit::MappedFile::open(file) else {
        return;
    };
    let Ok(u) = m.usdt() else { return };
    let aliases = u.semaphore_aliases();
    if !aliases.is_empty() && !mapped {
        say!(
            "usdtkit trace: warning: {}",
            usdtkit::attach::semaphore::warning(file, &aliases)
        );
    }
}

/// The files to attach and the probe patterns for each. With `--pid` (and no command), a
/// target path `*` means every file the process maps that has probes, and every other path
/// must be mapped by the process: an error says what it maps instead.
fn expand_targets(
    targets: &[String],
    pid: Option<i32>,
    command: bool,
) -> usdtkit::Result<Vec<(String, String, String)>> {
    let mut out = Vec::new();
    let pid = pid.filter(|_| !command).map(|p| p as u32);
    for t in targets {
        let (path, provider, name) = split_target(t);
        let (provider, name) = (provider.to_string(), name.to_string());
        let Some(pid) = pid else {
            if path == "*" {
                return Err(Error::Invalid(
                    "the target `*` (every file with probes) needs --pid".into(),
                ));
            }
            out.push((path.to_string(), provider, name));
            continue;
        };
        if path == "*" {
            let all = super::list::probed_objects(pid).map_err(Error::Invalid)?;
            if all.is_empty() {
                return Err(Error::Invalid(format!(
                    "process {pid} maps no file with USDT probes"
                )));
            }
            for (_, open) in all {
                // Only the files holding a matching probe.
                let m = usdtkit::MappedFile::open(&open)?;
                let u = m.usdt()?;
                if u.probes()
                    .any(|p| glob(&provider, p.provider) && glob(&name, p.name))
                {
                    out.push((
                        open.to_string_lossy().into_owned(),
                        provider.clone(),
                        name.clone(),
                    ));
                }
            }
            continue;
        }
        let file = usdtkit::attach::resolve::resolve(path, Some(pid))
            .map_err(|kind| Error::attach(usdtkit::Context::file(path), kind))?;
        let mapped = usdtkit::procmaps::of_file(pid, &file).is_ok_and(|v| !v.is_empty());
        if !mapped {
            let with: Vec<String> = super::list::probed_objects(pid)
                .unwrap_or_default()
                .into_iter()
                .map(|(shown, _)| shown)
                .collect();
            return Err(Error::Invalid(format!(
                "process {pid} does not map {}; the files it maps that have probes: {} \
                 (usdtkit list --pid {pid})",
                file.display(),
                if with.is_empty() {
                    "none".to_string()
                } else {
                    with.join(", ")
                }
            )));
        }
        out.push((file.to_string_lossy().into_owned(), provider, name));
    }
    if out.is_empty() {
        return Err(Error::Invalid(
            "no file the process maps has a probe matching the targets".into(),
        ));
    }
    Ok(out)
}

/// The files attached, by the inode attached to: the kernel's uprobes stay on that inode, so
/// a file replaced on disk (a new build, a package upgrade) is said once when seen.
#[derive(Default)]
struct Watched {
    files: Vec<(PathBuf, u64, u64, bool)>,
}

impl Watched {
    fn add(&mut self, path: &std::path::Path) {
        use std::os::unix::fs::MetadataExt;
        if let Ok(m) = std::fs::metadata(path) {
            self.files
                .push((path.to_path_buf(), m.dev(), m.ino(), false));
        }
    }

    fn check(&mut self) {
        use std::os::unix::fs::MetadataExt;
        for (path, dev, ino, said) in self.files.iter_mut().filter(|f| !f.3) {
            let now = std::fs::metadata(&*path).map(|m| (m.dev(), m.ino()));
            if now.as_ref().ok() != Some(&(*dev, *ino)) {
                *said = true;
                say!(
                    "usdtkit trace: warning: {} was replaced on disk since it was attached \
                     ({}): processes started from the new file are not traced; run trace \
                     again to follow it",
                    path.display(),
                    match now {
                        Ok((_, new)) => format!("inode {ino}, now {new}"),
                        Err(e) => format!("inode {ino}, now {e}"),
                    }
                );
            }
        }
    }
}

/// The exit code a shell would show for `st`.
fn exit_code(st: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    st.code()
        .unwrap_or_else(|| 128 + st.signal().unwrap_or(libc::SIGKILL))
}

fn trace(a: TraceArgs) -> usdtkit::Result<ExitCode> {
    let strings = a
        .strings
        .iter()
        .map(|s| parse_strings(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::Invalid)?;
    if a.count && !strings.is_empty() {
        return Err(Error::Invalid(
            "--count reads no strings: drop --str".into(),
        ));
    }
    let opts = RecorderOptions {
        // Strings are best read by the sleepable program (it may fault pages in).
        sleepable: !strings.is_empty(),
        count: a.count,
        buffer_size: a.buffer_size,
        str_len: a.str_len,
        ..RecorderOptions::default()
    };
    let mut storage = MaybeUninit::uninit();
    let mut fallback = MaybeUninit::uninit();
    let mut rec = match load(&mut storage, opts) {
        Ok(r) => r,
        Err(e) if opts.sleepable => {
            say!("usdtkit trace: sleepable recorder unavailable ({e}); strings not yet in memory read as errors");
            load(
                &mut fallback,
                RecorderOptions {
                    sleepable: false,
                    ..opts
                },
            )?
        }
        Err(e) => return Err(e),
    };
    let mut out = Out::new(
        match &a.output {
            Some(p) => Box::new(std::fs::File::create(p).map_err(|source| Error::Io {
                path: p.clone(),
                source,
            })?),
            None => Box::new(std::io::stdout()),
        },
        a.json,
        a.output.is_none(),
    );
    process::catch_interrupts();
    // A command is held right after its exec: attached before any of its code runs, and
    // killed (by the drop) if attaching fails.
    let mut held = if a.command.is_empty() {
        None
    } else {
        let mut cmd = std::process::Command::new(&a.command[0]);
        cmd.args(&a.command[1..]);
        Some(held::spawn_held(cmd).map_err(|source| Error::Io {
            path: a.command[0].clone().into(),
            source,
        })?)
    };
    let pid = match (&held, a.pid) {
        (Some(h), _) => h.pid() as i32,
        (None, Some(p)) => p,
        (None, None) => -1,
    };
    let watch = match a.pid {
        Some(p) if held.is_none() => {
            Some(PidWatch::new(p as u32).map_err(|e| Error::Invalid(format!("--pid {p}: {e}")))?)
        }
        _ => None,
    };
    let mut files = Watched::default();
    for (path, provider, name) in expand_targets(&a.targets, a.pid, held.is_some())? {
        let link = rec.attach(&path, &[(&provider, &name)], pid, &strings)?;
        files.add(link.binary());
        say!(
            "usdtkit trace: {} sites of {} attached ({} link{})",
            link.sites().len(),
            link.binary().display(),
            link.link_count(),
            if link.link_count() == 1 { "" } else { "s" }
        );
        for w in link.warnings() {
            say!("usdtkit trace: {w}");
        }
        if held.is_none() {
            warn_aliases(link.binary(), pid > 0);
        }
        for w in rec.take_warnings() {
            say!("usdtkit trace: warning: {w}");
        }
    }
    let mut child = match held.take() {
        Some(mut h) => {
            for n in rec.settle(&mut h)? {
                say!("usdtkit trace: {n}");
            }
            Some(
                h.release()
                    .map_err(|e| Error::Invalid(format!("releasing the command: {e}")))?,
            )
        }
        None => None,
    };
    let start = Instant::now();
    let (exit, ended) = follow(
        &mut rec,
        &mut out,
        &mut child,
        watch.as_ref(),
        &mut files,
        &a,
        start,
    )?;
    // Hits still in the ring buffer are delivered before detaching.
    if !a.count {
        while rec.drain_each(|h| out.hit(h))? > 0 {}
        out.flush();
    }
    if a.count {
        out.counts(&rec.counts()?, start.elapsed().as_secs_f64(), true);
    }
    let stats = rec.stats()?;
    rec.detach_all();
    out.summary(&Summary {
        delivered: out.written,
        counted: a.count,
        stats,
        seconds: start.elapsed().as_secs_f64(),
        exit,
        ended,
    });
    Ok(ExitCode::from(exit.unwrap_or(0).clamp(0, 255) as u8))
}

/// Deliver hits until the command or process ends, a signal arrives or the output closes.
/// Returns the command's exit code and why tracing ended.
fn follow(
    rec: &mut Recorder<'_>,
    out: &mut Out,
    child: &mut Option<Child>,
    watch: Option<&PidWatch>,
    files: &mut Watched,
    a: &TraceArgs,
    start: Instant,
) -> usdtkit::Result<(Option<i32>, String)> {
    let interval = a.interval.map(Duration::from_secs_f64);
    let mut next_counts = interval.map(|i| start + i);
    let mut next_check = start + Duration::from_secs(1);
    let mut lost = 0;
    let mut stop_asked: Option<(Instant, String)> = None;
    loop {
        if a.count {
            std::thread::sleep(Duration::from_millis(50));
        } else {
            rec.poll_each(Duration::from_millis(100), |h| out.hit(h))?;
            out.flush();
        }
        let now = Instant::now();
        if now >= next_check {
            next_check = now + Duration::from_secs(1);
            files.check();
            let s = rec.stats()?;
            if s.lost > lost {
                say!(
                    "usdtkit trace: {} hits lost so far: the ring buffer is full (try a bigger \
                     --buffer-size, or --count)",
                    s.lost
                );
                lost = s.lost;
            }
        }
        if let (Some(at), Some(i)) = (next_counts, interval) {
            if now >= at {
                out.counts(&rec.counts()?, start.elapsed().as_secs_f64(), false);
                next_counts = Some(at + i);
            }
        }
        if let Some(c) = child.as_mut() {
            if let Some(st) = c.try_wait().map_err(|e| Error::Invalid(e.to_string()))? {
                let code = exit_code(st);
                let why = match &stop_asked {
                    Some((_, why)) => why.clone(),
                    None => format!("the command exited ({st})"),
                };
                return Ok((Some(code), why));
            }
            if let Some((at, _)) = &stop_asked {
                if at.elapsed() > GRACE {
                    let _ = c.kill();
                }
            }
        }
        if watch.is_some_and(|w| w.exited()) {
            return Ok((None, format!("process {} exited", a.pid.unwrap_or(0))));
        }
        if stop_asked.is_some() {
            continue;
        }
        let why = if let Some(sig) = process::interrupt_signal() {
            // Pass the signal on unless the terminal already sent it to the command too.
            if let Some(c) = child.as_ref() {
                if process::interrupt_from_process() || sig != libc::SIGINT {
                    let _ = process::signal_process(c.id(), sig);
                }
            }
            Some(format!("interrupted by signal {sig}"))
        } else if let Some(e) = &out.failed {
            if let Some(c) = child.as_ref() {
                let _ = process::signal_process(c.id(), libc::SIGTERM);
            }
            Some(format!("the output closed: {e}"))
        } else {
            None
        };
        if let Some(why) = why {
            if child.is_none() {
                return Ok((None, why));
            }
            stop_asked = Some((Instant::now(), why));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(split_target("/bin/x"), ("/bin/x", "*", "*"));
        assert_eq!(split_target("/bin/x:python"), ("/bin/x", "python", "*"));
        assert_eq!(split_target("x:p:function__*"), ("x", "p", "function__*"));
        assert_eq!(split_target("x::n"), ("x", "*", "n"));
        assert_eq!(split_target("memfd:lib"), ("memfd:lib", "*", "*"));
        assert_eq!(split_target("memfd:lib:p:n"), ("memfd:lib", "p", "n"));
    }

    #[test]
    fn string_specs() {
        let s = parse_strings("2,4").unwrap();
        assert_eq!((s.provider.as_str(), s.name.as_str()), ("*", "*"));
        assert_eq!(s.args, vec![2, 4]);
        let s = parse_strings("function__entry=0,1").unwrap();
        assert_eq!(
            (s.provider.as_str(), s.name.as_str()),
            ("*", "function__entry")
        );
        let s = parse_strings("python:function__*=1").unwrap();
        assert_eq!(
            (s.provider.as_str(), s.name.as_str()),
            ("python", "function__*")
        );
        assert!(parse_strings("12").is_err());
        assert!(parse_strings("x=a").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("16M"), Ok(16 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert!(parse_size("4G").is_err());
        assert!(parse_size("x").is_err());
    }
}
