//! The conformance report: every judged argument with its encoding classes, and the matrix
//! of encoding class by implementation, as `report.json`, `report.md` and a self-contained
//! `report.html`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write;
use std::path::Path;

use serde::Serialize;

use super::compare::{ArgResult, Outcome};
use crate::error::{Error, Result};
use crate::gen::{Fixture, Manifest};
use crate::probe::MappedFile;

/// One implementation's identity.
#[derive(Debug, Clone, Serialize)]
pub struct ImplInfo {
    /// Its column: the tool and its version (`bpftrace 0.23`).
    pub name: String,
    /// Its name on the command line (`bpftrace@debian13`).
    pub id: String,
    /// Version, when it runs here.
    pub version: Option<String>,
    /// Why it does not run here.
    pub unavailable: Option<String>,
}

/// One judged argument.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Implementation.
    pub implementation: String,
    /// Fixture.
    pub fixture: String,
    /// The judgement.
    #[serde(flatten)]
    pub result: ArgResult,
    /// Encoding classes of the argument (location kind, size, sign, float, compiler, flags,
    /// semaphore, multi-site, shared library...).
    pub classes: Vec<String>,
}

/// Runs and time one implementation took on one fixture.
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    /// Implementation column.
    pub implementation: String,
    /// Fixture.
    pub fixture: String,
    /// Runs made (more than one when refusals were narrowed).
    pub runs: usize,
    /// Wall time.
    pub seconds: f64,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `uname -r`.
    pub kernel: String,
    /// Machine description.
    pub machine: String,
    /// Corpus profile and seed.
    pub corpus: String,
    /// Implementations, installed or not.
    pub implementations: Vec<ImplInfo>,
    /// Every judged argument.
    pub rows: Vec<Row>,
    /// Findings beyond values: (implementation, fixture, note).
    pub notes: Vec<(String, String, String)>,
    /// Probes and arguments that made a peer refuse a larger run as a whole:
    /// (implementation, fixture, what).
    pub blames: Vec<(String, String, super::isolate::Blame)>,
    /// Runs made in all.
    pub runs: usize,
    /// Runs and time spent per implementation and fixture.
    pub timings: Vec<Timing>,
    /// The corpus directory (absolute).
    pub corpus_dir: std::path::PathBuf,
}

/// Encoding classes of every (probe, argument) of a fixture, from usdtkit's decoding of its
/// notes (first site of the probe with the argument), plus the fixture's build.
pub fn classes(dir: &Path, fx: &Fixture) -> HashMap<(String, usize), Vec<String>> {
    let mut out = HashMap::new();
    let build: Vec<String> = std::iter::once(format!("compiler:{}", fx.compiler))
        .chain(fx.flags.iter().map(|f| format!("flags:{f}")))
        .chain(std::iter::once(format!("arch:{}", fx.arch)))
        .chain(fx.emitter.iter().map(|e| format!("emitter:{e}")))
        .chain(fx.linker.iter().map(|l| format!("linker:{l}")))
        .collect();
    for h in &fx.hits {
        let key = format!("{}:{}", h.provider, h.name);
        if out.contains_key(&(key.clone(), 0)) {
            continue;
        }
        let Ok(mapped) = MappedFile::open(dir.join(&h.object)) else {
            continue;
        };
        let Ok(usdt) = mapped.usdt() else { continue };
        let Some(probe) = usdt.probe(&h.provider, &h.name) else {
            continue;
        };
        let mut common = build.clone();
        if h.semaphore {
            common.push("semaphore".into());
        }
        let aliased = usdt.semaphore_aliases();
        if probe.sites.iter().any(|s| {
            s.semaphore
                .is_some_and(|a| aliased.iter().any(|x| x.semaphore == a))
        }) {
            common.push("semaphore:relro-page".into());
        }
        if probe.sites.iter().any(|s| s.semaphore.is_some()) {
            let mut sems: Vec<u64> = probe.sites.iter().filter_map(|s| s.semaphore).collect();
            sems.sort_unstable();
            sems.dedup();
            if sems.len() > 1 {
                common.push("semaphore:per-site".into());
            }
        }
        let bytes = mapped.bytes();
        let at = |s: &crate::Site<'_>, code: &[u8]| {
            bytes
                .get(s.file_offset as usize..)
                .is_some_and(|b| b.starts_with(code))
        };
        if let Some(form) = probe.sites.iter().find_map(|s| {
            if at(s, &crate::attach::plan::NOP_NOP5) {
                Some("site:nop+nop5")
            } else if at(s, &NOP_NOP10) {
                Some("site:nop+nop10")
            } else {
                None
            }
        }) {
            common.push(form.into());
        }
        if probe.sites.len() > 1 {
            common.push("multi-site".into());
        }
        if fx.libraries.contains(&h.object) {
            common.push("shared-library".into());
        }
        let n = probe
            .sites
            .iter()
            .map(|s| s.args.len())
            .max()
            .unwrap_or(0)
            .max(1);
        for i in 0..n {
            let mut c = common.clone();
            let arg = probe.sites.iter().find_map(|s| s.args.get(i));
            match arg.map(|a| (&a.decoded, a.text)) {
                Some((Ok(spec), text)) => {
                    let mut f = BTreeMap::new();
                    crate::gen::stats::arg_features(&mut f, text, spec);
                    c.extend(
                        f.into_keys()
                            .filter(|k| !k.starts_with("reg:") || k == "reg:high-byte"),
                    );
                }
                Some((Err(_), _)) => c.push("kind:undecodable".into()),
                None => c.push("no-arguments".into()),
            }
            out.insert((key.clone(), i), c);
        }
    }
    out
}

