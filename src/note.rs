//! Walking `.note.stapsdt`: one note per probe site, read zero-copy from the section bytes.
//!
//! The walk never stops at a bad note. A note whose sizes do not fit the section is reported,
//! and the walk resynchronises at the next 4-byte-aligned position that holds a plausible
//! `stapsdt` note header, so the probes after it stay usable.

use object::endian::{BigEndian, Endian, LittleEndian};

use crate::elf::ByteOrder;
use crate::error::{NoteError, NoteErrorKind};

/// The owner name of USDT notes.
pub const STAPSDT_NAME: &[u8] = b"stapsdt\0";
/// The note type of USDT notes (version 3 of the SystemTap note format).
pub const STAPSDT_TYPE: u32 = 3;

/// One USDT note, as written in the file (no adjustment applied).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
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

fn u32_at<E: Endian>(b: &[u8], at: usize) -> Option<u32> {
    let w: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(E::default().read_u32(w))
}

fn word_at<E: Endian, const W64: bool>(b: &[u8], at: usize) -> Option<u64> {
    if !W64 {
        return u32_at::<E>(b, at).map(u64::from);
    }
    let w: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(E::default().read_u64(w))
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Total length of the note at `off` (header, padded name and padded descriptor), if its
/// sizes fit in the section.
fn note_len<E: Endian>(sec: &[u8], off: usize) -> Option<(usize, usize, usize)> {
    let namesz = u32_at::<E>(sec, off)? as usize;
    let descsz = u32_at::<E>(sec, off + 4)? as usize;
    let desc_off = off.checked_add(12)?.checked_add(align4(namesz))?;
    let end = desc_off.checked_add(descsz)?;
    (end <= sec.len()).then_some((namesz, desc_off, descsz))
}

/// Whether a plausible stapsdt note header starts at `off`.
fn plausible_header<E: Endian>(sec: &[u8], off: usize) -> bool {
    u32_at::<E>(sec, off) == Some(STAPSDT_NAME.len() as u32)
        && u32_at::<E>(sec, off + 8) == Some(STAPSDT_TYPE)
        && sec.get(off + 12..off + 20) == Some(STAPSDT_NAME)
        && note_len::<E>(sec, off).is_some()
}

/// Walk every note of a `.note.stapsdt` section. Notes of other owners or types are skipped;
/// each USDT note gives a [`RawNote`] or a [`NoteError`] naming it.
pub fn walk(
    sec: &[u8],
    is_64: bool,
    order: ByteOrder,
) -> impl Iterator<Item = Result<RawNote<'_>, NoteError>> {
    walk_from(sec, is_64, order, (0, 0))
}

/// The walk of [`walk`] from a point it passes: `(offset, index)` of a note, as
/// [`boundary_after`] gives them.
pub(crate) fn walk_from(
    sec: &[u8],
    is_64: bool,
    order: ByteOrder,
    (off, index): (usize, usize),
) -> impl Iterator<Item = Result<RawNote<'_>, NoteError>> {
    Walk {
        sec,
        is_64,
        order,
        off,
        index,
    }
}

/// The walk of [`walk_from`]: a named iterator, so that its `next` is inlined into each
/// reader's loop (a closure's would be called, once two readers walk).
struct Walk<'a> {
    sec: &'a [u8],
    is_64: bool,
    order: ByteOrder,
    off: usize,
    index: usize,
}

impl<'a> Iterator for Walk<'a> {
    type Item = Result<RawNote<'a>, NoteError>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        let (sec, off, index) = (self.sec, &mut self.off, &mut self.index);
        // One dispatch a note; each of the four readers has its byte order and word size
        // fixed.
        match (self.is_64, self.order) {
            (true, ByteOrder::Little) => next_note::<LittleEndian, true>(sec, off, index),
            (false, ByteOrder::Little) => next_note::<LittleEndian, false>(sec, off, index),
            (true, ByteOrder::Big) => next_note::<BigEndian, true>(sec, off, index),
            (false, ByteOrder::Big) => next_note::<BigEndian, false>(sec, off, index),
        }
    }
}

/// The offset and index of the first note that starts at or after `target`, reached by
/// reading headers only: a point [`walk`] passes, so that the notes before it and the notes
/// from it can be read apart (on two threads) and give what one walk gives. `None` when a
/// header before it is not well formed (or is padding), and when no note starts after
/// `target`: then only one walk reads the section the way it does.
pub(crate) fn boundary_after(
    sec: &[u8],
    order: ByteOrder,
    target: usize,
) -> Option<(usize, usize)> {
    match order {
        ByteOrder::Little => boundary_as::<LittleEndian>(sec, target),
        ByteOrder::Big => boundary_as::<BigEndian>(sec, target),
    }
}

