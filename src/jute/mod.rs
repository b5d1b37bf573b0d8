//! Jute, ZooKeeper's binary record encoding (big-endian, no tags, no padding).
//!
//! Grammar (wire-protocol.md §1):
//!
//! ```text
//! byte    = 1 byte            boolean = 1 byte (0 = false, anything else = true)
//! int     = 4 bytes BE        long    = 8 bytes BE
//! ustring = int len, len bytes UTF-8     (len -1 = null)
//! buffer  = int len, len bytes           (len -1 = null, 0 = empty)
//! vector  = int count, count elements    (count -1 = null)
//! record  = its fields inline, in declaration order
//! ```
//!
//! [`Reader`] decodes from a borrowed slice and never allocates more than the bytes it was
//! given: every length is checked against what is left (and against `jute.maxbuffer`) before
//! any allocation, so hostile input yields a [`DecodeError`], never a panic or a huge
//! allocation. Writing goes to a `Vec<u8>` and cannot fail.
//!
//! Records are declared with the [`record!`](crate::record) macro in `data`, `proto` and `txn`.

pub mod data;
pub mod proto;
pub mod txn;

use std::fmt;

use byteorder::{BigEndian, ByteOrder};

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended in the middle of a field.
    UnexpectedEof,
    /// A string, buffer or vector length was negative (other than -1) or larger than allowed.
    BadLength(i64),
    /// A string was not valid UTF-8.
    InvalidUtf8,
    /// A field held a value the record does not allow (e.g. an unknown multi op type).
    InvalidValue(&'static str),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnexpectedEof => write!(f, "unexpected end of record"),
            DecodeError::BadLength(n) => write!(f, "bad length {n}"),
            DecodeError::InvalidUtf8 => write!(f, "string is not valid utf-8"),
            DecodeError::InvalidValue(what) => write!(f, "invalid value: {what}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Result of decoding.
pub type DecodeResult<T> = Result<T, DecodeError>;

/// A cursor over a borrowed byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader positioned at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not consumed yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The unconsumed tail.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Consumes exactly `n` bytes.
    pub fn take(&mut self, n: usize) -> DecodeResult<&'a [u8]> {
        if self.remaining() < n {
            return Err(DecodeError::UnexpectedEof);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Reads a jute `byte`.
    pub fn read_u8(&mut self) -> DecodeResult<u8> {
        Ok(self.take(1)?[0])
    }

    /// Reads a jute `boolean`.
    pub fn read_bool(&mut self) -> DecodeResult<bool> {
        Ok(self.read_u8()? != 0)
    }

    /// Reads a jute `int`.
    pub fn read_i32(&mut self) -> DecodeResult<i32> {
        Ok(BigEndian::read_i32(self.take(4)?))
    }

    /// Reads a jute `long`.
    pub fn read_i64(&mut self) -> DecodeResult<i64> {
        Ok(BigEndian::read_i64(self.take(8)?))
    }

    /// Reads a length prefix; `None` for -1 (null). The length must fit in what is left.
    fn read_len(&mut self) -> DecodeResult<Option<usize>> {
        let n = self.read_i32()?;
        if n == -1 {
            return Ok(None);
        }
        if n < 0 || n as usize > self.remaining() {
            return Err(DecodeError::BadLength(n as i64));
        }
        Ok(Some(n as usize))
    }

    /// Reads a jute `buffer`; `None` is the null buffer.
    pub fn read_buffer(&mut self) -> DecodeResult<Option<Vec<u8>>> {
        match self.read_len()? {
            None => Ok(None),
            Some(n) => Ok(Some(self.take(n)?.to_vec())),
        }
    }

    /// Reads a jute `ustring`; `None` is the null string.
    pub fn read_opt_string(&mut self) -> DecodeResult<Option<String>> {
        match self.read_len()? {
            None => Ok(None),
            Some(n) => {
                let bytes = self.take(n)?;
                match std::str::from_utf8(bytes) {
                    Ok(s) => Ok(Some(s.to_owned())),
                    Err(_) => Err(DecodeError::InvalidUtf8),
                }
            }
        }
    }

    /// Reads a jute `ustring`, mapping null to the empty string.
    pub fn read_string(&mut self) -> DecodeResult<String> {
        Ok(self.read_opt_string()?.unwrap_or_default())
    }

    /// Reads a vector count; `None` is the null vector. Each element takes at least one byte,
    /// so a count larger than what is left is rejected before anything is allocated.
    pub fn read_count(&mut self) -> DecodeResult<Option<usize>> {
        self.read_len()
    }
}

/// Appending jute primitives to a byte vector.
pub trait Writer {
    /// Appends a `byte`.
    fn put_u8(&mut self, v: u8);
    /// Appends a `boolean`.
    fn put_bool(&mut self, v: bool);
    /// Appends an `int`.
    fn put_i32(&mut self, v: i32);
    /// Appends a `long`.
    fn put_i64(&mut self, v: i64);
    /// Appends a `buffer` (`None` = null).
    fn put_buffer(&mut self, v: Option<&[u8]>);
    /// Appends a `ustring`.
    fn put_str(&mut self, v: &str);
}

impl Writer for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_bool(&mut self, v: bool) {
        self.push(v as u8);
    }
    fn put_i32(&mut self, v: i32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_i64(&mut self, v: i64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_buffer(&mut self, v: Option<&[u8]>) {
        match v {
            None => self.put_i32(-1),
            Some(b) => {
                self.put_i32(b.len() as i32);
                self.extend_from_slice(b);
            }
        }
    }
    fn put_str(&mut self, v: &str) {
        self.put_buffer(Some(v.as_bytes()));
    }
}

/// A value with a jute encoding: primitives, strings, buffers, vectors and records.
pub trait Jute: Sized {
    /// Appends the encoding of `self`.
    fn encode(&self, w: &mut Vec<u8>);
    /// Decodes one value.
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self>;

    /// The encoding as a new vector.
    fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }

    /// Decodes a value that must span all of `buf`... or at least start it; trailing bytes are
    /// ignored, as Java's archive does.
    fn from_bytes(buf: &[u8]) -> DecodeResult<Self> {
        Self::decode(&mut Reader::new(buf))
    }
}

impl Jute for i32 {
    fn encode(&self, w: &mut Vec<u8>) {
        w.put_i32(*self);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        r.read_i32()
    }
}

impl Jute for i64 {
    fn encode(&self, w: &mut Vec<u8>) {
        w.put_i64(*self);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        r.read_i64()
    }
}

impl Jute for bool {
    fn encode(&self, w: &mut Vec<u8>) {
        w.put_bool(*self);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        r.read_bool()
    }
}

impl Jute for String {
    fn encode(&self, w: &mut Vec<u8>) {
        w.put_str(self);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        r.read_string()
    }
}

/// `Option<String>` is a nullable `ustring`.
impl Jute for Option<String> {
    fn encode(&self, w: &mut Vec<u8>) {
        match self {
            None => w.put_i32(-1),
            Some(s) => w.put_str(s),
        }
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        r.read_opt_string()
    }
}

/// `Option<Vec<u8>>` is a jute `buffer` (null-able).
impl Jute for Option<Vec<u8>> {
    fn encode(&self, w: &mut Vec<u8>) {
        w.put_buffer(self.as_deref());
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        r.read_buffer()
    }
}

/// `Vec<T>` is a jute `vector`; a null vector decodes as empty.
impl<T: Jute> Jute for Vec<T> {
    fn encode(&self, w: &mut Vec<u8>) {
        w.put_i32(self.len() as i32);
        for v in self {
            v.encode(w);
        }
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let n = r.read_count()?.unwrap_or(0);
        let mut v = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            v.push(T::decode(r)?);
        }
        Ok(v)
    }
}

/// Declares a jute record: a struct whose fields are encoded in order.
#[macro_export]
macro_rules! record {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
        #[allow(missing_docs)] // fields are the jute fields of zookeeper.jute, in order
        pub struct $name { $($(#[$fmeta])* pub $field: $ty),* }

        impl $crate::jute::Jute for $name {
            #[allow(unused_variables)]
            fn encode(&self, w: &mut Vec<u8>) {
                $($crate::jute::Jute::encode(&self.$field, w);)*
            }
            #[allow(unused_variables)]
            fn decode(r: &mut $crate::jute::Reader<'_>) -> $crate::jute::DecodeResult<Self> {
                Ok($name { $($field: <$ty as $crate::jute::Jute>::decode(r)?),* })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_round_trip() {
        let mut w = Vec::new();
        w.put_i32(-2);
        w.put_i64(0x0100_000a_47bc_0000);
        w.put_bool(true);
        w.put_buffer(None);
        w.put_buffer(Some(b""));
        w.put_str("/a");
        let mut r = Reader::new(&w);
        assert_eq!(r.read_i32().unwrap(), -2);
        assert_eq!(r.read_i64().unwrap(), 0x0100_000a_47bc_0000);
        assert!(r.read_bool().unwrap());
        assert_eq!(r.read_buffer().unwrap(), None);
        assert_eq!(r.read_buffer().unwrap(), Some(vec![]));
        assert_eq!(r.read_string().unwrap(), "/a");
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn hostile_lengths_are_rejected_before_allocation() {
        let mut w = Vec::new();
        w.put_i32(i32::MAX);
        assert_eq!(Reader::new(&w).read_buffer(), Err(DecodeError::BadLength(i32::MAX as i64)));
        let mut w = Vec::new();
        w.put_i32(-5);
        assert_eq!(Reader::new(&w).read_opt_string(), Err(DecodeError::BadLength(-5)));
        assert_eq!(
            Vec::<String>::from_bytes(&[0x7f, 0, 0, 0]),
            Err(DecodeError::BadLength(0x7f00_0000))
        );
        assert_eq!(Reader::new(&[0, 0]).read_i32(), Err(DecodeError::UnexpectedEof));
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let mut w = Vec::new();
        w.put_buffer(Some(&[0xff, 0xfe]));
        assert_eq!(Reader::new(&w).read_opt_string(), Err(DecodeError::InvalidUtf8));
    }
}
