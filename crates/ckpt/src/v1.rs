//! V1 checkpoints: what `tf.compat.v1.train.Saver(write_version=V1)` writes, and what
//! TensorFlow 2.21 still restores.
//!
//! A V1 checkpoint is one file per shard (`PREFIX`, or `PREFIX-00000-of-00002` ...), each a
//! sorted table in the same LevelDB layout as a V2 `.index` ([`crate::table`]). Every value is
//! a `SavedTensorSlices` message: the entry under the empty key holds the metadata (each
//! tensor's name, dtype, full shape and the slices saved of it), and every other entry holds
//! one saved slice: the tensor's name, the slice's extents and its values in a `TensorProto`
//! (typed fields, no dtype or shape of its own). The keys of the slice entries are an
//! order-preserving encoding of (name, extents) and are not needed to read the values.
//!
//! [`open`] reads every shard, verifies every block checksum (the table reader does), checks
//! that the metadata and the slices agree, and keeps the slices; [`V1Store::read`] assembles
//! a tensor from its slices, refusing one whose slices do not cover it exactly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use prost::Message;
use tf_proto::tensorflow::{SavedTensorSlices, TensorProto};
use tf_tensor::{dims_to_string, dtype, shape_proto, Data, Tensor};

use crate::{walk_slice, CkptError};

/// The files of a V1 checkpoint with this prefix: the prefix itself when it is a file, else its
/// `PREFIX-NNNNN-of-MMMMM` shards; empty when there are none. Whether they really are V1 tables
/// is known only once [`open`] has read their footers.
pub(crate) fn files(prefix: &Path) -> Vec<PathBuf> {
    if prefix.is_file() {
        return vec![prefix.to_path_buf()];
    }
    let (Some(dir), Some(stem)) = (prefix.parent(), prefix.file_name()) else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let stem = stem.to_string_lossy().into_owned();
    let Ok(read) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<PathBuf> = read
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix(&stem)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(is_shard_suffix)
        })
        .map(|e| dir.join(e.file_name()))
        .collect();
    out.sort();
    out
}

/// `NNNNN-of-MMMMM`.
fn is_shard_suffix(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 14
        && b[..5].iter().all(u8::is_ascii_digit)
        && &b[5..9] == b"-of-"
        && b[9..].iter().all(u8::is_ascii_digit)
}

/// (start, length) per dimension; length -1 is the whole dimension.
type Extents = Vec<(i64, i64)>;

/// One saved slice: its extents, its values and the index of the file holding it.
type Slice = (Extents, TensorProto, usize);

/// One tensor of a V1 checkpoint: its metadata and the slices stored of it.
#[derive(Debug)]
struct Stored {
    dtype: i32,
    shape: Vec<i64>,
    /// (extents, values, file) for each stored slice.
    slices: Vec<Slice>,
}

/// The tensors of an open V1 checkpoint.
#[derive(Debug, Default)]
pub(crate) struct V1Store {
    files: Vec<PathBuf>,
    tensors: BTreeMap<String, Stored>,
}

impl V1Store {
    /// Names, dtypes and full shapes, in key order.
    pub(crate) fn list(&self) -> impl Iterator<Item = (&str, i32, &[i64])> {
        self.tensors.iter().map(|(k, t)| (k.as_str(), t.dtype, t.shape.as_slice()))
    }

    /// The number of files (shards).
    pub(crate) fn num_files(&self) -> usize {
        self.files.len()
    }

    /// Bytes of the values as stored (an estimate for strings: their lengths).
    pub(crate) fn stored_bytes(&self, key: &str) -> u64 {
        let Some(t) = self.tensors.get(key) else { return 0 };
        let elem = dtype::element_size(t.dtype).unwrap_or(0) as u64;
        t.slices
            .iter()
            .map(|(ext, p, _)| {
                if elem == 0 {
                    p.string_val.iter().map(|s| s.len() as u64).sum()
                } else {
                    slice_elements(ext, &t.shape).unwrap_or(0) * elem
                }
            })
            .sum()
    }

