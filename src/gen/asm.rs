//! The x86-64 assembly fixture: probe sites whose operands use the forms compilers rarely
//! emit (`%ah`, summed displacements, SIB without base or scale, `sym+N(%rip)` in both orders,
//! no size prefix, `8f@` in a general register, `%xmm`, sizes 16/24/48, hex immediates), with
//! per-site and shared semaphores and hyphenated names. Before each site the code loads known
//! values into the registers and memory the operands name, so every argument has a value
//! the generator knows.

use std::fmt::Write;

use super::csrc::{HitSpec, Object, PROVIDER};
use super::manifest::Expected;
use super::rng::Rng;
use super::value::{extend, CType, Value};

/// Offset of the scratch area (`0(%rsp)`) from `%rbp` after the prologue below.
const RSP_FROM_RBP: i64 = -296;

struct Site {
    setup: Vec<String>,
    args: String,
    expected: Vec<Expected>,
    sem: Option<&'static str>,
    /// The site: 0 `nop`, 5 `nop; nop5`, 10 `nop; nop10` (see `usdt-note.inc`).
    form: u8,
}

fn int(v: i128, size: u32, signed: bool, ctype: CType) -> Expected {
    Value::Int(ctype, extend(v, size, signed)).expected()
}

fn u(v: u64) -> i128 {
    v as i128
}

