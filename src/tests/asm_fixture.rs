//! `fixtures/asm/x86_64_forms.S`, assembled and linked by the machine's gcc: rare x86 forms
//! decoded from a real linked executable, checked against readelf (note contents) and nm
//! (symbol addresses), both independent of usdtkit.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use usdtkit::{Extend, Location, MappedFile, UsdtFile};

fn build() -> Option<PathBuf> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "gcc".into());
    let have_cc = Command::new(&cc).arg("--version").output().is_ok();
    if !common::require(have_cc, &format!("C compiler `{cc}`")) {
        return None;
    }
    let dir = std::env::temp_dir().join(format!("usdtkit-asm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("x86_64_forms");
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/asm/x86_64_forms.S");
    let st = Command::new(&cc)
        .args([src, "-o"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success(), "{cc} failed on {src}");
    Some(out)
}

fn nm(path: &str) -> HashMap<String, u64> {
    let out = Command::new("nm")
        .arg(path)
        .output()
        .expect("nm runs (binutils)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (v, _, name) = (it.next()?, it.next()?, it.next()?);
            Some((name.to_string(), u64::from_str_radix(v, 16).ok()?))
        })
        .collect()
}

fn locations<'a>(
    u: &'a UsdtFile<'_>,
    name: &str,
    site: usize,
) -> Vec<(u32, bool, bool, &'a Location)> {
    let p = u
        .probe("forms", name)
        .unwrap_or_else(|| panic!("no probe {name}"));
    p.sites[site]
        .args
        .iter()
        .map(|a| {
            let s = a.decoded.as_ref().unwrap_or_else(|e| panic!("{name}: {e}"));
            (s.size, s.signed, s.float, &s.location)
        })
        .collect()
}

#[test]
fn rare_x86_forms_from_a_real_assembler() {
    let Some(bin) = build() else { return };
    let path = bin.to_str().unwrap();
    let mapped = MappedFile::open(&bin).unwrap();
    let u = mapped.usdt().unwrap();
    assert!(u.errors().is_empty(), "{:?}", u.errors());
    assert_eq!(common::our_notes(&u), common::readelf_notes(path));

    let syms = nm(path);
    let reg = |n: &str| {
        usdtkit::arg::decoder(usdtkit::Arch::X86_64)
            .unwrap()
            .register(n)
            .unwrap()
    };
    let r = |n: &str, shift| Location::Reg { reg: reg(n), shift };

    let hb = locations(&u, "high_bytes", 0);
    assert_eq!(*hb[0].3, r("rax", 8));
    assert_eq!(*hb[3].3, r("rdx", 8));
    assert!(hb[1].1, "-1@%bh is signed");

    let sd = locations(&u, "summed_disp", 0);
    assert_eq!(
        *sd[0].3,
        Location::Deref {
            base: reg("rbp"),
            offset: -8
        }
    );
    assert_eq!(
        *sd[1].3,
        Location::Deref {
            base: reg("rsp"),
            offset: 16
        }
    );

    let sib = locations(&u, "sib_no_base", 0);
    assert_eq!(
        *sib[0].3,
        Location::Sib {
            base: None,
            index: reg("rcx"),
            extend: Extend::None,
            scale: 8,
            offset: 16
        }
    );
    assert_eq!(
        *sib[1].3,
        Location::Sib {
            base: None,
            index: reg("rdx"),
            extend: Extend::None,
            scale: 1,
            offset: 0
        }
    );
    assert_eq!(
        *sib[2].3,
        Location::Sib {
            base: Some(reg("rax")),
            index: reg("rbx"),
            extend: Extend::None,
            scale: 1,
            offset: 0
        }
    );

    let addr = |l: &Location| match l {
        Location::Symbol(s) => s.address.expect("resolved"),
        other => panic!("{other:?}"),
    };
    let sp = locations(&u, "sym_plus_n", 0);
    assert_eq!(addr(sp[0].3), syms["counter"] + 8);
    assert_eq!(addr(sp[1].3), syms["counter"] + 8);
    assert_eq!(addr(sp[2].3), syms["table"] - 8);
    let sl = locations(&u, "sym_local", 0);
    assert_eq!(addr(sl[0].3), syms["local_static.6"]);
    assert!(matches!(
        sl[1].3,
        Location::Symbol(s) if s.index.is_some() && s.scale == 8
    ));
    assert_eq!(addr(sl[1].3), syms["table"]);

    let ns = locations(&u, "no_size", 0);
    assert!(
        ns.iter().all(|a| a.0 == 8 && !a.1 && !a.2),
        "no prefix: 8 bytes unsigned"
    );
    assert_eq!(*ns[2].3, Location::Const(7));

    let fl = locations(&u, "float_gpr", 0);
    assert!(fl.iter().all(|a| a.2));
    assert_eq!((fl[1].0, fl[1].3), (4, &r("rcx", 0)));

    let v = locations(&u, "vector", 0);
    assert_eq!(*v[2].3, Location::FpReg { reg: reg("xmm15") });
    assert_eq!(
        locations(&u, "big_sizes", 0)
            .iter()
            .map(|a| a.0)
            .collect::<Vec<_>>(),
        [16, 24, 48]
    );
    let hx = locations(&u, "hex_imm", 0);
    let consts: Vec<_> = hx.iter().map(|a| a.3.clone()).collect();
    assert_eq!(
        consts,
        [
            Location::Const(0x7f),
            Location::Const(-16),
            Location::Const(-127),
            Location::Const(0xffff)
        ]
    );

    // Semaphores: shared by the two sites of one probe, one per site for the other.
    let shared = u.probe("forms", "shared-sem").unwrap();
    assert_eq!(shared.sites.len(), 2);
    assert_eq!(shared.sites[0].semaphore, Some(syms["shared_sem"]));
    assert_eq!(shared.sites[1].semaphore, Some(syms["shared_sem"]));
    assert_eq!(shared.sites[1].args.len(), 2);
    let per = u.probe("forms", "per__site").unwrap();
    assert_ne!(per.sites[0].semaphore, per.sites[1].semaphore);
    assert_eq!(per.sites[0].args.len(), 0);
    // Semaphore file offsets land on the counters' bytes (the fixture gives each a distinct
    // initial value).
    let at = |s: &usdtkit::Site<'_>| {
        let off = s.semaphore_file_offset.unwrap() as usize;
        u16::from_le_bytes([mapped.bytes()[off], mapped.bytes()[off + 1]])
    };
    assert_eq!(at(shared.sites[0]), 0xa1b2);
    assert_eq!(at(shared.sites[1]), 0xa1b2);
    assert_eq!(at(per.sites[0]), 0xc3d4);
    assert_eq!(at(per.sites[1]), 0xe5f6);
    std::fs::remove_dir_all(bin.parent().unwrap()).ok();
}
