//! Adler-32 as zlib defines it (RFC 1950 §8.2; Java's `java.util.zip.Adler32`): the checksum of
//! txn log records and of snapshot seals (persistence-formats.md §3.1, §4.2).
//!
//! The arithmetic is `simd-adler32`'s (SSE2/AVX2/NEON where the CPU has them, a scalar loop
//! otherwise), several times faster than a byte-at-a-time loop on the write path, where every
//! txn's payload is summed before it is appended. This module keeps the two calls the
//! persistence code makes and pins the values to zlib's with known vectors.

/// A running Adler-32 checksum.
#[derive(Clone)]
pub struct Adler32(simd_adler32::Adler32);

impl std::fmt::Debug for Adler32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Adler32({:#010x})", self.value())
    }
}

impl Default for Adler32 {
    fn default() -> Self {
        Adler32::new()
    }
}

impl Adler32 {
    /// A checksum over no bytes (value 1).
    pub fn new() -> Adler32 {
        Adler32(simd_adler32::Adler32::new())
    }

    /// Adds `bytes` to the checksum.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
    }

    /// The checksum of every byte added so far.
    pub fn value(&self) -> u32 {
        self.0.finish()
    }
}

/// The Adler-32 of `bytes`.
pub fn adler32(bytes: &[u8]) -> u32 {
    let mut sum = Adler32::new();
    sum.update(bytes);
    sum.value()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"a"), 0x0062_0062);
        assert_eq!(adler32(b"abc"), 0x024d_0127);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
        assert_eq!(adler32(b"message digest"), 0x2975_0586);
        assert_eq!(adler32(b"abcdefghijklmnopqrstuvwxyz"), 0x9086_0b20);
    }

    #[test]
    fn long_input_does_not_overflow() {
        // zlib.adler32(b"\xff" * 100000) == 0x149a302c (python3)
        assert_eq!(adler32(&[0xff; 100_000]), 0x149a_302c);
    }

    #[test]
    fn streaming_equals_one_shot() {
        let data: Vec<u8> = (0..20_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let mut sum = Adler32::new();
        for piece in data.chunks(977) {
            sum.update(piece);
        }
        assert_eq!(sum.value(), adler32(&data));
    }

    #[test]
    fn captured_log_record_checksum() {
        // persistence-formats.md §3.6: the createSession payload has checksum 0xac020997.
        let payload: [u8; 48] = [
            0x01, 0x00, 0x00, 0x0b, 0xac, 0x35, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
            0x00, 0x00, 0x01, 0xa2, 0x18, 0x34, 0x44, 0xfc, 0xff, 0xff, 0xff, 0xf6, 0x00, 0x00,
            0x27, 0x10, 0, 0, 0, 2, 0, 0, 0, 0, 0x51, 0xc6, 0xd6, 0x60,
        ];
        assert_eq!(adler32(&payload), 0xac02_0997);
    }
}
