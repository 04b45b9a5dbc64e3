//! The architecture-independent part of the argument grammar: splitting the argument string,
//! the `[-]SIZE[f]@` prefix, integers and summed displacements.

use super::MAX_ARG_SIZE;
use crate::error::ArgErrorKind;

/// Split an argument string on (ASCII) whitespace, keeping bracketed operands whole
/// (aarch64's `[x22, 20]` contains a space) and joining a token that ends in a comma to the
/// next one (clang prints loongarch memory operands as `$sp, 8`).
pub(crate) fn split_args(s: &str) -> impl Iterator<Item = &str> {
    let b = s.as_bytes();
    let mut pos = 0;
    std::iter::from_fn(move || {
        while b.get(pos).is_some_and(u8::is_ascii_whitespace) {
            pos += 1;
        }
        if pos == b.len() {
            return None;
        }
        let start = pos;
        let mut depth = 0i32;
        // The last byte that is not whitespace: a comma joins the next token.
        let mut last = b' ';
        let mut end = b.len();
        for (i, &c) in b.iter().enumerate().skip(start) {
            if c.is_ascii_whitespace() {
                if depth <= 0 && last != b',' {
                    end = i;
                    break;
                }
            } else {
                match c {
                    b'[' => depth += 1,
                    b']' => depth -= 1,
                    _ => {}
                }
                last = c;
            }
        }
        pos = end;
        let mut e = end;
        while e > start && b[e - 1].is_ascii_whitespace() {
            e -= 1;
        }
        // `start` and `e` are next to ASCII bytes (or the ends): char boundaries.
        Some(&s[start..e])
    })
}

/// Split `[-]SIZE[f]@OPERAND` into (size, signed, float, operand). Without an `@` the whole
/// text is the operand: 8 bytes, unsigned.
pub(crate) fn split_prefix(text: &str) -> Result<(u32, bool, bool, &str), ArgErrorKind> {
    // What compilers write: one digit of 1, 2, 4 or 8, then `@` (or `f@`).
    let b = text.as_bytes();
    let (signed, at) = match b.first() {
        Some(b'-') => (true, 1),
        _ => (false, 0),
    };
    if let [d @ (b'1' | b'2' | b'4' | b'8'), rest @ ..] = &b[at..] {
        let float = rest.first() == Some(&b'f');
        let op = at + 1 + usize::from(float);
        if b.get(op) == Some(&b'@') && b.len() > op + 1 {
            // Everything before `op` is ASCII: a char boundary.
            return Ok((u32::from(d - b'0'), signed, float, &text[op + 1..]));
        }
    }
    let Some(at) = text.bytes().position(|b| b == b'@') else {
        return Ok((8, false, false, text));
    };
    let (prefix, operand) = (&text[..at], &text[at + 1..]);
    let bad = || ArgErrorKind::BadSize(prefix.to_string());
    let (signed, rest) = match prefix.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, prefix),
    };
    let (float, digits) = match rest.strip_suffix('f') {
        Some(d) => (true, d),
        None => (false, rest),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let size: u32 = digits.parse().map_err(|_| bad())?;
    let valid = matches!(size, 1 | 2 | 4 | 8) || (size > 8 && size <= MAX_ARG_SIZE);
    if !valid {
        return Err(bad());
    }
    if operand.is_empty() {
        return Err(ArgErrorKind::Syntax {
            operand: String::new(),
            reason: "empty operand".into(),
        });
    }
    Ok((size, signed, float, operand))
}

/// Parse one integer: decimal or `0x` hex, with an optional leading `-` (or `+`). Values up
/// to `u64::MAX` are accepted and wrap to their two's-complement `i64`.
pub(crate) fn parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let mag = if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u64::from_str_radix(hex, 16).ok()?
    } else {
        if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        body.parse::<u64>().ok()?
    };
    if neg {
        if mag > 1u64 << 63 {
            return None;
        }
        Some((mag as i64).wrapping_neg())
    } else {
        Some(mag as i64)
    }
}

