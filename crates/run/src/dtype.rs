//! The element types of host tensors ([`crate::HostTensor`]): which Rust/numpy storage holds
//! each TensorFlow `DataType`, and the bit layouts numpy-side conversion needs (float8/float4,
//! narrow integers). Type codes, names and element sizes come from `tf_tensor::dtype`, the
//! project's one table of `DataType` facts; only the host-side mapping lives here.

use std::fmt;

use tf_tensor::dtype::{self as tfd, dt};

use crate::error::{Error, Result};

/// The data types this crate can move between Rust and TensorFlow: every `DataType` a tensor
/// can hold except `resource` and `variant`.
///
/// Values are TensorFlow's `DataType` numbers (identical in `types.proto` and `TF_DataType`).
/// Types without a Rust/numpy counterpart are held in the [`storage`](DType::storage) type that
/// has their in-memory layout (one element per byte for the 8-bit and narrower types):
/// quantized types as their integer type, int4/int2 as int8, uint4/uint2 as uint8, and the
/// float8/float4 types as uint8 bit patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F64,
    I32,
    U8,
    I16,
    I8,
    String,
    Complex64,
    I64,
    Bool,
    QInt8,
    QUInt8,
    QInt32,
    BF16,
    QInt16,
    QUInt16,
    U16,
    Complex128,
    F16,
    U32,
    U64,
    Float8E5M2,
    Float8E4M3FN,
    Float8E4M3FNUZ,
    Float8E4M3B11FNUZ,
    Float8E5M2FNUZ,
    Int4,
    UInt4,
    Int2,
    UInt2,
    Float4E2M1FN,
}

/// Bit layout of a small floating-point type (ml_dtypes' float8/float4 formats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MiniFloat {
    pub exp_bits: u32,
    pub man_bits: u32,
    pub bias: i32,
    /// IEEE-like: all-ones exponent is inf (mantissa 0) or NaN.
    pub ieee: bool,
    /// "fn": no infinities; all-ones exponent and mantissa is NaN.
    pub finite_nan_all_ones: bool,
    /// "fnuz": no infinities, no negative zero; the negative-zero pattern is NaN.
    pub nan_is_neg_zero: bool,
}

impl MiniFloat {
    pub fn bits(&self) -> u32 {
        1 + self.exp_bits + self.man_bits
    }

    /// Decode a bit pattern (in the low `bits()` bits) to f64.
    pub fn decode(&self, raw: u8) -> f64 {
        let nbits = self.bits();
        let raw = (raw as u32) & ((1u32 << nbits) - 1);
        let sign_bit = 1u32 << (nbits - 1);
        let neg = raw & sign_bit != 0;
        let exp_max = (1u32 << self.exp_bits) - 1;
        let man_max = (1u32 << self.man_bits) - 1;
        let e = (raw >> self.man_bits) & exp_max;
        let m = raw & man_max;
        if self.nan_is_neg_zero && raw == sign_bit {
            return f64::NAN;
        }
        if self.ieee && e == exp_max {
            return if m == 0 {
                if neg {
                    f64::NEG_INFINITY
                } else {
                    f64::INFINITY
                }
            } else {
                f64::NAN
            };
        }
        if self.finite_nan_all_ones && e == exp_max && m == man_max {
            return f64::NAN;
        }
        let frac = m as f64 / (1u64 << self.man_bits) as f64;
        let v = if e == 0 {
            frac * 2f64.powi(1 - self.bias)
        } else {
            (1.0 + frac) * 2f64.powi(e as i32 - self.bias)
        };
        if neg {
            -v
        } else {
            v
        }
    }

    /// The bit pattern whose value is nearest to `x` (NaN maps to a NaN pattern if the format
    /// has one, else 0; values beyond range saturate to the largest finite value).
    pub fn encode_nearest(&self, x: f64) -> u8 {
        let n = 1u32 << self.bits();
        let mut best: Option<(u8, f64)> = None;
        for raw in 0..n {
            let v = self.decode(raw as u8);
            if x.is_nan() {
                if v.is_nan() {
                    return raw as u8;
                }
                continue;
            }
            if !v.is_finite() {
                continue;
            }
            let d = (v - x).abs();
            if best.is_none_or(|(_, bd)| d < bd) {
                best = Some((raw as u8, d));
            }
        }
        best.map(|(r, _)| r).unwrap_or(0)
    }
}

impl DType {
    /// All supported types.
    pub const ALL: [DType; 31] = [
        DType::F32,
        DType::F64,
        DType::I32,
        DType::U8,
        DType::I16,
        DType::I8,
        DType::String,
        DType::Complex64,
        DType::I64,
        DType::Bool,
        DType::QInt8,
        DType::QUInt8,
        DType::QInt32,
        DType::BF16,
        DType::QInt16,
        DType::QUInt16,
        DType::U16,
        DType::Complex128,
        DType::F16,
        DType::U32,
        DType::U64,
        DType::Float8E5M2,
        DType::Float8E4M3FN,
        DType::Float8E4M3FNUZ,
        DType::Float8E4M3B11FNUZ,
        DType::Float8E5M2FNUZ,
        DType::Int4,
        DType::UInt4,
        DType::Int2,
        DType::UInt2,
        DType::Float4E2M1FN,
    ];

