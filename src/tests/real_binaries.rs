//! Real probe-rich binaries of this machine, checked note by note against `readelf -n`
//! (binutils), an implementation independent of ours.

mod common;

use usdtkit::MappedFile;

fn check(path: &str, what: &str, min_sites: usize) {
    if !common::require_file(path, what) {
        return;
    }
    let want = common::readelf_notes(path);
    assert!(
        want.len() >= min_sites,
        "{path}: readelf saw only {} notes",
        want.len()
    );
    let mapped = MappedFile::open(path).unwrap();
    let usdt = mapped.usdt().unwrap();
    assert!(usdt.errors().is_empty(), "{path}: {:?}", usdt.errors());
    let got = common::our_notes(&usdt);
    assert_eq!(
        got.len(),
        want.len(),
        "{path}: site count differs from readelf -n"
    );
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w, "{path}");
    }
    for site in usdt.sites() {
        for arg in &site.args {
            if let Err(e) = &arg.decoded {
                panic!(
                    "{path}: {}:{} site {:#x}: {e}",
                    site.provider, site.name, site.pc
                );
            }
        }
        // The file offset lands on the site's instruction bytes: a nop (0x90) or the first byte
        // of a multi-byte nop (0x0f 0x1f), as sys/sdt.h emits.
        let byte = mapped.bytes()[site.file_offset as usize];
        assert!(
            byte == 0x90 || byte == 0x0f,
            "{path}: site {:#x} byte {byte:#x}",
            site.pc
        );
    }
}

#[test]
fn python311() {
    check("/usr/bin/python3.11", "Debian python3.11", 8);
}

#[test]
fn postgres() {
    check(
        "/usr/lib/postgresql/15/bin/postgres",
        "Debian postgresql-15",
        71,
    );
}

#[test]
fn libjvm() {
    check(
        "/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so",
        "Debian openjdk-17-jre-headless",
        531,
    );
}

#[test]
fn libstdcxx() {
    check(
        "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
        "Debian libstdc++6",
        3,
    );
}

#[test]
fn postgres_symbol_arguments_resolve() {
    let path = "/usr/lib/postgresql/15/bin/postgres";
    if !common::require_file(path, "Debian postgresql-15") {
        return;
    }
    // The stripped binary's dynamic symbols, as binutils reads them (usdtkit looks them up
    // through `.gnu.hash`).
    let mut values = std::collections::HashMap::new();
    for (name, value) in defined_dyn_syms(path) {
        let name = name.split('@').next().unwrap_or_default().to_string();
        values.insert(name, value);
    }
    let mapped = MappedFile::open(path).unwrap();
    let usdt = mapped.usdt().unwrap();
    let mut resolved = 0;
    for site in usdt.sites() {
        for arg in &site.args {
            if let Ok(usdtkit::ArgSpec {
                location: usdtkit::Location::Symbol(s),
                ..
            }) = &arg.decoded
            {
                let want = values[s.symbol.as_str()].wrapping_add(s.offset as u64);
                assert_eq!(s.address, Some(want), "{}", arg.text);
                resolved += 1;
            }
        }
    }
    assert!(
        resolved >= 5,
        "postgres has sym(%rip) arguments; saw {resolved}"
    );
}

#[test]
fn cargo_nextest_rust_emitted_probes() {
    // Rust `probe`-crate style notes: hyphenated names, semaphores shared between sites.
    check(
        "/usr/local/bin/cargo-nextest",
        "cargo-nextest from the machine image",
        10,
    );
}

#[test]
fn versioned_names_resolve_to_their_default_version() {
    // libc.so.6 is stripped and versions its symbols: `memcpy@GLIBC_2.2.5` (hidden) comes
    // before `memcpy@@GLIBC_2.14` (the default) in its tables; `realpath@@GLIBC_2.3` before
    // `realpath@GLIBC_2.2.5`. A name resolves to its default version, as the dynamic linker
    // resolves it; binutils marks that one with `@@`.
    let path = "/lib/x86_64-linux-gnu/libc.so.6";
    if !common::require_file(path, "Debian libc6") {
        return;
    }
    let names = ["memcpy", "realpath", "fmemopen", "pthread_cond_wait"];
    let mut want = std::collections::HashMap::new();
    for (name, value) in defined_dyn_syms(path) {
        if let Some((name, _)) = name.split_once("@@") {
            if let Some(n) = names.iter().find(|n| **n == name) {
                want.insert(*n, value);
            }
        }
    }
    assert_eq!(
        want.len(),
        names.len(),
        "readelf shows a default version of each"
    );
    let data = std::fs::read(path).unwrap();
    let elf = usdtkit::elf::ElfFile::parse(&data).unwrap();
    let wanted: std::collections::HashSet<&str> = names.into_iter().collect();
    let found = elf.find_symbols(&wanted).unwrap();
    for name in names {
        let values: Vec<u64> = found[name].iter().map(|d| d.value).collect();
        assert_eq!(values, [want[name]], "{name}");
    }
}

/// The defined dynamic symbols of `path` as binutils lists them: (name with its `@VERSION`
/// or `@@VERSION`, value).
fn defined_dyn_syms(path: &str) -> Vec<(String, u64)> {
    let out = std::process::Command::new("readelf")
        .args(["-W", "--dyn-syms", path])
        .output()
        .expect("readelf runs");
    let mut syms = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let numbered = f
            .first()
            .is_some_and(|n| n.trim_end_matches(':').parse::<u32>().is_ok());
        if numbered && f.len() >= 8 && f[6] != "UND" {
            syms.push((f[7].to_string(), u64::from_str_radix(f[1], 16).unwrap()));
        }
    }
    syms
}

/// The `serde` feature: the whole file as JSON, its sites the ones readelf sees.
#[cfg(feature = "serde")]
#[test]
fn python_as_json_has_readelfs_sites() {
    let path = "/usr/bin/python3.11";
    if !common::require_file(path, "Debian python3.11") {
        return;
    }
    let want = common::readelf_notes(path);
    let mapped = MappedFile::open(path).unwrap();
    let json = serde_json::to_value(mapped.usdt().unwrap()).unwrap();
    assert_eq!(json["arch"], "x86_64");
    let mut got: Vec<(String, String, u64)> = Vec::new();
    for probe in json["probes"].as_array().unwrap() {
        for site in probe["sites"].as_array().unwrap() {
            got.push((
                site["provider"].as_str().unwrap().into(),
                site["name"].as_str().unwrap().into(),
                site["pc"].as_u64().unwrap(),
            ));
            for arg in site["args"].as_array().unwrap() {
                assert!(arg["location"].is_object(), "{arg}");
            }
        }
    }
    got.sort_by_key(|g| g.2);
    let mut want: Vec<(String, String, u64)> = want
        .into_iter()
        .map(|n| (n.provider, n.name, n.pc))
        .collect();
    want.sort_by_key(|w| w.2);
    assert_eq!(got, want);
    assert_eq!(json["errors"].as_array().unwrap().len(), 0);
}
