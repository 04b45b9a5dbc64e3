//! The generated C fixture: `main.c` (most probes), `sem.c` (semaphore-guarded probes,
//! compiled with `_SDT_HAS_SEMAPHORES`), `lib.c` (a shared library with probes, one of them
//! sharing its `provider:name` with the executable), and `structs.cc` (C++: structs passed by
//! value). Every probe's expected hits are recorded while its code is written, in the order
//! `main` fires them.

use std::fmt::Write;

use super::manifest::{Expected, Hit};
use super::rng::Rng;
use super::value::{CType, Value, INTS};

/// The provider of the executable's probes.
pub const PROVIDER: &str = "usdtfix";
/// The provider of the library-only probe.
pub const LIB_PROVIDER: &str = "usdtfixlib";

/// Which file of a fixture a probe lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    /// The executable.
    Exe,
    /// The shared library.
    Lib,
}

/// An expected hit before paths are known.
#[derive(Debug, Clone, PartialEq)]
pub struct HitSpec {
    /// Provider.
    pub provider: String,
    /// Probe name.
    pub name: String,
    /// Where the probe is.
    pub object: Object,
    /// Semaphore-guarded?
    pub semaphore: bool,
    /// Expected arguments.
    pub args: Vec<Expected>,
}

impl HitSpec {
    /// The manifest form, with the object's path.
    pub fn into_hit(self, exe: &std::path::Path, lib: &std::path::Path) -> Hit {
        Hit {
            provider: self.provider,
            name: self.name,
            object: match self.object {
                Object::Exe => exe.to_path_buf(),
                Object::Lib => lib.to_path_buf(),
            },
            semaphore: self.semaphore,
            args: self.args,
        }
    }
}

/// What the target architecture changes in the C program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The architecture compiled for.
    pub arch: crate::Arch,
    /// 64-bit or 32-bit.
    pub is_64: bool,
}

impl Target {
    /// Two callee-saved registers free for `register ... asm("reg")` variables.
    fn pinned_regs(self) -> [&'static str; 2] {
        use crate::Arch;
        match self.arch {
            // ebx is the PIC register on i386; esi and edi are free.
            Arch::I386 => ["esi", "edi"],
            Arch::Aarch64 => ["x19", "x20"],
            Arch::Arm => ["r4", "r5"],
            Arch::Riscv64 | Arch::Riscv32 => ["s1", "s2"],
            Arch::S390x => ["r10", "r11"],
            Arch::Powerpc64 | Arch::Powerpc => ["r14", "r15"],
            Arch::Mips => ["$16", "$17"],
            Arch::Loongarch64 => ["$s0", "$s1"],
            _ => ["r12", "rbx"],
        }
    }
}

/// The C sources of one fixture program and its expected hits.
#[derive(Debug, Clone, PartialEq)]
pub struct CProgram {
    /// `main.c`.
    pub main_c: String,
    /// `sem.c`.
    pub sem_c: String,
    /// `lib.c`.
    pub lib_c: String,
    /// The hits `main` fires, in order (executable and library).
    pub hits: Vec<HitSpec>,
}

#[derive(Default)]
struct Emitter {
    globals: String,
    funcs: String,
    body: String,
    hits: Vec<HitSpec>,
}

fn probe_macro(n: usize) -> String {
    if n == 0 {
        "STAP_PROBE".into()
    } else {
        format!("STAP_PROBE{n}")
    }
}

impl Emitter {
    fn hit(&mut self, name: &str, values: &[Value]) -> usize {
        self.hits.push(HitSpec {
            provider: PROVIDER.into(),
            name: name.into(),
            object: Object::Exe,
            semaphore: false,
            args: values.iter().map(Value::expected).collect(),
        });
        self.hits.len() - 1
    }

