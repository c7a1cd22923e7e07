//! Writes V2 checkpoints (tensor bundles) that TensorFlow's `BundleReader` reads.
//!
//! [`write`] takes the entries to store, each with its payload, and writes
//! `<prefix>.data-NNNNN-of-MMMMM` shards and `<prefix>.index`: the header under the empty key
//! (`num_shards`, little-endian, version 1), then one `BundleEntryProto` per key in byte order
//! with its shard, offset, size and masked CRC-32C. Tensors are laid out in key order, back to
//! back; with several shards each gets a run of consecutive keys of about equal bytes.
//!
//! A payload that is a range of an existing file (an unchanged tensor of the input checkpoint,
//! whose checksum was verified when it was read) is copied by the kernel (`copy_file_range`
//! through `std::io::copy`) and keeps its checksum, so its bytes never pass through this
//! process. Everything is written into a temporary directory beside the output and renamed into
//! place at the end, data shards first and the index last: a failed run leaves no partial
//! checkpoint under the output prefix.

use prost::encoding::{encode_varint, encoded_len_varint};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use prost::Message;
use tf_proto::tensorflow::{BundleEntryProto, BundleHeaderProto, TensorSliceProto, VersionDef};

use crate::crc::mask;
use crate::write_table::TableBuilder;
use crate::{with_suffix, CkptError};

/// Where an entry's bytes come from.
#[derive(Debug, Clone)]
pub enum Payload {
    /// `len` bytes at `offset` of `path`, already verified against `crc32c` (masked, as stored):
    /// copied by the kernel, the checksum carried over.
    FileRange {
        /// The source file.
        path: PathBuf,
        /// Where the bytes start.
        offset: u64,
        /// How many.
        len: u64,
        /// Their masked CRC-32C.
        crc32c: u32,
    },
    /// The raw bytes of a numeric tensor (little-endian, row-major).
    Raw(Bytes),
    /// The elements of a `DT_STRING` tensor.
    Strings(Vec<Vec<u8>>),
    /// No bytes: the entry of a partitioned variable, which lists its slices.
    Empty,
}

impl Payload {
    /// Bytes this payload takes in a data file.
    pub fn len(&self) -> u64 {
        match self {
            Payload::FileRange { len, .. } => *len,
            Payload::Raw(b) => b.len() as u64,
            Payload::Strings(s) => {
                let lens: u64 = s.iter().map(|x| encoded_len_varint(x.len() as u64) as u64).sum();
                let bytes: u64 = s.iter().map(|x| x.len() as u64).sum();
                lens + bytes + if s.is_empty() { 0 } else { 4 }
            }
            Payload::Empty => 0,
        }
    }

    /// Whether the payload takes no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One entry of the checkpoint to write.
#[derive(Debug, Clone)]
pub struct OutEntry {
    /// The key: a tensor name, or the binary key of a slice of a partitioned variable.
    pub key: Vec<u8>,
    /// dtype code.
    pub dtype: i32,
    /// Shape (of the slice, for a slice; of the whole variable, for a partitioned one).
    pub shape: Vec<i64>,
    /// The slices of a partitioned variable (then the payload is [`Payload::Empty`]).
    pub slices: Vec<TensorSliceProto>,
    /// The bytes.
    pub payload: Payload,
}

/// How to write.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    /// Number of data shards (at least 1).
    pub shards: usize,
}

impl Default for WriteOptions {
    fn default() -> WriteOptions {
        WriteOptions { shards: 1 }
    }
}

/// What was written.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Written {
    /// The files, index last.
    pub files: Vec<PathBuf>,
    /// Bytes in the data shards.
    pub data_bytes: u64,
    /// Bytes of the index.
    pub index_bytes: u64,
    /// Entries written (slices count one each).
    pub entries: usize,
    /// Bytes copied by the kernel from the input unchanged.
    pub copied_bytes: u64,
}

