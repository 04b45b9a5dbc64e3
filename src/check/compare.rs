//! Comparing what an implementation observed with what the manifest expects, one outcome
//! per (fixture, probe, hit, argument).

use std::collections::BTreeMap;

use serde::Serialize;

use super::select::Selection;
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
    /// The peer stopped during the run (crashed, or exited on its own) with these words:
    /// the hits it did not report are adapter errors with them, not misses.
    pub failure: Option<String>,
    /// Hits the implementation counted as not delivered (usdtkit's recorder: its ring
    /// buffer was full): hits not observed are missed for that reason.
    pub lost: u64,
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

/// Pairs of (expected, observed) positions in `e` and `o` that maximise the summed
/// `score`, in order (a global alignment where leaving either side unpaired costs nothing;
/// ties go to pairing, then to leaving an observed hit unpaired).
fn align(n: usize, m: usize, score: impl Fn(usize, usize) -> u32) -> Vec<(usize, usize)> {
    let w = m + 1;
    let mut dp = vec![0u32; (n + 1) * w];
    for i in 1..=n {
        for j in 1..=m {
            let diag = dp[(i - 1) * w + j - 1] + score(i - 1, j - 1);
            dp[i * w + j] = diag.max(dp[i * w + j - 1]).max(dp[(i - 1) * w + j]);
        }
    }
    let mut pairs = Vec::new();
    let (mut i, mut j) = (n, m);
    while i > 0 && j > 0 {
        let here = dp[i * w + j];
        if here == dp[(i - 1) * w + j - 1] + score(i - 1, j - 1) {
            pairs.push((i - 1, j - 1));
            i -= 1;
            j -= 1;
        } else if here == dp[i * w + j - 1] {
            j -= 1;
        } else {
            i -= 1;
        }
    }
    pairs.reverse();
    pairs
}