    /// A `noinline` function whose parameters go to the probe; called with literal values
    /// (pointers: the address of a global, printed at run time).
    fn params_probe(&mut self, rng: &mut Rng, name: &str, types: &[CType], calls: usize) {
        let params: Vec<String> = types
            .iter()
            .enumerate()
            .map(|(i, t)| format!("{} p{i}", t.c_name()))
            .collect();
        let names: Vec<String> = (0..types.len()).map(|i| format!("p{i}")).collect();
        let _ = writeln!(
            self.funcs,
            "static void __attribute__((noinline)) fire_{name}({})\n{{\n    {}({PROVIDER}, {name}{}{});\n}}\n",
            params.join(", "),
            probe_macro(types.len()),
            if names.is_empty() { "" } else { ", " },
            names.join(", ")
        );
        for _ in 0..calls {
            let values: Vec<Value> = types.iter().map(|&t| Value::random(rng, t)).collect();
            let hit = self.hit(name, &values);
            let mut args = Vec::new();
            for (i, v) in values.iter().enumerate() {
                if let Value::Runtime(_) = v {
                    let _ = writeln!(
                        self.body,
                        "    usdtkit_rt({hit}, {i}, (unsigned long long)(uintptr_t)&usdtkit_target);"
                    );
                    args.push("(void *)&usdtkit_target".to_string());
                } else {
                    args.push(v.c_literal());
                }
            }
            let _ = writeln!(self.body, "    fire_{name}({});", args.join(", "));
        }
    }

    /// Globals, statics and struct fields, read at two points with different values.
    fn globals(&mut self, rng: &mut Rng) {
        let g64 = Value::random(rng, CType::I64);
        let s16 = Value::random(rng, CType::U16);
        let pa = Value::random(rng, CType::I32);
        let pb = Value::random(rng, CType::I64);
        let s8 = Value::random(rng, CType::I8);
        let _ = writeln!(
            self.globals,
            "int64_t usdtkit_g64 = {};\nstatic uint16_t usdtkit_s16 = {};\n\
             struct usdtkit_pair usdtkit_pair = {{ {}, {} }};\nstatic int8_t usdtkit_s8 = {};",
            g64.c_literal(),
            s16.c_literal(),
            pa.c_literal(),
            pb.c_literal(),
            s8.c_literal()
        );
        let probe = format!(
            "    STAP_PROBE5({PROVIDER}, globals, usdtkit_g64, usdtkit_s16, usdtkit_pair.a, \
             usdtkit_pair.b, usdtkit_s8);\n"
        );
        self.body.push_str(&probe);
        self.hit("globals", &[g64, s16, pa, pb, s8]);
        let vals: Vec<Value> = [CType::I64, CType::U16, CType::I32, CType::I64, CType::I8]
            .iter()
            .map(|&t| Value::random(rng, t))
            .collect();
        let _ = writeln!(
            self.body,
            "    usdtkit_g64 = {};\n    usdtkit_s16 = {};\n    usdtkit_pair.a = {};\n    \
             usdtkit_pair.b = {};\n    usdtkit_s8 = {};",
            vals[0].c_literal(),
            vals[1].c_literal(),
            vals[2].c_literal(),
            vals[3].c_literal(),
            vals[4].c_literal()
        );
        self.body.push_str(&probe);
        self.hit("globals", &vals);
    }

    /// Array elements with run-time indexes, in a loop.
    fn arrays(&mut self, rng: &mut Rng) {
        let arr: Vec<Value> = (0..8).map(|_| Value::random(rng, CType::I32)).collect();
        let bytes: Vec<Value> = (0..8).map(|_| Value::random(rng, CType::U8)).collect();
        let lit = |v: &[Value]| {
            v.iter()
                .map(Value::c_literal)
                .collect::<Vec<_>>()
                .join(", ")
        };
        // `usdtkit_bytes_end[-1 - 2 * i]` is a negative `int` index: where the index is a
        // 32-bit register view, it must be sign-extended (aarch64 `[x1, w2, sxtw]`).
        let _ = writeln!(
            self.globals,
            "int32_t usdtkit_arr[8] = {{ {} }};\nuint8_t usdtkit_bytes[8] = {{ {} }};\n\
             uint8_t *const usdtkit_bytes_end = usdtkit_bytes + 7;",
            lit(&arr),
            lit(&bytes)
        );
        let _ = writeln!(
            self.body,
            "    for (int i = 0; i < 3; i++)\n        STAP_PROBE4({PROVIDER}, array, i, \
             usdtkit_arr[i + usdtkit_zero], usdtkit_bytes[2 * i + usdtkit_zero], \
             usdtkit_bytes_end[-1 - 2 * i + usdtkit_zero]);"
        );
        for i in 0..3 {
            let idx = Value::Int(CType::I32, i as i128);
            let back = bytes[6 - 2 * i].clone();
            self.hit("array", &[idx, arr[i].clone(), bytes[2 * i].clone(), back]);
        }
        // Unrolled: at -O2 and above one site per iteration.
        let _ = writeln!(
            self.body,
            "#pragma GCC unroll 4\n    for (int k = 0; k < 4; k++)\n        \
             STAP_PROBE2({PROVIDER}, unrolled, k, (int64_t)usdtkit_arr[k + usdtkit_zero] * 2);"
        );
        for (k, a) in arr.iter().take(4).enumerate() {
            let Value::Int(_, a) = a else { unreachable!() };
            let vals = [
                Value::Int(CType::I32, k as i128),
                Value::Int(CType::I64, a * 2),
            ];
            self.hit("unrolled", &vals);
        }
    }

