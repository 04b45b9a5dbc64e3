//! C types, random values of them, their C literals, and the value a probe must report.

use super::manifest::{Expected, IntValue};
use super::rng::Rng;

/// A C type a fixture passes to a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CType {
    /// `int8_t`.
    I8,
    /// `uint8_t`.
    U8,
    /// `int16_t`.
    I16,
    /// `uint16_t`.
    U16,
    /// `int32_t`.
    I32,
    /// `uint32_t`.
    U32,
    /// `int64_t`.
    I64,
    /// `uint64_t`.
    U64,
    /// `bool`.
    Bool,
    /// `char` (signed on x86).
    Char,
    /// `enum usdtkit_color` (non-negative enumerators: unsigned int).
    Enum,
    /// `float`.
    Float,
    /// `double`.
    Double,
    /// `void *`.
    Ptr,
}

/// The integer types, in size order.
pub const INTS: [CType; 8] = [
    CType::I8,
    CType::U8,
    CType::I16,
    CType::U16,
    CType::I32,
    CType::U32,
    CType::I64,
    CType::U64,
];

/// Enumerators of `enum usdtkit_color`, as declared in `usdtkit_fixture.h`.
pub const ENUMERATORS: [(&str, i128); 4] = [
    ("UC_RED", 1),
    ("UC_GREEN", 7),
    ("UC_BLUE", 42),
    ("UC_BIG", 100_000),
];

impl CType {
    /// The C spelling.
    pub fn c_name(self) -> &'static str {
        match self {
            CType::I8 => "int8_t",
            CType::U8 => "uint8_t",
            CType::I16 => "int16_t",
            CType::U16 => "uint16_t",
            CType::I32 => "int32_t",
            CType::U32 => "uint32_t",
            CType::I64 => "int64_t",
            CType::U64 => "uint64_t",
            CType::Bool => "bool",
            CType::Char => "char",
            CType::Enum => "enum usdtkit_color",
            CType::Float => "float",
            CType::Double => "double",
            CType::Ptr => "void *",
        }
    }

    /// Size in bits of an integer type (pointers and floats excluded).
    fn int_bits(self) -> Option<(u32, bool)> {
        Some(match self {
            CType::I8 | CType::Char => (8, true),
            CType::U8 | CType::Bool => (8, false),
            CType::I16 => (16, true),
            CType::U16 => (16, false),
            CType::I32 => (32, true),
            CType::U32 | CType::Enum => (32, false),
            CType::I64 => (64, true),
            CType::U64 => (64, false),
            _ => return None,
        })
    }
}

/// A value a fixture passes.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// An integer of an integer type (including bool, char and enum).
    Int(CType, i128),
    /// A `float` or `double`.
    Float(CType, f64),
    /// An address, known only at run time.
    Runtime(CType),
}

impl Value {
    /// A random value of `ty`; a quarter of integers are edge values (min, max, 0, -1).
    pub fn random(rng: &mut Rng, ty: CType) -> Value {
        match ty {
            CType::Float => Value::Float(ty, (rng.below(4001) as f64 - 2000.0) / 8.0),
            CType::Double => Value::Float(ty, (rng.below(2_000_001) as f64 - 1e6) / 64.0),
            CType::Ptr => Value::Runtime(ty),
            CType::Bool => Value::Int(ty, rng.below(2) as i128),
            CType::Char => Value::Int(ty, *rng.pick(&[b'a' as i128, b'Z' as i128, -3, 127, -128])),
            CType::Enum => Value::Int(ty, rng.pick(&ENUMERATORS).1),
            _ => {
                let (bits, signed) = ty.int_bits().expect("integer type");
                let (min, max) = if signed {
                    (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
                } else {
                    (0, (1i128 << bits) - 1)
                };
                let v = if rng.below(4) == 0 {
                    *rng.pick(&[min, max, 0, if signed { -1 } else { 1 }])
                } else {
                    min + (rng.next_u64() as i128).rem_euclid(max - min + 1)
                };
                Value::Int(ty, v)
            }
        }
    }

    /// The C type.
    pub fn ctype(&self) -> CType {
        match self {
            Value::Int(t, _) | Value::Float(t, _) | Value::Runtime(t) => *t,
        }
    }

    /// A C expression of the value's type (`(int8_t)-5`, `UC_BLUE`, `1.25f`).
    /// Not available for run-time values.
    pub fn c_literal(&self) -> String {
        match *self {
            Value::Int(CType::Enum, v) => ENUMERATORS
                .iter()
                .find(|e| e.1 == v)
                .expect("enumerator")
                .0
                .to_string(),
            Value::Int(CType::Bool, v) => (if v != 0 { "true" } else { "false" }).into(),
            Value::Int(CType::I64, v) if v == i64::MIN as i128 => {
                "(int64_t)(-9223372036854775807LL - 1)".into()
            }
            Value::Int(t @ (CType::U64 | CType::U32), v) => format!("({}){v}ULL", t.c_name()),
            Value::Int(t, v) => format!("({}){v}LL", t.c_name()),
            Value::Float(CType::Float, v) => format!("{v:?}f"),
            Value::Float(_, v) => format!("{v:?}"),
            Value::Runtime(_) => panic!("run-time values have no literal"),
        }
    }

    /// What a probe must report for this value.
    pub fn expected(&self) -> Expected {
        let ctype = self.ctype().c_name().to_string();
        match *self {
            Value::Int(_, v) => Expected::Int {
                value: IntValue::from_i128(v),
                ctype,
            },
            Value::Float(_, v) => Expected::Float { value: v, ctype },
            Value::Runtime(_) => Expected::Runtime { ctype },
        }
    }
}

/// Truncate `v` to `size` bytes, then sign- or zero-extend it: what a probe reading a
/// `[-]size@` argument holding the bits of `v` reports.
pub fn extend(v: i128, size: u32, signed: bool) -> i128 {
    let bits = size * 8;
    let mask = (1i128 << bits) - 1;
    let low = v & mask;
    if signed && low >> (bits - 1) & 1 == 1 {
        low - (1i128 << bits)
    } else {
        low
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_matches_c_conversions() {
        assert_eq!(extend(-127, 1, false), 129);
        assert_eq!(extend(-32767, 4, false), 0xffff_8001);
        assert_eq!(extend(0xffff, 2, true), -1);
        assert_eq!(extend(0x1_0000_0005, 4, true), 5);
        assert_eq!(extend(-1, 8, false), u64::MAX as i128);
        assert_eq!(extend(200, 1, true), -56);
    }

    #[test]
    fn random_values_fit_their_types() {
        let mut rng = Rng::new(7);
        for _ in 0..2000 {
            for t in INTS {
                let Value::Int(_, v) = Value::random(&mut rng, t) else {
                    panic!()
                };
                let (bits, signed) = t.int_bits().unwrap();
                assert_eq!(extend(v, bits / 8, signed), v, "{t:?} {v}");
            }
            let Value::Float(_, f) = Value::random(&mut rng, CType::Float) else {
                panic!()
            };
            assert_eq!(f as f32 as f64, f, "floats are exact in f32");
        }
    }
}
