//! A pure-Rust reader of TensorFlow checkpoints: V2 ("tensor bundles") and the older V1
//! ("tensor slices", see [`v1`](crate::v1)).
//!
//! A V2 checkpoint is `<prefix>.index` (a sorted table of `BundleEntryProto`s, see [`table`]) and
//! `<prefix>.data-NNNNN-of-MMMMM` shards holding the raw tensor bytes. [`Checkpoint::open`]
//! reads and verifies the index (every block's masked CRC-32C); the data shards are
//! memory-mapped on first use, and [`Checkpoint::read`] verifies each tensor's CRC-32C before
//! returning it. Numeric tensors are slices of the mapping, not copies. Partitioned (sliced)
//! variables are reassembled from their slices.
//!
//! Checkpoints are found from a prefix, from the `.index` file, or from a directory whose
//! `checkpoint` state file names the latest one, or that holds one checkpoint and no state file
//! ([`resolve_prefix`]).
//!
//! [`write`] writes V2 checkpoints; [`Checkpoint::payload_entries`] hands it a tensor's entries
//! with their verified bytes. [`tool`] is the logic of the `tf-ckpt` subcommands.

#![deny(missing_docs)]

mod crc;
mod slice_key;
mod table;
pub mod tool;
mod v1;
pub mod write;
mod write_table;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;
use prost::Message;
use tf_proto::tensorflow::{BundleEntryProto, BundleHeaderProto, TrackableObjectGraph};
use tf_tensor::{dims_to_string, dt, dtype, Data, Tensor};
use write::{OutEntry, Payload};

/// The key under which TF2 checkpoints store their object graph.
pub const OBJECT_GRAPH_KEY: &str = "_CHECKPOINTABLE_OBJECT_GRAPH";

/// Why a checkpoint or one of its tensors could not be read; messages name the file and key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CkptError {
    /// A file could not be opened or mapped.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The `.index` table is damaged.
    #[error("{path}: {msg}")]
    Index {
        /// The index file.
        path: String,
        /// What is wrong.
        msg: String,
    },
    /// A file where a checkpoint was expected that is neither a V2 prefix nor a V1 table.
    #[error("{path}: not a checkpoint ({what}); expected PREFIX.index with PREFIX.data-* shards, or a V1 checkpoint file")]
    NotACheckpoint {
        /// The file.
        path: String,
        /// What it looks like instead.
        what: String,
    },
    /// No checkpoint at the path.
    #[error(
        "{0}: no checkpoint here (expected PREFIX.index, or a directory with a 'checkpoint' file)"
    )]
    NotFound(String),
    /// A `checkpoint` state file names a checkpoint that is not there.
    #[error("{state} names checkpoint '{prefix}', which does not exist (no {prefix}.index)")]
    StaleState {
        /// The state file.
        state: String,
        /// The prefix it names.
        prefix: String,
    },
    /// The key is not in the checkpoint.
    #[error("{path}: no tensor '{key}' in the checkpoint")]
    MissingKey {
        /// The checkpoint prefix.
        path: String,
        /// The key asked for.
        key: String,
    },
    /// A tensor's bytes are damaged or inconsistent with its entry.
    #[error("{path}: tensor '{key}': {msg}")]
    Tensor {
        /// The data file.
        path: String,
        /// The tensor's key.
        key: String,
        /// What is wrong.
        msg: String,
    },
}

/// An open checkpoint.
#[derive(Debug)]
pub struct Checkpoint {
    prefix: PathBuf,
    header: BundleHeaderProto,
    entries: BTreeMap<Vec<u8>, BundleEntryProto>,
    /// `num_shards` of the header (at least 1). Only a count: the data files are mapped on
    /// first use and kept in `shards`, so a header claiming 2^30 shards costs nothing.
    num_shards: usize,
    shards: Mutex<BTreeMap<usize, Bytes>>,
    /// The tensors of a V1 checkpoint (then `entries` only lists them and no shard is mapped).
    v1: Option<v1::V1Store>,
}