    /// Constants the compiler folds into immediates.
    fn constants(&mut self, rng: &mut Rng) {
        let types = [
            CType::I8,
            CType::U16,
            CType::I32,
            CType::I64,
            CType::U64,
            CType::U8,
        ];
        let vals: Vec<Value> = types.iter().map(|&t| Value::random(rng, t)).collect();
        let lits: Vec<String> = vals.iter().map(Value::c_literal).collect();
        let _ = writeln!(
            self.body,
            "    STAP_PROBE6({PROVIDER}, consts, {});",
            lits.join(", ")
        );
        self.hit("consts", &vals);
        // Floating-point constants: gcc and clang place them in .rodata under assembler-local
        // labels (`4f@.LC0(%rip)`), which no symbol table keeps.
        let fvals = [
            Value::random(rng, CType::Float),
            Value::random(rng, CType::Double),
        ];
        let _ = writeln!(
            self.body,
            "    STAP_PROBE2({PROVIDER}, float_consts, {}, {});",
            fvals[0].c_literal(),
            fvals[1].c_literal()
        );
        self.hit("float_consts", &fvals);
    }

    /// Values pinned to registers with `register ... asm("reg")`.
    fn pinned(&mut self, rng: &mut Rng, target: Target) {
        let [r0, r1] = target.pinned_regs();
        let t0 = if target.is_64 { CType::I64 } else { CType::I32 };
        let v0 = Value::random(rng, t0);
        let v1 = Value::random(rng, CType::I32);
        let _ = writeln!(
            self.body,
            "    {{\n        register {} pin0 asm(\"{r0}\") = {};\n        register int32_t pin1 \
             asm(\"{r1}\") = {};\n        __asm__ volatile(\"\" : \"+r\"(pin0), \"+r\"(pin1));\n        \
             STAP_PROBE2({PROVIDER}, pinned, pin0, pin1);\n    }}",
            t0.c_name(),
            v0.c_literal(),
            v1.c_literal()
        );
        self.hit("pinned", &[v0, v1]);
    }

    /// Probes with 0 to 12 arguments loaded from volatile globals (registers and stack).
    fn arg_counts(&mut self, rng: &mut Rng) {
        for n in 0..=12usize {
            let mut vals = Vec::new();
            let mut names = Vec::new();
            for k in 0..n {
                let t = *rng.pick(&INTS);
                let v = Value::random(rng, t);
                let _ = writeln!(
                    self.globals,
                    "volatile {} usdtkit_src{n}_{k} = {};",
                    t.c_name(),
                    v.c_literal()
                );
                names.push(format!("usdtkit_src{n}_{k}"));
                vals.push(v);
            }
            let name = format!("args{n}");
            let sep = if n == 0 { "" } else { ", " };
            let _ = writeln!(
                self.body,
                "    {}({PROVIDER}, {name}{sep}{});",
                probe_macro(n),
                names.join(", ")
            );
            self.hit(&name, &vals);
        }
    }

