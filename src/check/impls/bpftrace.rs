//! bpftrace: a generated script with one `usdt:` probe per selected probe, printing the
//! selected arguments; attached to the waiting fixture's pid with `-p`.
//!
//! Each argument is named on a line of its own, so that an error bpftrace reports at a
//! script position (`stdin:LINE:COL: ERROR: ...`) names the one argument it refused.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::{peer_column, version_in, Implementation};
use crate::check::compare::{Observed, ObservedHit, Run};
use crate::check::env::Env;
use crate::check::run::{Peer, Waiting};
use crate::check::select::{Granularity, ProbeShape, Selection, Unit};
use crate::error::Result;
use crate::gen::Fixture;

/// bpftrace, on this machine or in another Debian root.
#[derive(Debug, Clone)]
pub struct Bpftrace {
    /// Where it runs.
    pub env: Env,
}

const READY: &str = "USDTKIT-READY";
const REFUSED: &str = "bpftrace refused the script: ";

/// Raw 64 bits as the note's signedness says.
pub(crate) fn as_value(raw: u64, signed: bool) -> Observed {
    Observed::Int(if signed {
        (raw as i64).into()
    } else {
        raw.into()
    })
}

fn quote(s: &str) -> String {
    if s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        s.to_string()
    } else {
        format!("\"{s}\"")
    }
}

/// The script for `sel`, and which unit each line names (line numbers from 1).
fn script(sel: &Selection, shapes: &[Arc<ProbeShape>]) -> (String, Vec<Option<Unit>>) {
    let mut s = format!("BEGIN {{ printf(\"{READY}\\n\"); }}\n");
    let mut lines = vec![None];
    for (i, w) in sel.probes.iter().enumerate() {
        let p = &w.probe;
        let idx = shapes.iter().position(|s| Arc::ptr_eq(s, p)).unwrap_or(0);
        s.push_str(&format!(
            "usdt:\"{}\":{}:{} {{ printf(\"USDTKIT {i}\");\n",
            p.object.display(),
            quote(&p.provider),
            quote(&p.name)
        ));
        lines.push(Some(Unit {
            probe: idx,
            arg: None,
        }));
        for &a in &w.args {
            s.push_str(&format!("printf(\" %lu\",\narg{a});\n"));
            lines.push(None);
            lines.push(Some(Unit {
                probe: idx,
                arg: Some(a),
            }));
        }
        s.push_str("printf(\"\\n\"); }\n");
        lines.push(None);
    }
    (s, lines)
}

/// bpftrace's words, without its complaint about RLIMIT_MEMLOCK (harmless on kernels that
/// account BPF memory to cgroups), the warnings of the note parser it shares with bcc
/// (`Parse error:`, the argument string, a caret line: printed for any unparsable note of
/// the file, whichever probe the script names), and the script lines it quotes under an
/// error with their `~~~` markers.
fn words(stderr: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut lines = stderr.lines();
    while let Some(l) = lines.next() {
        let t = l.trim();
        if t == "Parse error:" {
            lines.next();
            continue;
        }
        if t.is_empty()
            || t.contains("RLIMIT_MEMLOCK")
            || t.starts_with('-')
            || t.starts_with('~')
            || t.starts_with('^')
            || t.starts_with("usdt:")
            || t.starts_with("printf(")
            || t.starts_with("arg")
        {
            continue;
        }
        out.push(t);
    }
    out
}

impl Implementation for Bpftrace {
    fn name(&self) -> String {
        self.env.id("bpftrace")
    }

    fn detect(&self) -> std::result::Result<String, String> {
        self.env.check("/usr/bin/bpftrace")?;
        version_in(&self.env, "bpftrace", "--version")
    }

    fn column(&self, version: std::result::Result<&str, &str>) -> String {
        peer_column("bpftrace", &self.env, version)
    }

    fn granularity(&self) -> Granularity {
        Granularity::Argument
    }

    // bpftrace 0.17 reads an argument a probe's other site lacks with the size left over
    // from the probe before it in the script: alone it fails an assertion, after another
    // probe it attaches. Each probe is run as a user running it alone would.
    fn one_probe_per_run(&self) -> bool {
        true
    }

