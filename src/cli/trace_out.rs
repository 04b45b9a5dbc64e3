//! What `usdtkit trace` writes: hits as text or JSON lines, counts, and the closing summary.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde_json::{json, Value};
use usdtkit::recorder::{ArgValue, Hit, RecorderStats, SiteCount};

/// `eprintln!` that does not panic when stderr is closed (`2>&1 | head`): a message that
/// cannot be shown must not end tracing.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}
pub(super) use say;

/// Where hits go: one buffered writer, flushed after each batch.
pub(super) struct Out {
    w: Box<dyn Write>,
    pub json: bool,
    /// Hits go to stdout (not `--output`): a JSON summary there is enough.
    pub to_stdout: bool,
    /// Hits written.
    pub written: u64,
    /// The first write error (a closed pipe ends tracing).
    pub failed: Option<io::Error>,
}

impl Out {
    pub fn new(w: Box<dyn Write>, json: bool, to_stdout: bool) -> Self {
        Out {
            w: Box::new(io::BufWriter::with_capacity(1 << 16, w)),
            json,
            to_stdout,
            written: 0,
            failed: None,
        }
    }

    fn emit(&mut self, f: impl FnOnce(&mut dyn Write) -> io::Result<()>) {
        if self.failed.is_none() {
            if let Err(e) = f(&mut self.w) {
                self.failed = Some(e);
            }
        }
    }

    pub fn hit(&mut self, h: &Hit) {
        let json = self.json;
        self.emit(|w| if json { hit_json(w, h) } else { hit_line(w, h) });
        self.written += 1;
    }

    pub fn flush(&mut self) {
        self.emit(|w| w.flush());
    }

    /// Count mode: hits per probe and process so far.
    pub fn counts(&mut self, counts: &[SiteCount], elapsed: f64, last: bool) {
        let mut by: BTreeMap<(&str, &str, u32), u64> = BTreeMap::new();
        for c in counts {
            *by.entry((&c.provider, &c.name, c.pid)).or_default() += c.count;
        }
        let json = self.json;
        self.emit(|w| {
            if json {
                let rows: Vec<Value> = by
                    .iter()
                    .map(|((p, n, pid), c)| json!({"provider": p, "name": n, "pid": pid, "count": c}))
                    .collect();
                writeln!(
                    w,
                    "{}",
                    json!({"counts": rows, "seconds": elapsed, "final": last})
                )
            } else {
                writeln!(w, "{:>10}  {:>8}  PROBE  ({elapsed:.1} s)", "HITS", "PID")?;
                for ((p, n, pid), c) in &by {
                    writeln!(w, "{c:>10}  {pid:>8}  {p}:{n}")?;
                }
                Ok(())
            }
        });
        self.flush();
    }

    /// The closing summary: on this output as a JSON object with `--json`, else on stderr.
    pub fn summary(&mut self, s: &Summary) {
        if self.json {
            let v = json!({"summary": {
                "delivered": s.delivered, "lost": s.stats.lost, "seen": s.stats.hits,
                "uncounted": s.stats.uncounted, "malformed": s.stats.malformed,
                "foreign": s.stats.foreign, "seconds": s.seconds, "exit": s.exit,
                "ended": s.ended,
            }});
            self.emit(|w| writeln!(w, "{v}"));
            self.flush();
        }
        let st = &s.stats;
        if !self.json || !self.to_stdout || st.lost + st.uncounted + st.malformed + st.foreign > 0 {
            say!("usdtkit trace: {}", s.text());
        }
    }
}

/// What a trace did, said when it ends.
#[derive(Debug, Clone)]
pub(super) struct Summary {
    pub delivered: u64,
    /// Count mode: hits were counted, not delivered.
    pub counted: bool,
    pub stats: RecorderStats,
    pub seconds: f64,
    /// The command's exit status or signal as a shell would show it.
    pub exit: Option<i32>,
    /// Why tracing ended.
    pub ended: String,
}

impl Summary {
    fn text(&self) -> String {
        let mut s = if self.counted {
            format!(
                "{} hits counted in {:.1} s ({})",
                self.stats.hits - self.stats.uncounted,
                self.seconds,
                self.ended
            )
        } else {
            format!(
                "{} hits delivered in {:.1} s ({})",
                self.delivered, self.seconds, self.ended
            )
        };
        if self.stats.lost > 0 {
            s.push_str(&format!(
                "; {} LOST: the ring buffer was full (a bigger --buffer-size, or --count, \
                 which loses nothing)",
                self.stats.lost
            ));
        } else {
            s.push_str("; none lost");
        }
        if self.stats.malformed > 0 {
            s.push_str(&format!(
                "; {} records MALFORMED (shorter than their header says) and not shown",
                self.stats.malformed
            ));
        }
        if self.stats.foreign > 0 {
            s.push_str(&format!(
                "; {} hits of links another process made through the same program, not shown",
                self.stats.foreign
            ));
        }
        if self.stats.uncounted > 0 {
            s.push_str(&format!(
                "; {} not counted: the count table (65536 probe and process pairs) was full",
                self.stats.uncounted
            ));
        }
        s
    }
}

fn json_str(w: &mut dyn Write, s: &str) -> io::Result<()> {
    serde_json::to_writer(w, s).map_err(io::Error::other)
}

