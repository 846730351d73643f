//! Text from the store made safe for a terminal.
//!
//! Rule comments and user targets hold client-written text (request paths, user ids): printed
//! raw, an escape sequence in them could recolour, rewrite or hide what an operator reads. So
//! every control character, and every invisible character that reorders or hides text, is
//! written as an escape instead.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must not reach a terminal raw: C0 and C1 controls, DEL, and the format
/// characters that reorder text (bidi), hide it (zero width) or break lines.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// Appends `c` to `out` as it is shown: itself, or an escape such as `\n`, `\x1b`, `\u{202e}`.
fn push_shown(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if !is_unsafe(c) => out.push(c),
        c if u32::from(c) <= 0xff => {
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
}

/// `s` with its unsafe characters escaped (borrowed when there are none).
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_shown(&mut out, c);
    }
    Cow::Owned(out)
}

/// `s` escaped and cut to at most `width` characters, ending in `…` when cut. An escape is
/// never split, so what is shown stays unambiguous.
pub fn fit(s: &str, width: usize) -> String {
    let mut out = String::new();
    let mut shown = 0;
    let mut piece = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        piece.clear();
        push_shown(&mut piece, c);
        let len = piece.chars().count();
        // Room is kept for the ellipsis unless this is the last character.
        let room = if chars.peek().is_some() {
            width.saturating_sub(1)
        } else {
            width
        };
        if shown + len > room {
            if width > 0 {
                out.push('…');
            }
            return out;
        }
        out.push_str(&piece);
        shown += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{escape, fit};

    #[test]
    fn controls_and_bidi_are_escaped() {
        assert_eq!(escape("GET /\u{1b}[31m\n"), "GET /\\x1b[31m\\n");
        assert_eq!(escape("a\u{9b}b\u{202e}c\u{7f}"), "a\\x9bb\\u{202e}c\\x7f");
        assert!(matches!(
            escape("plain é 日本"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn fit_cuts_without_splitting_escapes() {
        assert_eq!(fit("abcdef", 6), "abcdef");
        assert_eq!(fit("abcdefg", 6), "abcde…");
        assert_eq!(fit("ab\u{1b}cd", 5), "ab…");
        assert_eq!(fit("ab\u{1b}", 6), "ab\\x1b");
        assert_eq!(fit("abc", 0), "");
    }
}
