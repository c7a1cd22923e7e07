//! Tensors as TensorFlow stores them in `TensorProto`, decoded and encoded for every dtype.
//!
//! A `TensorProto` carries its values either as `tensor_content` (raw little-endian element
//! bytes, row-major) or in a typed repeated field (`float_val`, `int_val`, `half_val`, ...). A
//! typed list shorter than the shape is filled by repeating its last value, and an empty one
//! means zeros: this is how Python's `make_tensor_proto` writes splats. [`Tensor::from_proto`]
//! understands both forms; [`Tensor::to_proto`] writes `tensor_content` (as TensorFlow's C++
//! `AsProtoTensorContent` does) and [`Tensor::to_proto_typed`] the typed form.
//!
//! Decoding `tensor_content` never copies: the payload stays a [`bytes::Bytes`] slice of the
//! buffer the GraphDef was decoded from (a memory-mapped file, for instance).

#![deny(missing_docs)]

pub mod dtype;
mod element;

use bytes::Bytes;
use tf_proto::tensorflow::{
    tensor_shape_proto, ResourceHandleProto, TensorProto, TensorShapeProto, VariantTensorDataProto,
};

pub use dtype::dt;
pub use element::Element;

/// The largest tensor this crate materializes from a typed-field splat (2 GiB, the protobuf
/// message limit). A Const of shape [1e12] filled from one `float_val` is legal TensorFlow, but
/// expanding it would exhaust memory; it is reported as an error instead.
pub const MAX_MATERIALIZED_BYTES: u64 = 1 << 31;

/// The default of [`max_splat_bytes`]: 256 MiB.
pub const DEFAULT_MAX_SPLAT_BYTES: u64 = 256 << 20;

static MAX_SPLAT_BYTES: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(DEFAULT_MAX_SPLAT_BYTES);

/// The most bytes [`Tensor::from_proto`] allocates to expand a typed field that holds fewer
/// values than the shape has elements (a splat: `float_val: 0` for shape `[20000, 20000]`).
/// Such a tensor costs a few bytes in the file and can claim gigabytes in memory, so it is
/// bounded far below [`MAX_MATERIALIZED_BYTES`]; tools raise it with `--max-splat-bytes`.
/// Strings count their bytes plus 24 per element.
pub fn max_splat_bytes() -> u64 {
    MAX_SPLAT_BYTES.load(std::sync::atomic::Ordering::Relaxed)
}

/// Sets [`max_splat_bytes`] for the whole process (capped at [`MAX_MATERIALIZED_BYTES`]).
pub fn set_max_splat_bytes(bytes: u64) {
    MAX_SPLAT_BYTES.store(bytes.min(MAX_MATERIALIZED_BYTES), std::sync::atomic::Ordering::Relaxed);
}

/// Parses a size given on a command line: bytes, or with a K/M/G (KiB/MiB/GiB) suffix
/// (`1048576`, `64K`, `10MiB`, `2G`).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 =
        num.parse().map_err(|_| format!("'{s}' is not a size (e.g. 1048576, 64K, 10MiB)"))?;
    let mul: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("'{s}': unknown unit '{unit}' (use K, M or G)")),
    };
    n.checked_mul(mul).ok_or_else(|| format!("'{s}' is too large"))
}