/// One hit as a JSON object, written field by field: no allocation per hit.
fn hit_json(w: &mut dyn Write, h: &Hit) -> io::Result<()> {
    w.write_all(b"{\"provider\":")?;
    json_str(w, &h.provider)?;
    w.write_all(b",\"name\":")?;
    json_str(w, &h.name)?;
    write!(
        w,
        ",\"pid\":{},\"tid\":{},\"ip\":{},\"cookie\":{},\"args\":[",
        h.pid, h.tid, h.ip, h.cookie
    )?;
    for (i, a) in h.args.iter().enumerate() {
        if i > 0 {
            w.write_all(b",")?;
        }
        match a {
            ArgValue::Int(v) => match i64::try_from(*v) {
                Ok(v) => write!(w, "{v}")?,
                Err(_) => write!(w, "{}", *v as u64)?,
            },
            ArgValue::Float(f) => serde_json::to_writer(&mut *w, f).map_err(io::Error::other)?,
            ArgValue::Error(_) => w.write_all(b"null")?,
        }
    }
    w.write_all(b"]")?;
    let mut first = true;
    for s in h.strings.iter().filter(|s| s.errno.is_none()) {
        w.write_all(if first { b",\"strings\":{" } else { b"," })?;
        first = false;
        write!(w, "\"{}\":", s.arg)?;
        json_str(w, &s.text())?;
    }
    if !first {
        w.write_all(b"}")?;
    }
    let mut first = true;
    for s in h.strings.iter().filter(|s| s.cut && s.errno.is_none()) {
        w.write_all(if first { b",\"cut\":[" } else { b"," })?;
        first = false;
        write!(w, "{}", s.arg)?;
    }
    if !first {
        w.write_all(b"]")?;
    }
    let mut first = true;
    let arg_errors = h.args.iter().enumerate().filter_map(|(i, a)| match a {
        ArgValue::Error(e) => Some((i, std::borrow::Cow::Borrowed(e.as_str()))),
        _ => None,
    });
    let str_errors = h
        .strings
        .iter()
        .filter_map(|s| s.error().map(|e| (s.arg, std::borrow::Cow::Owned(e))));
    for (i, why) in arg_errors.chain(str_errors) {
        w.write_all(if first { b",\"errors\":[" } else { b"," })?;
        first = false;
        write!(w, "{{\"arg\":{i},\"reason\":")?;
        json_str(w, &why)?;
        w.write_all(b"}")?;
    }
    if !first {
        w.write_all(b"]")?;
    }
    w.write_all(b"}\n")
}

fn hit_line(w: &mut dyn Write, h: &Hit) -> io::Result<()> {
    write!(
        w,
        "{}/{} {}:{} ip={:#x}",
        h.pid, h.tid, h.provider, h.name, h.ip
    )?;
    for (i, a) in h.args.iter().enumerate() {
        match a {
            ArgValue::Int(v) => write!(w, " arg{i}={v}")?,
            ArgValue::Float(f) => write!(w, " arg{i}={f}")?,
            ArgValue::Error(e) => write!(w, " arg{i}=<{e}>")?,
        }
        if let Some(s) = h.strings.iter().find(|s| s.arg == i) {
            match s.error() {
                Some(why) => write!(w, " <{why}>")?,
                None if s.cut => write!(w, " {:?}...", s.text())?,
                None => write!(w, " {:?}", s.text())?,
            }
        }
    }
    writeln!(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use usdtkit::recorder::HitString;

    fn hit() -> Hit {
        Hit {
            provider: Arc::from("p"),
            name: Arc::from("n"),
            pid: 5,
            tid: 6,
            ip: 0x10,
            args: vec![
                ArgValue::Int(-1),
                ArgValue::Int(0x7000),
                ArgValue::Error("read failed: x".into()),
                ArgValue::Int(0x8000),
            ],
            strings: vec![
                HitString {
                    arg: 1,
                    bytes: b"abc".to_vec(),
                    cut: true,
                    errno: None,
                },
                HitString {
                    arg: 3,
                    bytes: Vec::new(),
                    cut: false,
                    errno: Some(14),
                },
            ],
            ..Hit::default()
        }
    }

    #[test]
    fn text_marks_cut_strings_and_errors() {
        let mut b = Vec::new();
        hit_line(&mut b, &hit()).unwrap();
        let s = String::from_utf8(b).unwrap();
        assert!(s.contains(r#"arg1=28672 "abc"..."#), "{s}");
        assert!(s.contains("arg2=<read failed: x>"), "{s}");
        assert!(
            s.contains("arg3=32768 <string read failed: Bad address"),
            "{s}"
        );
    }

    #[test]
    fn json_marks_cut_strings_and_errors() {
        let mut b = Vec::new();
        hit_json(&mut b, &hit()).unwrap();
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["provider"], "p");
        assert_eq!(v["args"], json!([-1, 0x7000, null, 0x8000]));
        assert_eq!(v["strings"]["1"], "abc");
        assert_eq!(v["cut"], json!([1]));
        assert_eq!(v["args"][2], Value::Null);
        let errs = v["errors"].as_array().unwrap();
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0]["reason"], "read failed: x");
        assert_eq!(errs[1]["arg"], 3);
        // Quotes and control characters are escaped.
        let mut h = hit();
        h.strings[0].bytes = b"a\"b\n".to_vec();
        let mut b = Vec::new();
        hit_json(&mut b, &h).unwrap();
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["strings"]["1"], "a\"b\n");
    }
}