    /// TensorFlow's `DataType` code (`tf_tensor::dt`), as the C API's `TF_DataType` uses it.
    pub fn code(self) -> i32 {
        match self {
            DType::F32 => dt::FLOAT,
            DType::F64 => dt::DOUBLE,
            DType::I32 => dt::INT32,
            DType::U8 => dt::UINT8,
            DType::I16 => dt::INT16,
            DType::I8 => dt::INT8,
            DType::String => dt::STRING,
            DType::Complex64 => dt::COMPLEX64,
            DType::I64 => dt::INT64,
            DType::Bool => dt::BOOL,
            DType::QInt8 => dt::QINT8,
            DType::QUInt8 => dt::QUINT8,
            DType::QInt32 => dt::QINT32,
            DType::BF16 => dt::BFLOAT16,
            DType::QInt16 => dt::QINT16,
            DType::QUInt16 => dt::QUINT16,
            DType::U16 => dt::UINT16,
            DType::Complex128 => dt::COMPLEX128,
            DType::F16 => dt::HALF,
            DType::U32 => dt::UINT32,
            DType::U64 => dt::UINT64,
            DType::Float8E5M2 => dt::FLOAT8_E5M2,
            DType::Float8E4M3FN => dt::FLOAT8_E4M3FN,
            DType::Float8E4M3FNUZ => dt::FLOAT8_E4M3FNUZ,
            DType::Float8E4M3B11FNUZ => dt::FLOAT8_E4M3B11FNUZ,
            DType::Float8E5M2FNUZ => dt::FLOAT8_E5M2FNUZ,
            DType::Int4 => dt::INT4,
            DType::UInt4 => dt::UINT4,
            DType::Int2 => dt::INT2,
            DType::UInt2 => dt::UINT2,
            DType::Float4E2M1FN => dt::FLOAT4_E2M1FN,
        }
    }

    /// From TensorFlow's enum value. Reference types (`DT_FLOAT_REF` = 101, ...) map to their
    /// base type.
    pub fn from_code(code: i32) -> Result<DType> {
        lookup(code).ok_or_else(|| Error::UnsupportedDType(dtype_code_name(code)))
    }

    /// TensorFlow's lower-case name (`float32`, `int64`, ...), as numpy/TF print them.
    pub fn name(self) -> String {
        tfd::short_name(self.code())
    }

    /// The type whose Rust storage holds this type's elements (itself for the natural types).
    pub fn storage(self) -> DType {
        match self {
            DType::QInt8 | DType::Int4 | DType::Int2 => DType::I8,
            DType::QUInt8 | DType::UInt4 | DType::UInt2 => DType::U8,
            DType::QInt16 => DType::I16,
            DType::QUInt16 => DType::U16,
            DType::QInt32 => DType::I32,
            d if d.minifloat().is_some() => DType::U8,
            d => d,
        }
    }

    /// Layout of the float8/float4 types.
    pub fn minifloat(self) -> Option<MiniFloat> {
        let (exp_bits, man_bits, bias, kind) = match self {
            DType::Float8E5M2 => (5, 2, 15, 0),
            DType::Float8E4M3FN => (4, 3, 7, 1),
            DType::Float8E4M3FNUZ => (4, 3, 8, 2),
            DType::Float8E4M3B11FNUZ => (4, 3, 11, 2),
            DType::Float8E5M2FNUZ => (5, 2, 16, 2),
            DType::Float4E2M1FN => (2, 1, 1, 3),
            _ => return None,
        };
        Some(MiniFloat {
            exp_bits,
            man_bits,
            bias,
            ieee: kind == 0,
            finite_nan_all_ones: kind == 1,
            nan_is_neg_zero: kind == 2,
        })
    }

    /// Value range of the narrow integer types (int4, uint4, int2, uint2).
    pub fn narrow_int_range(self) -> Option<(i128, i128)> {
        match self {
            DType::Int4 => Some((-8, 7)),
            DType::UInt4 => Some((0, 15)),
            DType::Int2 => Some((-2, 1)),
            DType::UInt2 => Some((0, 3)),
            _ => None,
        }
    }

    /// Size in bytes of one element in a dense TF buffer (`None` for strings).
    pub fn size(self) -> Option<usize> {
        tfd::element_size(self.code())
    }

    /// float16, bfloat16, float32, float64.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F16 | DType::BF16 | DType::F32 | DType::F64)
    }

    /// The float8 and float4 types.
    pub fn is_minifloat(self) -> bool {
        self.minifloat().is_some()
    }

    pub fn is_complex(self) -> bool {
        matches!(self, DType::Complex64 | DType::Complex128)
    }

    /// All integer types, including quantized and narrow ones.
    pub fn is_int(self) -> bool {
        matches!(
            self.storage(),
            DType::I8
                | DType::I16
                | DType::I32
                | DType::I64
                | DType::U8
                | DType::U16
                | DType::U32
                | DType::U64
        ) && !self.is_minifloat()
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A readable name for any TensorFlow type code, including the ones host tensors cannot hold
/// (`resource`, `float32_ref`, ...).
pub fn dtype_code_name(code: i32) -> String {
    tfd::short_name(code)
}

/// Reference types (`DT_FLOAT_REF` = 101, ...) map to their base type.
fn lookup(code: i32) -> Option<DType> {
    let base = tfd::base(code);
    DType::ALL.iter().copied().find(|d| d.code() == base)
}