/// Values stored in the typed field `field` of `p`, and the bytes decoding all `n` elements
/// takes (the last value repeated, by TensorFlow's fill rule).
fn typed_cost(
    p: &TensorProto,
    field: dtype::TypedField,
    size: Option<usize>,
    n: u64,
) -> (u64, u64) {
    use dtype::TypedField as F;
    use prost::Message;
    fn heap<T>(v: &[T], n: u64, each: impl Fn(&T) -> u64) -> (u64, u64) {
        let stored: u64 = v.iter().map(&each).sum();
        let last = v.last().map_or(0, each);
        let missing = n.saturating_sub(v.len() as u64);
        (v.len() as u64, stored.saturating_add(missing.saturating_mul(last)))
    }
    let (stored, extra) = match field {
        F::String => heap(&p.string_val, n, |s| s.len() as u64),
        F::Resource => heap(&p.resource_handle_val, n, |r| r.encoded_len() as u64),
        F::Variant => heap(&p.variant_val, n, |v| v.encoded_len() as u64),
        F::Float => (p.float_val.len() as u64, 0),
        F::Double => (p.double_val.len() as u64, 0),
        F::Int64 => (p.int64_val.len() as u64, 0),
        F::Uint32 => (p.uint32_val.len() as u64, 0),
        F::Uint64 => (p.uint64_val.len() as u64, 0),
        F::Bool => (p.bool_val.len() as u64, 0),
        F::Half => (p.half_val.len() as u64, 0),
        F::Float8 => (p.float8_val.len() as u64, 0),
        F::Int => (p.int_val.len() as u64, 0),
        F::Scomplex => (p.scomplex_val.len().div_ceil(2) as u64, 0),
        F::Dcomplex => (p.dcomplex_val.len().div_ceil(2) as u64, 0),
    };
    let each = match field {
        F::String => 24,
        F::Resource => std::mem::size_of::<ResourceHandleProto>() as u64,
        F::Variant => std::mem::size_of::<VariantTensorDataProto>() as u64,
        // Decoding goes through a vector of the field's type, then the bytes.
        _ => 2 * size.unwrap_or(8) as u64,
    };
    (stored, n.saturating_mul(each).saturating_add(extra))
}

/// Why a TensorProto could not be decoded or a tensor not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TensorError {
    /// The shape has an unknown rank or an unknown (negative) dimension.
    #[error("tensor shape {0} is not fully defined")]
    UndefinedShape(String),
    /// The element count overflows or the payload exceeds [`MAX_MATERIALIZED_BYTES`].
    #[error("tensor of shape {shape} and dtype {dtype} is too large ({what})")]
    TooLarge {
        /// The shape, printed.
        shape: String,
        /// The dtype's short name.
        dtype: String,
        /// What overflowed.
        what: String,
    },
    /// `tensor_content` does not hold exactly `elements × element size` bytes.
    #[error("tensor_content holds {got} bytes but shape {shape} of {dtype} needs {want} bytes")]
    ContentSize {
        /// Bytes present.
        got: usize,
        /// Bytes needed.
        want: u64,
        /// The shape, printed.
        shape: String,
        /// The dtype's short name.
        dtype: String,
    },
    /// More typed values than elements.
    #[error("{field} holds {got} values but shape {shape} has only {want} elements")]
    TooManyValues {
        /// The typed field.
        field: &'static str,
        /// Values present.
        got: usize,
        /// Elements in the shape.
        want: u64,
        /// The shape, printed.
        shape: String,
    },
    /// The dtype has no encoding this crate knows (DT_INVALID or a future code).
    #[error("unsupported dtype {0}")]
    UnsupportedDtype(String),
    /// `tensor_content` was used for a dtype that cannot have it (string, resource, variant).
    #[error("tensor_content is not allowed for dtype {0}")]
    ContentNotAllowed(String),
    /// A typed accessor was called with the wrong element type.
    #[error("tensor has dtype {have}, not {want}")]
    DtypeMismatch {
        /// The tensor's dtype.
        have: String,
        /// The requested dtype(s).
        want: String,
    },
    /// The number of values given does not match the shape.
    #[error("{got} values given for shape {shape} ({want} elements)")]
    ValueCount {
        /// Values given.
        got: usize,
        /// Elements in the shape.
        want: u64,
        /// The shape, printed.
        shape: String,
    },
}

/// Element storage of a decoded tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// Raw little-endian element bytes (all fixed-size dtypes; bool is one byte).
    Raw(Bytes),
    /// DT_STRING elements.
    Strings(Vec<Vec<u8>>),
    /// DT_RESOURCE elements.
    Resources(Vec<ResourceHandleProto>),
    /// DT_VARIANT elements.
    Variants(Vec<VariantTensorDataProto>),
}

