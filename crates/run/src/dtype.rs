//! TensorFlow data types, by their stable `DataType` enum values (types.proto / TF_DataType).

use std::fmt;

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

    /// TensorFlow's enum value (`DT_FLOAT` = 1, ...).
    pub fn code(self) -> i32 {
        match self {
            DType::F32 => 1,
            DType::F64 => 2,
            DType::I32 => 3,
            DType::U8 => 4,
            DType::I16 => 5,
            DType::I8 => 6,
            DType::String => 7,
            DType::Complex64 => 8,
            DType::I64 => 9,
            DType::Bool => 10,
            DType::QInt8 => 11,
            DType::QUInt8 => 12,
            DType::QInt32 => 13,
            DType::BF16 => 14,
            DType::QInt16 => 15,
            DType::QUInt16 => 16,
            DType::U16 => 17,
            DType::Complex128 => 18,
            DType::F16 => 19,
            DType::U32 => 22,
            DType::U64 => 23,
            DType::Float8E5M2 => 24,
            DType::Float8E4M3FN => 25,
            DType::Float8E4M3FNUZ => 26,
            DType::Float8E4M3B11FNUZ => 27,
            DType::Float8E5M2FNUZ => 28,
            DType::Int4 => 29,
            DType::UInt4 => 30,
            DType::Int2 => 31,
            DType::UInt2 => 32,
            DType::Float4E2M1FN => 33,
        }
    }

    /// From TensorFlow's enum value. Reference types (`DT_FLOAT_REF` = 101, ...) map to their
    /// base type.
    pub fn from_code(code: i32) -> Result<DType> {
        lookup(code).ok_or_else(|| Error::UnsupportedDType(dtype_code_name(code)))
    }

    /// TensorFlow's lower-case name (`float32`, `int64`, ...), as numpy/TF print them.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::I32 => "int32",
            DType::U8 => "uint8",
            DType::I16 => "int16",
            DType::I8 => "int8",
            DType::String => "string",
            DType::Complex64 => "complex64",
            DType::I64 => "int64",
            DType::Bool => "bool",
            DType::QInt8 => "qint8",
            DType::QUInt8 => "quint8",
            DType::QInt32 => "qint32",
            DType::BF16 => "bfloat16",
            DType::QInt16 => "qint16",
            DType::QUInt16 => "quint16",
            DType::U16 => "uint16",
            DType::Complex128 => "complex128",
            DType::F16 => "float16",
            DType::U32 => "uint32",
            DType::U64 => "uint64",
            DType::Float8E5M2 => "float8_e5m2",
            DType::Float8E4M3FN => "float8_e4m3fn",
            DType::Float8E4M3FNUZ => "float8_e4m3fnuz",
            DType::Float8E4M3B11FNUZ => "float8_e4m3b11fnuz",
            DType::Float8E5M2FNUZ => "float8_e5m2fnuz",
            DType::Int4 => "int4",
            DType::UInt4 => "uint4",
            DType::Int2 => "int2",
            DType::UInt2 => "uint2",
            DType::Float4E2M1FN => "float4_e2m1fn",
        }
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
        Some(match self.storage() {
            DType::I8 | DType::U8 | DType::Bool => 1,
            DType::I16 | DType::U16 | DType::F16 | DType::BF16 => 2,
            DType::I32 | DType::U32 | DType::F32 => 4,
            DType::I64 | DType::U64 | DType::F64 | DType::Complex64 => 8,
            DType::Complex128 => 16,
            _ => return None,
        })
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
        f.write_str(self.name())
    }
}

/// A readable name for any TensorFlow type code, including the ones this crate does not support.
pub fn dtype_code_name(code: i32) -> String {
    if let Some(d) = lookup(code) {
        if code > 100 {
            return format!("{}_ref", d.name());
        }
        return d.name().to_string();
    }
    let name = match code {
        0 => "invalid",
        20 => "resource",
        21 => "variant",
        120 => "resource_ref",
        121 => "variant_ref",
        _ => return format!("dtype#{code}"),
    };
    name.to_string()
}

fn lookup(code: i32) -> Option<DType> {
    let base = if code > 100 { code - 100 } else { code };
    DType::ALL.iter().copied().find(|d| d.code() == base)
}
