//! Walking `.note.stapsdt`: one note per probe site, read zero-copy from the section bytes.
//!
//! The walk never stops at a bad note. A note whose sizes do not fit the section is reported,
//! and the walk resynchronises at the next 4-byte-aligned position that holds a plausible
//! `stapsdt` note header, so the probes after it stay usable.

use crate::elf::ByteOrder;
use crate::error::{NoteError, NoteErrorKind};

/// The owner name of USDT notes.
pub const STAPSDT_NAME: &[u8] = b"stapsdt\0";
/// The note type of USDT notes (version 3 of the SystemTap note format).
pub const STAPSDT_TYPE: u32 = 3;

/// One USDT note, as written in the file (no adjustment applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawNote<'data> {
    /// Index of the note within the section, counting every note.
    pub index: usize,
    /// Offset of the note header within the section.
    pub section_offset: u64,
    /// The site address as written (before the `.stapsdt.base` adjustment).
    pub pc: u64,
    /// The link-time address of `_.stapsdt.base` the note was built against (0 if none).
    pub base: u64,
    /// Address of the semaphore, 0 when the site has none.
    pub semaphore: u64,
    /// Provider.
    pub provider: &'data str,
    /// Probe name.
    pub name: &'data str,
    /// `provider`, a NUL and `name`, as they are in the note: one string naming the probe.
    pub probe: &'data str,
    /// The argument string (may be empty).
    pub args: &'data str,
    /// Bytes after the argument string's NUL (libbpf's `usdt.h` adds one to mark `nop; nop5`).
    pub trailing: &'data [u8],
}

fn u32_at(b: &[u8], at: usize, order: ByteOrder) -> Option<u32> {
    let w: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(match order {
        ByteOrder::Little => u32::from_le_bytes(w),
        ByteOrder::Big => u32::from_be_bytes(w),
    })
}

fn word_at(b: &[u8], at: usize, is_64: bool, order: ByteOrder) -> Option<u64> {
    if !is_64 {
        return u32_at(b, at, order).map(u64::from);
    }
    let w: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(match order {
        ByteOrder::Little => u64::from_le_bytes(w),
        ByteOrder::Big => u64::from_be_bytes(w),
    })
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Total length of the note at `off` (header, padded name and padded descriptor), if its
/// sizes fit in the section.
fn note_len(sec: &[u8], off: usize, order: ByteOrder) -> Option<(usize, usize, usize)> {
    let namesz = u32_at(sec, off, order)? as usize;
    let descsz = u32_at(sec, off + 4, order)? as usize;
    let desc_off = off.checked_add(12)?.checked_add(align4(namesz))?;
    let end = desc_off.checked_add(descsz)?;
    (end <= sec.len()).then_some((namesz, desc_off, descsz))
}

/// Whether a plausible stapsdt note header starts at `off`.
fn plausible_header(sec: &[u8], off: usize, order: ByteOrder) -> bool {
    u32_at(sec, off, order) == Some(STAPSDT_NAME.len() as u32)
        && u32_at(sec, off + 8, order) == Some(STAPSDT_TYPE)
        && sec.get(off + 12..off + 20) == Some(STAPSDT_NAME)
        && note_len(sec, off, order).is_some()
}

/// Walk every note of a `.note.stapsdt` section. Notes of other owners or types are skipped;
/// each USDT note gives a [`RawNote`] or a [`NoteError`] naming it.
pub fn walk(
    sec: &[u8],
    is_64: bool,
    order: ByteOrder,
) -> impl Iterator<Item = Result<RawNote<'_>, NoteError>> {
    let mut off = 0usize;
    let mut index = 0usize;
    std::iter::from_fn(move || loop {
        if off >= sec.len() {
            return None;
        }
        // An all-zero header is padding: the rest of the section must be padding too.
        if (sec.len() - off < 12 || sec[off..off + 12].iter().all(|&b| b == 0))
            && sec[off..].iter().all(|&b| b == 0)
        {
            return None;
        }
        let here = off;
        let this = index;
        index += 1;
        let err = |kind| NoteError {
            index: this,
            section_offset: here as u64,
            provider: None,
            name: None,
            pc: None,
            kind,
        };
        let Some((namesz, desc_off, descsz)) = note_len(sec, off, order) else {
            // Resynchronise at the next plausible header, or give up on the rest.
            off = (here + 4..sec.len())
                .step_by(4)
                .find(|&o| plausible_header(sec, o, order))
                .unwrap_or(sec.len());
            let why = if sec.len() - here < 12 {
                format!("{} stray bytes at the end of the section", sec.len() - here)
            } else {
                "name or descriptor size runs past the end of the section".to_string()
            };
            return Some(Err(err(NoteErrorKind::Header(why))));
        };
        off = align4(desc_off + descsz);
        let n_type = u32_at(sec, here + 8, order);
        let name = &sec[here + 12..here + 12 + namesz];
        if name != STAPSDT_NAME || n_type != Some(STAPSDT_TYPE) {
            continue;
        }
        let desc = &sec[desc_off..desc_off + descsz];
        return Some(parse_desc(desc, is_64, order).map_err(err).map(
            |(pc, base, semaphore, [provider, name, probe, args], trailing)| RawNote {
                index: this,
                section_offset: here as u64,
                pc,
                base,
                semaphore,
                provider,
                name,
                probe,
                args,
                trailing,
            },
        ));
    })
}