/// A decoded tensor: dtype code, fully defined shape and values.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// The `DataType` code (see [`dt`]).
    pub dtype: i32,
    /// Dimension sizes; empty for a scalar.
    pub shape: Vec<i64>,
    /// The elements.
    pub data: Data,
}

/// Prints a shape the way TensorFlow does in messages: `[2,3]`, `[]` for a scalar, `<unknown>`.
pub fn shape_to_string(shape: Option<&TensorShapeProto>) -> String {
    match shape {
        None => "[]".to_string(),
        Some(s) if s.unknown_rank => "<unknown>".to_string(),
        Some(s) => dims_to_string(&s.dim.iter().map(|d| d.size).collect::<Vec<_>>()),
    }
}

/// Prints dimension sizes as `[2,3]` (`?` for unknown ones).
pub fn dims_to_string(dims: &[i64]) -> String {
    let parts: Vec<String> =
        dims.iter().map(|d| if *d < 0 { "?".to_string() } else { d.to_string() }).collect();
    format!("[{}]", parts.join(","))
}

/// The element count of fully known dims, or `None` on overflow or unknown dims.
pub fn num_elements(dims: &[i64]) -> Option<u64> {
    dims.iter().try_fold(1u64, |acc, &d| if d < 0 { None } else { acc.checked_mul(d as u64) })
}

/// Builds a `TensorShapeProto` from dimension sizes.
pub fn shape_proto(dims: &[i64]) -> TensorShapeProto {
    TensorShapeProto {
        dim: dims
            .iter()
            .map(|&size| tensor_shape_proto::Dim { size, name: String::new() })
            .collect(),
        unknown_rank: false,
    }
}

fn fill<T: Clone>(
    values: &[T],
    n: u64,
    field: &'static str,
    shape: &str,
    zero: T,
) -> Result<Vec<T>, TensorError> {
    if values.len() as u64 > n {
        return Err(TensorError::TooManyValues {
            field,
            got: values.len(),
            want: n,
            shape: shape.to_string(),
        });
    }
    let mut out = Vec::with_capacity(n as usize);
    out.extend_from_slice(values);
    let last = values.last().cloned().unwrap_or(zero);
    out.resize(n as usize, last);
    Ok(out)
}

