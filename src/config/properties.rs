//! A Java `.properties` parser that keeps line numbers.
//!
//! Follows `java.util.Properties.load` (Java SE 17):
//!
//! - `key=value`, `key: value` and `key value`; whitespace around the separator is dropped,
//!   trailing whitespace of the value is kept; a second `=`/`:` belongs to the value;
//! - lines whose first non-blank character is `#` or `!` are comments (a comment is never
//!   continued);
//! - a line ending in an odd number of backslashes continues on the next line, whose leading
//!   whitespace is dropped;
//! - escapes `\t`, `\n`, `\r`, `\f`, `\uXXXX` (UTF-16, surrogate pairs combined); any other
//!   escaped character stands for itself, so `\=`, `\:`, `\ ` and `\#` can appear in keys;
//! - line terminators `\n`, `\r\n` and `\r`;
//! - the last occurrence of a duplicate key wins.
//!
//! Java's `Properties.load(InputStream)` reads ISO-8859-1. ferry takes text: `&str` input is
//! UTF-8, and [`MirrorConfig::from_path`](super::MirrorConfig::from_path) decodes a file as UTF-8,
//! falling back to ISO-8859-1 (with a notice) when it is not valid UTF-8, so both ASCII files
//! with `\u` escapes and UTF-8 files read as their authors meant. A leading byte-order mark is
//! dropped.
//!
//! # References
//! - `java.util.Properties#load(java.io.Reader)` (Java SE 17 API documentation)
//! - `clients/src/main/java/org/apache/kafka/common/utils/Utils.java` (`loadProps`)

use std::collections::BTreeMap;

use super::ConfigError;

/// One `key=value` line of a properties file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Property {
    /// The key, escapes resolved.
    pub key: String,
    /// The value, escapes resolved, leading whitespace dropped, trailing whitespace kept.
    pub value: String,
    /// The 1-based line where the logical line starts.
    pub line: usize,
    /// The first character of the value whose escaping backslash Java silently drops: `\.`
    /// reads as `.` and `C:\certs` as `C:certs`. Backslashes before `t n r f u`, `\`, space,
    /// `= : # !` and quotes are ordinary escapes and are not reported.
    pub dropped_backslash: Option<char>,
}

/// The parsed file: every property in file order, duplicates included.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    entries: Vec<Property>,
}

impl Properties {
    /// Parses properties text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
        let chars: Vec<char> = text.chars().collect();
        let mut reader = LineReader {
            chars: &chars,
            pos: 0,
            line: 1,
        };
        let mut entries = Vec::new();
        while let Some((logical, line)) = reader.next_logical_line() {
            let (key, value) = split_key_value(&logical);
            let (value, dropped_backslash) = unescape(value, line)?;
            entries.push(Property {
                key: unescape(key, line)?.0,
                value,
                line,
                dropped_backslash,
            });
        }
        Ok(Self { entries })
    }

    /// Every property in file order, including overridden duplicates.
    pub fn entries(&self) -> &[Property] {
        &self.entries
    }

    /// The effective property for `key` (the last occurrence).
    pub fn get(&self, key: &str) -> Option<&Property> {
        self.entries.iter().rev().find(|p| p.key == key)
    }

    /// The effective key/value map (last occurrence wins).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.entries
            .iter()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect()
    }

    /// `true` when the file holds no property.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

struct LineReader<'a> {
    chars: &'a [char],
    pos: usize,
    line: usize,
}

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{0C}')
}