    /// Assembles the tensor stored under `key` from its slices.
    pub(crate) fn read(&self, prefix: &Path, key: &str) -> Result<Tensor, CkptError> {
        let t = self.tensors.get(key).ok_or_else(|| CkptError::MissingKey {
            path: prefix.display().to_string(),
            key: key.to_string(),
        })?;
        let err = |file: usize, msg: String| CkptError::Tensor {
            path: self.files.get(file).unwrap_or(&self.files[0]).display().to_string(),
            key: key.to_string(),
            msg,
        };
        let n =
            tf_tensor::num_elements(&t.shape).ok_or_else(|| err(0, "shape overflows".into()))?;
        let Some(elem) = dtype::element_size(t.dtype) else {
            // Strings (and other non-numeric dtypes): only whole, unsliced tensors.
            let [(ext, proto, file)] = t.slices.as_slice() else {
                return Err(err(0, format!("{} slices of a non-numeric tensor", t.slices.len())));
            };
            if ext.iter().any(|&(s, l)| l >= 0 && s != 0) {
                return Err(err(*file, "a partial slice of a non-numeric tensor".into()));
            }
            return decode(proto, t.dtype, &t.shape, n).map_err(|m| err(*file, m));
        };
        let total = n
            .checked_mul(elem as u64)
            .filter(|b| *b <= tf_tensor::MAX_MATERIALIZED_BYTES)
            .ok_or_else(|| err(0, "too large to assemble".into()))?;
        let mut out = vec![0u8; total as usize];
        let mut covered = 0u64;
        for (ext, proto, file) in &t.slices {
            let lens: Vec<i64> =
                ext.iter().zip(&t.shape).map(|(&(_, l), &d)| if l < 0 { d } else { l }).collect();
            let count = tf_tensor::num_elements(&lens).unwrap_or(u64::MAX);
            let part = decode(proto, t.dtype, &lens, count).map_err(|m| err(*file, m))?;
            let raw = part.raw().ok_or_else(|| err(*file, "slice is not numeric".into()))?;
            covered += walk_slice(&t.shape, ext, raw.len(), elem, |full, off, len| {
                out[full..full + len].copy_from_slice(&raw[off..off + len]);
            })
            .map_err(|m| err(*file, format!("slice {}: {m}", dims_to_string(&lens))))?;
        }
        if covered != n {
            return Err(err(0, format!("slices cover {covered} of {n} elements")));
        }
        Ok(Tensor { dtype: t.dtype, shape: t.shape.clone(), data: Data::Raw(out.into()) })
    }
}

fn slice_elements(ext: &[(i64, i64)], shape: &[i64]) -> Option<u64> {
    let lens: Vec<i64> =
        ext.iter().zip(shape).map(|(&(_, l), &d)| if l < 0 { d } else { l }).collect();
    tf_tensor::num_elements(&lens)
}

/// Decodes a slice's values (typed fields of a TensorProto without dtype or shape), which must
/// hold exactly `n` values.
fn decode(p: &TensorProto, dt: i32, shape: &[i64], n: u64) -> Result<Tensor, String> {
    let stored = typed_len(p, dt);
    if stored != Some(n) {
        return Err(match stored {
            Some(k) => format!("{k} values stored for a slice of {n} elements"),
            None => format!("unsupported dtype {}", dtype::enum_name(dt)),
        });
    }
    let mut full = p.clone();
    full.dtype = dt;
    full.tensor_shape = Some(shape_proto(shape));
    Tensor::from_proto(&full).map_err(|e| e.to_string())
}

/// How many values of `dt` the typed fields of `p` hold (`tensor_content` counted too).
fn typed_len(p: &TensorProto, dt: i32) -> Option<u64> {
    use tf_tensor::dt as t;
    if !p.tensor_content.is_empty() {
        return Some(p.tensor_content.len() as u64 / dtype::element_size(dt)? as u64);
    }
    let n = match dt {
        t::FLOAT => p.float_val.len(),
        t::DOUBLE => p.double_val.len(),
        t::INT32
        | t::INT16
        | t::INT8
        | t::UINT8
        | t::UINT16
        | t::QINT8
        | t::QUINT8
        | t::QINT16
        | t::QUINT16
        | t::QINT32 => p.int_val.len(),
        t::INT64 => p.int64_val.len(),
        t::UINT32 => p.uint32_val.len(),
        t::UINT64 => p.uint64_val.len(),
        t::BOOL => p.bool_val.len(),
        t::STRING => p.string_val.len(),
        t::HALF | t::BFLOAT16 => p.half_val.len(),
        t::COMPLEX64 => p.scomplex_val.len() / 2,
        t::COMPLEX128 => p.dcomplex_val.len() / 2,
        _ => return None,
    };
    Some(n as u64)
}

