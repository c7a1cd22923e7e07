//! Host-side tensors: a shape plus a typed, row-major (C order) buffer.

use half::{bf16, f16};

use crate::dtype::DType;
use crate::error::{Error, Result};

/// Typed element storage. Complex values are stored as `[re, im]` pairs.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    F64(Vec<f64>),
    F16(Vec<f16>),
    BF16(Vec<bf16>),
    I8(Vec<i8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    Bool(Vec<bool>),
    C64(Vec<[f32; 2]>),
    C128(Vec<[f64; 2]>),
    Str(Vec<Vec<u8>>),
}

/// Apply `$body` to the vector inside any variant.
macro_rules! with_vec {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            Data::F32($v) => $body,
            Data::F64($v) => $body,
            Data::F16($v) => $body,
            Data::BF16($v) => $body,
            Data::I8($v) => $body,
            Data::I16($v) => $body,
            Data::I32($v) => $body,
            Data::I64($v) => $body,
            Data::U8($v) => $body,
            Data::U16($v) => $body,
            Data::U32($v) => $body,
            Data::U64($v) => $body,
            Data::Bool($v) => $body,
            Data::C64($v) => $body,
            Data::C128($v) => $body,
            Data::Str($v) => $body,
        }
    };
}

impl Data {
    pub fn dtype(&self) -> DType {
        match self {
            Data::F32(_) => DType::F32,
            Data::F64(_) => DType::F64,
            Data::F16(_) => DType::F16,
            Data::BF16(_) => DType::BF16,
            Data::I8(_) => DType::I8,
            Data::I16(_) => DType::I16,
            Data::I32(_) => DType::I32,
            Data::I64(_) => DType::I64,
            Data::U8(_) => DType::U8,
            Data::U16(_) => DType::U16,
            Data::U32(_) => DType::U32,
            Data::U64(_) => DType::U64,
            Data::Bool(_) => DType::Bool,
            Data::C64(_) => DType::Complex64,
            Data::C128(_) => DType::Complex128,
            Data::Str(_) => DType::String,
        }
    }

