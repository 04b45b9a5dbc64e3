//! `usdtkit trace TARGET [--pid PID] [--str N,...] [--json] [-- COMMAND ARGS...]`.

use std::mem::MaybeUninit;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{json, Value};
use usdtkit::recorder::{ArgValue, Hit, Recorder, RecorderOptions};
use usdtkit::sys::{held, process};

/// Options of `trace`.
#[derive(Debug, Clone)]
pub(super) struct TraceArgs {
    pub target: String,
    pub pid: Option<i32>,
    pub strings: Vec<usize>,
    pub json: bool,
    pub command: Vec<String>,
}

/// `PATH[:PROVIDER[:NAME]]`, missing parts meaning `*`.
fn split_target(t: &str) -> (&str, &str, &str) {
    let mut it = t.splitn(3, ':');
    let path = it.next().unwrap_or_default();
    let provider = it.next().filter(|s| !s.is_empty()).unwrap_or("*");
    let name = it.next().filter(|s| !s.is_empty()).unwrap_or("*");
    (path, provider, name)
}

fn hit_json(h: &Hit) -> Value {
    let mut errors = Vec::new();
    let args: Vec<Value> = h
        .args
        .iter()
        .enumerate()
        .map(|(i, a)| match a {
            ArgValue::Int(v) => match i64::try_from(*v) {
                Ok(v) => json!(v),
                Err(_) => json!(*v as u64),
            },
            ArgValue::Float(f) => json!(f),
            ArgValue::Error(e) => {
                errors.push(json!({"arg": i, "reason": e}));
                Value::Null
            }
        })
        .collect();
    let mut v = json!({
        "provider": h.provider, "name": h.name, "pid": h.pid, "tid": h.tid,
        "ip": h.ip, "cookie": h.cookie, "args": args,
    });
    if !errors.is_empty() {
        v["errors"] = json!(errors);
    }
    if !h.strings.is_empty() {
        let s: serde_json::Map<String, Value> = h
            .strings
            .iter()
            .map(|(i, s)| (i.to_string(), json!(s)))
            .collect();
        v["strings"] = Value::Object(s);
    }
    v
}

fn hit_line(h: &Hit) -> String {
    let mut s = format!(
        "{}/{} {}:{} ip={:#x}",
        h.pid, h.tid, h.provider, h.name, h.ip
    );
    for (i, a) in h.args.iter().enumerate() {
        match a {
            ArgValue::Int(v) => s.push_str(&format!(" arg{i}={v}")),
            ArgValue::Float(f) => s.push_str(&format!(" arg{i}={f}")),
            ArgValue::Error(_) => s.push_str(&format!(" arg{i}=?")),
        }
        if let Some((_, st)) = h.strings.iter().find(|(j, _)| *j == i) {
            s.push_str(&format!(" {st:?}"));
        }
    }
    s
}

fn load<'a>(
    storage: &'a mut MaybeUninit<libbpf_rs::OpenObject>,
    strings: bool,
) -> usdtkit::Result<Recorder<'a>> {
    // Strings are best read by the sleepable program (it may fault pages in).
    let opts = RecorderOptions {
        sleepable: strings,
        ..RecorderOptions::default()
    };
    Recorder::load(storage, opts)
}

/// Semaphores the kernel will raise in the wrong mapping of processes that map `file` after
/// this attach: every process started later (pid -1), or a given one that has not mapped it
/// yet. Said once.
fn warn_aliases(file: &std::path::Path, pid: i32) {
    let Ok(m) = usdtkit::MappedFile::open(file) else {
        return;
    };
    let Ok(u) = m.usdt() else { return };
    let aliases = u.semaphore_aliases();
    if aliases.is_empty() {
        return;
    }
    let mapped =
        pid > 0 && usdtkit::procmaps::of_file(pid as u32, file).is_ok_and(|v| !v.is_empty());
    if !mapped {
        eprintln!(
            "usdtkit trace: warning: {}",
            usdtkit::attach::semaphore::warning(file, &aliases)
        );
    }
}

/// Run `trace`; the exit code is the command's when one is run.
pub(super) fn run(a: TraceArgs) -> ExitCode {
    match trace(a) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("usdtkit trace: {e}");
            ExitCode::from(1)
        }
    }
}

fn trace(a: TraceArgs) -> usdtkit::Result<ExitCode> {
    let (path, provider, name) = split_target(&a.target);
    let mut storage = MaybeUninit::uninit();
    let mut fallback = MaybeUninit::uninit();
    let mut rec = match load(&mut storage, !a.strings.is_empty()) {
        Ok(r) => r,
        Err(e) if !a.strings.is_empty() => {
            eprintln!("usdtkit trace: sleepable recorder unavailable ({e}); strings may be missed");
            load(&mut fallback, false)?
        }
        Err(e) => return Err(e),
    };
    process::catch_interrupts();
    // A command is held right after its exec: attached before any of its code runs, and
    // killed (by the drop) if attaching fails.
    let mut held = if a.command.is_empty() {
        None
    } else {
        let mut cmd = std::process::Command::new(&a.command[0]);
        cmd.args(&a.command[1..]);
        Some(held::spawn_held(cmd).map_err(|source| usdtkit::Error::Io {
            path: a.command[0].clone().into(),
            source,
        })?)
    };
    let pid = match (&held, a.pid) {
        (Some(h), _) => h.pid() as i32,
        (None, Some(p)) => p,
        (None, None) => -1,
    };
    let link = rec.attach(path, &[(provider, name)], pid, &a.strings)?;
    eprintln!(
        "usdtkit trace: {} sites of {} attached ({} link{})",
        link.sites().len(),
        link.binary().display(),
        link.link_count(),
        if link.link_count() == 1 { "" } else { "s" }
    );
    for w in link.warnings() {
        eprintln!("usdtkit trace: {w}");
    }
    let file = link.binary().to_path_buf();
    let mut child = match held.take() {
        Some(mut h) => {
            for n in rec.settle(&mut h)? {
                eprintln!("usdtkit trace: {n}");
            }
            Some(
                h.release()
                    .map_err(|e| usdtkit::Error::Invalid(format!("releasing the command: {e}")))?,
            )
        }
        None => {
            warn_aliases(&file, pid);
            None
        }
    };
    let print = |hits: Vec<Hit>| {
        for h in hits {
            if a.json {
                println!("{}", hit_json(&h));
            } else {
                println!("{}", hit_line(&h));
            }
        }
    };
    let code = loop {
        print(rec.poll(Duration::from_millis(100))?);
        if let Some(c) = child.as_mut() {
            if let Some(st) = c
                .try_wait()
                .map_err(|e| usdtkit::Error::Invalid(e.to_string()))?
            {
                print(rec.poll(Duration::from_millis(50))?);
                break ExitCode::from(st.code().unwrap_or(128 + 9).clamp(0, 255) as u8);
            }
        }
        if process::interrupted() {
            print(rec.drain()?);
            if let Some(c) = child.as_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
            break ExitCode::from(130);
        }
    };
    rec.detach_all();
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::split_target;

    #[test]
    fn targets() {
        assert_eq!(split_target("/bin/x"), ("/bin/x", "*", "*"));
        assert_eq!(split_target("/bin/x:python"), ("/bin/x", "python", "*"));
        assert_eq!(split_target("x:p:function__*"), ("x", "p", "function__*"));
        assert_eq!(split_target("x::n"), ("x", "*", "n"));
    }
}
