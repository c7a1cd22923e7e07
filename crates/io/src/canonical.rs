//! Map entries written the way TensorFlow writes them.
//!
//! prost leaves the key or the value out of a map entry when it equals its default (a
//! `FunctionDef.arg_attr` entry for argument 0 has no key field), which is valid protobuf but
//! not what TensorFlow's serializers produce: they always write both. [`complete_map_entries`]
//! walks an encoded message with the schema and adds the missing key and value fields, so the
//! bytes match TensorFlow's deterministic serialization. Only messages that can contain a map
//! are descended into; everything else, including large byte payloads kept as references into
//! the input, is passed through untouched.

use std::collections::HashMap;

use bytes::Bytes;
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};

/// A piece of encoded output: owned bytes, or a reference to a large byte-field payload.
#[derive(Debug, Clone)]
pub(crate) enum Seg {
    Owned(Vec<u8>),
    Borrowed(Bytes),
}

impl Seg {
    fn len(&self) -> usize {
        match self {
            Seg::Owned(v) => v.len(),
            Seg::Borrowed(b) => b.len(),
        }
    }
}

/// A cursor over segments, where borrowed segments are opaque byte-field payloads.
struct Cursor<'a> {
    segs: &'a [Seg],
    seg: usize,
    off: usize,
    /// Bytes consumed so far.
    pos: usize,
}

impl Cursor<'_> {
    fn byte(&mut self) -> Option<u8> {
        loop {
            match self.segs.get(self.seg)? {
                Seg::Owned(v) if self.off < v.len() => {
                    self.off += 1;
                    self.pos += 1;
                    return Some(v[self.off - 1]);
                }
                Seg::Owned(_) => {
                    self.seg += 1;
                    self.off = 0;
                }
                Seg::Borrowed(_) => return None,
            }
        }
    }

    /// The next varint (decoded by prost once its bytes are gathered from the segments).
    fn varint(&mut self) -> Option<u64> {
        let mut buf = [0u8; 10];
        for i in 0..buf.len() {
            buf[i] = self.byte()?;
            if buf[i] < 0x80 {
                return prost::encoding::decode_varint(&mut &buf[..=i]).ok();
            }
        }
        None
    }

    /// Takes the next `n` bytes as segments (a borrowed segment is taken whole).
    fn take(&mut self, mut n: usize, out: &mut Vec<Seg>) -> Option<()> {
        while n > 0 {
            match self.segs.get(self.seg)? {
                Seg::Owned(v) => {
                    let k = n.min(v.len() - self.off);
                    if k == 0 {
                        self.seg += 1;
                        self.off = 0;
                        continue;
                    }
                    push_owned(out, &v[self.off..self.off + k]);
                    self.off += k;
                    self.pos += k;
                    n -= k;
                }
                Seg::Borrowed(b) => {
                    if self.off != 0 || b.len() > n {
                        return None;
                    }
                    out.push(Seg::Borrowed(b.clone()));
                    n -= b.len();
                    self.pos += b.len();
                    self.seg += 1;
                }
            }
        }
        Some(())
    }
}

fn push_owned(out: &mut Vec<Seg>, b: &[u8]) {
    if let Some(Seg::Owned(v)) = out.last_mut() {
        v.extend_from_slice(b);
    } else {
        out.push(Seg::Owned(b.to_vec()));
    }
}

fn put_varint(out: &mut Vec<Seg>, v: u64) {
    let mut buf = [0u8; 10];
    let mut w = &mut buf[..];
    prost::encoding::encode_varint(v, &mut w);
    let n = 10 - w.len();
    push_owned(out, &buf[..n]);
}

fn total(segs: &[Seg]) -> usize {
    segs.iter().map(Seg::len).sum()
}

/// Whether messages of each type can contain a map (directly or below), memoized.
struct Schema {
    has_map: HashMap<String, bool>,
}

impl Schema {
    fn has_map(&mut self, d: &MessageDescriptor) -> bool {
        if let Some(v) = self.has_map.get(d.full_name()) {
            return *v;
        }
        self.has_map.insert(d.full_name().to_string(), false); // breaks cycles
        let v = d.fields().any(|f| {
            f.is_map()
                || match f.kind() {
                    Kind::Message(m) => self.has_map(&m),
                    _ => false,
                }
        });
        self.has_map.insert(d.full_name().to_string(), v);
        v
    }
}

/// The encoding of a default key or value of `f` (field number `number`).
fn default_field(f: &FieldDescriptor, number: u32, out: &mut Vec<Seg>) {
    let wire = match f.kind() {
        Kind::Double | Kind::Fixed64 | Kind::Sfixed64 => 1,
        Kind::Float | Kind::Fixed32 | Kind::Sfixed32 => 5,
        Kind::String | Kind::Bytes | Kind::Message(_) => 2,
        _ => 0,
    };
    put_varint(out, u64::from(number << 3 | wire));
    match wire {
        1 => push_owned(out, &[0; 8]),
        5 => push_owned(out, &[0; 4]),
        _ => push_owned(out, &[0]),
    }
}

/// Rewrites the next `len` bytes at the cursor as a message of type `d`.
fn message(
    c: &mut Cursor<'_>,
    len: usize,
    d: &MessageDescriptor,
    s: &mut Schema,
) -> Option<Vec<Seg>> {
    let end = c.pos.checked_add(len)?;
    let mut out = Vec::new();
    let is_entry = d.is_map_entry();
    let mut seen = [false; 3];
    while c.pos < end {
        let key = c.varint()?;
        let (number, wire) = ((key >> 3) as u32, (key & 7) as u8);
        let field = d.get_field(number);
        if is_entry && number == 2 && !seen[1] {
            // A value without a key: the key was left out as default.
            default_field(&d.get_field(1)?, 1, &mut out);
            seen[1] = true;
        }
        if is_entry && (number == 1 || number == 2) {
            seen[number as usize] = true;
        }
        put_varint(&mut out, key);
        match wire {
            0 => put_varint(&mut out, c.varint()?),
            1 => c.take(8, &mut out)?,
            5 => c.take(4, &mut out)?,
            2 => {
                let n = c.varint()? as usize;
                let sub = field.as_ref().and_then(|f| match f.kind() {
                    Kind::Message(m) if m.is_map_entry() || s.has_map(&m) => Some(m),
                    _ => None,
                });
                match sub {
                    Some(m) => {
                        let segs = message(c, n, &m, s)?;
                        put_varint(&mut out, total(&segs) as u64);
                        out.extend(segs);
                    }
                    None => {
                        put_varint(&mut out, n as u64);
                        c.take(n, &mut out)?;
                    }
                }
            }
            _ => return None,
        }
    }
    if c.pos != end {
        return None;
    }
    if is_entry {
        if !seen[1] {
            default_field(&d.get_field(1)?, 1, &mut out);
        }
        if !seen[2] {
            default_field(&d.get_field(2)?, 2, &mut out);
        }
    }
    Some(out)
}

/// Adds the key and value fields prost left out of map entries (see the module docs).
/// `None` means the bytes did not parse as `full_name`, which would be a bug.
pub(crate) fn complete_map_entries(segs: Vec<Seg>, full_name: &str) -> Option<Vec<Seg>> {
    let d = tf_proto::descriptor_pool().get_message_by_name(full_name)?;
    let mut schema = Schema { has_map: HashMap::new() };
    let len = total(&segs);
    let mut c = Cursor { segs: &segs, seg: 0, off: 0, pos: 0 };
    message(&mut c, len, &d, &mut schema)
}