/// The site the current libbpf/usdt `usdt.h` writes on x86-64: `nop; nop10`.
const NOP_NOP10: [u8; 11] = [0x90, 0x66, 0x2e, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0];

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores")
}

impl Report {
    /// An empty report for `manifest`.
    pub fn new(manifest: &Manifest, implementations: Vec<ImplInfo>) -> Self {
        Report {
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            machine: machine(),
            corpus: format!("{} (seed {})", manifest.profile, manifest.seed),
            implementations,
            rows: Vec::new(),
            notes: Vec::new(),
            blames: Vec::new(),
            runs: 0,
            timings: Vec::new(),
            corpus_dir: std::path::PathBuf::new(),
        }
    }

    fn impl_names(&self) -> Vec<String> {
        self.implementations
            .iter()
            .filter(|i| i.version.is_some())
            .map(|i| i.name.clone())
            .collect()
    }

    /// class → implementation → outcome → count.
    pub fn matrix(&self) -> BTreeMap<String, BTreeMap<String, BTreeMap<Outcome, usize>>> {
        let mut m: BTreeMap<String, BTreeMap<String, BTreeMap<Outcome, usize>>> = BTreeMap::new();
        for r in &self.rows {
            for c in r.classes.iter().map(String::as_str).chain(["all"]) {
                *m.entry(c.to_string())
                    .or_default()
                    .entry(r.implementation.clone())
                    .or_default()
                    .entry(r.result.outcome)
                    .or_default() += 1;
            }
        }
        m
    }

