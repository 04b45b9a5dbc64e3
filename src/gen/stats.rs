//! `usdtkit gen --stats`: which encodings a built corpus contains, counted by decoding its
//! binaries with usdtkit (so the counts describe what the compilers really emitted).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde::Serialize;

use super::manifest::Manifest;
use crate::arg::{Location, SymbolLocation};
use crate::error::Result;
use crate::probe::{MappedFile, Site};

/// Counts of one fixture.
#[derive(Debug, Clone, Serialize)]
pub struct FixtureStats {
    /// Fixture name.
    pub name: String,
    /// Compiler.
    pub compiler: String,
    /// Flags.
    pub flags: Vec<String>,
    /// Sites in the executable and its libraries.
    pub sites: usize,
    /// Arguments at those sites.
    pub args: usize,
    /// Arguments usdtkit could not decode.
    pub undecoded: usize,
    /// Feature counts for this fixture.
    pub features: BTreeMap<String, usize>,
}

/// Counts of a whole corpus.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// Feature name to number of occurrences (arguments, sites or probes, per feature).
    pub features: BTreeMap<String, usize>,
    /// Per fixture.
    pub fixtures: Vec<FixtureStats>,
}

/// The forms the default profile must contain (issue 3's list), as feature names.
pub const REQUIRED: &[&str] = &[
    "kind:const",
    "kind:reg",
    "kind:deref",
    "kind:sib",
    "kind:symbol",
    "kind:fpreg",
    "size:1",
    "size:2",
    "size:4",
    "size:8",
    "size:16",
    "size:24",
    "size:48",
    "signed",
    "unsigned",
    "float",
    "float:in-gpr",
    "reg:high-byte",
    "reg:r12",
    "symbol:sym(%rip)",
    "symbol:sym+N(%rip)",
    "symbol:N+sym(%rip)",
    "symbol:sym-N(%rip)",
    "symbol:dotted",
    "symbol:index-without-base",
    "sib:without-base",
    "sib:without-scale",
    "disp:summed",
    "prefix:none",
    "imm:hex",
    "semaphore:shared",
    "semaphore:per-site",
    "semaphore:in-executable",
    "semaphore:in-library",
    "probe:multi-site",
    "probe:mixed-arg-counts",
    "probe:in-library",
    "probe:exe-and-library",
    "name:hyphen",
    "name:double-underscore",
    "args:0",
    "args:1",
    "args:2",
    "args:3",
    "args:4",
    "args:5",
    "args:6",
    "args:7",
    "args:8",
    "args:9",
    "args:10",
    "args:11",
    "args:12",
    "compiler:gcc",
    "compiler:clang",
    "flags:-O0",
    "flags:-O1",
    "flags:-O2",
    "flags:-O3",
    "flags:-Os",
    "flags:-pie",
    "flags:-no-pie",
    "arch:i386",
    "arch:x86_64",
];

fn bump(m: &mut BTreeMap<String, usize>, k: impl Into<String>) {
    *m.entry(k.into()).or_default() += 1;
}

/// Count the encoding features of one decoded argument into `f`.
pub(crate) fn arg_features(f: &mut BTreeMap<String, usize>, text: &str, spec: &crate::ArgSpec) {
    let loc = &spec.location;
    bump(f, format!("kind:{}", loc.kind()));
    bump(f, format!("size:{}", spec.size));
    bump(f, if spec.signed { "signed" } else { "unsigned" });
    if spec.float {
        bump(f, "float");
        if matches!(loc, Location::Reg { .. } | Location::Deref { .. }) {
            bump(f, "float:in-gpr");
        }
    }
    let operand = text.split_once('@').map_or_else(
        || {
            bump(f, "prefix:none");
            text
        },
        |(_, o)| o,
    );
    if operand.starts_with("$0x") || operand.starts_with("$-0x") {
        bump(f, "imm:hex");
    }
    let disp = operand.split('(').next().unwrap_or_default();
    match loc {
        Location::Reg { reg, shift } => {
            bump(f, format!("reg:{}", reg.name()));
            if *shift == 8 {
                bump(f, "reg:high-byte");
            }
        }
        Location::Sib {
            base,
            scale,
            extend,
            ..
        } => {
            if base.is_none() {
                bump(f, "sib:without-base");
            }
            if let Some(e) = extend.name() {
                bump(f, format!("sib:index-{e}"));
            }
            let last = operand.trim_end_matches(')').rsplit(',').next();
            if last.is_none_or(|s| s.parse::<u8>().is_err()) {
                bump(f, "sib:without-scale");
            }
            bump(f, format!("sib:scale-{scale}"));
        }
        Location::Symbol(s) => {
            let SymbolLocation {
                symbol,
                base,
                index,
                ..
            } = &**s;
            let rip = base.is_some_and(|b| b.def().class == crate::arg::RegClass::Ip);
            let form = symbol_form(disp, symbol);
            bump(
                f,
                format!("symbol:{form}{}", if rip { "(%rip)" } else { "" }),
            );
            if symbol.contains('.') {
                bump(f, "symbol:dotted");
            }
            if base.is_none() && index.is_some() {
                bump(f, "symbol:index-without-base");
            }
        }
        _ => {}
    }
    if !matches!(loc, Location::Symbol(_)) && numeric_terms(disp) >= 2 {
        bump(f, "disp:summed");
    }
}