/// Whether `s` is a symbol name: `[A-Za-z_.][A-Za-z0-9_.$]*`.
pub(crate) fn is_symbol(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_' || c == b'.')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'$')
}

/// A syntax error about `operand`.
pub(crate) fn syntax(operand: &str, reason: impl Into<String>) -> ArgErrorKind {
    ArgErrorKind::Syntax {
        operand: operand.to_string(),
        reason: reason.into(),
    }
}

/// Split `disp(inner)` into the displacement and the text between the parentheses, or `None`
/// when the operand has no parentheses at all.
pub(crate) fn split_parens(op: &str) -> Result<Option<(&str, &str)>, String> {
    let bytes = op.as_bytes();
    let Some(open) = bytes.iter().position(|&b| b == b'(') else {
        return match bytes.contains(&b')') {
            true => Err("unbalanced parentheses".into()),
            false => Ok(None),
        };
    };
    let (disp, rest) = op.split_at(open);
    let inner = rest[1..]
        .strip_suffix(')')
        .ok_or("unbalanced parentheses")?;
    if disp.as_bytes().contains(&b')') || inner.bytes().any(|b| b == b'(' || b == b')') {
        return Err("nested or unbalanced parentheses".into());
    }
    Ok(Some((disp, inner)))
}

/// Split a bracketed operand `[a, b, c]` into its comma-separated parts, trimmed, or `None`
/// when the operand is not bracketed.
pub(crate) fn split_brackets(op: &str) -> Result<Option<Vec<&str>>, String> {
    let Some(body) = op.strip_prefix('[') else {
        return match op.contains(']') {
            true => Err("unbalanced brackets".into()),
            false => Ok(None),
        };
    };
    let body = body
        .strip_suffix(']')
        .ok_or("unbalanced brackets (pre-indexed `[...]!` is not a plain memory operand)")?;
    if body.contains(['[', ']']) {
        return Err("nested brackets".into());
    }
    let parts: Vec<&str> = body.split(',').map(str::trim).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err("empty part between the brackets".into());
    }
    Ok(Some(parts))
}

/// A displacement made of numbers only (`-8`, `0x10`, `-12+4`); an empty one is 0.
pub(crate) fn numeric_displacement(s: &str) -> Result<i64, String> {
    if s.starts_with('%') || s.contains('@') {
        return Err(format!("relocation operator in `{s}` is not supported"));
    }
    let d = parse_displacement(s)?;
    match d.symbol {
        Some(sym) => Err(format!("symbolic displacement `{sym}` is not supported")),
        None => Ok(d.offset),
    }
}

/// The scale of a shifted index register: `lsl #N` or `lsl N`, N from 0 to 3.
pub(crate) fn lsl_scale(s: &str) -> Result<u8, String> {
    let amount = s
        .get(..3)
        .filter(|op| op.eq_ignore_ascii_case("lsl"))
        .map(|_| s[3..].trim_start())
        .ok_or_else(|| format!("`{s}` is not an `lsl #N` index shift"))?;
    match amount.strip_prefix('#').unwrap_or(amount) {
        "0" => Ok(1),
        "1" => Ok(2),
        "2" => Ok(4),
        "3" => Ok(8),
        _ => Err(format!("index shift `{s}` is not lsl 0 to 3")),
    }
}

/// Append `offset(inner)`, leaving a zero offset out.
pub(crate) fn write_parens(out: &mut String, offset: i64, inner: &str) {
    if offset != 0 {
        out.push_str(&offset.to_string());
    }
    out.push('(');
    out.push_str(inner);
    out.push(')');
}

/// A displacement: the sum of its numeric terms and at most one symbol.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Displacement<'a> {
    pub offset: i64,
    pub symbol: Option<&'a str>,
}

