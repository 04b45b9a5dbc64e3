//! From a decoded argument to what the evaluation script reads (a recipe of registers,
//! offsets and memory), register names as gdb or qemu's stub know them, and from the raw bits
//! the script prints back to a value.

use serde_json::{json, Value};

use crate::arch::Arch;
use crate::arg::{ArgSpec, Location, Reg, RegClass, SymbolLocation};
use crate::check::compare::Observed;

/// The registers of qemu-user's gdb stub in 'g' packet order, and the name of the program
/// counter, for architectures the script reads without gdb. LoongArch (qemu 7.2,
/// `target/loongarch/gdbstub.c`, the layout of gdb's `loongarch-base64.xml`): `r0`..`r31`,
/// `orig_a0`, `pc`, `badv`, 8 bytes each.
pub(super) fn raw_layout(arch: &str) -> Option<(Vec<String>, &'static str)> {
    match arch {
        "loongarch64" => {
            let mut regs: Vec<String> = (0..32).map(|i| format!("r{i}")).collect();
            regs.extend(["orig_a0", "pc", "badv"].map(String::from));
            Some((regs, "pc"))
        }
        _ => None,
    }
}

/// gdb's name for a canonical register (where the two differ).
fn gdb_name(arch: Arch, word_bits: u32, reg: Reg) -> String {
    let name = reg.name();
    let num = |p: &str| name.strip_prefix(p).and_then(|n| n.parse::<usize>().ok());
    match arch {
        Arch::Arm => match name {
            "r13" => "sp".into(),
            "r14" => "lr".into(),
            "r15" => "pc".into(),
            _ => name.into(),
        },
        Arch::Mips => match num("r") {
            Some(n) if word_bits == 64 => MIPS_N64[n].into(),
            Some(n) => MIPS_O32[n].into(),
            None => name.into(),
        },
        _ => name.into(),
    }
}

/// gdb's register names for mips n64 and o32 (`$4` is `a0` in both; `$8` is `a4` or `t0`).
const MIPS_N64: [&str; 32] = [
    "zero", "at", "v0", "v1", "a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "t0", "t1", "t2",
    "t3", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "t8", "t9", "k0", "k1", "gp", "sp", "s8",
    "ra",
];
const MIPS_O32: [&str; 32] = [
    "zero", "at", "v0", "v1", "a0", "a1", "a2", "a3", "t0", "t1", "t2", "t3", "t4", "t5", "t6",
    "t7", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "t8", "t9", "k0", "k1", "gp", "sp", "s8",
    "ra",
];

/// gdb's name for a floating-point register read as a `size`-byte value.
fn gdb_fp_name(arch: Arch, reg: Reg, size: u32) -> String {
    let name = reg.name();
    match (arch, name.strip_prefix('v')) {
        (Arch::Aarch64, Some(n)) => format!("{}{n}", if size == 8 { 'd' } else { 's' }),
        _ => name.into(),
    }
}

/// How the evaluation script reads one decoded argument: the same reading usdtkit's BPF
/// side does (see [`crate::attach::plan`]), over gdb's view of the emulated process.
pub(super) fn recipe(arch: Arch, word_bits: u32, spec: &ArgSpec) -> Value {
    let size = spec.size;
    if size > 8 {
        return json!({ "error": format!("{size}-byte argument: a probe reads at most 8 bytes") });
    }
    let g = |r: &Reg| gdb_name(arch, word_bits, *r);
    let mem = |regs: Vec<Value>, off: i64, bias: bool| json!({ "mem": regs, "off": off, "bias": bias, "size": size });
    match &spec.location {
        Location::Const(v) => json!({ "const": v, "size": size }),
        Location::Reg { reg, shift } => {
            if size * 8 > word_bits {
                return json!({ "error": format!(
                    "{size}-byte argument in a {}-byte register: the rest of the value is not in the note",
                    word_bits / 8
                ) });
            }
            json!({ "reg": g(reg), "shift": shift, "size": size })
        }
        Location::FpReg { reg } => json!({ "fp": gdb_fp_name(arch, *reg, size), "size": size }),
        Location::Deref { base, offset } if base.def().class == RegClass::Ip => {
            mem(vec![], *offset, true)
        }
        Location::Deref { base, offset } => mem(vec![json!([g(base), 1, null])], *offset, false),
        Location::Sib {
            base,
            index,
            extend,
            scale,
            offset,
        } => {
            let mut regs: Vec<Value> = base.iter().map(|b| json!([g(b), 1, null])).collect();
            regs.push(json!([g(index), scale, extend.name()]));
            mem(regs, *offset, false)
        }
        Location::Symbol(s) => {
            let SymbolLocation {
                symbol,
                base,
                index,
                scale,
                address,
                ..
            } = &**s;
            let Some(addr) = address else {
                return json!({ "error": format!("symbol `{symbol}` is not resolved") });
            };
            let base = base.filter(|b| b.def().class != RegClass::Ip);
            let mut regs: Vec<Value> = base.iter().map(|b| json!([g(b), 1, null])).collect();
            regs.extend(index.iter().map(|i| json!([g(i), scale, null])));
            // With a base register the symbol's link-time value is added as written; without
            // one the operand is the symbol's own address, wherever the object is loaded.
            mem(regs, *addr as i64, base.is_none())
        }
    }
}