/// Where a note plausibly starts at or after `target`, found by looking for a stapsdt
/// header rather than walking every header before it; the note's index is not known (0).
/// Not always a point [`walk`] passes: a note's descriptor can hold bytes that read as a
/// header. A walk of the notes before such a point ends in a note that does not fit (an
/// error), so only a reader that gives up at the first error may split here.
#[cfg(feature = "attach")]
pub(crate) fn boundary_near(sec: &[u8], order: ByteOrder, target: usize) -> Option<(usize, usize)> {
    let plausible = |off: usize| match order {
        ByteOrder::Little => plausible_header::<LittleEndian>(sec, off),
        ByteOrder::Big => plausible_header::<BigEndian>(sec, off),
    };
    let from = target.checked_add(12)?;
    memchr::memmem::find_iter(sec.get(from..)?, STAPSDT_NAME)
        .map(|at| from + at - 12)
        .find(|&off| off % 4 == 0 && plausible(off))
        .map(|off| (off, 0))
}

fn boundary_as<E: Endian>(sec: &[u8], target: usize) -> Option<(usize, usize)> {
    let (mut off, mut index) = (0, 0);
    while off < target {
        if sec.get(off..off + 12)?.iter().all(|&b| b == 0) {
            return None;
        }
        let (_, desc_off, descsz) = note_len::<E>(sec, off)?;
        off = align4(desc_off + descsz);
        index += 1;
    }
    (off < sec.len()).then_some((off, index))
}

/// The next USDT note at or after `off` (which it moves past the note); `index` counts every
/// note.
#[inline(always)]
fn next_note<'a, E: Endian, const W64: bool>(
    sec: &'a [u8],
    off: &mut usize,
    index: &mut usize,
) -> Option<Result<RawNote<'a>, NoteError>> {
    loop {
        if *off >= sec.len() {
            return None;
        }
        // An all-zero header is padding: the rest of the section must be padding too.
        if (sec.len() - *off < 12 || sec[*off..*off + 12].iter().all(|&b| b == 0))
            && sec[*off..].iter().all(|&b| b == 0)
        {
            return None;
        }
        let here = *off;
        let this = *index;
        *index += 1;
        let err = |kind| NoteError {
            file: None,
            index: this,
            section_offset: here as u64,
            provider: None,
            name: None,
            pc: None,
            kind,
        };
        let Some((namesz, desc_off, descsz)) = note_len::<E>(sec, here) else {
            // Resynchronise at the next plausible header, or give up on the rest.
            *off = (here + 4..sec.len())
                .step_by(4)
                .find(|&o| plausible_header::<E>(sec, o))
                .unwrap_or(sec.len());
            let why = if sec.len() - here < 12 {
                format!("{} stray bytes at the end of the section", sec.len() - here)
            } else {
                "name or descriptor size runs past the end of the section".to_string()
            };
            return Some(Err(err(NoteErrorKind::Header(why))));
        };
        *off = align4(desc_off + descsz);
        let n_type = u32_at::<E>(sec, here + 8);
        let name = &sec[here + 12..here + 12 + namesz];
        if name != STAPSDT_NAME || n_type != Some(STAPSDT_TYPE) {
            continue;
        }
        let desc = &sec[desc_off..desc_off + descsz];
        return Some(parse_desc::<E, W64>(desc).map_err(err).map(
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
    }
}

/// The three words; provider, name, both with the NUL between them, arguments; the rest.
type Desc<'a> = (u64, u64, u64, [&'a str; 4], &'a [u8]);

#[inline(always)]
fn parse_desc<E: Endian, const W64: bool>(desc: &[u8]) -> Result<Desc<'_>, NoteErrorKind> {
    let w = if W64 { 8 } else { 4 };
    let word = |i: usize| {
        word_at::<E, W64>(desc, i * w).ok_or(NoteErrorKind::Truncated(
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
    checked_strings(pc, base, semaphore, rest)
}

/// The strings of a descriptor the fast scan did not take (bytes outside ASCII, or a field
/// missing or empty): read again with checks, saying what is wrong.
#[cold]
#[inline(never)]
fn checked_strings(
    pc: u64,
    base: u64,
    semaphore: u64,
    rest: &[u8],
) -> Result<Desc<'_>, NoteErrorKind> {
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
