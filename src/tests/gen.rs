//! The fixture generator: determinism, every fixture builds and runs, the run protocol,
//! agreement with readelf, required forms present, and expected values checked against an
//! independent reader (gdb).

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use usdtkit::gen::{self, Expected, GenOptions, Manifest, Profile};
use usdtkit::MappedFile;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("usdtkit-gen-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Whether the generator's toolchain is installed (gcc, clang, sys/sdt.h).
fn toolchain() -> bool {
    let ok = gen::compile::find_sdt_header().is_some()
        && Command::new("clang").arg("--version").output().is_ok();
    common::require(ok, "sys/sdt.h (systemtap-sdt-dev) and clang")
}

fn build(profile: Profile, seed: u64, name: &str) -> (PathBuf, Manifest) {
    let out = tmp(name);
    let opts = GenOptions {
        seed,
        profile,
        out: out.clone(),
        progress: false,
    };
    let m = gen::generate(&opts).unwrap_or_else(|e| panic!("gen {name}: {e}"));
    (out, m)
}

fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

#[test]
fn same_seed_same_corpus_other_seed_other_values() {
    if !toolchain() {
        return;
    }
    let (a, ma) = build(Profile::Quick, 7, "det-a");
    let (b, mb) = build(Profile::Quick, 7, "det-b");
    let (c, mc) = build(Profile::Quick, 8, "det-c");
    assert_eq!(
        files(&a.join("src")),
        files(&b.join("src")),
        "sources differ for one seed"
    );
    assert_eq!(ma, mb, "manifests differ for one seed");
    assert_ne!(files(&a.join("src")), files(&c.join("src")));
    assert_ne!(ma.fixtures[0].hits, mc.fixtures[0].hits);
    for d in [a, b, c] {
        std::fs::remove_dir_all(d).ok();
    }
}

/// Run a fixture to completion; returns its stdout.
fn run(dir: &Path, binary: &Path, wait: bool) -> String {
    let mut cmd = Command::new(dir.join(binary));
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    if wait {
        cmd.arg(gen::manifest::WAIT_ARG);
    }
    let mut child = cmd.spawn().unwrap();
    if wait {
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            child.try_wait().unwrap().is_none(),
            "--wait returned before any input"
        );
        child.stdin.as_mut().unwrap().write_all(b"x").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}: {}", binary.display(), out.status);
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn default_corpus_builds_runs_and_agrees_with_readelf() {
    if !toolchain() {
        return;
    }
    let (dir, m) = build(Profile::Default, 1, "default");
    assert!(m.fixtures.len() >= 28, "{} fixtures", m.fixtures.len());
    let cross = m.fixtures.iter().filter(|f| !f.runnable).count();
    common::require(
        cross >= 7,
        "the cross compilers ci/setup.sh installs (issue 7)",
    );
    for fx in &m.fixtures {
        if fx.runnable {
            // Runs to completion, with and without --wait; run-time values printed for exactly
            // the arguments the manifest marks as run-time.
            let out = run(&dir, &fx.binary, false);
            let waited = run(&dir, &fx.binary, true);
            let lines: Vec<&str> = out.lines().collect();
            assert_eq!(lines.len(), waited.lines().count());
            let runtime: Vec<(usize, usize)> = fx
                .hits
                .iter()
                .enumerate()
                .flat_map(|(i, h)| {
                    h.args
                        .iter()
                        .enumerate()
                        .filter(|(_, a)| matches!(a, Expected::Runtime { .. }))
                        .map(move |(j, _)| (i, j))
                })
                .collect();
            let printed: Vec<(usize, usize)> = lines
                .iter()
                .map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    assert_eq!(f[0], gen::manifest::RUNTIME_PREFIX, "{l}");
                    (f[1].parse().unwrap(), f[2].parse().unwrap())
                })
                .collect();
            assert_eq!(printed, runtime, "{}", fx.name);
        } else {
            // Cross-compiled (issue 7): every argument decodes but assembler-local `.LC`
            // labels, which no symbol table keeps.
            let mapped = MappedFile::open(dir.join(&fx.binary)).unwrap();
            let usdt = mapped.usdt().unwrap();
            assert!(usdt.sites().len() > 30, "{}", fx.name);
            for site in usdt.sites() {
                for a in &site.args {
                    if let Err(e) = &a.decoded {
                        assert!(a.text.contains(".LC"), "{}: {} {}", fx.name, a.text, e);
                    }
                }
            }
        }
        // usdtkit list and readelf -n agree on every object of the fixture.
        for obj in std::iter::once(&fx.binary).chain(&fx.libraries) {
            let path = dir.join(obj);
            let mapped = MappedFile::open(&path).unwrap();
            let usdt = mapped.usdt().unwrap();
            assert!(usdt.errors().is_empty(), "{}: {:?}", fx.name, usdt.errors());
            let want = common::readelf_notes(path.to_str().unwrap());
            assert_eq!(common::our_notes(&usdt), want, "{}", path.display());
        }
        // Every expected hit names a probe the object has.
        for h in &fx.hits {
            let mapped = MappedFile::open(dir.join(&h.object)).unwrap();
            let usdt = mapped.usdt().unwrap();
            let p = usdt.probe(&h.provider, &h.name);
            assert!(
                p.is_some(),
                "{}: no probe {}:{}",
                fx.name,
                h.provider,
                h.name
            );
            let counts: Vec<usize> = p.unwrap().sites.iter().map(|s| s.args.len()).collect();
            assert!(
                counts.contains(&h.args.len()),
                "{}: {}:{} arg count",
                fx.name,
                h.provider,
                h.name
            );
        }
    }
    // Every form the issue lists is present, counted by decoding the binaries.
    let stats = gen::stats::collect(&dir).unwrap();
    assert_eq!(stats.missing(), Vec::<&str>::new());
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn scale_profile_dense_and_sparse() {
    if !toolchain() {
        return;
    }
    for sparse in [false, true] {
        let (dir, m) = build(
            Profile::Scale {
                probes: 7,
                sites: 5,
                sparse,
            },
            3,
            if sparse { "sparse" } else { "dense" },
        );
        let fx = &m.fixtures[0];
        assert_eq!(fx.hits.len(), 35);
        run(&dir, &fx.binary, true);
        let mapped = MappedFile::open(dir.join(&fx.binary)).unwrap();
        let usdt = mapped.usdt().unwrap();
        assert_eq!(usdt.probes().count(), 7);
        assert!(usdt.probes().all(|p| p.sites.len() == 5));
        let mut pcs: Vec<u64> = usdt.sites().iter().map(|s| s.pc).collect();
        pcs.sort();
        let min_gap = pcs.windows(2).map(|w| w[1] - w[0]).min().unwrap();
        if sparse {
            assert_eq!(min_gap, 4096, "one site per page");
        } else {
            assert!(min_gap < 16, "dense sites are adjacent");
        }
        std::fs::remove_dir_all(dir).ok();
    }
}