    /// One probe, many sites: an always-inlined helper, and a second arity of the same name.
    fn multi_site(&mut self, rng: &mut Rng) {
        let _ = writeln!(
            self.funcs,
            "static inline __attribute__((always_inline)) void usdtkit_inl(int32_t x, int64_t y)\n\
             {{\n    STAP_PROBE2({PROVIDER}, inlined, x, y);\n}}\n"
        );
        for _ in 0..3 {
            let x = Value::random(rng, CType::I32);
            let y = Value::random(rng, CType::I64);
            let _ = writeln!(
                self.body,
                "    usdtkit_inl({}, {});",
                x.c_literal(),
                y.c_literal()
            );
            self.hit("inlined", &[x, y]);
        }
        let a = Value::random(rng, CType::I32);
        let _ = writeln!(
            self.body,
            "    STAP_PROBE1({PROVIDER}, multi, {});",
            a.c_literal()
        );
        self.hit("multi", &[a]);
        let vals: Vec<Value> = [CType::I16, CType::U32, CType::I64]
            .iter()
            .map(|&t| Value::random(rng, t))
            .collect();
        let lits: Vec<String> = vals.iter().map(Value::c_literal).collect();
        let _ = writeln!(
            self.body,
            "    STAP_PROBE3({PROVIDER}, multi, {});",
            lits.join(", ")
        );
        self.hit("multi", &vals);
        let d = Value::random(rng, CType::U32);
        let _ = writeln!(
            self.body,
            "    STAP_PROBE1({PROVIDER}, dtrace__style, {});",
            d.c_literal()
        );
        self.hit("dtrace__style", &[d]);
    }
}

/// For lld fixtures only (`-DUSDTKIT_RELRO_PAD=N`): N bytes in RELRO (write-protected after
/// relocation), as many as the generator needs to move where RELRO ends in the file so that
/// the data segment, and the semaphores, start on RELRO's last file page.
const RELRO_PAD: &str = "#ifdef USDTKIT_RELRO_PAD\n\
     __attribute__((used, section(\".data.rel.ro.usdtkit_pad\")))\n\
     char usdtkit_relro_pad[USDTKIT_RELRO_PAD] = {1};\n\
     #endif\n\n";

const HEADER: &str = "/* Generated by `usdtkit gen`: do not edit. */\n";

/// Write the program for `seed` and `target`.
pub fn generate(rng: &mut Rng, target: Target) -> CProgram {
    let mut e = Emitter::default();
    let ints = INTS;
    e.params_probe(rng, "ints", &ints, 2);
    let misc = [
        CType::Bool,
        CType::Char,
        CType::Enum,
        CType::Float,
        CType::Double,
        CType::Ptr,
    ];
    e.params_probe(rng, "misc", &misc, 2);
    e.globals(rng);
    e.arrays(rng);
    e.constants(rng);
    e.pinned(rng, target);
    e.arg_counts(rng);
    e.multi_site(rng);

    // The same provider:name in the executable (no semaphore) and in the library.
    let shared = Value::random(rng, CType::I32);
    let _ = writeln!(
        e.body,
        "    STAP_PROBE1({PROVIDER}, shared_name, {});",
        shared.c_literal()
    );
    e.hit("shared_name", std::slice::from_ref(&shared));

    // sem.c: a semaphore shared by two sites of one probe.
    let g1 = Value::random(rng, CType::I32);
    let Value::Int(_, y) = Value::random(rng, CType::I64) else {
        unreachable!()
    };
    let y = y.min(i64::MAX as i128 - 1);
    let sem_c = format!(
        "{HEADER}#define _SDT_HAS_SEMAPHORES 1\n#include <sys/sdt.h>\n#include <stdint.h>\n\n\
         __extension__ unsigned short {PROVIDER}_guarded_semaphore __attribute__((unused))\n    \
         __attribute__((section(\".probes\")));\n\n\
         {RELRO_PAD}void usdtkit_sem_probes(int64_t y)\n{{\n    if ({PROVIDER}_guarded_semaphore)\n        \
         STAP_PROBE2({PROVIDER}, guarded, {}, y);\n    if ({PROVIDER}_guarded_semaphore)\n        \
         STAP_PROBE1({PROVIDER}, guarded, y + 1);\n}}\n",
        g1.c_literal()
    );
    let yv = Value::Int(CType::I64, y);
    let _ = writeln!(e.body, "    usdtkit_sem_probes({});", yv.c_literal());
    for vals in [vec![g1, yv], vec![Value::Int(CType::I64, y + 1)]] {
        e.hits.push(HitSpec {
            provider: PROVIDER.into(),
            name: "guarded".into(),
            object: Object::Exe,
            semaphore: true,
            args: vals.iter().map(Value::expected).collect(),
        });
    }

    // lib.c: a probe of its own and one sharing the executable's provider:name.
    let lg = Value::random(rng, CType::I64);
    let lx = Value::random(rng, CType::I32);
    let lib_c = format!(
        "{HEADER}#define _SDT_HAS_SEMAPHORES 1\n#include <sys/sdt.h>\n#include <stdint.h>\n\n\
         __extension__ unsigned short {LIB_PROVIDER}_lib_guarded_semaphore __attribute__((unused))\n    \
         __attribute__((section(\".probes\")));\n\
         __extension__ unsigned short {PROVIDER}_shared_name_semaphore __attribute__((unused))\n    \
         __attribute__((section(\".probes\")));\n\
         int64_t usdtkit_lib_global = {};\n\n{RELRO_PAD}\
         void usdtkit_lib_probes(int32_t x)\n{{\n    if ({LIB_PROVIDER}_lib_guarded_semaphore)\n        \
         STAP_PROBE2({LIB_PROVIDER}, lib_guarded, x, usdtkit_lib_global);\n    \
         if ({PROVIDER}_shared_name_semaphore)\n        STAP_PROBE1({PROVIDER}, shared_name, x);\n}}\n",
        lg.c_literal()
    );
    let _ = writeln!(e.body, "    usdtkit_lib_probes({});", lx.c_literal());
    for (provider, name, vals) in [
        (LIB_PROVIDER, "lib_guarded", vec![lx.clone(), lg]),
        (PROVIDER, "shared_name", vec![lx]),
    ] {
        e.hits.push(HitSpec {
            provider: provider.into(),
            name: name.into(),
            object: Object::Lib,
            semaphore: true,
            args: vals.iter().map(Value::expected).collect(),
        });
    }

    let main_c = format!(
        "{HEADER}#include <sys/sdt.h>\n#include \"usdtkit_fixture.h\"\n\n\
         volatile int usdtkit_zero = 0;\nint64_t usdtkit_target = 1;\n\n{}\n\
         void usdtkit_sem_probes(int64_t y);\nvoid usdtkit_lib_probes(int32_t x);\n\n{}\
         int main(int argc, char **argv)\n{{\n    if (usdtkit_wait(argc, argv) != 0)\n        \
         return 3;\n{}    return 0;\n}}\n",
        e.globals, e.funcs, e.body
    );
    CProgram {
        main_c,
        sem_c,
        lib_c,
        hits: e.hits,
    }
}