    pub fn len(&self) -> usize {
        with_vec!(self, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Real-valued view as f64 (floats, ints, bools as 0/1). `None` for strings and complex.
    pub fn to_f64(&self) -> Option<Vec<f64>> {
        Some(match self {
            Data::F32(v) => v.iter().map(|&x| x as f64).collect(),
            Data::F64(v) => v.clone(),
            Data::F16(v) => v.iter().map(|x| x.to_f64()).collect(),
            Data::BF16(v) => v.iter().map(|x| x.to_f64()).collect(),
            Data::I8(v) => v.iter().map(|&x| x as f64).collect(),
            Data::I16(v) => v.iter().map(|&x| x as f64).collect(),
            Data::I32(v) => v.iter().map(|&x| x as f64).collect(),
            Data::I64(v) => v.iter().map(|&x| x as f64).collect(),
            Data::U8(v) => v.iter().map(|&x| x as f64).collect(),
            Data::U16(v) => v.iter().map(|&x| x as f64).collect(),
            Data::U32(v) => v.iter().map(|&x| x as f64).collect(),
            Data::U64(v) => v.iter().map(|&x| x as f64).collect(),
            Data::Bool(v) => v.iter().map(|&x| x as u8 as f64).collect(),
            Data::C64(_) | Data::C128(_) | Data::Str(_) => return None,
        })
    }

    /// Complex view as `[re, im]` f64 pairs (real types get im = 0). `None` for strings.
    pub fn to_c128(&self) -> Option<Vec<[f64; 2]>> {
        match self {
            Data::C64(v) => Some(v.iter().map(|c| [c[0] as f64, c[1] as f64]).collect()),
            Data::C128(v) => Some(v.clone()),
            other => other.to_f64().map(|v| v.into_iter().map(|x| [x, 0.0]).collect()),
        }
    }

    /// Integer view (ints and bools) as i128, exact.
    pub fn to_i128(&self) -> Option<Vec<i128>> {
        Some(match self {
            Data::I8(v) => v.iter().map(|&x| x as i128).collect(),
            Data::I16(v) => v.iter().map(|&x| x as i128).collect(),
            Data::I32(v) => v.iter().map(|&x| x as i128).collect(),
            Data::I64(v) => v.iter().map(|&x| x as i128).collect(),
            Data::U8(v) => v.iter().map(|&x| x as i128).collect(),
            Data::U16(v) => v.iter().map(|&x| x as i128).collect(),
            Data::U32(v) => v.iter().map(|&x| x as i128).collect(),
            Data::U64(v) => v.iter().map(|&x| x as i128).collect(),
            Data::Bool(v) => v.iter().map(|&x| x as i128).collect(),
            _ => return None,
        })
    }

    /// Element `i` formatted for humans.
    pub fn fmt_elem(&self, i: usize) -> String {
        match self {
            Data::F32(v) => format!("{}", v[i]),
            Data::F64(v) => format!("{}", v[i]),
            Data::F16(v) => format!("{}", v[i]),
            Data::BF16(v) => format!("{}", v[i]),
            Data::I8(v) => format!("{}", v[i]),
            Data::I16(v) => format!("{}", v[i]),
            Data::I32(v) => format!("{}", v[i]),
            Data::I64(v) => format!("{}", v[i]),
            Data::U8(v) => format!("{}", v[i]),
            Data::U16(v) => format!("{}", v[i]),
            Data::U32(v) => format!("{}", v[i]),
            Data::U64(v) => format!("{}", v[i]),
            Data::Bool(v) => format!("{}", v[i]),
            Data::C64(v) => format!("{}{:+}j", v[i][0], v[i][1]),
            Data::C128(v) => format!("{}{:+}j", v[i][0], v[i][1]),
            Data::Str(v) => format!("{:?}", String::from_utf8_lossy(&v[i])),
        }
    }
}

/// A dense host tensor in row-major order.
///
/// `data` holds the elements in the storage type of `dtype` (see [`DType::storage`]): for the
/// natural types `dtype == data.dtype()`; quantized, narrow-integer and float8/float4 tensors
/// keep their TensorFlow type in `dtype` and their values in an integer `Data` variant.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    pub dtype: DType,
    pub shape: Vec<u64>,
    pub data: Data,
}

/// Number of elements of a shape (checked against overflow).
pub fn num_elements(shape: &[u64]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| usize::try_from(d).ok().and_then(|d| acc.checked_mul(d)))
        .ok_or_else(|| Error::invalid(format!("shape {} is too large", fmt_shape(shape))))
}

/// `[2, 3]` style.
pub fn fmt_shape(shape: &[u64]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(","))
}

/// Row-major multi-index of flat index `i`.
pub fn unravel(mut i: usize, shape: &[u64]) -> Vec<u64> {
    let mut idx = vec![0u64; shape.len()];
    for (k, &d) in shape.iter().enumerate().rev() {
        if d == 0 {
            break;
        }
        idx[k] = (i as u64) % d;
        i = (i as u64 / d) as usize;
    }
    idx
}

impl HostTensor {
    /// Build a tensor, checking that the element count matches the shape.
    pub fn new(shape: Vec<u64>, data: Data) -> Result<HostTensor> {
        let n = num_elements(&shape)?;
        if n != data.len() {
            return Err(Error::invalid(format!(
                "shape {} needs {} elements, got {}",
                fmt_shape(&shape),
                n,
                data.len()
            )));
        }
        Ok(HostTensor { dtype: data.dtype(), shape, data })
    }

