//! Keys of the slices of a partitioned variable.
//!
//! A slice is stored under a binary key in TensorFlow's OrderedCode: the number 0, the escaped
//! variable name, the rank, then each dimension's start and length as order-preserving signed
//! numbers (a full dimension is start 0, length -1).

/// Header bits of an order-preserving signed number, by encoded length.
const HEADER: [[u8; 2]; 11] = [
    [0, 0],
    [0x80, 0],
    [0xc0, 0],
    [0xe0, 0],
    [0xf0, 0],
    [0xf8, 0],
    [0xfc, 0],
    [0xfe, 0],
    [0xff, 0],
    [0xff, 0x80],
    [0xff, 0xc0],
];

/// Encoded length by bit count (1 + floor(log2 x)).
const BITS_TO_LENGTH: [usize; 64] = [
    1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5,
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 8, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9,
    10,
];

fn write_unsigned(out: &mut Vec<u8>, v: u64) {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    out.push((8 - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    for &b in s {
        match b {
            0x00 => out.extend_from_slice(&[0x00, 0xff]),
            0xff => out.extend_from_slice(&[0xff, 0x00]),
            b => out.push(b),
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

fn write_signed(out: &mut Vec<u8>, val: i64) {
    let x = if val < 0 { !(val as u64) } else { val as u64 };
    if x < 64 {
        out.push(HEADER[1][0] ^ (val as u8));
        return;
    }
    let len = BITS_TO_LENGTH[(63 - x.leading_zeros()) as usize + 1];
    let sign = if val < 0 { 0xff } else { 0x00 };
    let mut buf = [sign; 10];
    buf[2..].copy_from_slice(&val.to_be_bytes());
    let begin = 10 - len;
    buf[begin] ^= HEADER[len][0];
    buf[begin + 1] ^= HEADER[len][1];
    out.extend_from_slice(&buf[begin..]);
}

/// The key of slice `extents` (start, length; length -1 = whole dimension) of `name`.
pub(crate) fn encode(name: &str, extents: &[(i64, i64)]) -> Vec<u8> {
    let mut out = Vec::new();
    write_unsigned(&mut out, 0);
    write_string(&mut out, name.as_bytes());
    write_unsigned(&mut out, extents.len() as u64);
    for &(start, length) in extents {
        write_signed(&mut out, start);
        write_signed(&mut out, length);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_the_key_tensorflow_wrote() {
        // Slice [0:3, 0:2] of "emb".
        let key = super::encode("emb", &[(0, 3), (0, 2)]);
        assert_eq!(key, [0x00, b'e', b'm', b'b', 0x00, 0x01, 0x01, 0x02, 0x80, 0x83, 0x80, 0x82]);
    }

    #[test]
    fn signed_numbers_keep_their_order() {
        let vals = [-100_000i64, -65, -64, -1, 0, 1, 63, 64, 8191, 8192, 1 << 40, i64::MAX];
        let enc: Vec<Vec<u8>> = vals
            .iter()
            .map(|v| {
                let mut o = Vec::new();
                super::write_signed(&mut o, *v);
                o
            })
            .collect();
        assert!(enc.windows(2).all(|w| w[0] < w[1]), "{enc:x?}");
        assert_eq!(enc[3], [0x7f]);
    }
}
