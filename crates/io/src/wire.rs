//! A shallow walk over the protobuf wire format, used to tell message types apart before
//! decoding (a binary file says nothing about which message it holds).

/// One top-level field occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Field {
    pub number: u32,
    /// 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32.
    pub wire_type: u8,
    /// Payload range for length-delimited fields (empty otherwise).
    pub start: usize,
    pub end: usize,
}

/// The varint at `*pos` of `b`, read by prost's decoder (at most 10 bytes, no overflow), with
/// `pos` moved past it; `None` when it is truncated or malformed (`pos` is then unchanged).
pub fn varint_at(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut rest = b.get(*pos..)?;
    let v = prost::encoding::decode_varint(&mut rest).ok()?;
    *pos = b.len() - rest.len();
    Some(v)
}

/// Walks the top-level fields of `b`. `Err(offset)` gives the byte where the walk failed:
/// a truncated or malformed field, a group (TensorFlow's messages have none) or a field
/// number of zero.
pub(crate) fn scan(b: &[u8]) -> Result<Vec<Field>, usize> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < b.len() {
        let at = pos;
        let key = varint_at(b, &mut pos).ok_or(at)?;
        let number = u32::try_from(key >> 3).map_err(|_| at)?;
        let wire_type = (key & 7) as u8;
        if number == 0 {
            return Err(at);
        }
        let (start, end) = match wire_type {
            0 => {
                varint_at(b, &mut pos).ok_or(at)?;
                (pos, pos)
            }
            1 | 5 => {
                let n = if wire_type == 1 { 8 } else { 4 };
                if pos + n > b.len() {
                    return Err(at);
                }
                pos += n;
                (pos, pos)
            }
            2 => {
                let len = varint_at(b, &mut pos).ok_or(at)?;
                let end = usize::try_from(len).ok().and_then(|l| pos.checked_add(l)).ok_or(at)?;
                if end > b.len() {
                    return Err(at);
                }
                let start = pos;
                pos = end;
                (start, end)
            }
            _ => return Err(at),
        };
        out.push(Field { number, wire_type, start, end });
    }
    Ok(out)
}