    /// Write report.json, report.md, report.html, findings.md and findings.json into `dir`
    /// (`manifest`: the corpus's, for the findings' source lines).
    pub fn write(&self, dir: &Path, manifest: &Manifest) -> Result<()> {
        let findings = super::findings::findings(self, manifest);
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let put = |name: &str, text: String| {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|source| Error::Io { path, source })
        };
        put(
            "report.json",
            serde_json::to_string_pretty(self).expect("json"),
        )?;
        put("report.md", self.markdown())?;
        put("report.html", self.html(&findings))?;
        put(
            "findings.json",
            serde_json::to_string_pretty(&findings).expect("json"),
        )?;
        put("findings.md", super::findings::markdown(self, &findings))
    }

    fn cell(counts: Option<&BTreeMap<Outcome, usize>>) -> String {
        let Some(c) = counts else {
            return "-".into();
        };
        Outcome::ALL
            .iter()
            .filter_map(|o| c.get(o).map(|n| format!("{} {n}", o.name())))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The Markdown report.
    pub fn markdown(&self) -> String {
        let names = self.impl_names();
        let mut s = String::new();
        let _ = writeln!(s, "# USDT conformance report\n");
        let _ = writeln!(
            s,
            "Corpus {}; Linux {}; {}.\n",
            self.corpus, self.kernel, self.machine
        );
        s.push_str("| implementation | version |\n|---|---|\n");
        for i in &self.implementations {
            let v = i.version.clone().unwrap_or_else(|| {
                format!("not run: {}", i.unavailable.clone().unwrap_or_default())
            });
            let _ = writeln!(s, "| {} | {} |", i.name, v);
        }
        s.push_str(
            "\nOutcomes per argument: pass (right value), wrong (a value that is not the \
             expected one), refused (said it cannot read it), missed (hit not observed), \
             error (the adapter failed). Rows are encoding classes; an argument counts in \
             every class it has.\n\n",
        );
        let _ = writeln!(s, "| class | {} |", names.join(" | "));
        let _ = writeln!(s, "|---|{}", "---|".repeat(names.len()));
        for (class, per) in self.matrix() {
            let cells: Vec<String> = names.iter().map(|n| Self::cell(per.get(n))).collect();
            let _ = writeln!(s, "| {class} | {} |", cells.join(" | "));
        }
        let mut per: BTreeMap<&str, (usize, f64)> = BTreeMap::new();
        for t in &self.timings {
            let e = per.entry(&t.implementation).or_default();
            e.0 += t.runs;
            e.1 += t.seconds;
        }
        s.push_str("\n| implementation | runs | seconds |\n|---|---|---|\n");
        for (n, (r, t)) in &per {
            let _ = writeln!(s, "| {n} | {r} | {t:.1} |");
        }
        let wrong: Vec<&Row> = self
            .rows
            .iter()
            .filter(|r| r.result.outcome == Outcome::Wrong)
            .collect();
        let _ = writeln!(s, "\n## Wrong values ({})\n", wrong.len());
        for r in wrong.iter().take(500) {
            let _ = writeln!(
                s,
                "- {} {} hit {} {} arg {}: expected {:?}, observed {:?}",
                r.implementation,
                r.fixture,
                r.result.hit,
                r.result.probe,
                r.result.arg,
                r.result.expected,
                r.result.observed
            );
        }
        if !self.notes.is_empty() {
            let _ = writeln!(s, "\n## Other findings\n");
            for (i, f, n) in &self.notes {
                let _ = writeln!(s, "- {i} {f}: {n}");
            }
        }
        s
    }

    /// The self-contained HTML report: the matrix, each cell linking to its findings, then
    /// the findings, then every argument not passing.
    pub fn html(&self, findings: &[super::findings::Finding]) -> String {
        let esc = |t: &str| {
            t.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        let names = self.impl_names();
        let mut s = String::from(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>USDT conformance</title><style>\
             body{font:14px sans-serif;margin:2em}table{border-collapse:collapse}\
             td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}\
             .pass{background:#cfc}.wrong{background:#f88}.refused{background:#fd9}\
             .missed{background:#ddd}.error{background:#c9f}</style></head><body>",
        );
        let _ = write!(
            s,
            "<h1>USDT conformance</h1><p>Corpus {}; Linux {}; {}.</p><ul>",
            esc(&self.corpus),
            esc(&self.kernel),
            esc(&self.machine)
        );
        for i in &self.implementations {
            let v = i.version.clone().unwrap_or_else(|| {
                format!("not run: {}", i.unavailable.clone().unwrap_or_default())
            });
            let _ = write!(s, "<li><b>{}</b> {}</li>", esc(&i.name), esc(&v));
        }
        s.push_str("</ul><table><tr><th>class</th>");
        for n in &names {
            let _ = write!(s, "<th>{}</th>", esc(n));
        }
        s.push_str("</tr>");
        for (class, per) in self.matrix() {
            let _ = write!(s, "<tr><td>{}</td>", esc(&class));
            for n in &names {
                let c = per.get(n);
                let worst = c
                    .and_then(|c| {
                        [
                            Outcome::Wrong,
                            Outcome::Error,
                            Outcome::Missed,
                            Outcome::Refused,
                            Outcome::Pass,
                        ]
                        .into_iter()
                        .find(|o| c.contains_key(o))
                    })
                    .map_or("", |o| o.name());
                let here: Vec<&super::findings::Finding> = findings
                    .iter()
                    .filter(|f| {
                        &f.implementation == n
                            && (class == "all" || f.classes_seen.contains(&class))
                    })
                    .collect();
                let link = if here.is_empty() {
                    String::new()
                } else {
                    let ids: Vec<String> = here
                        .iter()
                        .take(12)
                        .map(|f| format!("<a href=\"#{0}\">{0}</a>", f.id))
                        .collect();
                    format!(
                        "<br><small>{}{}</small>",
                        ids.join(" "),
                        if here.len() > 12 { " &hellip;" } else { "" }
                    )
                };
                let _ = write!(
                    s,
                    "<td class=\"{worst}\">{}{link}</td>",
                    esc(&Self::cell(c))
                );
            }
            s.push_str("</tr>");
        }
        s.push_str(
            "</table><h2>Findings</h2><table><tr><th>id</th><th>implementation</th>\
             <th>what</th><th>class</th><th>arguments</th><th>example</th></tr>",
        );
        for f in findings {
            let e = &f.example;
            let _ = write!(
                s,
                "<tr id=\"{}\"><td>{}</td><td>{}</td><td>{:?}{}</td><td>{}</td><td>{} in {} fixtures</td>\
                 <td>{} <code>{}</code> arg {} <code>{}</code>{}<br>expected {}, observed {}<br>{}<br><code>{}</code></td></tr>",
                esc(&f.id),
                esc(&f.id),
                esc(&f.implementation),
                f.kind,
                if f.words.is_empty() { String::new() } else { format!(": {}", esc(&f.words)) },
                esc(&f.class.join(" ")),
                f.arguments,
                f.fixtures.len(),
                esc(&e.fixture),
                esc(&e.probe),
                e.arg,
                esc(&e.text),
                e.source.as_ref().map(|l| format!(" <code>{}</code>", esc(l))).unwrap_or_default(),
                esc(&e.expected),
                esc(&e.observed),
                esc(&e.words),
                esc(&e.command)
            );
        }
        s.push_str("</table>");
        for n in &names {
            let cases: Vec<&Row> = self
                .rows
                .iter()
                .filter(|r| &r.implementation == n && r.result.outcome != Outcome::Pass)
                .collect();
            let _ = write!(
                s,
                "<h2 id=\"wrong-{0}\">{0}: {1} arguments not passing</h2><table>\
                 <tr><th>outcome</th><th>fixture</th><th>hit</th><th>probe</th><th>arg</th>\
                 <th>expected</th><th>observed</th><th>detail</th></tr>",
                esc(n),
                cases.len()
            );
            let mut shown = BTreeSet::new();
            for r in cases
                .iter()
                .filter(|r| r.result.outcome == Outcome::Wrong)
                .chain(cases.iter())
                .take(2000)
            {
                if !shown.insert(std::ptr::from_ref::<Row>(*r) as usize) {
                    continue;
                }
                let _ = write!(
                    s,
                    "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    r.result.outcome.name(),
                    r.result.outcome.name(),
                    esc(&r.fixture),
                    r.result.hit,
                    esc(&r.result.probe),
                    r.result.arg,
                    esc(&format!("{:?}", r.result.expected)),
                    esc(&format!("{:?}", r.result.observed)),
                    esc(&r.result.detail)
                );
            }
            s.push_str("</table>");
        }
        if !self.notes.is_empty() {
            s.push_str("<h2>Other findings</h2><ul>");
            for (i, f, n) in &self.notes {
                let _ = write!(s, "<li>{} {}: {}</li>", esc(i), esc(f), esc(n));
            }
            s.push_str("</ul>");
        }
        s.push_str("</body></html>\n");
        s
    }
}
