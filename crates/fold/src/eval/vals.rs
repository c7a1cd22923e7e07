//! Element values in a form the math kernels compute on: floats as `f64`, integers as `i128`
//! (wide enough for every TF integer type, so arithmetic wraps exactly like the target type
//! once truncated back), bools as `bool`.

use half::{bf16, f16};
use tf_tensor::{dt, dtype, Tensor};

use super::{unsupported, EvalError, R};

/// Decoded elements of a numeric tensor.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Vals {
    /// float, double, half, bfloat16
    F(Vec<f64>),
    /// every integer type (quantized ones excluded)
    I(Vec<i128>),
    /// bool
    B(Vec<bool>),
}

/// The computation class of a dtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Floating point.
    F,
    /// Integer.
    I,
    /// Boolean.
    B,
}

impl Vals {
    /// The class the math kernels use for `dtype`, or `None` (strings, complex, quantized,
    /// float8, sub-byte ints).
    pub(crate) fn class(dtype: i32) -> Option<Class> {
        Some(match dtype::base(dtype) {
            dt::FLOAT | dt::DOUBLE | dt::HALF | dt::BFLOAT16 => Class::F,
            dt::INT8
            | dt::INT16
            | dt::INT32
            | dt::INT64
            | dt::UINT8
            | dt::UINT16
            | dt::UINT32
            | dt::UINT64 => Class::I,
            dt::BOOL => Class::B,
            _ => return None,
        })
    }

    /// Decodes the elements of `t`.
    pub(crate) fn of(t: &Tensor) -> R<Vals> {
        let raw = match t.raw() {
            Some(r) => r.as_ref(),
            None => return unsupported(format!("math on {}", dtype::short_name(t.dtype))),
        };
        fn rd<const N: usize>(raw: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
            raw.chunks_exact(N).map(|c| {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                a
            })
        }
        Ok(match dtype::base(t.dtype) {
            dt::FLOAT => Vals::F(rd::<4>(raw).map(|b| f32::from_le_bytes(b) as f64).collect()),
            dt::DOUBLE => Vals::F(rd::<8>(raw).map(f64::from_le_bytes).collect()),
            dt::HALF => Vals::F(rd::<2>(raw).map(|b| f16::from_le_bytes(b).to_f64()).collect()),
            dt::BFLOAT16 => {
                Vals::F(rd::<2>(raw).map(|b| bf16::from_le_bytes(b).to_f64()).collect())
            }
            dt::INT8 => Vals::I(raw.iter().map(|&b| b as i8 as i128).collect()),
            dt::UINT8 => Vals::I(raw.iter().map(|&b| b as i128).collect()),
            dt::INT16 => Vals::I(rd::<2>(raw).map(|b| i16::from_le_bytes(b) as i128).collect()),
            dt::UINT16 => Vals::I(rd::<2>(raw).map(|b| u16::from_le_bytes(b) as i128).collect()),
            dt::INT32 => Vals::I(rd::<4>(raw).map(|b| i32::from_le_bytes(b) as i128).collect()),
            dt::UINT32 => Vals::I(rd::<4>(raw).map(|b| u32::from_le_bytes(b) as i128).collect()),
            dt::INT64 => Vals::I(rd::<8>(raw).map(|b| i64::from_le_bytes(b) as i128).collect()),
            dt::UINT64 => Vals::I(rd::<8>(raw).map(|b| u64::from_le_bytes(b) as i128).collect()),
            dt::BOOL => Vals::B(raw.iter().map(|&b| b != 0).collect()),
            other => return unsupported(format!("math on {}", dtype::short_name(other))),
        })
    }

    /// Number of elements.
    pub(crate) fn len(&self) -> usize {
        match self {
            Vals::F(v) => v.len(),
            Vals::I(v) => v.len(),
            Vals::B(v) => v.len(),
        }
    }