impl Tensor {
    /// Decodes a TensorProto. `tensor_content` wins when non-empty; otherwise the typed field
    /// for the dtype is read with TensorFlow's fill rule.
    pub fn from_proto(p: &TensorProto) -> Result<Tensor, TensorError> {
        let dtype = p.dtype;
        let shape_str = shape_to_string(p.tensor_shape.as_ref());
        let dims: Vec<i64> = match &p.tensor_shape {
            None => Vec::new(),
            Some(s) if s.unknown_rank => return Err(TensorError::UndefinedShape(shape_str)),
            Some(s) => s.dim.iter().map(|d| d.size).collect(),
        };
        if dims.iter().any(|d| *d < 0) {
            return Err(TensorError::UndefinedShape(shape_str));
        }
        let too_large = |what: &str| TensorError::TooLarge {
            shape: shape_str.clone(),
            dtype: dtype::short_name(dtype),
            what: what.to_string(),
        };
        let n = num_elements(&dims).ok_or_else(|| too_large("element count overflows"))?;
        let field = dtype::typed_field(dtype)
            .ok_or_else(|| TensorError::UnsupportedDtype(dtype::enum_name(dtype)))?;
        let size = dtype::element_size(dtype);
        if let Some(size) = size {
            let want =
                n.checked_mul(size as u64).ok_or_else(|| too_large("byte size overflows"))?;
            if !p.tensor_content.is_empty() {
                if p.tensor_content.len() as u64 != want {
                    return Err(TensorError::ContentSize {
                        got: p.tensor_content.len(),
                        want,
                        shape: shape_str,
                        dtype: dtype::short_name(dtype),
                    });
                }
                return Ok(Tensor {
                    dtype,
                    shape: dims,
                    data: Data::Raw(p.tensor_content.clone()),
                });
            }
            if want > MAX_MATERIALIZED_BYTES {
                return Err(too_large(&format!(
                    "{want} bytes exceed the {MAX_MATERIALIZED_BYTES}-byte limit"
                )));
            }
        } else if !p.tensor_content.is_empty() {
            return Err(TensorError::ContentNotAllowed(dtype::enum_name(dtype)));
        } else if n > MAX_MATERIALIZED_BYTES {
            return Err(too_large("element count exceeds the limit"));
        }
        let (stored, bytes) = typed_cost(p, field, size, n);
        if stored < n && bytes > max_splat_bytes() {
            return Err(too_large(&format!(
                "expanding {stored} stored value(s) to {n} elements takes {bytes} bytes, over \
                 the {}-byte limit for splat constants",
                max_splat_bytes()
            )));
        }
        if bytes > MAX_MATERIALIZED_BYTES.saturating_mul(2) {
            return Err(too_large(&format!(
                "decoding takes {bytes} bytes, over the {MAX_MATERIALIZED_BYTES}-byte limit"
            )));
        }
        let s = shape_str.as_str();
        let raw = |v: Vec<u8>| Ok(Tensor { dtype, shape: dims.clone(), data: Data::Raw(v.into()) });
        use dtype::TypedField as F;
        match field {
            F::Float => {
                raw(le_bytes(&fill(&p.float_val, n, "float_val", s, 0.0)?, f32::to_le_bytes))
            }
            F::Double => {
                raw(le_bytes(&fill(&p.double_val, n, "double_val", s, 0.0)?, f64::to_le_bytes))
            }
            F::Int64 => raw(le_bytes(&fill(&p.int64_val, n, "int64_val", s, 0)?, i64::to_le_bytes)),
            F::Uint32 => {
                raw(le_bytes(&fill(&p.uint32_val, n, "uint32_val", s, 0)?, u32::to_le_bytes))
            }
            F::Uint64 => {
                raw(le_bytes(&fill(&p.uint64_val, n, "uint64_val", s, 0)?, u64::to_le_bytes))
            }
            F::Bool => {
                raw(fill(&p.bool_val, n, "bool_val", s, false)?.iter().map(|b| *b as u8).collect())
            }
            F::Half => raw(le_bytes(&fill(&p.half_val, n, "half_val", s, 0)?, |v| {
                (v as u16).to_le_bytes()
            })),
            F::Float8 => raw(fill(&p.float8_val, n, "float8_val", s, 0)?),
            F::Int => {
                let v = fill(&p.int_val, n, "int_val", s, 0)?;
                // Narrow types keep the low bits, as TensorFlow's static_cast does; 4- and
                // 2-bit types keep only their bits (tensor_content holds -1 as int4 as 0x0f).
                let bits = sub_byte_mask(dtype);
                raw(match size {
                    Some(4) => le_bytes(&v, i32::to_le_bytes),
                    Some(2) => le_bytes(&v, |x| (x as u16).to_le_bytes()),
                    _ => v.iter().map(|x| *x as u8 & bits).collect(),
                })
            }
            F::Scomplex => {
                let pairs: Vec<[f32; 2]> =
                    p.scomplex_val.chunks(2).map(|c| [c[0], *c.get(1).unwrap_or(&0.0)]).collect();
                let v = fill(&pairs, n, "scomplex_val", s, [0.0, 0.0])?;
                raw(v.iter().flat_map(|c| c.iter().flat_map(|x| x.to_le_bytes())).collect())
            }
            F::Dcomplex => {
                let pairs: Vec<[f64; 2]> =
                    p.dcomplex_val.chunks(2).map(|c| [c[0], *c.get(1).unwrap_or(&0.0)]).collect();
                let v = fill(&pairs, n, "dcomplex_val", s, [0.0, 0.0])?;
                raw(v.iter().flat_map(|c| c.iter().flat_map(|x| x.to_le_bytes())).collect())
            }
            F::String => Ok(Tensor {
                dtype,
                shape: dims.clone(),
                data: Data::Strings(fill(&p.string_val, n, "string_val", s, Vec::new())?),
            }),
            F::Resource => Ok(Tensor {
                dtype,
                shape: dims.clone(),
                data: Data::Resources(fill(
                    &p.resource_handle_val,
                    n,
                    "resource_handle_val",
                    s,
                    ResourceHandleProto::default(),
                )?),
            }),
            F::Variant => Ok(Tensor {
                dtype,
                shape: dims.clone(),
                data: Data::Variants(fill(
                    &p.variant_val,
                    n,
                    "variant_val",
                    s,
                    VariantTensorDataProto::default(),
                )?),
            }),
        }
    }