/// One tensor listed in a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryInfo {
    /// The key (variable name or object path).
    pub key: String,
    /// dtype code.
    pub dtype: i32,
    /// Full shape.
    pub shape: Vec<i64>,
    /// Payload bytes as stored (all slices for partitioned variables).
    pub bytes: u64,
    /// Number of slices for a partitioned variable (0 otherwise).
    pub slices: usize,
}

/// Finds the checkpoint prefix for a path: a prefix itself, its `.index` (or a data shard), or a
/// directory whose `checkpoint` file names the latest checkpoint.
pub fn resolve_prefix(path: &Path) -> Result<PathBuf, CkptError> {
    let s = path.to_string_lossy();
    if let Some(p) = s.strip_suffix(".index") {
        return Ok(PathBuf::from(p));
    }
    if let Some(i) = s.rfind(".data-") {
        return Ok(PathBuf::from(&s[..i]));
    }
    if path.is_dir() {
        let state = path.join("checkpoint");
        if let Ok(text) = std::fs::read_to_string(&state) {
            let parsed: Result<tf_proto::tensorflow::CheckpointState, _> =
                tf_io::text::parse(text.as_bytes());
            let latest = parsed.map(|c| c.model_checkpoint_path).map_err(|e| CkptError::Index {
                path: state.display().to_string(),
                msg: format!("cannot parse the checkpoint state file: {e}"),
            })?;
            let p = Path::new(&latest);
            let prefix = if p.is_absolute() { p.to_path_buf() } else { path.join(p) };
            if !with_suffix(&prefix, ".index").is_file() && v1::files(&prefix).is_empty() {
                return Err(CkptError::StaleState {
                    state: state.display().to_string(),
                    prefix: prefix.display().to_string(),
                });
            }
            return Ok(prefix);
        }
        // A directory written by `tf.train.Checkpoint.write`: no state file, one checkpoint.
        let mut indexes: Vec<PathBuf> = std::fs::read_dir(path)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "index") && p.is_file())
                    .collect()
            })
            .unwrap_or_default();
        indexes.sort();
        return match indexes.as_slice() {
            [one] => Ok(one.with_extension("")),
            [] => Err(CkptError::NotFound(s.into_owned())),
            [a, b, ..] => Err(CkptError::NotFound(format!(
                "{s}: {} checkpoints and no 'checkpoint' file naming one (e.g. {} and {}); give a prefix",
                indexes.len(),
                a.display(),
                b.display()
            ))),
        };
    }
    Ok(path.to_path_buf())
}

