//! The `usdtkit` command as users and scripts run it.

mod common;

use std::process::Command;

use serde_json::Value;
use usdtkit::synth::{ElfSpec, NoteSpec};

fn usdtkit(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_usdtkit"))
        .args(args)
        .output()
        .expect("usdtkit runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn decode_prints_one_json_arg_per_line() {
    let (code, out, _) = usdtkit(&[
        "decode",
        "--arch",
        "x86_64",
        "-4@%eax 1@%ah",
        "8@-12+3+1(%rbp)",
    ]);
    assert_eq!(code, 0);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[0],
        serde_json::json!({"text": "-4@%eax", "size": 4, "signed": true, "float": false,
            "location": {"kind": "reg", "reg": "rax", "shift": 0}})
    );
    assert_eq!(
        lines[1]["location"],
        serde_json::json!({"kind": "reg", "reg": "rax", "shift": 8})
    );
    assert_eq!(
        lines[2]["location"],
        serde_json::json!({"kind": "deref", "base": "rbp", "offset": -8})
    );
}

#[test]
fn decode_errors_exit_1_and_keep_going() {
    let (code, out, _) = usdtkit(&["decode", "--arch", "i386", "-7@$16 4@%eax", "8@%foo"]);
    assert_eq!(code, 1);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["text"], "-7@$16");
    assert!(lines[0]["error"].as_str().unwrap().contains("size"));
    assert_eq!(lines[1]["location"]["reg"], "eax");
    assert!(lines[2]["error"].as_str().unwrap().contains("%foo"));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(usdtkit(&["decode", "--arch", "vax", "8@%r0"]).0, 2);
    assert_eq!(usdtkit(&["list"]).0, 2);
    assert_eq!(usdtkit(&["frobnicate"]).0, 2);
}

#[test]
fn list_json_has_the_documented_fields() {
    let dir = std::env::temp_dir().join(format!("usdtkit-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("probes.elf");
    let mut n = NoteSpec::new(0x40_1010, "prov", "name", "-4@%eax 8@%foo");
    n.semaphore = 0x60_2004;
    let elf = ElfSpec {
        notes: vec![n, NoteSpec::new(0x40_1020, "prov", "other", "")],
        ..ElfSpec::default()
    }
    .build();
    std::fs::write(&path, elf).unwrap();
    let p = path.to_str().unwrap();
    let missing = dir.join("missing.elf");
    let (code, out, err) = usdtkit(&["list", "--json", p, missing.to_str().unwrap()]);
    assert_eq!(
        code, 1,
        "a bad argument and a missing file both make the exit status 1"
    );
    let docs: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 2);
    let d = &docs[0];
    assert_eq!(d["file"], p);
    assert_eq!(d["arch"], "x86_64");
    let site = &d["probes"][0]["sites"][0];
    assert_eq!(d["probes"][0]["provider"], "prov");
    assert_eq!(d["probes"][0]["name"], "name");
    assert_eq!(site["pc"], 0x40_1010);
    assert_eq!(site["file_offset"], 0x1010);
    assert_eq!(site["semaphore"], 0x60_2004);
    assert_eq!(site["semaphore_file_offset"], 0x2004);
    assert_eq!(site["args"][0]["location"]["reg"], "rax");
    assert_eq!(site["args"][1]["text"], "8@%foo");
    assert!(site["args"][1]["error"].is_string());
    let other = &d["probes"][1]["sites"][0];
    assert!(other["semaphore"].is_null() && other["semaphore_file_offset"].is_null());
    assert!(docs[1]["error"].as_str().unwrap().contains("missing.elf"));
    // stderr names file, probe, site and argument.
    assert!(
        err.contains(p) && err.contains("prov:name") && err.contains("0x401010"),
        "{err}"
    );
    assert!(err.contains("argument #1 `8@%foo`"), "{err}");

    let (code, table, _) = usdtkit(&["list", p]);
    assert_eq!(code, 1);
    assert!(table.contains("prov:name") && table.contains("0x1010") && table.contains("-4@%eax"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn list_real_python() {
    let path = "/usr/bin/python3.11";
    if !common::require_file(path, "Debian python3.11") {
        return;
    }
    let (code, out, err) = usdtkit(&["list", "--json", path]);
    assert_eq!(code, 0, "{err}");
    let d: Value = serde_json::from_str(out.trim()).unwrap();
    let probes = d["probes"].as_array().unwrap();
    let entry = probes
        .iter()
        .find(|p| p["name"] == "function__entry")
        .unwrap();
    assert_eq!(entry["provider"], "python");
    assert!(entry["sites"][0]["semaphore"].is_u64());
    assert_eq!(entry["sites"][0]["args"].as_array().unwrap().len(), 3);
}

#[test]
fn bench_parse_measures_files_and_names_the_bad_ones() {
    let dir = std::env::temp_dir().join(format!("usdtkit-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("gen.elf");
    std::fs::write(&good, usdtkit::bench::parse::generated(120, false)).unwrap();
    let missing = dir.join("missing.elf");
    let (code, out, err) = usdtkit(&[
        "bench",
        "parse",
        "--rounds",
        "3",
        "--json",
        good.to_str().unwrap(),
        missing.to_str().unwrap(),
    ]);
    // The missing file fails the run, by name, after the good one is measured.
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("missing.elf"), "{err}");
    let rows: Value = serde_json::from_str(&out).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["sites"], 120);
    assert_eq!(rows[0]["rounds"], 3);
    assert!(rows[0]["ratio"].as_f64().unwrap() > 0.0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bench_parse_repeats_one_side_of_one_input_for_profilers() {
    for side in ["walk", "usdtkit"] {
        let (code, out, err) = usdtkit(&[
            "bench",
            "parse",
            "--only",
            "generated-1000",
            "--repeat",
            "3",
            "--side",
            side,
        ]);
        assert_eq!(code, 0, "{err}");
        assert!(out.is_empty(), "untimed runs print nothing: {out}");
    }
    // `--repeat` needs a side; an unknown input name is an error that names it.
    let (code, _, err) = usdtkit(&["bench", "parse", "--repeat", "1"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = usdtkit(&["bench", "parse", "--only", "nope", "--rounds", "1"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no input named nope"), "{err}");
}