    /// Build a tensor of a type held in another storage type (`data` must be in
    /// `dtype.storage()`; narrow integers are range-checked).
    pub fn with_dtype(dtype: DType, shape: Vec<u64>, data: Data) -> Result<HostTensor> {
        if data.dtype() != dtype.storage() {
            return Err(Error::invalid(format!(
                "{dtype} values must be held as {}, got {}",
                dtype.storage(),
                data.dtype()
            )));
        }
        if let Some((lo, hi)) = dtype.narrow_int_range() {
            if let Some(v) = data.to_i128() {
                if let Some(x) = v.iter().find(|&&x| x < lo || x > hi) {
                    return Err(Error::invalid(format!("value {x} does not fit in {dtype}")));
                }
            }
        }
        let mut t = HostTensor::new(shape, data)?;
        t.dtype = dtype;
        Ok(t)
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Real values as f64 (floats, float8/float4 decoded, ints, bools as 0/1); `None` for
    /// strings and complex.
    pub fn to_f64(&self) -> Option<Vec<f64>> {
        match (self.dtype.minifloat(), &self.data) {
            (Some(mf), Data::U8(bits)) => Some(bits.iter().map(|&b| mf.decode(b)).collect()),
            _ => self.data.to_f64(),
        }
    }

    /// Values as complex `[re, im]` f64 pairs (real types get im = 0); `None` for strings.
    pub fn to_c128(&self) -> Option<Vec<[f64; 2]>> {
        if self.dtype.is_minifloat() {
            return self.to_f64().map(|v| v.into_iter().map(|x| [x, 0.0]).collect());
        }
        self.data.to_c128()
    }

    /// Element `i` formatted for humans (float8/float4 decoded).
    pub fn fmt_elem(&self, i: usize) -> String {
        match (self.dtype.minifloat(), &self.data) {
            (Some(mf), Data::U8(bits)) => format!("{} (0x{:02x})", mf.decode(bits[i]), bits[i]),
            _ => self.data.fmt_elem(i),
        }
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Scalar/1-D convenience constructors.
    pub fn from_f32(shape: Vec<u64>, v: Vec<f32>) -> Result<HostTensor> {
        HostTensor::new(shape, Data::F32(v))
    }

    /// Decode a dense little-endian TensorFlow buffer (not for strings).
    pub fn from_bytes(dtype: DType, shape: Vec<u64>, bytes: &[u8]) -> Result<HostTensor> {
        let n = num_elements(&shape)?;
        let esize = dtype
            .size()
            .ok_or_else(|| Error::invalid("string tensors have no dense byte layout"))?;
        if bytes.len() != n * esize {
            return Err(Error::invalid(format!(
                "{} tensor of shape {} needs {} bytes, buffer has {}",
                dtype,
                fmt_shape(&shape),
                n * esize,
                bytes.len()
            )));
        }
        macro_rules! le {
            ($t:ty, $w:expr) => {
                bytes
                    .chunks_exact($w)
                    .map(|c| <$t>::from_le_bytes(c.try_into().unwrap_or([0; $w])))
                    .collect()
            };
        }
        let data = match dtype.storage() {
            DType::F32 => Data::F32(le!(f32, 4)),
            DType::F64 => Data::F64(le!(f64, 8)),
            DType::F16 => Data::F16(le!(f16, 2)),
            DType::BF16 => Data::BF16(le!(bf16, 2)),
            DType::I8 => Data::I8(le!(i8, 1)),
            DType::I16 => Data::I16(le!(i16, 2)),
            DType::I32 => Data::I32(le!(i32, 4)),
            DType::I64 => Data::I64(le!(i64, 8)),
            DType::U8 => Data::U8(bytes.to_vec()),
            DType::U16 => Data::U16(le!(u16, 2)),
            DType::U32 => Data::U32(le!(u32, 4)),
            DType::U64 => Data::U64(le!(u64, 8)),
            DType::Bool => Data::Bool(bytes.iter().map(|&b| b != 0).collect()),
            DType::Complex64 => {
                let f: Vec<f32> = le!(f32, 4);
                Data::C64(f.chunks_exact(2).map(|c| [c[0], c[1]]).collect())
            }
            DType::Complex128 => {
                let f: Vec<f64> = le!(f64, 8);
                Data::C128(f.chunks_exact(2).map(|c| [c[0], c[1]]).collect())
            }
            _ => return Err(Error::invalid("string tensors have no dense byte layout")),
        };
        // Narrow integers occupy a byte each; like ml_dtypes, only the low bits count (TF may
        // leave e.g. int2 -1 as 0b11 = 3 in memory).
        let data = match (dtype, data) {
            (DType::Int4, Data::I8(v)) => Data::I8(v.iter().map(|&x| (x << 4) >> 4).collect()),
            (DType::Int2, Data::I8(v)) => Data::I8(v.iter().map(|&x| (x << 6) >> 6).collect()),
            (DType::UInt4, Data::U8(v)) => Data::U8(v.iter().map(|&x| x & 0x0f).collect()),
            (DType::UInt2, Data::U8(v)) => Data::U8(v.iter().map(|&x| x & 0x03).collect()),
            (_, data) => data,
        };
        let mut t = HostTensor::new(shape, data)?;
        t.dtype = dtype;
        Ok(t)
    }

    /// Encode to a dense little-endian TensorFlow buffer (not for strings).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        macro_rules! le {
            ($v:expr) => {
                $v.iter().flat_map(|x| x.to_le_bytes()).collect()
            };
        }
        Ok(match &self.data {
            Data::F32(v) => le!(v),
            Data::F64(v) => le!(v),
            Data::F16(v) => le!(v),
            Data::BF16(v) => le!(v),
            Data::I8(v) => le!(v),
            Data::I16(v) => le!(v),
            Data::I32(v) => le!(v),
            Data::I64(v) => le!(v),
            Data::U8(v) => v.clone(),
            Data::U16(v) => le!(v),
            Data::U32(v) => le!(v),
            Data::U64(v) => le!(v),
            Data::Bool(v) => v.iter().map(|&b| b as u8).collect(),
            Data::C64(v) => v.iter().flatten().flat_map(|x| x.to_le_bytes()).collect(),
            Data::C128(v) => v.iter().flatten().flat_map(|x| x.to_le_bytes()).collect(),
            Data::Str(_) => return Err(Error::invalid("string tensors have no dense byte layout")),
        })
    }