    fn blame(
        &self,
        words: &str,
        sel: &Selection,
        shapes: &[Arc<ProbeShape>],
    ) -> Vec<(Unit, String)> {
        let (_, lines) = script(sel, shapes);
        let mut out: Vec<(Unit, String)> = Vec::new();
        let mut add = |u: Unit, w: &str| {
            if !out.iter().any(|(x, _)| *x == u) {
                out.push((u, w.to_string()));
            }
        };
        let words = words.trim_start_matches(REFUSED);
        for l in words.split(" | ") {
            // stdin:LINE:COL-COL: ERROR: what
            if let Some(rest) = l.strip_prefix("stdin:") {
                let line = rest.split(':').next().and_then(|n| n.parse::<usize>().ok());
                let what = rest.split_once("ERROR:").map_or(l, |(_, w)| w.trim());
                if let Some(Some(u)) = line.and_then(|n| lines.get(n.wrapping_sub(1))) {
                    if u.arg.is_some() {
                        add(*u, what);
                    }
                }
                continue;
            }
            // ERROR: couldn't get argument N for PATH:PROVIDER:NAME
            let arg_error = l.split("couldn't get argument ").nth(1);
            // Any other error naming a probe (`Error attaching probe: usdt:PATH:P:N, to PID`,
            // `Could not resolve symbol: PATH:N`): every argument of that probe, in its words.
            if arg_error.is_none() {
                for w in &sel.probes {
                    let obj = w.probe.object.to_string_lossy();
                    let named = [
                        format!("{obj}:{}:{}", w.probe.provider, w.probe.name),
                        format!("{obj}:{}", w.probe.name),
                    ];
                    let hit = l
                        .split([' ', ','])
                        .any(|t| named.iter().any(|n| t.ends_with(n.as_str())));
                    let idx = shapes.iter().position(|s| Arc::ptr_eq(s, &w.probe));
                    if let (true, Some(idx)) = (hit, idx) {
                        let what = l.trim_start_matches("ERROR:").trim();
                        if w.args.is_empty() {
                            add(
                                Unit {
                                    probe: idx,
                                    arg: None,
                                },
                                what,
                            );
                        }
                        for &a in &w.args {
                            add(
                                Unit {
                                    probe: idx,
                                    arg: Some(a),
                                },
                                what,
                            );
                        }
                    }
                }
            }
            if let Some(rest) = arg_error {
                let n = rest.split_whitespace().next().and_then(|n| n.parse().ok());
                for w in &sel.probes {
                    let tail = format!(":{}:{}", w.probe.provider, w.probe.name);
                    let idx = shapes.iter().position(|s| Arc::ptr_eq(s, &w.probe));
                    if let (Some(n), Some(idx), true) = (n, idx, rest.trim_end().ends_with(&tail)) {
                        if w.reads(n) {
                            add(
                                Unit {
                                    probe: idx,
                                    arg: Some(n),
                                },
                                l.trim_start_matches("ERROR:").trim(),
                            );
                        }
                    }
                }
            }
        }
        out
    }