/// Compare observed hits with the fixture's expected hits. Within each probe, expected and
/// observed hits are paired in order so that the most arguments agree (a peer that skips
/// some sites' hits is not judged on the next site's values); expected hits left unpaired
/// are missed (or refused, when the peer refused that probe). With a selection, only the
/// probes and arguments it reads are judged.
pub fn compare(fx: &Fixture, run: &Run, sel: Option<&Selection>) -> Vec<ArgResult> {
    let rt = runtime_values(&run.stdout);
    let reads = |h: &crate::gen::Hit, a: usize| sel.is_none_or(|s| s.reads(h, a));
    // (provider, name) to the indexes of its expected and observed hits.
    type Groups<'a> = BTreeMap<(&'a str, &'a str), (Vec<usize>, Vec<usize>)>;
    let mut groups: Groups<'_> = BTreeMap::new();
    for (i, h) in fx.hits.iter().enumerate() {
        if reads(h, 0) || (0..h.args.len()).any(|a| reads(h, a)) {
            groups.entry((&h.provider, &h.name)).or_default().0.push(i);
        }
    }
    for (j, o) in run.hits.iter().enumerate() {
        if let Some(g) = groups.get_mut(&(o.provider.as_str(), o.name.as_str())) {
            g.1.push(j);
        }
    }
    let judged = |i: usize, j: usize, a: usize| {
        let (h, o) = (&fx.hits[i], &run.hits[j]);
        match (h.args.get(a), o.args.get(a)) {
            (Some(e), Some(v)) => judge(e, v, rt.get(&(i, a)).copied()),
            (Some(_), None) => (Outcome::Refused, "argument not reported".into()),
            (None, _) => (Outcome::Pass, String::new()),
        }
    };
    let mut out = Vec::new();
    for ((provider, name), (exp, obs)) in groups {
        let probe = format!("{provider}:{name}");
        let score = |x: usize, y: usize| {
            let h = &fx.hits[exp[x]];
            1 + (0..h.args.len())
                .filter(|&a| reads(h, a) && judged(exp[x], obs[y], a).0 == Outcome::Pass)
                .count() as u32
        };
        let pairs = align(exp.len(), obs.len(), score);
        let mut paired = vec![None; exp.len()];
        for (x, y) in pairs {
            paired[x] = Some(obs[y]);
        }
        for (x, &i) in exp.iter().enumerate() {
            let h = &fx.hits[i];
            let n = h.args.len().max(1);
            let Some(j) = paired[x] else {
                let refusal = run.refused.get(&probe).or_else(|| run.refused.get("*"));
                let (outcome, detail) = match (refusal, &run.failure) {
                    (Some(why), _) => (Outcome::Refused, why.clone()),
                    (None, Some(why)) => (Outcome::Error, why.clone()),
                    (None, None) if run.lost > 0 => (
                        Outcome::Missed,
                        format!(
                            "lost: ring buffer full ({} hits lost in this run)",
                            run.lost
                        ),
                    ),
                    (None, None) => (Outcome::Missed, "hit not observed".to_string()),
                };
                for a in (0..n).filter(|&a| reads(h, a)) {
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
            for a in (0..n).filter(|&a| reads(h, a)) {
                let (outcome, detail) = judged(i, j, a);
                out.push(ArgResult {
                    hit: i,
                    probe: probe.clone(),
                    arg: a,
                    expected: h.args.get(a).cloned(),
                    observed: run.hits[j].args.get(a).cloned(),
                    outcome,
                    detail,
                });
            }
        }
    }
    out.sort_by_key(|r| (r.hit, r.arg));
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
        let hits = hits
            .into_iter()
            .map(|(n, args)| Hit {
                provider: "p".into(),
                name: n.into(),
                object: "b".into(),
                semaphore: false,
                args,
            })
            .collect();
        Fixture::for_tests("b", hits)
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
        let r = compare(&fx, &run, None);
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
    fn hits_the_recorder_counted_lost_are_missed_for_that_reason() {
        let fx = fixture(vec![("a", vec![int(1)]), ("a", vec![int(2)])]);
        let run = Run {
            hits: vec![obs("a", vec![Observed::Int(1)])],
            lost: 1,
            ..Run::default()
        };
        let r = compare(&fx, &run, None);
        assert_eq!(r[1].outcome, Outcome::Missed);
        assert!(
            r[1].detail.starts_with("lost: ring buffer full"),
            "{}",
            r[1].detail
        );
        let run = Run { lost: 0, ..run };
        assert_eq!(compare(&fx, &run, None)[1].detail, "hit not observed");
    }

    #[test]
    fn a_peer_that_skips_one_site_is_not_judged_on_the_next_sites_values() {
        // Two sites of one probe alternate; the peer reports only the first site's hits.
        let fx = fixture(vec![
            ("s", vec![int(1), int(10)]),
            ("s", vec![int(2), int(20)]),
            ("s", vec![int(3), int(30)]),
            ("s", vec![int(4), int(40)]),
        ]);
        let run = Run {
            hits: vec![
                obs("s", vec![Observed::Int(1), Observed::Int(10)]),
                obs("s", vec![Observed::Int(3), Observed::Int(99)]),
            ],
            ..Run::default()
        };
        let o: Vec<(usize, Outcome)> = compare(&fx, &run, None)
            .iter()
            .map(|r| (r.hit, r.outcome))
            .collect();
        use Outcome::*;
        assert_eq!(
            o,
            [
                (0, Pass),
                (0, Pass),
                (1, Missed),
                (1, Missed),
                (2, Pass),
                (2, Wrong),
                (3, Missed),
                (3, Missed)
            ]
        );
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
        let o: Vec<Outcome> = compare(&fx, &run, None).iter().map(|r| r.outcome).collect();
        assert_eq!(o, [Outcome::Refused, Outcome::Wrong, Outcome::Refused]);
        // A probe refused as a whole: its hits are refused, not missed.
        let mut run = Run::default();
        run.refused.insert("p:a".into(), "parse error".into());
        let r = compare(&fx, &run, None);
        assert!(r
            .iter()
            .all(|r| r.outcome == Outcome::Refused && r.detail == "parse error"));
    }
}