/// Parse a displacement such as `-12+3+1`, `sym`, `sym+8`, `8+sym`, `sym-2` or `0x10`.
/// Numeric terms are folded into one offset; one symbol may appear, added (not subtracted).
pub(crate) fn parse_displacement(s: &str) -> Result<Displacement<'_>, String> {
    let mut d = Displacement::default();
    if s.is_empty() {
        return Ok(d);
    }
    let bytes = s.as_bytes();
    let mut start = 0;
    while start < s.len() {
        // A term runs from `start` (which may hold its sign) to the next + or - that is not
        // part of the term's own leading sign.
        let mut end = start + 1;
        while end < s.len() && bytes[end] != b'+' && bytes[end] != b'-' {
            end += 1;
        }
        let term = &s[start..end];
        let (neg, body) = match term.as_bytes()[0] {
            b'-' => (true, &term[1..]),
            b'+' => (false, &term[1..]),
            _ => (false, term),
        };
        if body.is_empty() {
            return Err(format!("empty term in `{s}`"));
        }
        if let Some(v) = parse_int(body) {
            let v = if neg { v.wrapping_neg() } else { v };
            d.offset = d
                .offset
                .checked_add(v)
                .ok_or_else(|| format!("displacement `{s}` overflows 64 bits"))?;
        } else if is_symbol(body) {
            if neg {
                return Err(format!("symbol `{body}` is subtracted in `{s}`"));
            }
            if d.symbol.replace(body).is_some() {
                return Err(format!("more than one symbol in `{s}`"));
            }
        } else {
            return Err(format!("`{body}` is neither a number nor a symbol"));
        }
        start = end;
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_respecting_brackets() {
        let v: Vec<_> = split_args("  8@x25 -4@[x22]  2@[x22, 20] -1@[x0, x1] ").collect();
        assert_eq!(v, ["8@x25", "-4@[x22]", "2@[x22, 20]", "-1@[x0, x1]"]);
        assert_eq!(split_args("").count(), 0);
        assert_eq!(split_args(" \t ").count(), 0);
        let v: Vec<_> = split_args("-4@$sp, 8 8@$r3,16 4@x0, ").collect();
        assert_eq!(v, ["-4@$sp, 8", "8@$r3,16", "4@x0,"]);
    }

    /// The splitting rule stated character by character: a token ends at whitespace outside
    /// brackets unless its last non-blank character is a comma.
    fn split_reference(s: &str) -> Vec<String> {
        let mut out = Vec::new();
        let (mut tok, mut depth, mut last) = (String::new(), 0i32, ' ');
        let ws = |c: char| c.is_ascii_whitespace();
        for c in s.chars() {
            if ws(c) && depth <= 0 && last != ',' {
                if !tok.is_empty() {
                    out.push(tok.trim_end_matches(ws).to_string());
                }
                (tok, depth, last) = (String::new(), 0, ' ');
                continue;
            }
            match c {
                '[' => depth += 1,
                ']' => depth -= 1,
                _ => {}
            }
            if !c.is_ascii_whitespace() {
                last = c;
            }
            if !(tok.is_empty() && ws(c)) {
                tok.push(c);
            }
        }
        if !tok.is_empty() {
            out.push(tok.trim_end_matches(ws).to_string());
        }
        out
    }

    #[test]
    fn splitting_agrees_with_the_rule_on_every_short_string() {
        // Every string of up to 6 characters over the characters that matter.
        let alphabet = [' ', '\t', ',', '[', ']', 'x', 'é'];
        let mut strings = vec![String::new()];
        for _ in 0..6 {
            let longer: Vec<String> = strings
                .iter()
                .filter(|s| s.chars().count() == strings.last().unwrap().chars().count())
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            strings.extend(longer);
        }
        assert!(strings.len() > 100_000);
        for s in &strings {
            assert_eq!(
                split_args(s).collect::<Vec<_>>(),
                split_reference(s),
                "{s:?}"
            );
        }
    }

    #[test]
    fn parentheses_and_brackets() {
        assert_eq!(split_parens("-8(%rbp)"), Ok(Some(("-8", "%rbp"))));
        assert_eq!(split_parens("(sp)"), Ok(Some(("", "sp"))));
        assert_eq!(split_parens("a0"), Ok(None));
        for bad in ["(a0", "a0)", "8(a0))", "((a0))", "8)(a0", "(a(0))"] {
            assert!(split_parens(bad).is_err(), "{bad}");
        }
        assert_eq!(split_brackets("[x0, 8]"), Ok(Some(vec!["x0", "8"])));
        assert_eq!(split_brackets("[ sp ]"), Ok(Some(vec!["sp"])));
        assert_eq!(split_brackets("x0"), Ok(None));
        for bad in ["[x0", "x0]", "[x0]!", "[]", "[x0,]", "[[x0]]", "[x0,,1]"] {
            assert!(split_brackets(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shifts_and_numeric_displacements() {
        assert_eq!(lsl_scale("lsl #3"), Ok(8));
        assert_eq!(lsl_scale("LSL 0"), Ok(1));
        assert!(lsl_scale("lsl #4").is_err());
        assert!(lsl_scale("sxtw").is_err());
        assert!(lsl_scale("ls").is_err());
        assert_eq!(numeric_displacement(""), Ok(0));
        assert_eq!(numeric_displacement("-12+4"), Ok(-8));
        assert!(numeric_displacement("sym+4").is_err());
        let mut s = String::new();
        write_parens(&mut s, 0, "a0");
        write_parens(&mut s, -8, "s0");
        assert_eq!(s, "(a0)-8(s0)");
    }

    #[test]
    fn prefixes() {
        assert_eq!(split_prefix("-4@%eax").unwrap(), (4, true, false, "%eax"));
        assert_eq!(split_prefix("8f@%rcx").unwrap(), (8, false, true, "%rcx"));
        assert_eq!(
            split_prefix("-4f@36(%rsp)").unwrap(),
            (4, true, true, "36(%rsp)")
        );
        assert_eq!(split_prefix("%rax").unwrap(), (8, false, false, "%rax"));
        assert_eq!(split_prefix("48@(%rsp)").unwrap().0, 48);
        assert_eq!(split_prefix("-48@(%rsp)").unwrap().0, 48);
        for bad in [
            "-7@$16", "23-@$16", "0@%rax", "@%rax", "f@%rax", "3@%rax", "x@1", "4@",
        ] {
            assert!(split_prefix(bad).is_err(), "{bad}");
        }
        assert!(split_prefix("99999999999@%rax").is_err());
    }

    #[test]
    fn integers() {
        assert_eq!(parse_int("-127"), Some(-127));
        assert_eq!(parse_int("0x1f"), Some(31));
        assert_eq!(parse_int("-0x10"), Some(-16));
        assert_eq!(parse_int("18446744073709551615"), Some(-1));
        assert_eq!(parse_int("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_int("-9223372036854775809"), None);
        assert_eq!(parse_int("18446744073709551616"), None);
        assert_eq!(parse_int("0x"), None);
        assert_eq!(parse_int("12a"), None);
        assert_eq!(parse_int(""), None);
    }

    #[test]
    fn displacements() {
        let d = parse_displacement("-12+3+1").unwrap();
        assert_eq!((d.offset, d.symbol), (-8, None));
        let d = parse_displacement("24+mp_").unwrap();
        assert_eq!((d.offset, d.symbol), (24, Some("mp_")));
        let d = parse_displacement("glob-2").unwrap();
        assert_eq!((d.offset, d.symbol), (-2, Some("glob")));
        let d = parse_displacement("seq_iter.6").unwrap();
        assert_eq!((d.offset, d.symbol), (0, Some("seq_iter.6")));
        assert!(parse_displacement("-sym").is_err());
        assert!(parse_displacement("a+b").is_err());
        assert!(parse_displacement("1++2").is_err());
        assert!(parse_displacement("9223372036854775807+1").is_err());
    }
}
