//! Findings a maintainer can act on: the report's non-passing results grouped per
//! implementation (each version its own), outcome and encoding class (and, for refusals, the
//! peer's words), each with a minimal reproducer: the note's argument text, the source line
//! that produced it, expected and observed values, the peer's words, and one command that
//! reruns just that probe with just that implementation.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::Path;

use serde::Serialize;

use super::compare::Outcome;
use super::report::{Report, Row};
use crate::gen::Manifest;

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Read a value that is not the one passed: the worst.
    Wrong,
    /// Refused a whole run (script, process) because of one probe or argument.
    RefusesRun,
    /// Did not report hits that happened.
    Missed,
    /// Said it cannot read the argument.
    Refused,
    /// The adapter (or the peer, mid-run) failed.
    Error,
}

impl Kind {
    fn title(self) -> &'static str {
        match self {
            Kind::Wrong => "reads wrong values",
            Kind::RefusesRun => "refuses a whole run because of one probe or argument",
            Kind::Missed => "misses hits",
            Kind::Refused => "refuses",
            Kind::Error => "fails",
        }
    }
}

/// One example of a finding.
#[derive(Debug, Clone, Serialize)]
pub struct Example {
    /// Fixture.
    pub fixture: String,
    /// `provider:name`.
    pub probe: String,
    /// Argument index.
    pub arg: usize,
    /// The argument's text in the note.
    pub text: String,
    /// `file:line: code` of the probe in the fixture's sources, when found.
    pub source: Option<String>,
    /// Expected value.
    pub expected: String,
    /// Observed value.
    pub observed: String,
    /// The peer's words.
    pub words: String,
    /// A command rerunning just this probe with just this implementation.
    pub command: String,
}

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Stable within one report: `F1`, `F2`...
    pub id: String,
    /// Implementation column (tool and version).
    pub implementation: String,
    /// What happened.
    pub kind: Kind,
    /// The encoding class: architecture, location kind and variants, size, sign, float,
    /// semaphore and layout. For refusals and errors (grouped by the peer's words), the
    /// classes every affected argument shares.
    pub class: Vec<String>,
    /// Every class some affected argument has (what the matrix cells link by).
    pub classes_seen: Vec<String>,
    /// The peer's words, with numbers and paths generalised (refusals and errors).
    pub words: String,
    /// Arguments affected.
    pub arguments: usize,
    /// Fixtures where it happens.
    pub fixtures: Vec<String>,
    /// The first example.
    pub example: Example,
}

/// Classes that describe the encoding (not the build that produced it).
fn encoding_class(classes: &[String]) -> Vec<String> {
    let mut v: Vec<String> = classes
        .iter()
        .filter(|c| {
            !(c.starts_with("compiler:")
                || c.starts_with("flags:")
                || *c == "multi-site"
                || *c == "shared-library")
        })
        .cloned()
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Words with what varies between occurrences (numbers, argument numbers, paths) replaced,
/// so that one cause is one finding: `couldn't get argument 3 for /x/prog:p:n` and
/// `... 4 for /y/prog:p:m` both read `couldn't get argument N for PATH`.
pub fn generalise(words: &str) -> String {
    let mut out = String::new();
    for tok in words.split_inclusive(char::is_whitespace) {
        let t = tok.trim_end();
        let ws = &tok[t.len()..];
        let lead = t.len() - t.trim_start_matches(['\'', '"', '`', '(', '[']).len();
        let core = t[lead..].trim_end_matches(['\'', '"', '`', ')', ']', ',', ';', ':', '.']);
        let tail = &t[lead + core.len()..];
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let g = if core.contains('/') {
            "PATH".to_string()
        } else if digits(core.trim_start_matches(['-', '+', '$', '#']))
            || core
                .strip_prefix("0x")
                .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            "N".to_string()
        } else if core.strip_prefix("arg").is_some_and(digits) {
            "argN".to_string()
        } else if core.starts_with('_') {
            // Generated names (`_bpf_readarg_probe_21_3`): their numbers too.
            let mut g = String::new();
            let mut prev = ' ';
            for c in core.chars() {
                if c.is_ascii_digit() && (prev == '_' || prev == 'N') {
                    if prev != 'N' {
                        g.push('N');
                    }
                    prev = 'N';
                    continue;
                }
                g.push(c);
                prev = c;
            }
            g
        } else {
            core.to_string()
        };
        out.push_str(&t[..lead]);
        out.push_str(&g);
        out.push_str(tail);
        out.push_str(ws);
    }
    out
}

/// At most `n` characters of `s`, marked when cut.
fn cut(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}... ({} more characters)", &s[..i], s.len() - i),
        None => s.to_string(),
    }
}