/// A `DT_STRING` tensor as stored: varint lengths, the masked CRC-32C of the lengths, the
/// bytes; and the entry checksum TensorFlow keeps for it (over the lengths as fixed-width
/// integers, the length checksum and the bytes).
pub(crate) fn encode_strings(strings: &[Vec<u8>]) -> (Vec<u8>, u32) {
    let mut out = Vec::new();
    let mut crc = 0u32;
    for s in strings {
        encode_varint(s.len() as u64, &mut out);
        crc = match u32::try_from(s.len()) {
            Ok(l) => crc32c::crc32c_append(crc, &l.to_le_bytes()),
            Err(_) => crc32c::crc32c_append(crc, &(s.len() as u64).to_le_bytes()),
        };
    }
    if !strings.is_empty() {
        let length_crc = mask(crc).to_le_bytes();
        out.extend_from_slice(&length_crc);
        crc = crc32c::crc32c_append(crc, &length_crc);
    }
    for s in strings {
        out.extend_from_slice(s);
        crc = crc32c::crc32c_append(crc, s);
    }
    (out, mask(crc))
}

/// Appends to one data file, buffering small writes and handing file ranges to the kernel.
struct DataFile {
    file: File,
    path: PathBuf,
    buf: Vec<u8>,
    len: u64,
    copied: u64,
}

impl DataFile {
    fn io(&self, source: std::io::Error) -> CkptError {
        CkptError::Io { path: self.path.display().to_string(), source }
    }

    fn flush(&mut self) -> Result<(), CkptError> {
        if !self.buf.is_empty() {
            self.file.write_all(&self.buf).map_err(|e| self.io(e))?;
            self.buf.clear();
        }
        Ok(())
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), CkptError> {
        if self.buf.len() + bytes.len() > 1 << 20 {
            self.flush()?;
        }
        if bytes.len() >= 1 << 20 {
            self.file.write_all(bytes).map_err(|e| self.io(e))?;
        } else {
            self.buf.extend_from_slice(bytes);
        }
        self.len += bytes.len() as u64;
        Ok(())
    }

    fn copy_range(&mut self, src: &Path, offset: u64, len: u64) -> Result<(), CkptError> {
        let src_err =
            |source: std::io::Error| CkptError::Io { path: src.display().to_string(), source };
        if len < 1 << 16 {
            // Small tensors: one read, no system call per tensor on the output side.
            let mut f = File::open(src).map_err(src_err)?;
            f.seek(SeekFrom::Start(offset)).map_err(src_err)?;
            let mut b = Vec::new();
            f.take(len).read_to_end(&mut b).map_err(src_err)?;
            if b.len() as u64 != len {
                return Err(src_err(std::io::ErrorKind::UnexpectedEof.into()));
            }
            return self.append(&b);
        }
        self.flush()?;
        let mut f = File::open(src).map_err(src_err)?;
        f.seek(SeekFrom::Start(offset)).map_err(src_err)?;
        let n = std::io::copy(&mut f.take(len), &mut self.file).map_err(|e| self.io(e))?;
        if n != len {
            return Err(src_err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("{n} of {len} bytes at offset {offset} could be copied (truncated?)"),
            )));
        }
        self.len += len;
        self.copied += len;
        Ok(())
    }
}

/// The file name of shard `i` of `n` of `prefix`.
pub fn shard_path(prefix: &Path, i: usize, n: usize) -> PathBuf {
    with_suffix(prefix, &format!(".data-{i:05}-of-{n:05}"))
}