fn hex_bytes(words: &[u64]) -> String {
    words
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn probes(rng: &mut Rng, data: &Data) -> Vec<(&'static str, Site)> {
    let mut v = Vec::new();
    let r: Vec<u64> = (0..4).map(|_| rng.next_u64()).collect();
    v.push((
        "high_bytes",
        Site {
            setup: ["rax", "rbx", "rcx", "rdx"]
                .iter()
                .zip(&r)
                .map(|(reg, x)| format!("movabs ${x:#x}, %{reg}"))
                .collect(),
            args: "1@%ah -1@%bh 1@%ch -1@%dh".into(),
            expected: r
                .iter()
                .enumerate()
                .map(|(i, x)| int(u(x >> 8), 1, i % 2 == 1, CType::U8))
                .collect(),
            sem: None,
            form: 0,
        },
    ));

    let x = rng.next_u64();
    let (t2, t3) = (1 + rng.below(20) as i64, 1 + rng.below(20) as i64);
    let t1 = RSP_FROM_RBP + 16 - t2 - t3;
    v.push((
        "summed_disp",
        Site {
            setup: vec![format!("movabs ${x:#x}, %r8"), "mov %r8, 16(%rsp)".into()],
            args: format!("-8@{t1}+{t2}+{t3}(%rbp) 4@8+8(%rsp)"),
            expected: vec![
                int(u(x), 8, true, CType::I64),
                int(u(x), 4, false, CType::U32),
            ],
            sem: None,
            form: 0,
        },
    ));

    let t = &data.table;
    v.push((
        "sib_forms",
        Site {
            setup: vec![
                "lea usdtkit_table(%rip), %rcx".into(),
                "sub $16, %rcx".into(),
                "shr $3, %rcx".into(),
                "lea usdtkit_table+8(%rip), %rdx".into(),
                "lea usdtkit_table(%rip), %rax".into(),
                "mov $2, %ebx".into(),
            ],
            args: "8@16(,%rcx,8) -4@(,%rdx) 8@(%rax,%rbx,8) 2@8(%rax,%rbx,4)".into(),
            expected: vec![
                int(u(t[0]), 8, false, CType::U64),
                int(u(t[1]), 4, true, CType::I32),
                int(u(t[2]), 8, false, CType::U64),
                int(u(t[2]), 2, false, CType::U16),
            ],
            sem: None,
            form: 0,
        },
    ));

    v.push((
        "sym_forms",
        Site {
            setup: vec!["mov $3, %ecx".into()],
            args: "8@usdtkit_counter+8(%rip) 8@8+usdtkit_counter(%rip) \
                   -4@usdtkit_table2-8(%rip) -4@usdtkit_local.6(%rip) 8@usdtkit_table(,%rcx,8)"
                .into(),
            expected: vec![
                int(u(data.counter[1]), 8, false, CType::U64),
                int(u(data.counter[1]), 8, false, CType::U64),
                int(u(t[3]), 4, true, CType::I32),
                int(data.local.into(), 4, true, CType::I32),
                int(u(t[3]), 8, false, CType::U64),
            ],
            sem: None,
            form: 0,
        },
    ));

    let (a, b) = (rng.next_u64(), rng.next_u64());
    let k = rng.below(2001) as i64 - 1000;
    v.push((
        "no_size",
        Site {
            setup: vec![
                format!("movabs ${a:#x}, %rax"),
                format!("movabs ${b:#x}, %r9"),
                "mov %r9, (%rsp)".into(),
            ],
            args: format!("%rax (%rsp) ${k}"),
            expected: vec![
                int(u(a), 8, false, CType::U64),
                int(u(b), 8, false, CType::U64),
                int(k.into(), 8, false, CType::U64),
            ],
            sem: None,
            form: 0,
        },
    ));

    let f = |rng: &mut Rng, t| match Value::random(rng, t) {
        Value::Float(_, x) => x,
        _ => unreachable!(),
    };
    let (d1, f1, d2, d3) = (
        f(rng, CType::Double),
        f(rng, CType::Float),
        f(rng, CType::Double),
        f(rng, CType::Double),
    );
    v.push((
        "float_gpr",
        Site {
            setup: vec![
                format!("movabs ${:#x}, %rax", d1.to_bits()),
                format!("mov ${:#x}, %ecx", (f1 as f32).to_bits()),
                format!("movabs ${:#x}, %r10", d2.to_bits()),
                "mov %r10, 8(%rsp)".into(),
            ],
            args: "8f@%rax 4f@%ecx 8f@8(%rsp)".into(),
            expected: vec![
                Value::Float(CType::Double, d1).expected(),
                Value::Float(CType::Float, f1).expected(),
                Value::Float(CType::Double, d2).expected(),
            ],
            sem: None,
            form: 0,
        },
    ));

    let i = rng.next_u64() as u32;
    v.push((
        "vector",
        Site {
            setup: vec![
                format!("movabs ${:#x}, %rax", d3.to_bits()),
                "movq %rax, %xmm0".into(),
                format!("mov ${i:#x}, %eax"),
                "movd %eax, %xmm1".into(),
            ],
            args: "8f@%xmm0 -4@%xmm1".into(),
            expected: vec![
                Value::Float(CType::Double, d3).expected(),
                int(i.into(), 4, true, CType::I32),
            ],
            sem: None,
            form: 0,
        },
    ));

    let words: Vec<u64> = (0..6).map(|_| rng.next_u64()).collect();
    let mut setup = Vec::new();
    for (k, w) in words.iter().enumerate() {
        setup.push(format!("movabs ${w:#x}, %r11"));
        setup.push(format!("mov %r11, {}(%rsp)", 32 + 8 * k));
    }
    let bytes = |n: usize, ctype: &str| Expected::Bytes {
        hex: hex_bytes(&words[..n]),
        ctype: ctype.into(),
    };
    v.push((
        "big_sizes",
        Site {
            setup,
            args: "16@32(%rsp) 24@32(%rsp) -48@32(%rsp)".into(),
            expected: vec![
                bytes(2, "16 bytes"),
                bytes(3, "24 bytes"),
                bytes(6, "48 bytes"),
            ],
            sem: None,
            form: 0,
        },
    ));

    let (h1, h2, h3, h4, h5) = (
        rng.below(0x100),
        1 + rng.below(0x1000),
        1 + rng.below(128),
        0x8000 + rng.below(0x8000),
        rng.next_u64() as u32,
    );
    v.push((
        "hex_imm",
        Site {
            setup: vec![],
            args: format!("8@${h1:#x} -8@$-{h2:#x} 1@$-{h3} -2@${h4:#x} 4@${h5:#x}"),
            expected: vec![
                int(h1.into(), 8, false, CType::U64),
                int(-i128::from(h2), 8, true, CType::I64),
                int(-i128::from(h3), 1, false, CType::U8),
                int(h4.into(), 2, true, CType::I16),
                int(h5.into(), 4, false, CType::U32),
            ],
            sem: None,
            form: 0,
        },
    ));

    let (s1, s2, s3, s4) = (
        rng.next_u64(),
        rng.next_u64(),
        rng.next_u64() as u32,
        rng.next_u64() as u32,
    );
    v.push((
        "shared-sem",
        Site {
            setup: vec![format!("movabs ${s1:#x}, %rdi")],
            args: "8@%rdi".into(),
            expected: vec![int(u(s1), 8, false, CType::U64)],
            sem: Some("usdtkit_shared_sem"),
            form: 0,
        },
    ));
    v.push((
        "shared-sem",
        Site {
            setup: vec![
                format!("movabs ${s2:#x}, %rsi"),
                format!("mov ${s3:#x}, %edx"),
            ],
            args: "8@%rsi -4@%edx".into(),
            expected: vec![
                int(u(s2), 8, false, CType::U64),
                int(s3.into(), 4, true, CType::I32),
            ],
            sem: Some("usdtkit_shared_sem"),
            form: 0,
        },
    ));
    // A `nop; nop5` site: attached at +1 on kernels with optimized uprobes, where operands
    // relative to the instruction pointer must still resolve.
    let n5 = rng.next_u64() as u32;
    v.push((
        "nop5_site",
        Site {
            setup: vec![format!("mov ${n5:#x}, %edx"), "mov $3, %ecx".into()],
            args: "8@usdtkit_counter(%rip) -4@%edx 8@usdtkit_table(,%rcx,8)".into(),
            expected: vec![
                int(u(data.counter[0]), 8, false, CType::U64),
                int(n5.into(), 4, true, CType::I32),
                int(u(t[3]), 8, false, CType::U64),
            ],
            sem: None,
            form: 5,
        },
    ));
    // The site the current libbpf/usdt usdt.h writes on x86-64: `nop; nop10`, with operands
    // every reader takes, so that what a peer does is about the site alone.
    let n10 = rng.next_u64();
    let d10 = rng.next_u64() as u32;
    v.push((
        "nop10_site",
        Site {
            setup: vec![
                format!("movabs ${n10:#x}, %rsi"),
                format!("mov ${d10:#x}, %ecx"),
                "mov %rsi, 8(%rsp)".into(),
            ],
            args: "8@%rsi -4@%ecx 8@8(%rsp)".into(),
            expected: vec![
                int(u(n10), 8, false, CType::U64),
                int(d10.into(), 4, true, CType::I32),
                int(u(n10), 8, false, CType::U64),
            ],
            sem: None,
            form: 10,
        },
    ));
    v.push((
        "per__site",
        Site {
            setup: vec![],
            args: String::new(),
            expected: vec![],
            sem: Some("usdtkit_site_sem_a"),
            form: 0,
        },
    ));
    v.push((
        "per__site",
        Site {
            setup: vec![format!("mov ${s4:#x}, %r8d")],
            args: "4@%r8d".into(),
            expected: vec![int(s4.into(), 4, false, CType::U32)],
            sem: Some("usdtkit_site_sem_b"),
            form: 0,
        },
    ));
    v
}

struct Data {
    counter: [u64; 2],
    table: [u64; 5],
    local: i32,
}

/// The generated `forms.S`, its C driver `forms_main.c`, and the expected hits.
pub fn program(rng: &mut Rng) -> (String, String, Vec<HitSpec>) {
    let data = Data {
        counter: [rng.next_u64(), rng.next_u64()],
        table: [
            rng.next_u64(),
            rng.next_u64(),
            rng.next_u64(),
            rng.next_u64(),
            rng.next_u64(),
        ],
        local: rng.next_u64() as i32,
    };
    let mut s = String::from(
        "/* Generated by `usdtkit gen`: do not edit. */\n#include \"usdt-note.inc\"\n\n\
         \x20       .section .probes,\"aw\",@progbits\n        .balign 2\n\
         usdtkit_shared_sem: .2byte 0\nusdtkit_site_sem_a: .2byte 0\nusdtkit_site_sem_b: .2byte 0\n\n\
         \x20       .data\n        .balign 8\n",
    );
    let _ = writeln!(
        s,
        "usdtkit_counter: .8byte {:#x}, {:#x}\nusdtkit_table: .8byte {:#x}, {:#x}, {:#x}, {:#x}\n\
         usdtkit_table2: .8byte {:#x}\nusdtkit_local.6: .4byte {:#x}\n",
        data.counter[0],
        data.counter[1],
        data.table[0],
        data.table[1],
        data.table[2],
        data.table[3],
        data.table[4],
        data.local as u32
    );
    s.push_str(
        "        .text\n        .globl usdtkit_asm_probes\n        .type usdtkit_asm_probes, @function\n\
         usdtkit_asm_probes:\n        push %rbp\n        mov %rsp, %rbp\n        push %rbx\n\
         \x20       push %r12\n        push %r13\n        push %r14\n        push %r15\n        sub $256, %rsp\n",
    );
    let mut hits = Vec::new();
    for (name, site) in probes(rng, &data) {
        for line in &site.setup {
            let _ = writeln!(s, "        {line}");
        }
        match site.sem {
            Some(sem) => {
                let _ = writeln!(
                    s,
                    "        cmpw $0, {sem}(%rip)\n        je 1f\n        USDT {PROVIDER}, {name}, \"{}\", {sem}\n1:",
                    site.args
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    "        USDT {PROVIDER}, {name}, \"{}\", 0, {}",
                    site.args, site.form
                );
            }
        }
        hits.push(HitSpec {
            provider: PROVIDER.into(),
            name: name.into(),
            object: Object::Exe,
            semaphore: site.sem.is_some(),
            args: site.expected,
        });
    }
    s.push_str(
        "        add $256, %rsp\n        pop %r15\n        pop %r14\n        pop %r13\n        pop %r12\n\
         \x20       pop %rbx\n        pop %rbp\n        ret\n        .size usdtkit_asm_probes, .-usdtkit_asm_probes\n\
         \x20       .section .note.GNU-stack,\"\",@progbits\n",
    );
    let main_c = "/* Generated by `usdtkit gen`: do not edit. */\n#include \"usdtkit_fixture.h\"\n\n\
                  volatile int usdtkit_zero = 0;\nvoid usdtkit_asm_probes(void);\n\n\
                  int main(int argc, char **argv)\n{\n    if (usdtkit_wait(argc, argv) != 0)\n        return 3;\n\
                  \x20   usdtkit_asm_probes();\n    return 0;\n}\n"
        .to_string();
    (s, main_c, hits)
}