    /// Builds a tensor from typed values; `T` must match `dtype` (see [`Element`]).
    pub fn from_values<T: Element>(
        dtype: i32,
        shape: &[i64],
        values: &[T],
    ) -> Result<Tensor, TensorError> {
        check_element::<T>(dtype)?;
        let n = num_elements(shape)
            .ok_or_else(|| TensorError::UndefinedShape(dims_to_string(shape)))?;
        if values.len() as u64 != n {
            return Err(TensorError::ValueCount {
                got: values.len(),
                want: n,
                shape: dims_to_string(shape),
            });
        }
        let mut buf = Vec::with_capacity(values.len() * T::SIZE);
        for v in values {
            v.write_le(&mut buf);
        }
        Ok(Tensor { dtype, shape: shape.to_vec(), data: Data::Raw(buf.into()) })
    }

    /// Builds a DT_STRING tensor.
    pub fn from_strings(shape: &[i64], values: Vec<Vec<u8>>) -> Result<Tensor, TensorError> {
        let n = num_elements(shape)
            .ok_or_else(|| TensorError::UndefinedShape(dims_to_string(shape)))?;
        if values.len() as u64 != n {
            return Err(TensorError::ValueCount {
                got: values.len(),
                want: n,
                shape: dims_to_string(shape),
            });
        }
        Ok(Tensor { dtype: dt::STRING, shape: shape.to_vec(), data: Data::Strings(values) })
    }

