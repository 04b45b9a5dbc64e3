//! The fuzz targets' bodies, shared by the cargo-fuzz binaries (fuzz_targets/) and by the
//! regression test (proptests/regressions.rs), which runs every kept input on stable. Each
//! takes arbitrary bytes; a panic (an assertion included) is a finding.
#![allow(dead_code)]

use usdtkit::attach::plan::plan_site;
use usdtkit::attach::spec::{self, Layout, MAX_ARGS};
use usdtkit::{decode_args, Arch, UsdtFile};

/// The first byte picks an architecture, the rest is text.
fn arch_and_text(data: &[u8]) -> Option<(Arch, String)> {
    let (first, rest) = data.split_first()?;
    let arch = Arch::NAMED[*first as usize % Arch::NAMED.len()];
    Some((arch, String::from_utf8_lossy(rest).into_owned()))
}

/// An ELF file parsed and walked as `list` and `attach` walk it: every probe, site and
/// argument, errors rendered, JSON written, every site planned and its spec encoded in both
/// layouts and byte orders, semaphore aliases computed.
pub fn parse(data: &[u8]) {
    let Ok(file) = UsdtFile::parse(data) else {
        return;
    };
    let arch = file.arch();
    for e in file.errors() {
        let _ = e.to_string();
    }
    for p in file.probes() {
        let _ = (p.provider.len(), p.name.len(), p.sites.len());
    }
    for site in file.sites() {
        for a in site.args.iter() {
            let _ = serde_json::to_string(a).expect("an argument serialises");
            if let Err(e) = &a.decoded {
                let _ = e.to_string();
            }
        }
        for layout in [Layout::V1, Layout::V2] {
            let plan = plan_site(arch, layout, site, data, true);
            if plan.args.len() <= MAX_ARGS {
                for big in [false, true] {
                    let spec = spec::encode(layout, big, &plan.args, site.pc);
                    assert_eq!(spec.len(), layout.spec_size());
                }
            }
        }
    }
    let _ = file.semaphore_aliases();
}

/// Argument strings decoded for any architecture, errors rendered, JSON written.
pub fn decode(data: &[u8]) {
    let Some((arch, text)) = arch_and_text(data) else {
        return;
    };
    for a in decode_args(arch, &text).iter() {
        let _ = serde_json::to_string(a).expect("an argument serialises");
        if let Err(e) = &a.decoded {
            let _ = e.to_string();
        }
    }
}

/// A decoded argument rendered back to text decodes to the same spec.
pub fn roundtrip(data: &[u8]) {
    let Some((arch, text)) = arch_and_text(data) else {
        return;
    };
    for a in decode_args(arch, &text).iter() {
        let Ok(spec) = &a.decoded else { continue };
        let Some(back) = spec.to_text(arch) else {
            continue;
        };
        let again = decode_args(arch, &back);
        assert_eq!(again.len(), 1, "{arch:?} `{}` -> `{back}`", a.text);
        assert_eq!(
            again[0].decoded.as_ref().ok(),
            Some(spec),
            "{arch:?} `{}` -> `{back}`",
            a.text
        );
    }
}

/// Decoded arguments encoded for the BPF side in both layouts and byte orders.
pub fn spec(data: &[u8]) {
    if data.len() < 9 {
        return;
    }
    let addr = u64::from_le_bytes(data[1..9].try_into().expect("8 bytes"));
    let Some((arch, text)) = arch_and_text(&[&data[..1], &data[9..]].concat()) else {
        return;
    };
    let args = decode_args(arch, &text);
    for layout in [Layout::V1, Layout::V2] {
        let mut encoded = Vec::new();
        for a in args.iter() {
            if let Ok(s) = &a.decoded {
                if let Ok(e) = usdtkit::attach::plan::encode_arg(arch, layout, s, addr) {
                    encoded.push(e);
                }
            }
        }
        encoded.truncate(MAX_ARGS);
        for big in [false, true] {
            assert_eq!(
                spec::encode(layout, big, &encoded, addr).len(),
                layout.spec_size()
            );
        }
    }
}

/// A corpus manifest read (as `check --corpus` reads one), written back and read again.
pub fn manifest(data: &[u8]) {
    let Ok(m) = serde_json::from_slice::<usdtkit::gen::Manifest>(data) else {
        return;
    };
    let text = serde_json::to_string(&m).expect("a manifest serialises");
    let again: usdtkit::gen::Manifest = serde_json::from_str(&text).expect("and reads back");
    assert_eq!(again, m);
}

/// A line of the `ext:` protocol read as a hit.
pub fn ext_line(data: &[u8]) {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    let line = String::from_utf8_lossy(rest);
    let signs = |_: &str, _: &str| vec![true, false, true, false];
    let _ = usdtkit::check::impls::external::parse_hit(&line, first & 1 == 1, &signs);
}