/// Writes `entries` as the checkpoint `prefix` (see the module documentation). Keys must be
/// unique; they are sorted here. Nothing appears under `prefix` unless the whole write
/// succeeded.
pub fn write(
    prefix: &Path,
    entries: Vec<OutEntry>,
    opts: &WriteOptions,
) -> Result<Written, CkptError> {
    let shards = opts.shards.max(1);
    let index_path = with_suffix(prefix, ".index");
    let out_err =
        |source: std::io::Error| CkptError::Io { path: index_path.display().to_string(), source };
    if shards > 99_999 {
        return Err(out_err(std::io::Error::other("at most 99999 shards")));
    }
    let mut sorted = BTreeMap::new();
    for e in entries {
        if e.key.is_empty() {
            return Err(out_err(std::io::Error::other("an entry has the empty key")));
        }
        let key = e.key.clone();
        if sorted.insert(key, e).is_some() {
            return Err(out_err(std::io::Error::other("two entries have the same key")));
        }
    }
    let dir = match prefix.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base = prefix
        .file_name()
        .ok_or_else(|| out_err(std::io::Error::other("the output prefix has no file name")))?;
    // The output directory is made if missing, as TensorFlow's savers do.
    let dir_err = |e: std::io::Error| CkptError::Io {
        path: dir.display().to_string(),
        // tempfile appends the random path it tried; the cause is enough.
        source: std::io::Error::new(e.kind(), e.kind().to_string()),
    };
    std::fs::create_dir_all(&dir).map_err(dir_err)?;
    let tmp = tempfile::Builder::new().prefix(".tf-ckpt-").tempdir_in(&dir).map_err(dir_err)?;
    let tmp_prefix = tmp.path().join(base);

    // Shard boundaries: consecutive keys, about equal bytes.
    let total: u64 = sorted.values().map(|e| e.payload.len()).sum();
    let mut files = Vec::with_capacity(shards);
    for i in 0..shards {
        let path = shard_path(&tmp_prefix, i, shards);
        let file = File::create(&path)
            .map_err(|source| CkptError::Io { path: path.display().to_string(), source })?;
        files.push(DataFile { file, path, buf: Vec::new(), len: 0, copied: 0 });
    }
    let header = BundleHeaderProto {
        num_shards: shards as i32,
        endianness: 0,
        version: Some(VersionDef { producer: 1, ..Default::default() }),
    };
    let mut table = TableBuilder::new();
    table.add(b"", &header.encode_to_vec());
    let mut before = 0u64;
    for (key, e) in &sorted {
        let len = e.payload.len();
        // The shard whose share of `total` the middle of this tensor falls in.
        let mid = before.saturating_add(len / 2);
        let shard = if total == 0 {
            0
        } else {
            ((u128::from(mid) * shards as u128 / u128::from(total)) as usize).min(shards - 1)
        };
        before += len;
        let f = &mut files[shard];
        let offset = f.len;
        let crc = match &e.payload {
            Payload::FileRange { path, offset, len, crc32c } => {
                f.copy_range(path, *offset, *len)?;
                *crc32c
            }
            Payload::Raw(b) => {
                f.append(b)?;
                mask(crc32c::crc32c(b))
            }
            Payload::Strings(s) => {
                let (bytes, crc) = encode_strings(s);
                f.append(&bytes)?;
                crc
            }
            Payload::Empty => 0,
        };
        let entry = BundleEntryProto {
            dtype: e.dtype,
            shape: Some(tf_tensor::shape_proto(&e.shape)),
            shard_id: if e.payload.is_empty() { 0 } else { shard as i32 },
            offset: if e.payload.is_empty() { 0 } else { offset as i64 },
            size: len as i64,
            crc32c: crc,
            slices: e.slices.clone(),
        };
        table.add(key, &entry.encode_to_vec());
    }
    let mut written = Written { entries: sorted.len(), ..Default::default() };
    for f in &mut files {
        f.flush()?;
        written.data_bytes += f.len;
        written.copied_bytes += f.copied;
    }
    drop(files);
    let index = table.finish();
    written.index_bytes = index.len() as u64;
    let tmp_index = with_suffix(&tmp_prefix, ".index");
    std::fs::write(&tmp_index, &index)
        .map_err(|source| CkptError::Io { path: tmp_index.display().to_string(), source })?;
    for i in 0..shards {
        let to = shard_path(prefix, i, shards);
        std::fs::rename(shard_path(&tmp_prefix, i, shards), &to)
            .map_err(|source| CkptError::Io { path: to.display().to_string(), source })?;
        written.files.push(to);
    }
    std::fs::rename(&tmp_index, &index_path).map_err(out_err)?;
    written.files.push(index_path);
    Ok(written)
}