/// One value the script printed, interpreted per the decoded argument (size, sign, float).
pub(super) fn observed(spec: Option<&ArgSpec>, v: &Value) -> Observed {
    if let Some(e) = v.get("error") {
        return Observed::Error(e.as_str().unwrap_or("unreadable").to_string());
    }
    if let Some(f) = v.get("float").and_then(Value::as_f64) {
        return Observed::Float(f);
    }
    let Some(spec) = spec else {
        return Observed::Error("argument not decoded".into());
    };
    let Some(bits) = v
        .get("bits")
        .and_then(|b| b.as_u64().or_else(|| b.as_i64().map(|i| i as u64)))
    else {
        return Observed::Error(format!("unexpected script output {v}"));
    };
    let width = 8 * spec.size.min(8);
    let raw = if width == 64 {
        bits
    } else {
        bits & ((1u64 << width) - 1)
    };
    if spec.float {
        return match spec.size {
            4 => Observed::Float(f64::from(f32::from_bits(raw as u32))),
            8 => Observed::Float(f64::from_bits(raw)),
            n => Observed::Error(format!("{n}-byte float")),
        };
    }
    if spec.signed && width < 64 && raw >> (width - 1) & 1 == 1 {
        Observed::Int(i128::from(raw) - (1i128 << width))
    } else if spec.signed {
        Observed::Int(i128::from(raw as i64))
    } else {
        Observed::Int(i128::from(raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arg::decode_args;

    fn spec(arch: Arch, text: &str) -> ArgSpec {
        decode_args(arch, text).remove(0).decoded.expect("decodes")
    }

    #[test]
    fn raw_bits_become_values_per_size_sign_and_float() {
        let s = spec(Arch::Aarch64, "-1@x0");
        assert_eq!(
            observed(Some(&s), &json!({"bits": 0x1ff})),
            Observed::Int(-1)
        );
        let u = spec(Arch::Aarch64, "2@x0");
        assert_eq!(
            observed(Some(&u), &json!({"bits": 0x1_ffff})),
            Observed::Int(0xffff)
        );
        let q = spec(Arch::Aarch64, "-8@x0");
        assert_eq!(
            observed(Some(&q), &json!({"bits": u64::MAX})),
            Observed::Int(-1)
        );
        let f = spec(Arch::Aarch64, "4f@x0");
        assert_eq!(
            observed(Some(&f), &json!({"bits": 1.5f32.to_bits()})),
            Observed::Float(1.5)
        );
        assert_eq!(
            observed(Some(&s), &json!({"error": "no"})),
            Observed::Error("no".into())
        );
    }

    #[test]
    fn recipes_name_gdb_registers_and_refuse_what_the_bpf_side_refuses() {
        let r = recipe(Arch::Arm, 32, &spec(Arch::Arm, "-4@r13"));
        assert_eq!(r["reg"], "sp");
        let r = recipe(Arch::Mips, 64, &spec(Arch::Mips, "-4@$8"));
        assert_eq!(r["reg"], "a4");
        let r = recipe(Arch::Mips, 32, &spec(Arch::Mips, "-4@$8"));
        assert_eq!(r["reg"], "t0");
        let r = recipe(Arch::Arm, 32, &spec(Arch::Arm, "-8@r2"));
        assert!(r["error"].as_str().unwrap().contains("4-byte register"));
        let r = recipe(Arch::Aarch64, 64, &spec(Arch::Aarch64, "-4@[x1, 8]"));
        assert_eq!(r["mem"], json!([["x1", 1, null]]));
        assert_eq!(r["off"], 8);
        let r = recipe(
            Arch::Aarch64,
            64,
            &spec(Arch::Aarch64, "-4@[x6, w1, sxtw #2]"),
        );
        assert_eq!(r["mem"], json!([["x6", 1, null], ["x1", 4, "sxtw"]]));
        let r = recipe(Arch::Aarch64, 64, &spec(Arch::Aarch64, "8f@d3"));
        assert_eq!(r["fp"], "d3");
    }
}