/// The line of `fx`'s sources that fires `provider:name`.
fn source_line(dir: &Path, fx: &crate::gen::Fixture, probe: &str) -> Option<String> {
    let (provider, name) = probe.split_once(':')?;
    let is_tok = |c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-');
    for src in &fx.sources {
        let Ok(text) = std::fs::read_to_string(dir.join(src)) else {
            continue;
        };
        let found = text.lines().enumerate().find(|(_, l)| {
            let toks: Vec<&str> = l.split(is_tok).collect();
            toks.contains(&provider) && toks.contains(&name)
        });
        if let Some((n, l)) = found {
            return Some(format!("{}:{}: {}", src.display(), n + 1, l.trim()));
        }
    }
    None
}

fn value<T: std::fmt::Debug>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "none".into(), |v| format!("{v:?}"))
}

/// The reproducer command for one probe of one fixture with one implementation.
pub fn command(corpus: &Path, implementation: &str, fixture: &str, probe: &str) -> String {
    format!(
        "usdtkit check --corpus {} --impl '{implementation}' --fixture {fixture} --probe '{probe}' -v",
        corpus.display()
    )
}

/// Every finding of `report`.
pub fn findings(report: &Report, manifest: &Manifest) -> Vec<Finding> {
    let ids: BTreeMap<&str, &str> = report
        .implementations
        .iter()
        .map(|i| (i.name.as_str(), i.id.as_str()))
        .collect();
    let fixture = |name: &str| manifest.fixtures.iter().find(|f| f.name == name);
    let text_of = |r: &Row| -> String {
        let Some(fx) = fixture(&r.fixture) else {
            return String::new();
        };
        let Some(h) = fx.hits.get(r.result.hit) else {
            return String::new();
        };
        crate::MappedFile::open(report.corpus_dir.join(&h.object))
            .ok()
            .and_then(|m| {
                let u = m.usdt().ok()?;
                let (p, n) = r.result.probe.split_once(':')?;
                let probe = u.probe(p, n)?;
                probe
                    .sites
                    .iter()
                    .find_map(|s| s.args.get(r.result.arg).map(|a| a.text.to_string()))
            })
            .unwrap_or_default()
    };
    let example = |r: &Row, words: &str| -> Example {
        Example {
            fixture: r.fixture.clone(),
            probe: r.result.probe.clone(),
            arg: r.result.arg,
            text: text_of(r),
            source: fixture(&r.fixture)
                .and_then(|fx| source_line(&report.corpus_dir, fx, &r.result.probe)),
            expected: value(&r.result.expected),
            observed: value(&r.result.observed),
            words: cut(words, 600),
            command: command(
                &report.corpus_dir,
                ids.get(r.implementation.as_str())
                    .copied()
                    .unwrap_or(&r.implementation),
                &r.fixture,
                &r.result.probe,
            ),
        }
    };
    // Wrong values and misses are grouped by encoding class; refusals and errors by the
    // peer's words (one cause, whatever the encoding), keeping the classes they share.
    type Key = (String, Kind, Vec<String>, String);
    struct Group {
        n: usize,
        fixtures: BTreeSet<String>,
        shared: Option<BTreeSet<String>>,
        seen: BTreeSet<String>,
        example: Example,
    }
    let mut groups: BTreeMap<Key, Group> = BTreeMap::new();
    let mut add = |key: Key, classes: &[String], fixture: &str, ex: &dyn Fn() -> Example| {
        let g = groups.entry(key).or_insert_with(|| Group {
            n: 0,
            fixtures: BTreeSet::new(),
            shared: None,
            seen: BTreeSet::new(),
            example: ex(),
        });
        g.n += 1;
        g.fixtures.insert(fixture.to_string());
        let mine: BTreeSet<String> = classes.iter().cloned().collect();
        g.shared = Some(match g.shared.take() {
            None => mine.clone(),
            Some(s) => s.intersection(&mine).cloned().collect(),
        });
        g.seen.extend(mine);
    };
    for r in &report.rows {
        let kind = match r.result.outcome {
            Outcome::Pass => continue,
            Outcome::Wrong => Kind::Wrong,
            Outcome::Missed => Kind::Missed,
            Outcome::Refused => Kind::Refused,
            Outcome::Error => Kind::Error,
        };
        let class = encoding_class(&r.classes);
        let key = match kind {
            Kind::Wrong | Kind::Missed => {
                (r.implementation.clone(), kind, class.clone(), String::new())
            }
            _ => (
                r.implementation.clone(),
                kind,
                Vec::new(),
                generalise(&r.result.detail),
            ),
        };
        add(key, &class, &r.fixture, &|| example(r, &r.result.detail));
    }
    for (imp, fx, b) in &report.blames {
        // The culprit's own row carries its classes.
        let row = report.rows.iter().find(|r| {
            &r.implementation == imp
                && &r.fixture == fx
                && r.result.probe == b.probe
                && b.arg.is_none_or(|a| a == r.result.arg)
        });
        let classes = row.map(|r| encoding_class(&r.classes)).unwrap_or_default();
        let key = (
            imp.clone(),
            Kind::RefusesRun,
            Vec::new(),
            generalise(&b.own),
        );
        let words = format!(
            "its words on this {}: {} | on the run of {} probes and arguments that held it: {}",
            if b.arg.is_some() { "argument" } else { "probe" },
            b.own,
            b.run_units,
            cut(&b.whole, 300)
        );
        add(key, &classes, fx, &|| {
            let mut e = match row {
                Some(r) => example(r, &words),
                None => Example {
                    fixture: fx.clone(),
                    probe: b.probe.clone(),
                    arg: b.arg.unwrap_or(0),
                    text: b.text.clone(),
                    source: None,
                    expected: String::new(),
                    observed: String::new(),
                    words: words.clone(),
                    command: String::new(),
                },
            };
            e.text.clone_from(&b.text);
            e
        });
    }
    let mut v: Vec<Finding> = groups
        .into_iter()
        .map(|((imp, kind, _, words), g)| Finding {
            id: String::new(),
            implementation: imp,
            kind,
            class: g.shared.unwrap_or_default().into_iter().collect(),
            classes_seen: g.seen.into_iter().collect(),
            words,
            arguments: g.n,
            fixtures: g.fixtures.into_iter().collect(),
            example: g.example,
        })
        .collect();
    v.sort_by(|a, b| {
        (&a.implementation, a.kind, std::cmp::Reverse(a.arguments)).cmp(&(
            &b.implementation,
            b.kind,
            std::cmp::Reverse(b.arguments),
        ))
    });
    for (i, f) in v.iter_mut().enumerate() {
        f.id = format!("F{}", i + 1);
    }
    v
}