/// The three words; provider, name, both with the NUL between them, arguments; the rest.
type Desc<'a> = (u64, u64, u64, [&'a str; 4], &'a [u8]);

fn parse_desc(desc: &[u8], is_64: bool, order: ByteOrder) -> Result<Desc<'_>, NoteErrorKind> {
    let w = if is_64 { 8 } else { 4 };
    let word = |i: usize| {
        word_at(desc, i * w, is_64, order).ok_or(NoteErrorKind::Truncated(
            "shorter than its three address words",
        ))
    };
    let (pc, base, semaphore) = (word(0)?, word(1)?, word(2)?);
    let rest = &desc[3 * w..];
    if let Some((text, [p_end, n_end, a_end])) = crate::sys::text::ascii_fields::<3>(rest) {
        if p_end > 0 && n_end > p_end + 1 {
            let fields = [
                &text[..p_end],
                &text[p_end + 1..n_end],
                &text[..n_end],
                &text[n_end + 1..],
            ];
            return Ok((pc, base, semaphore, fields, &rest[a_end + 1..]));
        }
    }
    // The checked path, which also says what is wrong.
    let mut nuls = memchr::memchr_iter(0, rest);
    let p_end = nuls
        .next()
        .ok_or(NoteErrorKind::Truncated("no NUL after the provider"))?;
    let n_end = nuls
        .next()
        .ok_or(NoteErrorKind::Truncated("no NUL after the probe name"))?;
    let a_end = nuls
        .next()
        .ok_or(NoteErrorKind::Truncated("no NUL after the argument string"))?;
    // One UTF-8 check for the three strings (NUL is valid UTF-8 and never inside a
    // multi-byte sequence); on failure, say which one is bad.
    let text = std::str::from_utf8(&rest[..a_end]).map_err(|e| {
        let at = e.valid_up_to();
        NoteErrorKind::NotUtf8(if at < p_end {
            "provider"
        } else if at < n_end {
            "probe name"
        } else {
            "argument string"
        })
    })?;
    let provider = &text[..p_end];
    let name = &text[p_end + 1..n_end];
    let args = &text[n_end + 1..];
    let rest = &rest[a_end + 1..];
    if provider.is_empty() {
        return Err(NoteErrorKind::Empty("provider"));
    }
    if name.is_empty() {
        return Err(NoteErrorKind::Empty("probe name"));
    }
    let probe = &text[..n_end];
    Ok((pc, base, semaphore, [provider, name, probe, args], rest))
}