impl LineReader<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    /// Consumes a line terminator at the current position, if any.
    fn eat_terminator(&mut self) -> bool {
        match self.peek() {
            Some('\n') => {
                self.pos += 1;
                self.line += 1;
                true
            }
            Some('\r') => {
                self.pos += 1;
                if self.peek() == Some('\n') {
                    self.pos += 1;
                }
                self.line += 1;
                true
            }
            _ => false,
        }
    }

    /// The next logical line (continuations joined, comments and blank lines skipped) and the
    /// line it starts on.
    fn next_logical_line(&mut self) -> Option<(String, usize)> {
        // Skip blank lines, leading whitespace and comment lines.
        loop {
            while self.peek().is_some_and(is_blank) {
                self.pos += 1;
            }
            match self.peek()? {
                '\n' | '\r' => {
                    self.eat_terminator();
                }
                '#' | '!' => {
                    while self.peek().is_some_and(|c| c != '\n' && c != '\r') {
                        self.pos += 1;
                    }
                    self.eat_terminator();
                }
                _ => break,
            }
        }
        let start_line = self.line;
        let mut buf = String::new();
        loop {
            while let Some(c) = self.peek().filter(|&c| c != '\n' && c != '\r') {
                buf.push(c);
                self.pos += 1;
            }
            let trailing_backslashes = buf.chars().rev().take_while(|&c| c == '\\').count();
            if trailing_backslashes % 2 == 1 {
                buf.pop();
                if !self.eat_terminator() {
                    // A continuation at the end of input continues into nothing.
                    break;
                }
                while self.peek().is_some_and(is_blank) {
                    self.pos += 1;
                }
            } else {
                self.eat_terminator();
                break;
            }
        }
        Some((buf, start_line))
    }
}

/// Splits a logical line into raw (still escaped) key and value.
fn split_key_value(line: &str) -> (&str, &str) {
    let mut key_end = line.len();
    let mut value_start = line.len();
    let mut has_separator = false;
    let mut preceding_backslash = false;
    for (i, c) in line.char_indices() {
        if !preceding_backslash && (c == '=' || c == ':') {
            key_end = i;
            value_start = i + 1;
            has_separator = true;
            break;
        }
        if !preceding_backslash && is_blank(c) {
            key_end = i;
            value_start = i + c.len_utf8();
            break;
        }
        preceding_backslash = c == '\\' && !preceding_backslash;
    }
    let rest = line.get(value_start..).unwrap_or_default();
    let mut skip = 0;
    for c in rest.chars() {
        if is_blank(c) {
            skip += c.len_utf8();
        } else if !has_separator && (c == '=' || c == ':') {
            has_separator = true;
            skip += 1;
        } else {
            break;
        }
    }
    (
        line.get(..key_end).unwrap_or_default(),
        rest.get(skip..).unwrap_or_default(),
    )
}

/// Resolves escapes (`loadConvert`); also returns the first character whose backslash was
/// dropped although it escapes nothing.
fn unescape(raw: &str, line: usize) -> Result<(String, Option<char>), ConfigError> {
    if !raw.contains('\\') {
        return Ok((raw.to_owned(), None));
    }
    let mut dropped = None;
    let mut units: Vec<u16> = Vec::with_capacity(raw.len());
    let mut chars = raw.chars();
    let mut buf = [0u16; 2];
    while let Some(c) = chars.next() {
        let c = if c == '\\' {
            match chars.next() {
                None => break,
                Some('u') => {
                    let mut value: u16 = 0;
                    for _ in 0..4 {
                        let digit = chars.next().and_then(|h| h.to_digit(16)).ok_or_else(|| {
                            ConfigError::Syntax {
                                line,
                                reason: "malformed \\uxxxx escape: four hex digits expected"
                                    .to_owned(),
                            }
                        })?;
                        // Four hex digits fit in 16 bits.
                        value = (value << 4) | digit as u16;
                    }
                    units.push(value);
                    continue;
                }
                Some('t') => '\t',
                Some('n') => '\n',
                Some('r') => '\r',
                Some('f') => '\u{0C}',
                Some(other) => {
                    if dropped.is_none()
                        && !matches!(other, '\\' | ' ' | '=' | ':' | '#' | '!' | '"' | '\'')
                    {
                        dropped = Some(other);
                    }
                    other
                }
            }
        } else {
            c
        };
        units.extend_from_slice(c.encode_utf16(&mut buf));
    }
    String::from_utf16(&units)
        .map(|s| (s, dropped))
        .map_err(|_| ConfigError::Syntax {
            line,
            reason: "a \\u escape leaves an unpaired UTF-16 surrogate".to_owned(),
        })
}