    fn run(&self, dir: &Path, fx: &Fixture, sel: &Selection, limit: Duration) -> Result<Run> {
        let shapes: Vec<Arc<ProbeShape>> =
            sel.probes.iter().map(|w| Arc::clone(&w.probe)).collect();
        let (text, _) = script(sel, &shapes);
        let proc_ = Waiting::start(dir, fx)?;
        let mut cmd = self.env.with_bind(dir).command("bpftrace");
        cmd.args(["-B", "line", "-p", &proc_.pid().to_string(), "-e", &text]);
        let mut tracer = Peer::start(cmd)?;
        let mut run = Run::default();
        if !tracer.wait_for(limit, |l| l == READY) {
            let (stderr, ended) = tracer.kill_reporting();
            if std::env::var_os("USDTKIT_CHECK_DEBUG").is_some_and(|v| v == "2") {
                eprintln!("bpftrace script:\n{text}\nbpftrace stderr:\n{stderr}");
            }
            let w = words(&stderr);
            let errors: Vec<&str> = w.iter().filter(|l| l.contains("ERROR")).copied().collect();
            let mut reason = if errors.is_empty() {
                w.join(" | ")
            } else {
                errors.join(" | ")
            };
            match ended {
                Some(how) if errors.is_empty() => {
                    if !reason.is_empty() {
                        reason.push_str(" | ");
                    }
                    reason.push_str(&how);
                }
                None => {
                    if !reason.is_empty() {
                        reason.push_str(" | ");
                    }
                    reason.push_str(&format!("not attached after {} s", limit.as_secs()));
                }
                _ => {}
            }
            run.refused.insert("*".into(), format!("{REFUSED}{reason}"));
            return Ok(run);
        }
        let (_, stdout) = proc_.release(limit, || {})?;
        run.stdout = stdout;
        std::thread::sleep(Duration::from_millis(50));
        let (out, exited) = tracer.stop_reporting();
        if let Some(why) = exited {
            run.failure = Some(format!("bpftrace stopped during the run: {why}"));
        }
        for l in &out {
            let Some(rest) = l.strip_prefix("USDTKIT ") else {
                continue;
            };
            let mut f = rest.split_whitespace();
            let Some(w) = f
                .next()
                .and_then(|i| i.parse::<usize>().ok())
                .and_then(|i| sel.probes.get(i))
            else {
                continue;
            };
            let n = w.probe.args.len();
            let mut args = vec![Observed::Error("not read in this run".into()); n];
            for (&a, v) in w.args.iter().zip(f) {
                args[a] = match v.parse::<u64>() {
                    Ok(raw) => as_value(raw, w.probe.args[a].signed),
                    Err(_) => Observed::Error(format!("unparsable output `{v}`")),
                };
            }
            run.hits.push(ObservedHit {
                provider: w.probe.provider.clone(),
                name: w.probe.name.clone(),
                pc: None,
                args,
            });
        }
        Ok(run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::select::{self, ArgShape};

    #[test]
    fn errors_at_a_script_line_name_the_argument() {
        let shape = |name: &str, n: usize| {
            Arc::new(ProbeShape {
                provider: "p".into(),
                name: name.into(),
                object: "/bin/x".into(),
                rel: "x".into(),
                args: (0..n)
                    .map(|_| ArgShape {
                        size: 8,
                        signed: false,
                        float: false,
                        text: "8@%rax".into(),
                    })
                    .collect(),
            })
        };
        let shapes = vec![shape("a", 2), shape("b-c", 8)];
        let sel = Selection::all(&shapes);
        let (text, lines) = script(&sel, &shapes);
        assert!(text.contains("usdt:\"/bin/x\":p:\"b-c\""), "{text}");
        let line_of = |probe: usize, arg: usize| {
            1 + lines
                .iter()
                .position(|u| {
                    *u == Some(Unit {
                        probe,
                        arg: Some(arg),
                    })
                })
                .unwrap()
        };
        assert!(text
            .lines()
            .nth(line_of(1, 6) - 1)
            .unwrap()
            .starts_with("arg6)"));
        let b = Bpftrace { env: Env::Host };
        let words = format!(
            "stdin:{}:1-5: ERROR: x86_64 doesn't support arg6 | ERROR: couldn't get argument 1 for /bin/x:p:a",
            line_of(1, 6)
        );
        let blamed = b.blame(&words, &sel, &shapes);
        assert_eq!(
            blamed,
            [
                (
                    Unit {
                        probe: 1,
                        arg: Some(6)
                    },
                    "x86_64 doesn't support arg6".to_string()
                ),
                (
                    Unit {
                        probe: 0,
                        arg: Some(1)
                    },
                    "couldn't get argument 1 for /bin/x:p:a".to_string()
                ),
            ]
        );
        // Words that name nothing blame nothing: the harness narrows by halves.
        assert!(b.blame("ERROR: out of memory", &sel, &shapes).is_empty());
        let _ = select::units(&shapes, Granularity::Argument);
    }
}