#[test]
fn expected_values_agree_with_gdb() {
    if !toolchain()
        || !common::require(Command::new("gdb").arg("--version").output().is_ok(), "gdb")
    {
        return;
    }
    let (dir, m) = build(Profile::Quick, 11, "gdb");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/peers/gdb_usdt.py");
    let mut total_ok = 0;
    for fx in m.fixtures.iter().filter(|f| f.arch == "x86_64") {
        let mut probes: Vec<String> = fx
            .hits
            .iter()
            .map(|h| format!("{}:{}", h.provider, h.name))
            .collect();
        probes.sort();
        probes.dedup();
        let out = Command::new("gdb")
            .args(["-batch", "-nx", "-x", script, "--args"])
            .arg(dir.join(&fx.binary))
            .env("USDTKIT_PROBES", serde_json::to_string(&probes).unwrap())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let hits: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| l.strip_prefix("USDTKIT-GDB "))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let rt: BTreeMap<(usize, usize), u64> = text
            .lines()
            .filter_map(|l| l.strip_prefix("usdtkit-rt "))
            .map(|l| {
                let f: Vec<u64> = l.split(' ').map(|x| x.parse().unwrap()).collect();
                ((f[0] as usize, f[1] as usize), f[2])
            })
            .collect();
        // gdb 13 ignores a note with bytes after its strings (libbpf's `nop; nop5` marker):
        // compare the hits of the probes it knows.
        let seen: std::collections::HashSet<&str> =
            hits.iter().filter_map(|h| h["probe"].as_str()).collect();
        let wanted: Vec<(usize, &gen::Hit)> = fx
            .hits
            .iter()
            .enumerate()
            .filter(|(_, h)| {
                let key = format!("{}:{}", h.provider, h.name);
                let known = seen.contains(key.as_str());
                assert!(
                    known || h.name == "nop5_site",
                    "{}: gdb never hit {key}",
                    fx.name
                );
                known
            })
            .collect();
        assert_eq!(
            hits.len(),
            wanted.len(),
            "{}: gdb saw a different number of hits",
            fx.name
        );
        for (&(i, want), got) in wanted.iter().zip(&hits) {
            assert_eq!(
                got["probe"],
                format!("{}:{}", want.provider, want.name),
                "{} hit {i}",
                fx.name
            );
            for (j, e) in want.args.iter().enumerate() {
                let g = &got["args"][j];
                let ok = match e {
                    Expected::Int { value, .. } => g["int"]
                        .as_i64()
                        .map(|v| v as i128 & 0xffff_ffff_ffff_ffff)
                        .or(g["int"].as_u64().map(i128::from))
                        .map(|v| v == value.as_i128() & 0xffff_ffff_ffff_ffff),
                    Expected::Float { value, .. } => g["float"].as_f64().map(|v| v == *value),
                    Expected::Runtime { .. } => {
                        g["int"].as_u64().map(|v| Some(&v) == rt.get(&(i, j)))
                    }
                    Expected::Bytes { .. } => None,
                };
                // gdb may refuse (floats, symbols); it must never disagree.
                assert_ne!(
                    ok,
                    Some(false),
                    "{} hit {i} {}:{} arg {j}: manifest {e:?}, gdb {g}",
                    fx.name,
                    want.provider,
                    want.name
                );
                total_ok += usize::from(ok == Some(true));
            }
        }
    }
    assert!(total_ok > 200, "gdb confirmed only {total_ok} values");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn cli_gen_and_stats() {
    if !toolchain() {
        return;
    }
    let out = tmp("cli");
    let bin = env!("CARGO_BIN_EXE_usdtkit");
    let st = Command::new(bin)
        .args(["gen", "--profile", "quick", "--seed", "5", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    assert!(String::from_utf8_lossy(&st.stderr).contains("fixtures"));
    let st = Command::new(bin)
        .args(["gen", "--json", "--stats"])
        .arg(&out)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert!(v["features"]["kind:sib"].as_u64().unwrap() > 0);
    assert!(v["fixtures"].as_array().unwrap().len() >= 6);
    let st = Command::new(bin)
        .args(["gen", "--profile", "bogus"])
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(2));
    std::fs::remove_dir_all(out).ok();
}