/// The `+`/`-` separated terms of a displacement, each with its sign.
fn terms(disp: &str) -> Vec<&str> {
    let mut v = Vec::new();
    let mut start = 0;
    for (i, c) in disp.char_indices() {
        if i > start && (c == '+' || c == '-') {
            v.push(&disp[start..i]);
            start = i;
        }
    }
    if start < disp.len() {
        v.push(&disp[start..]);
    }
    v
}

fn numeric_terms(disp: &str) -> usize {
    terms(disp)
        .iter()
        .filter(|t| {
            t.trim_start_matches(['+', '-'])
                .starts_with(|c: char| c.is_ascii_digit())
        })
        .count()
}

/// `sym`, `sym+N`, `N+sym` or `sym-N`, from the order the displacement was written in.
fn symbol_form(disp: &str, symbol: &str) -> &'static str {
    let t = terms(disp);
    match t.iter().position(|x| x.trim_start_matches('+') == symbol) {
        _ if t.len() == 1 => "sym",
        Some(0) if t[1].starts_with('-') => "sym-N",
        Some(0) => "sym+N",
        _ => "N+sym",
    }
}

fn site_features(f: &mut BTreeMap<String, usize>, site: &Site<'_>, undecoded: &mut usize) {
    bump(f, format!("args:{}", site.args.len()));
    for arg in &site.args {
        match &arg.decoded {
            Ok(spec) => arg_features(f, arg.text, spec),
            Err(_) => {
                *undecoded += 1;
                bump(f, "kind:error");
            }
        }
    }
}

/// Count the features of the corpus in `dir`.
pub fn collect(dir: &Path) -> Result<Stats> {
    let manifest = Manifest::load(dir)?;
    let mut total = BTreeMap::new();
    let mut fixtures = Vec::new();
    for fx in &manifest.fixtures {
        let mut f = BTreeMap::new();
        let (mut sites, mut args, mut undecoded) = (0, 0, 0);
        // provider:name -> which objects have it
        let mut where_: HashMap<(String, String), HashSet<bool>> = HashMap::new();
        let objects =
            std::iter::once((&fx.binary, false)).chain(fx.libraries.iter().map(|l| (l, true)));
        for (rel, is_lib) in objects {
            let mapped = MappedFile::open(dir.join(rel))?;
            let usdt = mapped.usdt()?;
            for probe in usdt.probes() {
                where_
                    .entry((probe.provider.into(), probe.name.into()))
                    .or_default()
                    .insert(is_lib);
                if is_lib {
                    bump(&mut f, "probe:in-library");
                }
                if probe.name.contains('-') {
                    bump(&mut f, "name:hyphen");
                }
                if probe.name.contains("__") {
                    bump(&mut f, "name:double-underscore");
                }
                if probe.sites.len() > 1 {
                    bump(&mut f, "probe:multi-site");
                    let counts: HashSet<usize> = probe.sites.iter().map(|s| s.args.len()).collect();
                    if counts.len() > 1 {
                        bump(&mut f, "probe:mixed-arg-counts");
                    }
                }
                let sems: HashSet<Option<u64>> = probe.sites.iter().map(|s| s.semaphore).collect();
                if sems.iter().any(Option::is_some) {
                    bump(
                        &mut f,
                        if is_lib {
                            "semaphore:in-library"
                        } else {
                            "semaphore:in-executable"
                        },
                    );
                    if probe.sites.len() > 1 {
                        bump(
                            &mut f,
                            if sems.len() == 1 {
                                "semaphore:shared"
                            } else {
                                "semaphore:per-site"
                            },
                        );
                    }
                }
                for site in &probe.sites {
                    sites += 1;
                    args += site.args.len();
                    site_features(&mut f, site, &mut undecoded);
                }
            }
        }
        for objs in where_.values() {
            if objs.len() == 2 {
                bump(&mut f, "probe:exe-and-library");
            }
        }
        let family = match fx.compiler.as_str() {
            "clang" | "clang++" => "clang",
            c if c.ends_with("gcc") || c.ends_with("g++") => "gcc",
            other => other,
        };
        bump(&mut f, format!("compiler:{family}"));
        for flag in &fx.flags {
            bump(&mut f, format!("flags:{flag}"));
        }
        bump(&mut f, format!("arch:{}", fx.arch));
        for (k, v) in &f {
            *total.entry(k.clone()).or_default() += v;
        }
        fixtures.push(FixtureStats {
            name: fx.name.clone(),
            compiler: fx.compiler.clone(),
            flags: fx.flags.clone(),
            sites,
            args,
            undecoded,
            features: f,
        });
    }
    Ok(Stats {
        features: total,
        fixtures,
    })
}

impl Stats {
    /// Required features the corpus lacks.
    pub fn missing(&self) -> Vec<&'static str> {
        REQUIRED
            .iter()
            .copied()
            .filter(|k| !self.features.contains_key(*k))
            .collect()
    }

    /// A human-readable report.
    pub fn render(&self) -> String {
        let mut s = String::from("fixture                          sites  args  undecoded\n");
        for fx in &self.fixtures {
            s.push_str(&format!(
                "{:<32} {:>5} {:>5} {:>10}\n",
                fx.name, fx.sites, fx.args, fx.undecoded
            ));
        }
        s.push_str("\nfeature                          count\n");
        for (k, v) in &self.features {
            s.push_str(&format!("{k:<32} {v:>5}\n"));
        }
        let missing = self.missing();
        if missing.is_empty() {
            s.push_str("\nevery required form is present\n");
        } else {
            s.push_str(&format!(
                "\nmissing required forms: {}\n",
                missing.join(", ")
            ));
        }
        s
    }
}