    /// The number of elements.
    pub fn len(&self) -> u64 {
        num_elements(&self.shape).unwrap_or(0)
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Raw element bytes, for fixed-size dtypes.
    pub fn raw(&self) -> Option<&Bytes> {
        match &self.data {
            Data::Raw(b) => Some(b),
            _ => None,
        }
    }

    /// The payload size in bytes (strings: sum of their lengths).
    pub fn byte_size(&self) -> u64 {
        match &self.data {
            Data::Raw(b) => b.len() as u64,
            Data::Strings(s) => s.iter().map(|x| x.len() as u64).sum(),
            Data::Resources(_) | Data::Variants(_) => 0,
        }
    }

    /// Copies the elements out as `T`, which must match the dtype (see [`Element`]).
    pub fn values<T: Element>(&self) -> Result<Vec<T>, TensorError> {
        check_element::<T>(self.dtype)?;
        let raw = self.raw().ok_or_else(|| TensorError::DtypeMismatch {
            have: dtype::short_name(self.dtype),
            want: T::NAME.to_string(),
        })?;
        if let Some(extend) = sub_byte_extend(self.dtype) {
            return Ok(raw.iter().map(|b| T::read_le(&[extend(*b)])).collect());
        }
        Ok(raw.chunks_exact(T::SIZE).map(T::read_le).collect())
    }

    /// Encodes with `tensor_content` for fixed-size dtypes (strings, resources and variants use
    /// their typed fields), as TensorFlow's C++ `AsProtoTensorContent` does.
    pub fn to_proto(&self) -> TensorProto {
        let mut p = self.proto_header();
        match &self.data {
            Data::Raw(b) => p.tensor_content = b.clone(),
            _ => self.put_typed(&mut p),
        }
        p
    }

    /// Encodes every value in the dtype's typed field (`float_val`, `half_val`, ...), as
    /// `AsProtoField` does, without splat compaction.
    pub fn to_proto_typed(&self) -> TensorProto {
        let mut p = self.proto_header();
        self.put_typed(&mut p);
        p
    }

    fn proto_header(&self) -> TensorProto {
        TensorProto {
            dtype: self.dtype,
            tensor_shape: Some(shape_proto(&self.shape)),
            ..Default::default()
        }
    }

    fn put_typed(&self, p: &mut TensorProto) {
        use dtype::TypedField as F;
        let raw: &[u8] = match &self.data {
            Data::Raw(b) => b,
            Data::Strings(s) => {
                p.string_val = s.clone();
                return;
            }
            Data::Resources(r) => {
                p.resource_handle_val = r.clone();
                return;
            }
            Data::Variants(v) => {
                p.variant_val = v.clone();
                return;
            }
        };
        let Some(field) = dtype::typed_field(self.dtype) else { return };
        let size = dtype::element_size(self.dtype).unwrap_or(1);
        match field {
            F::Float => p.float_val = raw.chunks_exact(4).map(f32::read_le).collect(),
            F::Double => p.double_val = raw.chunks_exact(8).map(f64::read_le).collect(),
            F::Int64 => p.int64_val = raw.chunks_exact(8).map(i64::read_le).collect(),
            F::Uint32 => p.uint32_val = raw.chunks_exact(4).map(u32::read_le).collect(),
            F::Uint64 => p.uint64_val = raw.chunks_exact(8).map(u64::read_le).collect(),
            F::Bool => p.bool_val = raw.iter().map(|b| *b != 0).collect(),
            F::Half => p.half_val = raw.chunks_exact(2).map(|c| u16::read_le(c) as i32).collect(),
            F::Float8 => p.float8_val = raw.to_vec(),
            F::Scomplex => p.scomplex_val = raw.chunks_exact(4).map(f32::read_le).collect(),
            F::Dcomplex => p.dcomplex_val = raw.chunks_exact(8).map(f64::read_le).collect(),
            F::Int => {
                let signed = matches!(
                    dtype::base(self.dtype),
                    dt::INT8
                        | dt::QINT8
                        | dt::INT16
                        | dt::QINT16
                        | dt::INT32
                        | dt::QINT32
                        | dt::INT4
                        | dt::INT2
                );
                p.int_val = raw
                    .chunks_exact(size)
                    .map(|c| match (size, signed) {
                        (4, _) => i32::read_le(c),
                        (2, true) => i16::read_le(c) as i32,
                        (2, false) => u16::read_le(c) as i32,
                        (_, true) => {
                            sub_byte_extend(self.dtype).map_or(c[0], |f| f(c[0])) as i8 as i32
                        }
                        (_, false) => (c[0] & sub_byte_mask(self.dtype)) as i32,
                    })
                    .collect();
            }
            F::String | F::Resource | F::Variant => {}
        }
    }
}

/// The bits a sub-byte integer type keeps in its byte (all of them for other types).
fn sub_byte_mask(dtype: i32) -> u8 {
    match dtype::base(dtype) {
        dt::INT4 | dt::UINT4 => 0x0f,
        dt::INT2 | dt::UINT2 => 0x03,
        _ => 0xff,
    }
}

/// How to widen a stored sub-byte value to a full byte: sign extension for int4/int2, masking
/// for uint4/uint2.
fn sub_byte_extend(dtype: i32) -> Option<fn(u8) -> u8> {
    match dtype::base(dtype) {
        dt::INT4 => Some(|b| (((b << 4) as i8) >> 4) as u8),
        dt::INT2 => Some(|b| (((b << 6) as i8) >> 6) as u8),
        dt::UINT4 => Some(|b| b & 0x0f),
        dt::UINT2 => Some(|b| b & 0x03),
        _ => None,
    }
}

fn check_element<T: Element>(dtype: i32) -> Result<(), TensorError> {
    if T::DTYPES.contains(&dtype::base(dtype)) {
        Ok(())
    } else {
        Err(TensorError::DtypeMismatch {
            have: dtype::short_name(dtype),
            want: T::NAME.to_string(),
        })
    }
}

fn le_bytes<T: Copy, const N: usize>(v: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() * N);
    for x in v {
        out.extend_from_slice(&f(*x));
    }
    out
}

#[cfg(test)]
mod tests;
