//! Comparing what an implementation observed with what the manifest expects, one outcome
//! per (fixture, probe, hit, argument).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::gen::{Expected, Fixture};

/// What an implementation reported for one argument.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum Observed {
    /// An integer.
    Int(i128),
    /// A floating-point number.
    Float(f64),
    /// The implementation said it could not read the argument, and why.
    Error(String),
}

/// One observed hit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObservedHit {
    /// Provider.
    pub provider: String,
    /// Probe name.
    pub name: String,
    /// Link-time address of the site, when the implementation tells.
    pub pc: Option<u64>,
    /// Arguments, in order (fewer than expected when the implementation dropped some).
    pub args: Vec<Observed>,
}

/// The result of one comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The right value.
    Pass,
    /// A value came back and it is not the expected one: the worst outcome.
    Wrong,
    /// The implementation reported it cannot read the argument.
    Refused,
    /// The expected hit was not observed.
    Missed,
    /// The adapter itself failed.
    Error,
}

impl Outcome {
    /// Every outcome, in report order.
    pub const ALL: [Outcome; 5] = [
        Outcome::Pass,
        Outcome::Wrong,
        Outcome::Refused,
        Outcome::Missed,
        Outcome::Error,
    ];

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Wrong => "wrong",
            Outcome::Refused => "refused",
            Outcome::Missed => "missed",
            Outcome::Error => "error",
        }
    }
}

/// The outcome of one argument of one expected hit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArgResult {
    /// Index of the expected hit in the fixture.
    pub hit: usize,
    /// `provider:name`.
    pub probe: String,
    /// Argument index (0 for a hit with no arguments, which still counts once).
    pub arg: usize,
    /// What the manifest expects (`None` for a hit without arguments).
    pub expected: Option<Expected>,
    /// What came back (`None` when nothing did).
    pub observed: Option<Observed>,
    /// The verdict.
    pub outcome: Outcome,
    /// Why, for refusals and errors.
    pub detail: String,
}

/// What an implementation produced for one fixture.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Run {
    /// Hits in the order they were observed.
    pub hits: Vec<ObservedHit>,
    /// The fixture's stdout (run-time values).
    pub stdout: String,
    /// Probes the implementation refused as a whole (`provider:name`, or `*` for every probe
    /// of the fixture), with its reason: their hits count as refused, not missed.
    pub refused: BTreeMap<String, String>,
    /// Other findings for the report (for libbpf: spec entries that differ from usdtkit's).
    pub notes: Vec<String>,
}

/// Run-time values a fixture printed: (hit, arg) to value.
pub fn runtime_values(stdout: &str) -> BTreeMap<(usize, usize), u64> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(crate::gen::manifest::RUNTIME_PREFIX))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((
                (f.first()?.parse().ok()?, f.get(1)?.parse().ok()?),
                f.get(2)?.parse().ok()?,
            ))
        })
        .collect()
}

fn judge(e: &Expected, o: &Observed, runtime: Option<u64>) -> (Outcome, String) {
    let ok = match (e, o) {
        (_, Observed::Error(why)) => return (Outcome::Refused, why.clone()),
        (Expected::Int { value, .. }, Observed::Int(v)) => *v == value.as_i128(),
        (Expected::Float { value, .. }, Observed::Float(v)) => v == value,
        (Expected::Runtime { .. }, Observed::Int(v)) => match runtime {
            Some(r) => (*v as u64) == r && *v >= 0,
            None => {
                return (
                    Outcome::Error,
                    "the fixture did not print this value".into(),
                )
            }
        },
        // A float read as an integer (or the reverse), or any value for a struct wider than
        // a register: a value that is not the argument.
        _ => false,
    };
    if ok {
        (Outcome::Pass, String::new())
    } else {
        (Outcome::Wrong, String::new())
    }
}

