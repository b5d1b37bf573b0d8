//! Java-properties syntax (zoo.cfg) and JVM `-D` flags, as text in and entries out.
//!
//! Pure string handling: no I/O, no knowledge of what any key means (that is `settings`).
//!
//! # Syntax (Java properties, as `java.util.Properties.load`)
//!
//! ```text
//! file     = { line }
//! line     = blank | comment | entry
//! comment  = ws* ("#" | "!") any*                    (a whole line; never continued)
//! entry    = ws* key [ ws* ("=" | ":") ] ws* value
//! key      = { char except unescaped "=", ":", space, tab, form feed }
//! value    = rest of the logical line
//! escapes  = \t \n \r \f \uXXXX, and "\" before any other char stands for that char
//! a physical line ending in an odd number of "\" continues on the next line, whose leading
//! whitespace is dropped; keys and values are trimmed (QuorumPeerConfig trims both)
//! ```
//!
//! A key given twice keeps its last value (with a warning). The file is read as UTF-8 (Java
//! reads ISO-8859-1; the two agree on ASCII, which is what zoo.cfg files contain).

use log::debug;

use super::ConfigError;

/// Java system properties, as given by `-Dname=value` JVM flags.
///
/// Kept in the order given; for a name given twice the last value wins, as with `java`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemProperties {
    entries: Vec<(String, String)>,
}

impl SystemProperties {
    /// No properties.
    pub fn new() -> SystemProperties {
        SystemProperties::default()
    }

    /// Collects the `-D` flags among `flags` (e.g. the words of `SERVER_JVMFLAGS`); other JVM
    /// flags are ignored with a debug line.
    pub fn from_jvm_flags<I, S>(flags: I) -> SystemProperties
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut props = SystemProperties::new();
        for flag in flags {
            let flag = flag.as_ref();
            if !props.add_jvm_flag(flag) {
                debug!("JVM flag {flag} ignored");
            }
        }
        props
    }

    /// Records `flag` if it is a `-Dname=value` (or `-Dname`, an empty value) flag; returns
    /// whether it was one.
    pub fn add_jvm_flag(&mut self, flag: &str) -> bool {
        let Some(definition) = flag.strip_prefix("-D") else {
            return false;
        };
        if definition.is_empty() {
            return false;
        }
        match definition.split_once('=') {
            Some((name, value)) => self.set(name, value),
            None => self.set(definition, ""),
        }
        true
    }

    /// Sets `name` to `value`, overriding an earlier value.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.entries.push((name.into(), value.into()));
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Every definition in the order given (a name may repeat).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Whether no property is set.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// One `key=value` entry of a properties file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// The key, unescaped and trimmed.
    pub key: String,
    /// The value, unescaped and trimmed.
    pub value: String,
    /// 1-based line on which the entry starts.
    pub line: usize,
}

/// Splits Java-properties text into entries, in file order (see the module doc for the
/// grammar). Only a malformed `\uXXXX` escape is an error.
pub fn parse_properties(text: &str) -> Result<Vec<Property>, ConfigError> {
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = normalized.split('\n').collect();
    let mut entries = Vec::new();
    let mut next = 0;
    while next < lines.len() {
        let line = next + 1;
        let first = lines[next].trim_start_matches(is_properties_space);
        next += 1;
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        let mut logical = String::new();
        let mut current = first;
        loop {
            let trailing = current.len() - current.trim_end_matches('\\').len();
            if trailing.is_multiple_of(2) {
                logical.push_str(current);
                break;
            }
            logical.push_str(&current[..current.len() - 1]);
            match lines.get(next) {
                Some(continued) => {
                    current = continued.trim_start_matches(is_properties_space);
                    next += 1;
                }
                None => break,
            }
        }
        entries.push(split_entry(&logical, line)?);
    }
    Ok(entries)
}

fn is_properties_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{c}')
}

/// Splits one logical line into key and value, unescaping both.
fn split_entry(logical: &str, line: usize) -> Result<Property, ConfigError> {
    let chars: Vec<char> = logical.chars().collect();
    let mut key = String::new();
    let mut pos = 0;
    while pos < chars.len() {
        match chars[pos] {
            '\\' => pos = unescape(&chars, pos, &mut key, line)?,
            '=' | ':' => break,
            c if is_properties_space(c) => break,
            c => {
                key.push(c);
                pos += 1;
            }
        }
    }
    while pos < chars.len() && is_properties_space(chars[pos]) {
        pos += 1;
    }
    if pos < chars.len() && matches!(chars[pos], '=' | ':') {
        pos += 1;
    }
    let mut value = String::new();
    while pos < chars.len() {
        match chars[pos] {
            '\\' => pos = unescape(&chars, pos, &mut value, line)?,
            c => {
                value.push(c);
                pos += 1;
            }
        }
    }
    Ok(Property { key: key.trim().to_string(), value: value.trim().to_string(), line })
}

