//! A minimal line editor for the interactive shell: raw terminal mode through `stty` (std
//! only, no termios binding), cursor movement, kill commands, history and tab completion.
//!
//! Runs on the main thread while a prompt is shown. Raw mode is entered per line and always
//! restored (also on error) by [`RawMode`]'s drop; without a usable `stty` the caller falls
//! back to plain line reading.

use std::io::{self, Read, Write};
use std::process::{Command, Stdio};

/// The terminal in non-canonical, no-echo mode until dropped.
struct RawMode {
    saved: String,
}

impl RawMode {
    fn enter() -> Option<RawMode> {
        let out = Command::new("stty").arg("-g").stdin(Stdio::inherit()).output().ok()?;
        if !out.status.success() {
            return None;
        }
        let saved = String::from_utf8(out.stdout).ok()?.trim().to_owned();
        let ok = Command::new("stty")
            .args(["-icanon", "-echo", "-isig", "-ixon", "min", "1", "time", "0"])
            .stdin(Stdio::inherit())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then_some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = Command::new("stty").arg(&self.saved).stdin(Stdio::inherit()).status();
    }
}

/// What reading a line produced.
pub enum ReadLine {
    /// A line (without the newline).
    Line(String),
    /// Ctrl-C: the line was abandoned.
    Interrupted,
    /// Ctrl-D on an empty line, or end of input.
    Eof,
}

/// The editor: history survives across lines.
pub struct Editor {
    history: Vec<String>,
}

/// Completes the word ending at the cursor: gets the line up to the cursor, returns the
/// candidates for its last word (whole words).
pub type Completer<'a> = &'a mut dyn FnMut(&str) -> Vec<String>;

impl Editor {
    /// Checks that raw mode works on this terminal.
    pub fn new() -> Option<Editor> {
        RawMode::enter().map(|_| Editor { history: Vec::new() })
    }

    /// Reads one line with `prompt`.
    pub fn read_line(&mut self, prompt: &str, complete: Completer<'_>) -> io::Result<ReadLine> {
        let raw = RawMode::enter();
        if raw.is_none() {
            return Err(io::Error::other("cannot enter raw mode"));
        }
        let mut out = io::stdout();
        let mut line: Vec<char> = Vec::new();
        let mut pos = 0usize;
        let mut hist_index = self.history.len();
        let mut stash = String::new();
        redraw(&mut out, prompt, &line, pos)?;
        let mut input = io::stdin().lock();
        loop {
            let Some(c) = read_char(&mut input)? else { return Ok(ReadLine::Eof) };
            match c {
                '\r' | '\n' => {
                    write!(out, "\r\n")?;
                    out.flush()?;
                    let text: String = line.iter().collect();
                    if !text.trim().is_empty() && self.history.last() != Some(&text) {
                        self.history.push(text.clone());
                    }
                    return Ok(ReadLine::Line(text));
                }
                '\u{3}' => {
                    write!(out, "^C\r\n")?;
                    out.flush()?;
                    return Ok(ReadLine::Interrupted);
                }
                '\u{4}' => {
                    if line.is_empty() {
                        write!(out, "\r\n")?;
                        return Ok(ReadLine::Eof);
                    }
                    if pos < line.len() {
                        line.remove(pos);
                    }
                }
                '\u{7f}' | '\u{8}' if pos > 0 => {
                    pos -= 1;
                    line.remove(pos);
                }
                '\u{1}' => pos = 0,
                '\u{5}' => pos = line.len(),
                '\u{2}' => pos = pos.saturating_sub(1),
                '\u{6}' => pos = (pos + 1).min(line.len()),
                '\u{b}' => line.truncate(pos),
                '\u{15}' => {
                    line.drain(..pos);
                    pos = 0;
                }
                '\u{17}' => {
                    let mut start = pos;
                    while start > 0 && line[start - 1] == ' ' {
                        start -= 1;
                    }
                    while start > 0 && line[start - 1] != ' ' {
                        start -= 1;
                    }
                    line.drain(start..pos);
                    pos = start;
                }
                '\u{c}' => write!(out, "\x1b[H\x1b[2J")?,
                '\t' => {
                    let before: String = line[..pos].iter().collect();
                    let candidates = complete(&before);
                    let word_start = before.rfind(' ').map(|i| i + 1).unwrap_or(0);
                    let word = &before[word_start..];
                    let prefix = common_prefix(&candidates);
                    if prefix.len() > word.len() && prefix.starts_with(word) {
                        let extra: Vec<char> = prefix[word.len()..].chars().collect();
                        let n = extra.len();
                        line.splice(pos..pos, extra);
                        pos += n;
                        if candidates.len() == 1 && !prefix.ends_with('/') {
                            line.insert(pos, ' ');
                            pos += 1;
                        }
                    } else if candidates.len() > 1 {
                        write!(out, "\r\n{}\r\n", candidates.join("  "))?;
                    }
                }
                '\u{1b}' => match read_escape(&mut input)? {
                    Some('A') if hist_index > 0 => {
                        if hist_index == self.history.len() {
                            stash = line.iter().collect();
                        }
                        hist_index -= 1;
                        line = self.history[hist_index].chars().collect();
                        pos = line.len();
                    }
                    Some('B') if hist_index < self.history.len() => {
                        hist_index += 1;
                        line = if hist_index == self.history.len() {
                            stash.chars().collect()
                        } else {
                            self.history[hist_index].chars().collect()
                        };
                        pos = line.len();
                    }
                    Some('C') => pos = (pos + 1).min(line.len()),
                    Some('D') => pos = pos.saturating_sub(1),
                    Some('H') => pos = 0,
                    Some('F') => pos = line.len(),
                    Some('3') if pos < line.len() => {
                        line.remove(pos);
                    }
                    _ => {}
                },
                c if !c.is_control() => {
                    line.insert(pos, c);
                    pos += 1;
                }
                _ => {}
            }
            redraw(&mut out, prompt, &line, pos)?;
        }
    }
}