    /// Convert to `to`, if the conversion stays within a family: float <-> float (rounding;
    /// float8/float4 targets take the nearest representable value), int <-> int (range-checked,
    /// quantized and narrow types included), complex <-> complex; bool and string only to
    /// themselves. Data already in `to`'s storage type (e.g. uint8 bit patterns for a float8
    /// type, int8 values for int4) is taken as is, and uint16 data for bfloat16 as bit patterns.
    pub fn cast(self, to: DType) -> Result<HostTensor> {
        let from = self.dtype();
        if from == to {
            return Ok(self);
        }
        let bad = || {
            Error::invalid(format!(
                "cannot convert {from} data to {to} (only float<->float, int<->int and \
                 complex<->complex conversions are done implicitly)"
            ))
        };
        if from == to.storage() && from != DType::Bool && from != DType::String {
            return HostTensor::with_dtype(to, self.shape, self.data);
        }
        if let (DType::BF16, Data::U16(bits)) = (to, &self.data) {
            // bfloat16 bit patterns (how npz files store bfloat16, numpy having no such type).
            let data = Data::BF16(bits.iter().map(|&b| bf16::from_bits(b)).collect());
            return HostTensor::new(self.shape, data);
        }
        let shape = self.shape.clone();
        let data =
            if (from.is_float() || from.is_minifloat()) && (to.is_float() || to.is_minifloat()) {
                let v = self.to_f64().ok_or_else(bad)?;
                match to {
                    DType::F32 => Data::F32(v.iter().map(|&x| x as f32).collect()),
                    DType::F64 => Data::F64(v),
                    DType::F16 => Data::F16(v.iter().map(|&x| f16::from_f64(x)).collect()),
                    DType::BF16 => Data::BF16(v.iter().map(|&x| bf16::from_f64(x)).collect()),
                    _ => match to.minifloat() {
                        Some(mf) => Data::U8(v.iter().map(|&x| mf.encode_nearest(x)).collect()),
                        None => return Err(bad()),
                    },
                }
            } else if from.is_int() && to.is_int() {
                let v = self.data.to_i128().ok_or_else(bad)?;
                macro_rules! conv {
                    ($variant:ident, $t:ty) => {{
                        let mut out = Vec::with_capacity(v.len());
                        for &x in &v {
                            out.push(<$t>::try_from(x).map_err(|_| {
                                Error::invalid(format!("value {x} does not fit in {to}"))
                            })?);
                        }
                        Data::$variant(out)
                    }};
                }
                match to.storage() {
                    DType::I8 => conv!(I8, i8),
                    DType::I16 => conv!(I16, i16),
                    DType::I32 => conv!(I32, i32),
                    DType::I64 => conv!(I64, i64),
                    DType::U8 => conv!(U8, u8),
                    DType::U16 => conv!(U16, u16),
                    DType::U32 => conv!(U32, u32),
                    DType::U64 => conv!(U64, u64),
                    _ => return Err(bad()),
                }
            } else if from.is_complex() && to.is_complex() {
                let v = self.data.to_c128().ok_or_else(bad)?;
                match to {
                    DType::Complex64 => {
                        Data::C64(v.iter().map(|c| [c[0] as f32, c[1] as f32]).collect())
                    }
                    DType::Complex128 => Data::C128(v),
                    _ => return Err(bad()),
                }
            } else {
                return Err(bad());
            };
        HostTensor::with_dtype(to, shape, data)
    }