/// Decodes the escape starting at `chars[pos] == '\\'` into `out`; returns the next position.
fn unescape(
    chars: &[char],
    pos: usize,
    out: &mut String,
    line: usize,
) -> Result<usize, ConfigError> {
    let Some(&escaped) = chars.get(pos + 1) else {
        return Ok(pos + 1);
    };
    let simple = match escaped {
        't' => Some('\t'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        'f' => Some('\u{c}'),
        'u' => None,
        other => Some(other),
    };
    if let Some(c) = simple {
        out.push(c);
        return Ok(pos + 2);
    }
    let malformed = || ConfigError::Syntax { line, reason: "malformed \\uxxxx escape".to_string() };
    let unit_at = |at: usize| -> Option<u32> {
        let digits: String = chars.get(at..at + 4)?.iter().collect();
        u32::from_str_radix(&digits, 16).ok()
    };
    let unit = unit_at(pos + 2).ok_or_else(malformed)?;
    let mut next = pos + 6;
    let code = if (0xd800..0xdc00).contains(&unit) {
        // A high surrogate: Java strings are UTF-16, so a pair spells one character.
        let low = (chars.get(next) == Some(&'\\') && chars.get(next + 1) == Some(&'u'))
            .then(|| unit_at(next + 2))
            .flatten()
            .filter(|low| (0xdc00..0xe000).contains(low))
            .ok_or_else(malformed)?;
        next += 6;
        0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00)
    } else {
        unit
    };
    out.push(char::from_u32(code).ok_or_else(malformed)?);
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_accept_equals_colon_and_space_separators() {
        let entries = parse_properties("a=1\nb: 2\nc 3\n  d  =  4  \ne\n").unwrap();
        let pairs: Vec<(&str, &str)> =
            entries.iter().map(|p| (p.key.as_str(), p.value.as_str())).collect();
        assert_eq!(pairs, [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4"), ("e", "")]);
        assert_eq!(entries[3].line, 4);
    }

    #[test]
    fn properties_skip_comments_and_blank_lines() {
        let text = "# comment\n! also a comment\n   # indented\n\n\t\nkey=value # not a comment\n";
        let entries = parse_properties(text).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].value, "value # not a comment");
        assert_eq!(entries[0].line, 6);
    }

    #[test]
    fn properties_continue_lines_ending_in_an_odd_backslash_count() {
        let text = "list=a,\\\n      b,\\\r\n  c\npath=C:\\\\\nnext=1\\";
        let entries = parse_properties(text).unwrap();
        assert_eq!(entries[0].value, "a,b,c");
        assert_eq!(entries[1].value, "C:\\");
        assert_eq!(entries[2].key, "next");
        assert_eq!(entries[2].value, "1");
    }

    #[test]
    fn properties_unescape_keys_and_values() {
        let text = "a\\=b=c\\:d\\te\nu=\\u0041\\u00e9\\ud83d\\ude00\nx\\ y=z";
        let entries = parse_properties(text).unwrap();
        assert_eq!((entries[0].key.as_str(), entries[0].value.as_str()), ("a=b", "c:d\te"));
        assert_eq!(entries[1].value, "Aé😀");
        assert_eq!((entries[2].key.as_str(), entries[2].value.as_str()), ("x y", "z"));
    }

    #[test]
    fn properties_reject_malformed_unicode_escapes() {
        for text in ["a=\\u12", "a=\\uzzzz", "\n\na=\\ud800x"] {
            let e = parse_properties(text).unwrap_err();
            assert!(matches!(e, ConfigError::Syntax { .. }), "{text:?}: {e}");
        }
        assert_eq!(
            parse_properties("\n\nk=\\u12").unwrap_err().to_string(),
            "line 3: malformed \\uxxxx escape"
        );
    }

    #[test]
    fn jvm_flags_yield_only_d_definitions() {
        let flags = "-Xmx512m -XX:+UseG1GC -Dzookeeper.snapCount=1000 -Dlog4j.configuration=x \
                     -Dflag -D -Dzookeeper.4lw.commands.whitelist=* -Da=b=c";
        let p = SystemProperties::from_jvm_flags(flags.split_whitespace());
        assert_eq!(p.get("zookeeper.snapCount"), Some("1000"));
        assert_eq!(p.get("zookeeper.4lw.commands.whitelist"), Some("*"));
        assert_eq!(p.get("flag"), Some(""));
        assert_eq!(p.get("a"), Some("b=c"));
        assert_eq!(p.get("-Xmx512m"), None);
        assert_eq!(p.iter().count(), 5);
    }
}
