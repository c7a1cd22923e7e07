//! Encoding a message for output without copying its large payloads.
//!
//! `prost`'s `encode_to_vec` copies every tensor byte into one new buffer, doubling the memory
//! of a weight-heavy graph. [`encode`] instead produces a list of segments: the small encoded
//! parts are gathered into owned buffers, and any large byte field that lies inside the input
//! buffer (a memory-mapped file) is kept as a slice of it. Writing the segments in order gives
//! exactly the bytes `encode_to_vec` would, in one pass.

use std::io;

use bytes::{buf::UninitSlice, Buf, BufMut, Bytes};
use prost::Message;

use crate::canonical::Seg;

/// Byte fields at least this long are referenced instead of copied.
const BORROW_THRESHOLD: usize = 4096;

/// Segments shorter than this are gathered into one write of up to [`WRITE_CHUNK`] bytes.
const COALESCE_BELOW: usize = 64 << 10;
const WRITE_CHUNK: usize = 1 << 20;

/// Protobuf's hard limit: a message of 2 GiB or more cannot be parsed by TensorFlow.
pub const MAX_MESSAGE_BYTES: u64 = (1 << 31) - 1;

/// An encoded message as a sequence of byte segments.
#[derive(Debug, Default, Clone)]
pub struct Encoded {
    pub(crate) segments: Vec<Bytes>,
    pub(crate) len: u64,
}

impl Encoded {
    /// Total encoded length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was encoded.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes every segment in order straight to a file descriptor (stdout, an output file):
    /// large segments that lie in a mapped input (a file, or stdin spliced into memory) are
    /// moved by the kernel (`splice` into a pipe, `copy_file_range` into a file), the others
    /// with plain large `write`s. Flush any buffered writer on `fd` before calling this.
    pub fn write_to_fd(&self, fd: std::os::fd::BorrowedFd<'_>) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let fd = fd.as_raw_fd();
        // Small segments (a graph of many small nodes has hundreds of thousands) are gathered
        // into writes of up to 1 MiB: one system call each would cost more than the encoding.
        let mut pending: Vec<u8> = Vec::new();
        let flush = |pending: &mut Vec<u8>| -> io::Result<()> {
            crate::stream::write_all_fd(fd, pending)?;
            pending.clear();
            Ok(())
        };
        for s in &self.segments {
            match (s.len() >= BORROW_THRESHOLD).then(|| crate::mapped::file_range(s)).flatten() {
                Some((file, offset)) => {
                    flush(&mut pending)?;
                    crate::stream::copy_range_to_fd(&file, offset, s.len() as u64, fd)?
                }
                None if s.len() >= COALESCE_BELOW => {
                    flush(&mut pending)?;
                    crate::stream::write_all_fd(fd, s)?
                }
                None => {
                    pending.extend_from_slice(s);
                    if pending.len() >= WRITE_CHUNK {
                        flush(&mut pending)?;
                    }
                }
            }
        }
        flush(&mut pending)
    }

    /// Whether the encoding is exactly `bytes` (segments that are `bytes` itself, as a
    /// pass-through makes them, are not compared again).
    pub fn is(&self, bytes: &[u8]) -> bool {
        if self.len != bytes.len() as u64 {
            return false;
        }
        let mut at = 0;
        for s in &self.segments {
            let b = &bytes[at..at + s.len()];
            if s.as_ptr() != b.as_ptr() && s[..] != *b {
                return false;
            }
            at += s.len();
        }
        true
    }

    /// Wraps already encoded bytes (text output, for instance).
    pub fn from_bytes(b: Bytes) -> Encoded {
        Encoded { len: b.len() as u64, segments: vec![b] }
    }

    /// Joins the segments into one buffer (tests, small outputs).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len as usize);
        for s in &self.segments {
            v.extend_from_slice(s);
        }
        v
    }
}

/// The message would exceed protobuf's 2 GiB limit.
#[derive(Debug, thiserror::Error)]
#[error("the output would be {0} bytes, over protobuf's 2 GiB message limit")]
pub struct TooLarge(pub u64);

struct SegmentWriter<'a> {
    sources: &'a [Bytes],
    current: Vec<u8>,
    done: Vec<Seg>,
}

impl SegmentWriter<'_> {
    fn source_of(&self, s: &[u8]) -> Option<Bytes> {
        let (start, end) = (s.as_ptr() as usize, s.as_ptr() as usize + s.len());
        self.sources.iter().find_map(|b| {
            let base = b.as_ptr() as usize;
            (start >= base && end <= base + b.len()).then(|| b.slice(start - base..end - base))
        })
    }
}

// SAFETY: chunk_mut/advance_mut delegate to the Vec's own BufMut implementation.
unsafe impl BufMut for SegmentWriter<'_> {
    fn remaining_mut(&self) -> usize {
        usize::MAX / 2
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: forwarded contract.
        unsafe { self.current.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.current.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        if src.len() >= BORROW_THRESHOLD {
            if let Some(b) = self.source_of(src) {
                if !self.current.is_empty() {
                    let cap = self.current.capacity();
                    let full = std::mem::replace(&mut self.current, Vec::with_capacity(cap));
                    self.done.push(Seg::Owned(full));
                }
                self.done.push(Seg::Borrowed(b));
                return;
            }
        }
        self.current.extend_from_slice(src);
    }

    fn put<T: Buf>(&mut self, mut src: T)
    where
        Self: Sized,
    {
        while src.has_remaining() {
            let chunk = src.chunk();
            let n = chunk.len();
            self.put_slice(chunk);
            src.advance(n);
        }
    }
}

/// Encodes `msg` as TensorFlow's deterministic serializer does (maps sorted by key, map entries
/// with both key and value, see [`crate::canonical`]); byte fields that are slices of one of
/// `sources` are not copied.
pub fn encode<M: Message + prost::Name>(msg: &M, sources: &[Bytes]) -> Result<Encoded, TooLarge> {
    let len = msg.encoded_len() as u64;
    if len > MAX_MESSAGE_BYTES {
        return Err(TooLarge(len));
    }
    let mut w = SegmentWriter {
        sources,
        current: Vec::with_capacity((len as usize).min(1 << 20)),
        done: Vec::new(),
    };
    msg.encode_raw(&mut w);
    if !w.current.is_empty() {
        w.done.push(Seg::Owned(w.current));
    }
    let segs = crate::canonical::complete_map_entries(w.done, &M::full_name())
        .expect("prost's own encoding parses with the same schema");
    let segments: Vec<Bytes> = segs
        .into_iter()
        .map(|s| match s {
            Seg::Owned(v) => Bytes::from(v),
            Seg::Borrowed(b) => b,
        })
        .collect();
    let len = segments.iter().map(|s| s.len() as u64).sum();
    if len > MAX_MESSAGE_BYTES {
        return Err(TooLarge(len));
    }
    Ok(Encoded { segments, len })
}
