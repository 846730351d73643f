//! JSON output that is safe on a terminal too.
//!
//! serde_json escapes the C0 controls but writes DEL, the C1 controls (U+009B is a CSI to many
//! terminals) and the bidi and zero-width characters raw. This formatter writes those as
//! `\uXXXX` as well: the JSON means the same, and `bouncer … --json` on a terminal shows
//! nothing a client smuggled into a comment.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::Formatter;

use crate::text::is_unsafe;

/// serde_json's compact formatter, escaping what [`is_unsafe`] names.
struct SafeFormatter;

impl Formatter for SafeFormatter {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if is_unsafe(c) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// Writes `value` as one line of JSON.
pub fn write_json(out: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    let mut serializer = serde_json::Serializer::with_formatter(&mut *out, SafeFormatter);
    value.serialize(&mut serializer)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::write_json;

    #[test]
    fn unsafe_characters_are_escaped_and_round_trip() {
        let text = "a\u{1b}[31m\u{9b}2J\u{7f}\u{202e}\né";
        let mut out = Vec::new();
        write_json(&mut out, &text).unwrap();
        let written = String::from_utf8(out).unwrap();
        assert_eq!(written, "\"a\\u001b[31m\\u009b2J\\u007f\\u202e\\né\"\n");
        assert_eq!(serde_json::from_str::<String>(&written).unwrap(), text);
    }
}