/// Reads the V1 checkpoint made of `files`.
pub(crate) fn open(files: Vec<PathBuf>) -> Result<V1Store, CkptError> {
    let mut store = V1Store { files: Vec::new(), tensors: BTreeMap::new() };
    let mut slices: Vec<(String, Slice)> = Vec::new();
    for (i, path) in files.iter().enumerate() {
        let name = path.display().to_string();
        let bad = |msg: String| CkptError::Index { path: name.clone(), msg };
        let bytes = crate::map(path)?;
        let rows = crate::table::read_table(&bytes)
            .map_err(|m| bad(format!("not a V1 checkpoint table: {m}")))?;
        let mut saw_meta = false;
        for (key, value) in rows {
            let msg = SavedTensorSlices::decode(value.as_slice())
                .map_err(|e| bad(format!("bad SavedTensorSlices entry: {e}")))?;
            if key.is_empty() {
                let meta = msg.meta.ok_or_else(|| bad("the empty key holds no metadata".into()))?;
                saw_meta = true;
                for m in meta.tensor {
                    let shape: Vec<i64> = m
                        .shape
                        .as_ref()
                        .map(|s| s.dim.iter().map(|d| d.size).collect())
                        .unwrap_or_default();
                    if shape.iter().any(|d| *d < 0) {
                        return Err(bad(format!(
                            "tensor '{}' has shape {}",
                            m.name,
                            dims_to_string(&shape)
                        )));
                    }
                    let prev = store.tensors.get(&m.name);
                    if prev.is_some_and(|p| p.dtype != m.r#type || p.shape != shape) {
                        return Err(bad(format!(
                            "tensor '{}' is described differently by two shards",
                            m.name
                        )));
                    }
                    store.tensors.entry(m.name.clone()).or_insert(Stored {
                        dtype: m.r#type,
                        shape,
                        slices: Vec::new(),
                    });
                }
            } else {
                let s = msg.data.ok_or_else(|| bad("a slice entry holds no slice".into()))?;
                let proto = s.data.unwrap_or_default();
                let slice = s.slice.unwrap_or_default();
                // Missing trailing extents need the full shape: completed below, once every
                // shard's metadata is read.
                let ext = slice
                    .extent
                    .iter()
                    .map(|x| {
                        use tf_proto::tensorflow::tensor_slice_proto::extent::HasLengthHack;
                        match x.has_length_hack {
                            Some(HasLengthHack::Length(l)) => (x.start, l),
                            None => (0, -1),
                        }
                    })
                    .collect();
                slices.push((s.name, (ext, proto, i)));
            }
        }
        if !saw_meta {
            return Err(bad("no metadata entry (empty key): not a V1 checkpoint".into()));
        }
        store.files.push(path.clone());
    }
    for (name, (ext, proto, file)) in slices {
        let path = store.files[file].display().to_string();
        let t = store.tensors.get_mut(&name).ok_or_else(|| CkptError::Index {
            path: path.clone(),
            msg: format!("slice of '{name}', which the metadata does not list"),
        })?;
        // A slice proto lists extents only up to the last partial dimension.
        let full: Vec<(i64, i64)> =
            (0..t.shape.len()).map(|d| ext.get(d).copied().unwrap_or((0, -1))).collect();
        if ext.len() > t.shape.len() {
            return Err(CkptError::Index {
                path,
                msg: format!("slice of '{name}' has more extents than the tensor has dimensions"),
            });
        }
        t.slices.push((full, proto, file));
    }
    Ok(store)
}
