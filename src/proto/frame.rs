//! Length-prefixed framing (wire-protocol.md §2) and four-letter-word detection, as pure
//! functions over a receive buffer so they can be tested without sockets.

/// What the start of a receive buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// Not enough bytes yet.
    Incomplete,
    /// A whole frame: payload at `4..4 + len`.
    Complete {
        /// Payload length.
        len: usize,
    },
    /// The length prefix is negative or larger than the limit: close the connection.
    BadLength(i32),
}

/// Looks for one frame at the start of `buf`, with payloads limited to `max_len` bytes.
pub fn parse(buf: &[u8], max_len: usize) -> Frame {
    if buf.len() < 4 {
        return Frame::Incomplete;
    }
    let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if len < 0 || len as usize > max_len {
        return Frame::BadLength(len);
    }
    if buf.len() < 4 + len as usize {
        Frame::Incomplete
    } else {
        Frame::Complete { len: len as usize }
    }
}

/// Appends `payload` with its length prefix.
pub fn write(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as i32).to_be_bytes());
    out.extend_from_slice(payload);
}

/// Every four-letter word's name; all of them, read as a big-endian int, exceed any valid
/// frame length.
pub const FOUR_LETTER_WORDS: &[&str] = &[
    "ruok", "isro", "srvr", "stat", "cons", "crst", "srst", "conf", "envi", "dirs", "wchs", "wchc",
    "wchp", "dump", "mntr", "gtmk", "stmk", "hash",
];

/// The four-letter word at the start of a new connection, if the first 4 bytes are one.
pub fn four_letter_word(buf: &[u8]) -> Option<&'static str> {
    let head = buf.get(..4)?;
    FOUR_LETTER_WORDS.iter().copied().find(|w| w.as_bytes() == head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_found_only_when_whole() {
        let mut b = Vec::new();
        write(&mut b, b"hello");
        assert_eq!(parse(&b[..3], 100), Frame::Incomplete);
        assert_eq!(parse(&b[..8], 100), Frame::Incomplete);
        assert_eq!(parse(&b, 100), Frame::Complete { len: 5 });
        assert_eq!(parse(&b, 4), Frame::BadLength(5));
        assert_eq!(parse(&[0xff, 0xff, 0xff, 0xfe], 100), Frame::BadLength(-2));
    }

    #[test]
    fn four_letter_words_never_look_like_valid_lengths() {
        for w in FOUR_LETTER_WORDS {
            assert!(matches!(parse(w.as_bytes(), 1_048_575), Frame::BadLength(_)), "{w}");
            assert_eq!(four_letter_word(w.as_bytes()), Some(*w));
        }
        assert_eq!(four_letter_word(b"\0\0\0\x2d"), None);
    }
}