    /// Encodes as a tensor of `dtype` (rounding floats once, wrapping integers).
    pub(crate) fn into_tensor(self, dtype: i32, shape: &[i64]) -> R<Tensor> {
        let base = dtype::base(dtype);
        let mut out: Vec<u8> = Vec::new();
        match (self, base) {
            (Vals::F(v), dt::FLOAT) => v.iter().for_each(|x| out.extend((*x as f32).to_le_bytes())),
            (Vals::F(v), dt::DOUBLE) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
            (Vals::F(v), dt::HALF) => {
                v.iter().for_each(|x| out.extend(f16::from_f64(*x).to_le_bytes()))
            }
            (Vals::F(v), dt::BFLOAT16) => {
                v.iter().for_each(|x| out.extend(bf16::from_f64(*x).to_le_bytes()))
            }
            (Vals::I(v), dt::INT8 | dt::UINT8) => out.extend(v.iter().map(|x| *x as u8)),
            (Vals::I(v), dt::INT16 | dt::UINT16) => {
                v.iter().for_each(|x| out.extend((*x as u16).to_le_bytes()))
            }
            (Vals::I(v), dt::INT32 | dt::UINT32) => {
                v.iter().for_each(|x| out.extend((*x as u32).to_le_bytes()))
            }
            (Vals::I(v), dt::INT64 | dt::UINT64) => {
                v.iter().for_each(|x| out.extend((*x as u64).to_le_bytes()))
            }
            (Vals::B(v), dt::BOOL) => out.extend(v.iter().map(|b| *b as u8)),
            (v, _) => {
                return Err(EvalError::Unsupported(format!(
                    "{:?} values as {}",
                    v.class_name(),
                    dtype::short_name(dtype)
                )))
            }
        }
        Ok(Tensor { dtype: base, shape: shape.to_vec(), data: tf_tensor::Data::Raw(out.into()) })
    }

    fn class_name(&self) -> &'static str {
        match self {
            Vals::F(_) => "float",
            Vals::I(_) => "integer",
            Vals::B(_) => "bool",
        }
    }
}

/// Rounds an `f64` to the precision of a float dtype (identity for double): what storing an
/// intermediate result in that type does.
pub(crate) fn round_to(dtype: i32, x: f64) -> f64 {
    match dtype::base(dtype) {
        dt::FLOAT => x as f32 as f64,
        dt::HALF => f16::from_f64(x).to_f64(),
        dt::BFLOAT16 => bf16::from_f64(x).to_f64(),
        _ => x,
    }
}

/// Wraps an integer to the range of an integer dtype.
pub(crate) fn wrap_to(dtype: i32, x: i128) -> i128 {
    match dtype::base(dtype) {
        dt::INT8 => x as i8 as i128,
        dt::UINT8 => x as u8 as i128,
        dt::INT16 => x as i16 as i128,
        dt::UINT16 => x as u16 as i128,
        dt::INT32 => x as i32 as i128,
        dt::UINT32 => x as u32 as i128,
        dt::INT64 => x as i64 as i128,
        dt::UINT64 => x as u64 as i128,
        _ => x,
    }
}

/// The representable range of an integer dtype.
pub(crate) fn int_range(dtype: i32) -> (i128, i128) {
    match dtype::base(dtype) {
        dt::INT8 => (i8::MIN as i128, i8::MAX as i128),
        dt::UINT8 => (0, u8::MAX as i128),
        dt::INT16 => (i16::MIN as i128, i16::MAX as i128),
        dt::UINT16 => (0, u16::MAX as i128),
        dt::INT32 => (i32::MIN as i128, i32::MAX as i128),
        dt::UINT32 => (0, u32::MAX as i128),
        dt::INT64 => (i64::MIN as i128, i64::MAX as i128),
        dt::UINT64 => (0, u64::MAX as i128),
        _ => (i128::MIN, i128::MAX),
    }
}

/// Whether an integer dtype is unsigned.
pub(crate) fn is_unsigned(dtype: i32) -> bool {
    matches!(dtype::base(dtype), dt::UINT8 | dt::UINT16 | dt::UINT32 | dt::UINT64)
}