/// `findings.md`.
pub fn markdown(report: &Report, findings: &[Finding]) -> String {
    let mut s = String::from("# USDT conformance findings\n\n");
    let _ = writeln!(
        s,
        "Corpus {}; Linux {}; {}. One entry per implementation, outcome and encoding class \
         (refusals also per the peer's words); each with one example and a command that reruns \
         just that probe with just that implementation.\n",
        report.corpus, report.kernel, report.machine
    );
    let mut last = ("", None);
    for f in findings {
        if last.0 != f.implementation {
            let _ = writeln!(s, "## {}\n", f.implementation);
            last = (&f.implementation, None);
        }
        if last.1 != Some(f.kind) {
            let _ = writeln!(s, "### {}\n", f.kind.title());
            last.1 = Some(f.kind);
        }
        let e = &f.example;
        let _ = writeln!(
            s,
            "- **{}** `{}`: {} argument{} in {} fixture{}{}",
            f.id,
            f.class.join(" "),
            f.arguments,
            if f.arguments == 1 { "" } else { "s" },
            f.fixtures.len(),
            if f.fixtures.len() == 1 { "" } else { "s" },
            if f.words.is_empty() {
                String::new()
            } else {
                format!(": {}", f.words)
            }
        );
        let _ = writeln!(
            s,
            "  - {} `{}` arg {} `{}`{}",
            e.fixture,
            e.probe,
            e.arg,
            e.text,
            e.source
                .as_ref()
                .map(|l| format!(" (`{l}`)"))
                .unwrap_or_default()
        );
        if matches!(f.kind, Kind::Wrong | Kind::Missed) {
            let _ = writeln!(s, "  - expected {}, observed {}", e.expected, e.observed);
        }
        if !e.words.is_empty() {
            let _ = writeln!(s, "  - words: {}", e.words);
        }
        if !e.command.is_empty() {
            let _ = writeln!(s, "  - `{}`", e.command);
        }
    }
    if findings.is_empty() {
        s.push_str("No findings: every argument of every implementation passed.\n");
    }
    // What adapters noticed beyond values (perf's event placement and printing, libbpf's
    // spec entries, usdtkit's semaphore moves), one line per kind of note.
    let mut notes: BTreeMap<(&str, String), (usize, &str, &str)> = BTreeMap::new();
    for (imp, fx, n) in &report.notes {
        let e = notes
            .entry((imp.as_str(), generalise(n)))
            .or_insert((0, fx, n));
        e.0 += 1;
    }
    if !notes.is_empty() {
        s.push_str("\n## Other observations\n\n");
        for ((imp, _), (count, fx, n)) in notes {
            let _ = writeln!(
                s,
                "- {imp}: {n} ({fx}{})",
                if count > 1 {
                    format!(", and {} more alike", count - 1)
                } else {
                    String::new()
                }
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::generalise;

    #[test]
    fn words_generalise_to_one_cause() {
        assert_eq!(
            generalise("ERROR: couldn't get argument 3 for /proc/12/root/x/prog:p:n"),
            "ERROR: couldn't get argument N for PATH"
        );
        assert_eq!(
            generalise("x86_64 doesn't support arg6"),
            "x86_64 doesn't support argN"
        );
        assert_eq!(
            generalise("error: call to undeclared function '_bpf_readarg_probe_21_3';"),
            "error: call to undeclared function '_bpf_readarg_probe_N_N';"
        );
        assert_eq!(generalise("to PID: 24841, at 0x1f"), "to PID: N, at N");
    }
}
