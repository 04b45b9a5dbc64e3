//! Every input kept in proptests/fuzz/regressions/TARGET/ (seeds, and each crash a fuzz run
//! ever found, once fixed) run through that target's body, on stable, with plain
//! `cargo test`: a fixed crash cannot come back unnoticed.

#[path = "fuzz/targets.rs"]
mod targets;

use std::path::Path;

fn run(target: &str, body: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("proptests/fuzz/regressions")
        .join(target);
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = e.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        // A panic names the input that caused it.
        let r = std::panic::catch_unwind(|| body(&data));
        assert!(r.is_ok(), "{target}: {} panics", path.display());
        n += 1;
    }
    assert!(n > 0, "{}: no inputs kept", dir.display());
}

#[test]
fn parse_inputs() {
    run("parse", targets::parse);
}

#[test]
fn decode_inputs() {
    run("decode", targets::decode);
}

#[test]
fn roundtrip_inputs() {
    run("roundtrip", targets::roundtrip);
}

#[test]
fn spec_inputs() {
    run("spec", targets::spec);
}

#[test]
fn manifest_inputs() {
    run("manifest", targets::manifest);
}

#[test]
fn ext_line_inputs() {
    run("ext_line", targets::ext_line);
}