    /// One-line human summary: dtype, shape and a few statistics.
    pub fn summary(&self) -> String {
        let head = format!("{} {}", self.dtype(), fmt_shape(&self.shape));
        if self.is_empty() {
            return format!("{head} (empty)");
        }
        match &self.data {
            Data::Str(v) => {
                let first = String::from_utf8_lossy(&v[0]);
                let first: String = first.chars().take(40).collect();
                format!("{head} first={first:?}")
            }
            Data::Bool(v) => {
                let t = v.iter().filter(|&&b| b).count();
                format!("{head} true={t}/{}", v.len())
            }
            Data::C64(_) | Data::C128(_) => {
                let v = self.to_c128().unwrap_or_default();
                let mags: Vec<f64> = v.iter().map(|c| c[0].hypot(c[1])).collect();
                let s = Stats::of(&mags);
                format!("{head} |z| min={:.6} max={:.6} mean={:.6}", s.min, s.max, s.mean)
            }
            _ => {
                let v = self.to_f64().unwrap_or_default();
                let s = Stats::of(&v);
                let mut out = format!(
                    "{head} min={:.6} max={:.6} mean={:.6} std={:.6}",
                    s.min, s.max, s.mean, s.std
                );
                if s.nan > 0 {
                    out.push_str(&format!(" nan={}", s.nan));
                }
                if s.inf > 0 {
                    out.push_str(&format!(" inf={}", s.inf));
                }
                out
            }
        }
    }
}

/// Simple statistics over the finite values of a slice.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub std: f64,
    pub nan: usize,
    pub inf: usize,
}

impl Stats {
    pub fn of(v: &[f64]) -> Stats {
        let (mut min, mut max, mut sum, mut n, mut nan, mut inf) =
            (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0usize, 0usize, 0usize);
        for &x in v {
            if x.is_nan() {
                nan += 1;
            } else if x.is_infinite() {
                inf += 1;
                min = min.min(x);
                max = max.max(x);
            } else {
                min = min.min(x);
                max = max.max(x);
                sum += x;
                n += 1;
            }
        }
        let mean = if n > 0 { sum / n as f64 } else { f64::NAN };
        let mut var = 0.0;
        for &x in v {
            if x.is_finite() {
                var += (x - mean) * (x - mean);
            }
        }
        let std = if n > 0 { (var / n as f64).sqrt() } else { f64::NAN };
        if min > max {
            min = f64::NAN;
            max = f64::NAN;
        }
        Stats { min, max, mean, std, nan, inf }
    }
}