/// Escapes a key so that [`Properties::parse`] reads it back unchanged (Java's `saveConvert`
/// with every non-ASCII or control character written as `\uXXXX`).
pub fn escape_key(key: &str) -> String {
    escape(key, true)
}

/// Escapes a value so that [`Properties::parse`] reads it back unchanged.
pub fn escape_value(value: &str) -> String {
    escape(value, false)
}

fn escape(text: &str, is_key: bool) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut buf = [0u16; 2];
    for (i, c) in text.chars().enumerate() {
        match c {
            ' ' if is_key || i == 0 => out.push_str("\\ "),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{0C}' => out.push_str("\\f"),
            '=' | ':' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c if (' '..='~').contains(&c) => out.push(c),
            c => {
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04X}"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> Vec<(String, String, usize)> {
        Properties::parse(text)
            .unwrap()
            .entries()
            .iter()
            .map(|p| (p.key.clone(), p.value.clone(), p.line))
            .collect()
    }

    fn kv(k: &str, v: &str, line: usize) -> (String, String, usize) {
        (k.to_owned(), v.to_owned(), line)
    }

    #[test]
    fn separators() {
        assert_eq!(
            parse("a=1\nb: 2\nc 3\nd   =   4\ne:=5\nf = = 6\ng\nh=\n"),
            vec![
                kv("a", "1", 1),
                kv("b", "2", 2),
                kv("c", "3", 3),
                kv("d", "4", 4),
                kv("e", "=5", 5),
                kv("f", "= 6", 6),
                kv("g", "", 7),
                kv("h", "", 8),
            ]
        );
    }

    #[test]
    fn whitespace_rules() {
        // Leading whitespace of the line and of the value dropped, trailing kept.
        assert_eq!(parse("   key = value  \n"), vec![kv("key", "value  ", 1)]);
        assert_eq!(parse("\tkey\t\tvalue"), vec![kv("key", "value", 1)]);
        assert_eq!(parse("key\u{0C}=v"), vec![kv("key", "v", 1)]);
    }

    #[test]
    fn comments_and_blank_lines() {
        assert_eq!(
            parse("# c\n! c\n\n   # indented\nk=v # not a comment\n  \nx=y"),
            vec![kv("k", "v # not a comment", 5), kv("x", "y", 7)]
        );
        // A comment ending in a backslash does not continue.
        assert_eq!(parse("# c \\\nk=v"), vec![kv("k", "v", 2)]);
    }

    #[test]
    fn continuation_lines() {
        assert_eq!(
            parse("topics = a, \\\n          b, \\\n   c\nnext=1"),
            vec![kv("topics", "a, b, c", 1), kv("next", "1", 4)]
        );
        // An even number of backslashes is an escaped backslash, not a continuation.
        assert_eq!(
            parse("k=a\\\\\nj=b"),
            vec![kv("k", "a\\", 1), kv("j", "b", 2)]
        );
        // A continued line that looks like a comment is part of the value.
        assert_eq!(parse("k=a\\\n#b"), vec![kv("k", "a#b", 1)]);
        // A continuation followed by an empty line ends the value.
        assert_eq!(
            parse("k=a\\\n\nj=b"),
            vec![kv("k", "a", 1), kv("j", "b", 3)]
        );
        // Continuation at end of input.
        assert_eq!(parse("k=a\\"), vec![kv("k", "a", 1)]);
        // CRLF and CR terminators.
        assert_eq!(
            parse("a=1\r\nb=2\\\r\n  3\rc=4"),
            vec![kv("a", "1", 1), kv("b", "23", 2), kv("c", "4", 4)]
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(
            parse(r"k=a\tb\nc\rd\fe"),
            vec![kv("k", "a\tb\nc\rd\u{0C}e", 1)]
        );
        assert_eq!(parse(r"k=\u0041\u00e9"), vec![kv("k", "Aé", 1)]);
        assert_eq!(parse(r"k=\uD83D\uDE00"), vec![kv("k", "😀", 1)]);
        assert_eq!(parse(r"a\=b\:c\ d=v"), vec![kv("a=b:c d", "v", 1)]);
        assert_eq!(parse(r"k=\q\#"), vec![kv("k", "q#", 1)]);
        assert_eq!(
            parse("k=é"),
            vec![kv("k", "é", 1)],
            "UTF-8 input is taken as is"
        );
        // A value starting with escaped spaces keeps them.
        assert_eq!(parse(r"k=\  v"), vec![kv("k", "  v", 1)]);
    }

    #[test]
    fn dropped_backslashes_are_recorded() {
        let p = Properties::parse("topics=customer\\..*\nok=a\\=b\\ c\\\\d\\tx\nwin=C:\\certs\n")
            .unwrap();
        let dropped: Vec<_> = p.entries().iter().map(|e| e.dropped_backslash).collect();
        assert_eq!(dropped, [Some('.'), None, Some('c')]);
        assert_eq!(p.entries()[0].value, "customer..*");
        assert_eq!(p.entries()[2].value, "C:certs");
    }

    #[test]
    fn malformed_escapes_name_the_line() {
        let err = Properties::parse("a=1\nb=\\u12G4").unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { line: 2, .. }), "{err}");
        let err = Properties::parse("a=1\n\nb=\\uD83D").unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { line: 3, .. }), "{err}");
    }

    #[test]
    fn last_duplicate_wins_and_bom_dropped() {
        let p = Properties::parse("\u{FEFF}k=1\nk=2\n").unwrap();
        assert_eq!(p.entries().len(), 2);
        assert_eq!(
            p.get("k").map(|p| (p.value.as_str(), p.line)),
            Some(("2", 2))
        );
        assert_eq!(p.to_map().get("k").map(String::as_str), Some("2"));
    }

    #[test]
    fn escape_writes_what_java_writes() {
        assert_eq!(escape_key("a b=c:d"), r"a\ b\=c\:d");
        assert_eq!(escape_value(" a b"), r"\ a b");
        assert_eq!(escape_value("é"), r"\u00E9");
        assert_eq!(escape_value("#!"), r"\#\!");
    }

    proptest! {
        /// An arbitrary map written with escaping parses back equal.
        #[test]
        fn round_trip(map in proptest::collection::btree_map(any::<String>(), any::<String>(), 0..8)) {
            let mut text = String::new();
            for (k, v) in &map {
                text.push_str(&escape_key(k));
                text.push('=');
                text.push_str(&escape_value(v));
                text.push('\n');
            }
            let parsed = Properties::parse(&text).unwrap();
            prop_assert_eq!(parsed.to_map(), map.clone());
            prop_assert_eq!(parsed.entries().len(), map.len());
            for (i, p) in parsed.entries().iter().enumerate() {
                prop_assert_eq!(p.line, i + 1);
            }
        }

        /// Separators and layout do not change what is read.
        #[test]
        fn layout_variants(key in "[a-z][a-z0-9.]{0,12}", value in "[a-zA-Z0-9.,*]{0,12}", sep in prop_oneof![Just("="), Just(":"), Just(" = "), Just("  "), Just(" : ")]) {
            prop_assume!(!value.is_empty() || !sep.trim().is_empty());
            let text = format!("  {key}{sep}{value}\n");
            let parsed = Properties::parse(&text).unwrap();
            prop_assert_eq!(parsed.get(&key).map(|p| p.value.as_str()), Some(value.as_str()));
        }
    }
}