/// `structs.cc`: 16- and 24-byte structs passed by value (C++, where sys/sdt.h accepts
/// them), with their expected bytes.
pub fn structs_program(rng: &mut Rng) -> (String, Vec<HitSpec>) {
    let mut body = String::new();
    let mut hits = Vec::new();
    for _ in 0..2 {
        let words: Vec<u64> = (0..5).map(|_| rng.next_u64()).collect();
        let tag = Value::random(rng, CType::I32);
        let _ = writeln!(
            body,
            "    fire(S16{{{}ULL, {}ULL}}, S24{{{}ULL, {}ULL, {}ULL}}, {});",
            words[0],
            words[1],
            words[2],
            words[3],
            words[4],
            tag.c_literal()
        );
        let hex = |ws: &[u64]| {
            ws.iter()
                .flat_map(|w| w.to_le_bytes())
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        hits.push(HitSpec {
            provider: PROVIDER.into(),
            name: "structs".into(),
            object: Object::Exe,
            semaphore: false,
            args: vec![
                Expected::Bytes {
                    hex: hex(&words[0..2]),
                    ctype: "struct S16".into(),
                },
                Expected::Bytes {
                    hex: hex(&words[2..5]),
                    ctype: "struct S24".into(),
                },
                tag.expected(),
            ],
        });
    }
    let src = format!(
        "{HEADER}#include <sys/sdt.h>\n#include <cstdint>\n#include <cstring>\n#include <unistd.h>\n\n\
         struct S16 {{ uint64_t a, b; }};\nstruct S24 {{ uint64_t a, b, c; }};\n\n\
         static void __attribute__((noinline)) fire(S16 x, S24 y, int32_t tag)\n{{\n    \
         STAP_PROBE3({PROVIDER}, structs, x, y, tag);\n}}\n\n\
         int main(int argc, char **argv)\n{{\n    if (argc > 1 && strcmp(argv[1], \"--wait\") == 0) {{\n        \
         char c;\n        if (read(0, &c, 1) != 1)\n            return 3;\n    }}\n{body}    return 0;\n}}\n"
    );
    (src, hits)
}