/// Whether `path` is a file laid out as a V1 checkpoint table (the sorted-table footer magic,
/// read from the last 8 bytes only; [`Checkpoint::open`] verifies the rest).
pub fn is_v1_table(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else { return false };
    if !f.metadata().is_ok_and(|m| m.is_file() && m.len() >= 48) {
        return false;
    }
    let mut magic = [0u8; 8];
    f.seek(SeekFrom::End(-8)).is_ok()
        && f.read_exact(&mut magic).is_ok()
        && u64::from_le_bytes(magic) == table::MAGIC
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn map(path: &Path) -> Result<Bytes, CkptError> {
    tf_io::map_file(path)
        .map_err(|source| CkptError::Io { path: path.display().to_string(), source })
}

impl Checkpoint {
    /// Opens the checkpoint at `path` (see [`resolve_prefix`]) and verifies its index.
    pub fn open(path: &Path) -> Result<Checkpoint, CkptError> {
        let prefix = resolve_prefix(path)?;
        let index_path = with_suffix(&prefix, ".index");
        if !index_path.is_file() {
            let files = v1::files(&prefix);
            if files.is_empty() {
                return Err(CkptError::NotFound(prefix.display().to_string()));
            }
            return Self::open_v1(prefix, files);
        }
        let index_name = index_path.display().to_string();
        let bad = |msg: String| CkptError::Index { path: index_name.clone(), msg };
        let file = map(&index_path)?;
        let rows = table::read_table(&file).map_err(bad)?;
        let mut header = None;
        let mut entries = BTreeMap::new();
        for (key, value) in rows {
            if key.is_empty() {
                header = Some(
                    BundleHeaderProto::decode(value.as_slice())
                        .map_err(|e| bad(format!("bad bundle header: {e}")))?,
                );
            } else {
                let entry = BundleEntryProto::decode(value.as_slice()).map_err(|e| {
                    bad(format!("bad entry for '{}': {e}", String::from_utf8_lossy(&key)))
                })?;
                entries.insert(key, entry);
            }
        }
        let header = header.ok_or_else(|| bad("no bundle header (empty key)".into()))?;
        if header.endianness != 0 {
            return Err(bad("big-endian checkpoints are not supported".into()));
        }
        if let Some(v) = &header.version {
            if v.min_consumer > 1 {
                return Err(bad(format!(
                    "written for readers of version {} or newer (this reader: 1)",
                    v.min_consumer
                )));
            }
        }
        let num_shards = usize::try_from(header.num_shards.max(1)).unwrap_or(1);
        Ok(Checkpoint { prefix, header, entries, num_shards, shards: Mutex::default(), v1: None })
    }

    fn open_v1(prefix: PathBuf, files: Vec<PathBuf>) -> Result<Checkpoint, CkptError> {
        let store = v1::open(files).map_err(|e| match e {
            // A single file that is not a table: say what it is instead.
            CkptError::Index { path, msg } if msg.starts_with("not a V1 checkpoint table") => {
                let what = describe(Path::new(&path));
                CkptError::NotACheckpoint { path, what }
            }
            e => e,
        })?;
        let mut entries = BTreeMap::new();
        for (key, dtype, shape) in store.list() {
            let entry = BundleEntryProto {
                dtype,
                shape: Some(tf_tensor::shape_proto(shape)),
                size: store.stored_bytes(key) as i64,
                ..Default::default()
            };
            entries.insert(key.as_bytes().to_vec(), entry);
        }
        let header =
            BundleHeaderProto { num_shards: store.num_files() as i32, ..Default::default() };
        let num_shards = store.num_files();
        Ok(Checkpoint {
            prefix,
            header,
            entries,
            num_shards,
            shards: Mutex::default(),
            v1: Some(store),
        })
    }

    /// Whether this is a V1 (tensor slice) checkpoint.
    pub fn is_v1(&self) -> bool {
        self.v1.is_some()
    }

    /// The checkpoint prefix.
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// The bundle header.
    pub fn header(&self) -> &BundleHeaderProto {
        &self.header
    }

    /// The entry stored under `key` (slices of partitioned variables have binary keys and are
    /// not listed by [`Checkpoint::entries`]).
    pub fn entry(&self, key: &str) -> Option<&BundleEntryProto> {
        self.entries.get(key.as_bytes())
    }

    /// Whether `key` is in the checkpoint.
    pub fn contains(&self, key: &str) -> bool {
        self.entry(key).is_some()
    }

    /// Every named tensor, sorted by key.
    pub fn entries(&self) -> Vec<EntryInfo> {
        self.entries
            .iter()
            .filter(|(k, _)| k.first() != Some(&0))
            .map(|(k, e)| {
                let key = String::from_utf8_lossy(k).into_owned();
                let shape = shape_of(e);
                let bytes = if e.slices.is_empty() {
                    u64::try_from(e.size).unwrap_or(0)
                } else {
                    e.slices
                        .iter()
                        .filter_map(|s| {
                            self.entries.get(&slice_key::encode(&key, &extents(s, &shape)))
                        })
                        .map(|s| u64::try_from(s.size).unwrap_or(0))
                        .fold(0u64, u64::saturating_add)
                };
                EntryInfo { key, dtype: e.dtype, shape, bytes, slices: e.slices.len() }
            })
            .collect()
    }

    fn shard(&self, id: usize) -> Result<Bytes, CkptError> {
        if id >= self.num_shards {
            return Err(CkptError::Index {
                path: with_suffix(&self.prefix, ".index").display().to_string(),
                msg: format!("entry refers to shard {id} of {}", self.num_shards),
            });
        }
        let mut shards = self.shards.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = shards.get(&id) {
            return Ok(b.clone());
        }
        let path = with_suffix(&self.prefix, &format!(".data-{id:05}-of-{:05}", self.num_shards));
        let bytes = map(&path)?;
        shards.insert(id, bytes.clone());
        Ok(bytes)
    }

    /// The entries that store the tensor `key`, ready for [`write::write`], each payload
    /// verified: for a V2 checkpoint the stored entry with its data file range (checksum
    /// checked here, carried over), and for a partitioned variable its slices too; for a V1
    /// checkpoint the assembled tensor.
    pub fn payload_entries(&self, key: &str) -> Result<Vec<OutEntry>, CkptError> {
        let entry = self.entries.get(key.as_bytes()).ok_or_else(|| CkptError::MissingKey {
            path: self.prefix.display().to_string(),
            key: key.to_string(),
        })?;
        if self.v1.is_some() {
            let t = self.read(key)?;
            return Ok(vec![OutEntry {
                key: key.as_bytes().to_vec(),
                dtype: t.dtype,
                shape: t.shape.clone(),
                slices: Vec::new(),
                payload: tensor_payload(t),
            }]);
        }
        let mut out = Vec::with_capacity(1 + entry.slices.len());
        if entry.slices.is_empty() {
            out.push(self.verified(key, key.as_bytes(), entry)?);
            return Ok(out);
        }
        // The whole tensor is checked once (its slices' checksums and their layout).
        self.read_partitioned(key, entry)?;
        out.push(OutEntry {
            key: key.as_bytes().to_vec(),
            dtype: entry.dtype,
            shape: shape_of(entry),
            slices: entry.slices.clone(),
            payload: Payload::Empty,
        });
        let shape = shape_of(entry);
        for s in &entry.slices {
            let skey = slice_key::encode(key, &extents(s, &shape));
            let part = self.entries.get(&skey).ok_or_else(|| {
                self.tensor_err(key, 0, "a slice is listed but not stored".into())
            })?;
            out.push(self.verified(key, &skey, part)?);
        }
        Ok(out)
    }

    /// One stored entry with its verified payload.
    fn verified(
        &self,
        key: &str,
        skey: &[u8],
        e: &BundleEntryProto,
    ) -> Result<OutEntry, CkptError> {
        // Reading checks the checksum and that offset and size lie inside the data file.
        let t = self.read_entry(key, e)?;
        let payload = match &t.data {
            Data::Raw(_) if e.size > 0 => Payload::FileRange {
                path: with_suffix(
                    &self.prefix,
                    &format!(".data-{:05}-of-{:05}", e.shard_id, self.num_shards),
                ),
                offset: e.offset as u64,
                len: e.size as u64,
                crc32c: e.crc32c,
            },
            _ => tensor_payload(t),
        };
        Ok(OutEntry {
            key: skey.to_vec(),
            dtype: e.dtype,
            shape: shape_of(e),
            slices: Vec::new(),
            payload,
        })
    }

    /// Reads the tensor stored under `key`, verifying its checksum; partitioned variables are
    /// reassembled from their slices.
    pub fn read(&self, key: &str) -> Result<Tensor, CkptError> {
        if let Some(v1) = &self.v1 {
            return v1.read(&self.prefix, key);
        }
        let entry = self.entry(key).ok_or_else(|| CkptError::MissingKey {
            path: self.prefix.display().to_string(),
            key: key.to_string(),
        })?;
        if entry.slices.is_empty() {
            return self.read_entry(key, entry);
        }
        self.read_partitioned(key, entry)
    }

    fn tensor_err(&self, key: &str, shard: i32, msg: String) -> CkptError {
        let n = self.num_shards;
        CkptError::Tensor {
            path: with_suffix(&self.prefix, &format!(".data-{shard:05}-of-{n:05}"))
                .display()
                .to_string(),
            key: key.to_string(),
            msg,
        }
    }

    fn read_entry(&self, key: &str, e: &BundleEntryProto) -> Result<Tensor, CkptError> {
        let err = |msg: String| self.tensor_err(key, e.shard_id, msg);
        let shard =
            self.shard(usize::try_from(e.shard_id).map_err(|_| err("negative shard id".into()))?)?;
        let start = usize::try_from(e.offset).map_err(|_| err("negative offset".into()))?;
        let size = usize::try_from(e.size).map_err(|_| err("negative size".into()))?;
        let end = start.checked_add(size).filter(|e| *e <= shard.len()).ok_or_else(|| {
            err(format!(
                "bytes {start}..{} lie past the end of the {}-byte data file (truncated?)",
                start.saturating_add(size),
                shard.len()
            ))
        })?;
        let data = shard.slice(start..end);
        let shape = shape_of(e);
        let n = tf_tensor::num_elements(&shape).ok_or_else(|| err("shape overflows".into()))?;
        let mismatch = |computed: u32| {
            err(format!(
                "checksum mismatch (stored {:#010x}, computed {computed:#010x}): the data file is corrupt",
                e.crc32c
            ))
        };
        if e.dtype == dt::STRING {
            let (strings, computed) = decode_strings(&data, n).map_err(err)?;
            if computed != e.crc32c {
                return Err(mismatch(computed));
            }
            return Tensor::from_strings(&shape, strings).map_err(|x| err(x.to_string()));
        }
        let computed = crc::mask(tf_io::crc32c(&data));
        if computed != e.crc32c {
            return Err(mismatch(computed));
        }
        let elem = dtype::element_size(e.dtype)
            .ok_or_else(|| err(format!("unsupported dtype {}", dtype::enum_name(e.dtype))))?;
        if n.checked_mul(elem as u64) != Some(size as u64) {
            return Err(err(format!(
                "{size} bytes stored but shape {} of {} needs {}",
                dims_to_string(&shape),
                dtype::short_name(e.dtype),
                n.saturating_mul(elem as u64)
            )));
        }
        Ok(Tensor { dtype: e.dtype, shape, data: Data::Raw(data) })
    }

    fn read_partitioned(&self, key: &str, full: &BundleEntryProto) -> Result<Tensor, CkptError> {
        let shape = shape_of(full);
        let err = |msg: String| self.tensor_err(key, 0, msg);
        let elem = dtype::element_size(full.dtype)
            .ok_or_else(|| err("partitioned variables of strings are not supported".into()))?;
        let n = tf_tensor::num_elements(&shape).ok_or_else(|| err("shape overflows".into()))?;
        let total = n
            .checked_mul(elem as u64)
            .filter(|t| *t <= tf_tensor::MAX_MATERIALIZED_BYTES)
            .ok_or_else(|| err("too large to reassemble".into()))?;
        // Read (map) every slice first: the bytes they hold, which must lie in disjoint ranges
        // of the data files, bound what is allocated for the whole tensor.
        let mut parts = Vec::with_capacity(full.slices.len());
        let mut ranges = Vec::with_capacity(full.slices.len());
        let mut stored = 0u64;
        for s in &full.slices {
            let ext = extents(s, &shape);
            let skey = slice_key::encode(key, &ext);
            let part_entry = self.entries.get(&skey).ok_or_else(|| {
                err(format!("slice {} is listed but not stored", describe_extents(&ext)))
            })?;
            let part = self.read_entry(key, part_entry)?;
            let Some(raw) = part.raw() else { return Err(err("slice is not numeric".into())) };
            stored = stored.saturating_add(raw.len() as u64);
            ranges.push((part_entry.shard_id, part_entry.offset, part_entry.size));
            parts.push((ext, raw.clone()));
        }
        ranges.sort_unstable();
        for w in ranges.windows(2) {
            if w[0].0 == w[1].0 && w[0].1.saturating_add(w[0].2) > w[1].1 {
                return Err(err("two slices share the same stored bytes".into()));
            }
        }
        if stored != total {
            return Err(err(format!(
                "slices hold {stored} bytes, but shape {} of {} needs {total}",
                dims_to_string(&shape),
                dtype::short_name(full.dtype)
            )));
        }
        let mut out = vec![0u8; total as usize];
        let mut covered = 0u64;
        for (ext, raw) in &parts {
            covered += copy_slice(&mut out, &shape, ext, raw, elem)
                .map_err(|m| err(format!("slice {}: {m}", describe_extents(ext))))?;
        }
        if covered != n {
            return Err(err(format!("slices cover {covered} of {n} elements")));
        }
        Ok(Tensor { dtype: full.dtype, shape, data: Data::Raw(out.into()) })
    }

    /// Reads the part `[offset, offset + shape)` of the tensor under `key`: one partition of a
    /// partitioned variable, as its graph node (`emb/part_0`) holds it.
    pub fn read_part(&self, key: &str, offset: &[i64], shape: &[i64]) -> Result<Tensor, CkptError> {
        let full = self.read(key)?;
        let err = |msg: String| self.tensor_err(key, 0, msg);
        let elem =
            dtype::element_size(full.dtype).ok_or_else(|| err("not a numeric tensor".into()))?;
        let raw = full.raw().ok_or_else(|| err("not a numeric tensor".into()))?;
        if offset.len() != full.shape.len() || shape.len() != full.shape.len() {
            return Err(err(format!(
                "part offset {} / shape {} do not match the rank of {}",
                dims_to_string(offset),
                dims_to_string(shape),
                dims_to_string(&full.shape)
            )));
        }
        let ext: Vec<(i64, i64)> = offset.iter().zip(shape).map(|(o, s)| (*o, *s)).collect();
        // The part must lie inside the tensor read, so it is never larger than it.
        let inside = ext
            .iter()
            .zip(&full.shape)
            .all(|(&(o, s), &d)| o >= 0 && s >= 0 && o.checked_add(s).is_some_and(|e| e <= d));
        if !inside {
            return Err(err(format!(
                "part offset {} / shape {} lie outside {}",
                dims_to_string(offset),
                dims_to_string(shape),
                dims_to_string(&full.shape)
            )));
        }
        let n: usize = shape.iter().map(|&d| d as usize).product();
        let mut out = vec![0u8; n * elem];
        extract_slice(raw, &full.shape, &ext, &mut out, elem).map_err(err)?;
        Ok(Tensor { dtype: full.dtype, shape: shape.to_vec(), data: Data::Raw(out.into()) })
    }

    /// The TF2 object graph stored under [`OBJECT_GRAPH_KEY`], if this is an object-based
    /// checkpoint.
    pub fn object_graph(&self) -> Result<Option<TrackableObjectGraph>, CkptError> {
        if !self.contains(OBJECT_GRAPH_KEY) {
            return Ok(None);
        }
        let t = self.read(OBJECT_GRAPH_KEY)?;
        let Data::Strings(s) = &t.data else { return Ok(None) };
        let bytes = s.first().map(Vec::as_slice).unwrap_or_default();
        TrackableObjectGraph::decode(bytes).map(Some).map_err(|e| CkptError::Tensor {
            path: self.prefix.display().to_string(),
            key: OBJECT_GRAPH_KEY.into(),
            msg: format!("not a TrackableObjectGraph: {e}"),
        })
    }
}

/// A tensor's bytes as a payload to write.
fn tensor_payload(t: Tensor) -> Payload {
    match t.data {
        Data::Strings(s) => Payload::Strings(s),
        Data::Raw(b) => Payload::Raw(b),
        #[allow(unreachable_patterns)]
        _ => Payload::Empty,
    }
}

/// What a file that is not a checkpoint holds, for messages: "a GraphDef", "a TFLite model" ...
fn describe(path: &Path) -> String {
    let head = std::fs::File::open(path)
        .and_then(|mut f| {
            let mut b = [0u8; 8];
            let n = std::io::Read::read(&mut f, &mut b)?;
            Ok(b[..n].to_vec())
        })
        .unwrap_or_default();
    if head.get(4..8) == Some(b"TFL3") {
        return "a TensorFlow Lite flatbuffer".into();
    }
    match tf_io::read_path(path, &tf_io::ReadOptions::default()) {
        Ok(l) => format!("a {:?}", l.kind),
        Err(_) => "unrecognised data".into(),
    }
}

fn shape_of(e: &BundleEntryProto) -> Vec<i64> {
    e.shape.as_ref().map(|s| s.dim.iter().map(|d| d.size).collect()).unwrap_or_default()
}

/// (start, length) per dimension; a missing length means the whole dimension (-1 in keys).
fn extents(s: &tf_proto::tensorflow::TensorSliceProto, shape: &[i64]) -> Vec<(i64, i64)> {
    use tf_proto::tensorflow::tensor_slice_proto::extent::HasLengthHack;
    (0..shape.len())
        .map(|d| match s.extent.get(d) {
            Some(x) => match x.has_length_hack {
                Some(HasLengthHack::Length(l)) => (x.start, l),
                None => (0, -1),
            },
            None => (0, -1),
        })
        .collect()
}

fn describe_extents(ext: &[(i64, i64)]) -> String {
    let parts: Vec<String> = ext
        .iter()
        .map(|(s, l)| if *l < 0 { "-".to_string() } else { format!("{s},{l}") })
        .collect();
    parts.join(":")
}

/// Copies a slice's row-major bytes into the full tensor; returns the elements copied.
fn copy_slice(
    out: &mut [u8],
    shape: &[i64],
    ext: &[(i64, i64)],
    src: &[u8],
    elem: usize,
) -> Result<u64, String> {
    walk_slice(shape, ext, src.len(), elem, |full_off, slice_off, len| {
        out[full_off..full_off + len].copy_from_slice(&src[slice_off..slice_off + len]);
    })
}

/// Copies the slice `ext` of a full tensor's bytes into `out`.
fn extract_slice(
    full: &[u8],
    shape: &[i64],
    ext: &[(i64, i64)],
    out: &mut [u8],
    elem: usize,
) -> Result<u64, String> {
    let len = out.len();
    walk_slice(shape, ext, len, elem, |full_off, slice_off, n| {
        out[slice_off..slice_off + n].copy_from_slice(&full[full_off..full_off + n]);
    })
}

/// Calls `copy(full_offset, slice_offset, bytes)` for each contiguous row of slice `ext` of a
/// tensor of `shape`; `slice_bytes` must be the slice's size. Returns the elements covered.
fn walk_slice(
    shape: &[i64],
    ext: &[(i64, i64)],
    slice_bytes: usize,
    elem: usize,
    mut copy: impl FnMut(usize, usize, usize),
) -> Result<u64, String> {
    let rank = shape.len();
    if ext.len() != rank {
        return Err(format!("has rank {}, the tensor {rank}", ext.len()));
    }
    let mut starts = Vec::with_capacity(rank);
    let mut lens = Vec::with_capacity(rank);
    for (&(s, l), &d) in ext.iter().zip(shape) {
        let d = usize::try_from(d).map_err(|_| "negative dimension in the full shape")?;
        let (s, l) = if l < 0 {
            (0, d)
        } else {
            let s = usize::try_from(s).map_err(|_| "negative start")?;
            (s, usize::try_from(l).map_err(|_| "negative length")?)
        };
        if s.checked_add(l).is_none_or(|e| e > d) {
            return Err("extends past the full shape".into());
        }
        starts.push(s);
        lens.push(l);
    }
    let count = lens.iter().try_fold(1usize, |a, &l| a.checked_mul(l));
    let want = count.and_then(|c| c.checked_mul(elem));
    let Some(count) = count.filter(|_| want == Some(slice_bytes)) else {
        return Err(match want {
            Some(w) => format!("holds {slice_bytes} bytes, expected {w}"),
            None => "shape overflows".into(),
        });
    };
    if count == 0 {
        return Ok(0);
    }
    if rank == 0 {
        copy(0, 0, elem);
        return Ok(1);
    }
    // Strides of the full tensor, in elements.
    let mut strides = vec![1usize; rank];
    for d in (0..rank - 1).rev() {
        strides[d] = strides[d + 1] * shape[d + 1] as usize;
    }
    let row = lens[rank - 1] * elem;
    let mut idx = vec![0usize; rank - 1];
    let mut src_off = 0;
    loop {
        let mut dst = starts[rank - 1];
        for d in 0..rank - 1 {
            dst += (starts[d] + idx[d]) * strides[d];
        }
        copy(dst * elem, src_off, row);
        src_off += row;
        // Advance the multi-index over the leading dimensions.
        let mut d = rank - 1;
        loop {
            if d == 0 {
                return Ok(count as u64);
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < lens[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// DT_STRING data: varint64 lengths, a masked CRC of the lengths, then the bytes. Returns the
/// strings and the entry checksum TensorFlow computes for them: the masked CRC-32C of the
/// lengths (as little-endian u32, or u64 when larger), the stored length checksum, and the
/// bytes.
fn decode_strings(data: &[u8], n: u64) -> Result<(Vec<Vec<u8>>, u32), String> {
    let mut pos = 0;
    let mut lens = Vec::with_capacity(n.min(1 << 20) as usize);
    for _ in 0..n {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let b = *data.get(pos).ok_or("string lengths truncated")?;
            pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 63 {
                return Err("bad string length".into());
            }
        }
        lens.push(v);
    }
    if n > 0 {
        if pos + 4 > data.len() {
            return Err("string length checksum truncated".into());
        }
        let stored = u32::from_le_bytes(data[pos..pos + 4].try_into().expect("4 bytes"));
        let mut crc = 0u32;
        for &l in &lens {
            crc = match u32::try_from(l) {
                Ok(l32) => crc32c::crc32c_append(crc, &l32.to_le_bytes()),
                Err(_) => crc32c::crc32c_append(crc, &l.to_le_bytes()),
            };
        }
        if crc::mask(crc) != stored {
            return Err("string length checksum mismatch".into());
        }
        pos += 4;
    }
    let mut entry_crc = 0u32;
    for &l in &lens {
        entry_crc = match u32::try_from(l) {
            Ok(l32) => crc32c::crc32c_append(entry_crc, &l32.to_le_bytes()),
            Err(_) => crc32c::crc32c_append(entry_crc, &l.to_le_bytes()),
        };
    }
    if n > 0 {
        entry_crc = crc32c::crc32c_append(entry_crc, &data[pos - 4..pos]);
    }
    let mut out = Vec::with_capacity(lens.len());
    for l in lens {
        let end = usize::try_from(l)
            .ok()
            .and_then(|l| pos.checked_add(l))
            .filter(|e| *e <= data.len())
            .ok_or("string bytes truncated")?;
        entry_crc = crc32c::crc32c_append(entry_crc, &data[pos..end]);
        out.push(data[pos..end].to_vec());
        pos = end;
    }
    Ok((out, crc::mask(entry_crc)))
}

#[cfg(test)]
mod tests;