/// Compare `observed` hits with the fixture's expected hits. Observed hits are matched in
/// order, each expected hit to the next observed hit of the same probe; unmatched expected
/// hits are missed.
pub fn compare(fx: &Fixture, run: &Run) -> Vec<ArgResult> {
    let observed = &run.hits[..];
    let rt = runtime_values(&run.stdout);
    let mut out = Vec::new();
    let mut next = 0;
    for (i, h) in fx.hits.iter().enumerate() {
        let probe = format!("{}:{}", h.provider, h.name);
        let found = observed[next.min(observed.len())..]
            .iter()
            .position(|o| o.provider == h.provider && o.name == h.name)
            .map(|p| next + p);
        let Some(j) = found else {
            let refusal = run.refused.get(&probe).or_else(|| run.refused.get("*"));
            let (outcome, detail) = match refusal {
                Some(why) => (Outcome::Refused, why.clone()),
                None => (Outcome::Missed, "hit not observed".to_string()),
            };
            let n = h.args.len().max(1);
            for a in 0..n {
                out.push(ArgResult {
                    hit: i,
                    probe: probe.clone(),
                    arg: a,
                    expected: h.args.get(a).cloned(),
                    observed: None,
                    outcome,
                    detail: detail.clone(),
                });
            }
            continue;
        };
        next = j + 1;
        let o = &observed[j];
        if h.args.is_empty() {
            out.push(ArgResult {
                hit: i,
                probe,
                arg: 0,
                expected: None,
                observed: None,
                outcome: Outcome::Pass,
                detail: String::new(),
            });
            continue;
        }
        for (a, e) in h.args.iter().enumerate() {
            let (outcome, detail) = match o.args.get(a) {
                Some(v) => judge(e, v, rt.get(&(i, a)).copied()),
                None => (Outcome::Refused, "argument not reported".into()),
            };
            out.push(ArgResult {
                hit: i,
                probe: probe.clone(),
                arg: a,
                expected: Some(e.clone()),
                observed: o.args.get(a).cloned(),
                outcome,
                detail,
            });
        }
    }
    out
}

/// Outcome counts.
pub fn tally<'a>(results: impl IntoIterator<Item = &'a ArgResult>) -> BTreeMap<Outcome, usize> {
    let mut m = BTreeMap::new();
    for r in results {
        *m.entry(r.outcome).or_default() += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::{Hit, IntValue};

    fn int(v: i128) -> Expected {
        Expected::Int {
            value: IntValue::from_i128(v),
            ctype: "int".into(),
        }
    }

    fn fixture(hits: Vec<(&str, Vec<Expected>)>) -> Fixture {
        Fixture {
            name: "f".into(),
            binary: "b".into(),
            libraries: vec![],
            sources: vec![],
            compiler: "gcc".into(),
            compiler_version: String::new(),
            flags: vec![],
            arch: "x86_64".into(),
            args: vec![],
            runnable: true,
            emulator: None,
            hits: hits
                .into_iter()
                .map(|(n, args)| Hit {
                    provider: "p".into(),
                    name: n.into(),
                    object: "b".into(),
                    semaphore: false,
                    args,
                })
                .collect(),
        }
    }

    fn obs(n: &str, args: Vec<Observed>) -> ObservedHit {
        ObservedHit {
            provider: "p".into(),
            name: n.into(),
            pc: None,
            args,
        }
    }

    #[test]
    fn outcomes() {
        let fx = fixture(vec![
            ("a", vec![int(-5), int(7)]),
            (
                "b",
                vec![Expected::Runtime {
                    ctype: "void *".into(),
                }],
            ),
            ("c", vec![int(1)]),
            ("d", vec![]),
        ]);
        let seen = vec![
            obs("a", vec![Observed::Int(-5), Observed::Int(8)]),
            obs("b", vec![Observed::Int(4096)]),
            obs("d", vec![]),
        ];
        let run = Run {
            hits: seen,
            stdout: "usdtkit-rt 1 0 4096\n".into(),
            ..Run::default()
        };
        let r = compare(&fx, &run);
        let o: Vec<Outcome> = r.iter().map(|r| r.outcome).collect();
        assert_eq!(
            o,
            [
                Outcome::Pass,
                Outcome::Wrong,
                Outcome::Pass,
                Outcome::Missed,
                Outcome::Pass
            ]
        );
        let t = tally(&r);
        assert_eq!(t[&Outcome::Pass], 3);
    }

    #[test]
    fn refusals_and_type_confusion() {
        let fx = fixture(vec![(
            "a",
            vec![
                int(1),
                Expected::Float {
                    value: 1.5,
                    ctype: "double".into(),
                },
                Expected::Bytes {
                    hex: "00".into(),
                    ctype: "S16".into(),
                },
            ],
        )]);
        let run = Run {
            hits: vec![obs(
                "a",
                vec![Observed::Error("no".into()), Observed::Int(1)],
            )],
            ..Run::default()
        };
        let o: Vec<Outcome> = compare(&fx, &run).iter().map(|r| r.outcome).collect();
        assert_eq!(o, [Outcome::Refused, Outcome::Wrong, Outcome::Refused]);
        // A probe refused as a whole: its hits are refused, not missed.
        let mut run = Run::default();
        run.refused.insert("p:a".into(), "parse error".into());
        let r = compare(&fx, &run);
        assert!(r
            .iter()
            .all(|r| r.outcome == Outcome::Refused && r.detail == "parse error"));
    }
}