fn redraw(out: &mut impl Write, prompt: &str, line: &[char], pos: usize) -> io::Result<()> {
    let text: String = line.iter().collect();
    write!(out, "\r{prompt}{text}\x1b[K")?;
    let back = line.len() - pos;
    if back > 0 {
        write!(out, "\x1b[{back}D")?;
    }
    out.flush()
}

/// One UTF-8 character from the terminal; `None` at end of input.
fn read_char(input: &mut impl Read) -> io::Result<Option<char>> {
    let mut first = [0u8; 1];
    if input.read(&mut first)? == 0 {
        return Ok(None);
    }
    let len = match first[0] {
        b if b < 0x80 => return Ok(Some(b as char)),
        b if b >= 0xf0 => 4,
        b if b >= 0xe0 => 3,
        _ => 2,
    };
    let mut buf = vec![first[0]; 1];
    for _ in 1..len {
        let mut b = [0u8; 1];
        if input.read(&mut b)? == 0 {
            return Ok(None);
        }
        buf.push(b[0]);
    }
    Ok(Some(std::str::from_utf8(&buf).ok().and_then(|s| s.chars().next()).unwrap_or('?')))
}

/// After ESC: `[X` or `OX` gives X; `[3~` (delete) gives '3'.
fn read_escape(input: &mut impl Read) -> io::Result<Option<char>> {
    let mut b = [0u8; 1];
    if input.read(&mut b)? == 0 || (b[0] != b'[' && b[0] != b'O') {
        return Ok(None);
    }
    if input.read(&mut b)? == 0 {
        return Ok(None);
    }
    if b[0].is_ascii_digit() {
        let digit = b[0] as char;
        // Consume up to the final '~' (bounded: sequences are short).
        for _ in 0..4 {
            if input.read(&mut b)? == 0 || b[0] == b'~' {
                break;
            }
        }
        return Ok(Some(digit));
    }
    Ok(Some(b[0] as char))
}

/// The longest common prefix of `words`.
pub fn common_prefix(words: &[String]) -> String {
    let Some(first) = words.first() else { return String::new() };
    let mut end = first.len();
    for w in &words[1..] {
        let same = first.bytes().zip(w.bytes()).take_while(|(a, b)| a == b).count();
        end = end.min(same);
    }
    while !first.is_char_boundary(end) {
        end -= 1;
    }
    first[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_prefixes() {
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(common_prefix(&w(&["getAcl", "getAllChildrenNumber", "get"])), "get");
        assert_eq!(common_prefix(&w(&["ls"])), "ls");
        assert_eq!(common_prefix(&w(&["a", "b"])), "");
        assert_eq!(common_prefix(&[]), "");
    }

    #[test]
    fn characters_and_escapes_decode() {
        let mut input: &[u8] = "é\x1b[D\x1b[3~".as_bytes();
        assert_eq!(read_char(&mut input).unwrap(), Some('é'));
        assert_eq!(read_char(&mut input).unwrap(), Some('\u{1b}'));
        assert_eq!(read_escape(&mut input).unwrap(), Some('D'));
        assert_eq!(read_char(&mut input).unwrap(), Some('\u{1b}'));
        assert_eq!(read_escape(&mut input).unwrap(), Some('3'));
        assert_eq!(read_char(&mut input).unwrap(), None);
    }
}
