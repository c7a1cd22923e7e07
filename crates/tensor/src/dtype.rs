//! TensorFlow `DataType` codes and their properties.
//!
//! The generated protobuf types keep enum fields as `i32` so that values from a newer TensorFlow
//! survive a round trip. This module gives those codes names and the facts the tools need: the
//! element size in `tensor_content`, which typed `*_val` field holds the values, and the `_REF`
//! twins (base + 100) that TF1 graphs use for ref-typed outputs.

/// `DataType` codes as in TensorFlow 2.21 `types.proto`.
#[allow(missing_docs)]
pub mod dt {
    pub const INVALID: i32 = 0;
    pub const FLOAT: i32 = 1;
    pub const DOUBLE: i32 = 2;
    pub const INT32: i32 = 3;
    pub const UINT8: i32 = 4;
    pub const INT16: i32 = 5;
    pub const INT8: i32 = 6;
    pub const STRING: i32 = 7;
    pub const COMPLEX64: i32 = 8;
    pub const INT64: i32 = 9;
    pub const BOOL: i32 = 10;
    pub const QINT8: i32 = 11;
    pub const QUINT8: i32 = 12;
    pub const QINT32: i32 = 13;
    pub const BFLOAT16: i32 = 14;
    pub const QINT16: i32 = 15;
    pub const QUINT16: i32 = 16;
    pub const UINT16: i32 = 17;
    pub const COMPLEX128: i32 = 18;
    pub const HALF: i32 = 19;
    pub const RESOURCE: i32 = 20;
    pub const VARIANT: i32 = 21;
    pub const UINT32: i32 = 22;
    pub const UINT64: i32 = 23;
    pub const FLOAT8_E5M2: i32 = 24;
    pub const FLOAT8_E4M3FN: i32 = 25;
    pub const FLOAT8_E4M3FNUZ: i32 = 26;
    pub const FLOAT8_E4M3B11FNUZ: i32 = 27;
    pub const FLOAT8_E5M2FNUZ: i32 = 28;
    pub const INT4: i32 = 29;
    pub const UINT4: i32 = 30;
    pub const INT2: i32 = 31;
    pub const UINT2: i32 = 32;
    pub const FLOAT4_E2M1FN: i32 = 33;
    /// Offset of a `_REF` twin from its base type.
    pub const REF_OFFSET: i32 = 100;
}

/// Where a TensorProto keeps the values of a dtype when `tensor_content` is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypedField {
    /// `float_val` (5)
    Float,
    /// `double_val` (6)
    Double,
    /// `int_val` (7), one int32 per element
    Int,
    /// `int64_val` (10)
    Int64,
    /// `uint32_val` (16)
    Uint32,
    /// `uint64_val` (17)
    Uint64,
    /// `bool_val` (11)
    Bool,
    /// `half_val` (13): the raw 16-bit pattern, zero-extended into an int32
    Half,
    /// `scomplex_val` (9): (re, im) pairs of f32
    Scomplex,
    /// `dcomplex_val` (12): (re, im) pairs of f64
    Dcomplex,
    /// `float8_val` (18): one byte per element
    Float8,
    /// `string_val` (8)
    String,
    /// `resource_handle_val` (14)
    Resource,
    /// `variant_val` (15)
    Variant,
}

const NAMES: [(i32, &str, &str); 34] = [
    (dt::INVALID, "DT_INVALID", "invalid"),
    (dt::FLOAT, "DT_FLOAT", "float32"),
    (dt::DOUBLE, "DT_DOUBLE", "float64"),
    (dt::INT32, "DT_INT32", "int32"),
    (dt::UINT8, "DT_UINT8", "uint8"),
    (dt::INT16, "DT_INT16", "int16"),
    (dt::INT8, "DT_INT8", "int8"),
    (dt::STRING, "DT_STRING", "string"),
    (dt::COMPLEX64, "DT_COMPLEX64", "complex64"),
    (dt::INT64, "DT_INT64", "int64"),
    (dt::BOOL, "DT_BOOL", "bool"),
    (dt::QINT8, "DT_QINT8", "qint8"),
    (dt::QUINT8, "DT_QUINT8", "quint8"),
    (dt::QINT32, "DT_QINT32", "qint32"),
    (dt::BFLOAT16, "DT_BFLOAT16", "bfloat16"),
    (dt::QINT16, "DT_QINT16", "qint16"),
    (dt::QUINT16, "DT_QUINT16", "quint16"),
    (dt::UINT16, "DT_UINT16", "uint16"),
    (dt::COMPLEX128, "DT_COMPLEX128", "complex128"),
    (dt::HALF, "DT_HALF", "float16"),
    (dt::RESOURCE, "DT_RESOURCE", "resource"),
    (dt::VARIANT, "DT_VARIANT", "variant"),
    (dt::UINT32, "DT_UINT32", "uint32"),
    (dt::UINT64, "DT_UINT64", "uint64"),
    (dt::FLOAT8_E5M2, "DT_FLOAT8_E5M2", "float8_e5m2"),
    (dt::FLOAT8_E4M3FN, "DT_FLOAT8_E4M3FN", "float8_e4m3fn"),
    (dt::FLOAT8_E4M3FNUZ, "DT_FLOAT8_E4M3FNUZ", "float8_e4m3fnuz"),
    (dt::FLOAT8_E4M3B11FNUZ, "DT_FLOAT8_E4M3B11FNUZ", "float8_e4m3b11fnuz"),
    (dt::FLOAT8_E5M2FNUZ, "DT_FLOAT8_E5M2FNUZ", "float8_e5m2fnuz"),
    (dt::INT4, "DT_INT4", "int4"),
    (dt::UINT4, "DT_UINT4", "uint4"),
    (dt::INT2, "DT_INT2", "int2"),
    (dt::UINT2, "DT_UINT2", "uint2"),
    (dt::FLOAT4_E2M1FN, "DT_FLOAT4_E2M1FN", "float4_e2m1fn"),
];

/// The base type of a `_REF` twin (identity for base types).
pub fn base(dtype: i32) -> i32 {
    if dtype > dt::REF_OFFSET {
        dtype - dt::REF_OFFSET
    } else {
        dtype
    }
}

/// Whether `dtype` is a `_REF` twin (TF1 ref-typed outputs such as VariableV2's).
pub fn is_ref(dtype: i32) -> bool {
    dtype > dt::REF_OFFSET && dtype - dt::REF_OFFSET <= dt::FLOAT4_E2M1FN
}

/// The enum spelling used in pbtxt (`DT_FLOAT`, `DT_FLOAT_REF`), or `DT_<code>` when unknown.
pub fn enum_name(dtype: i32) -> String {
    let b = base(dtype);
    match NAMES.iter().find(|(c, _, _)| *c == b) {
        Some((_, n, _)) if is_ref(dtype) => format!("{n}_REF"),
        Some((_, n, _)) => (*n).to_string(),
        None => format!("DT_{dtype}"),
    }
}

/// The short, numpy-like name (`float32`, `float16`, `bfloat16`; `float32_ref` for ref twins).
pub fn short_name(dtype: i32) -> String {
    let b = base(dtype);
    match NAMES.iter().find(|(c, _, _)| *c == b) {
        Some((_, _, n)) if is_ref(dtype) => format!("{n}_ref"),
        Some((_, _, n)) => (*n).to_string(),
        None => format!("dtype({dtype})"),
    }
}

/// Parses a short name (`float32`, `int8`, `bool`, also `float`, `half`) or an enum spelling.
pub fn from_name(name: &str) -> Option<i32> {
    let alias = match name {
        "float" => "float32",
        "double" => "float64",
        "half" => "float16",
        "int" => "int32",
        other => other,
    };
    NAMES.iter().find(|(_, e, s)| *e == name || *s == alias).map(|(c, _, _)| *c)
}

/// Bytes per element in `tensor_content` and in checkpoint data, or `None` for types that have
/// no fixed-size encoding (string, resource, variant) or are unknown.
///
/// The sub-byte types (int4, uint4, int2, uint2, float4) take one byte per element, as in
/// TensorFlow's in-memory layout.
pub fn element_size(dtype: i32) -> Option<usize> {
    Some(match base(dtype) {
        dt::FLOAT | dt::INT32 | dt::QINT32 | dt::UINT32 => 4,
        dt::DOUBLE | dt::INT64 | dt::UINT64 | dt::COMPLEX64 => 8,
        dt::COMPLEX128 => 16,
        dt::INT16 | dt::UINT16 | dt::QINT16 | dt::QUINT16 | dt::HALF | dt::BFLOAT16 => 2,
        dt::UINT8 | dt::INT8 | dt::QINT8 | dt::QUINT8 | dt::BOOL => 1,
        dt::FLOAT8_E5M2
        | dt::FLOAT8_E4M3FN
        | dt::FLOAT8_E4M3FNUZ
        | dt::FLOAT8_E4M3B11FNUZ
        | dt::FLOAT8_E5M2FNUZ
        | dt::INT4
        | dt::UINT4
        | dt::INT2
        | dt::UINT2
        | dt::FLOAT4_E2M1FN => 1,
        _ => return None,
    })
}

/// Which typed field holds this dtype's values when `tensor_content` is empty.
pub fn typed_field(dtype: i32) -> Option<TypedField> {
    Some(match base(dtype) {
        dt::FLOAT => TypedField::Float,
        dt::DOUBLE => TypedField::Double,
        dt::INT32
        | dt::INT16
        | dt::INT8
        | dt::UINT8
        | dt::UINT16
        | dt::QINT8
        | dt::QUINT8
        | dt::QINT16
        | dt::QUINT16
        | dt::QINT32
        | dt::INT4
        | dt::UINT4
        | dt::INT2
        | dt::UINT2 => TypedField::Int,
        dt::INT64 => TypedField::Int64,
        dt::UINT32 => TypedField::Uint32,
        dt::UINT64 => TypedField::Uint64,
        dt::BOOL => TypedField::Bool,
        dt::HALF | dt::BFLOAT16 => TypedField::Half,
        dt::COMPLEX64 => TypedField::Scomplex,
        dt::COMPLEX128 => TypedField::Dcomplex,
        dt::FLOAT8_E5M2
        | dt::FLOAT8_E4M3FN
        | dt::FLOAT8_E4M3FNUZ
        | dt::FLOAT8_E4M3B11FNUZ
        | dt::FLOAT8_E5M2FNUZ
        | dt::FLOAT4_E2M1FN => TypedField::Float8,
        dt::STRING => TypedField::String,
        dt::RESOURCE => TypedField::Resource,
        dt::VARIANT => TypedField::Variant,
        _ => return None,
    })
}

/// Whether the dtype is a floating-point type (f16, bf16, f32, f64, float8 variants).
pub fn is_float(dtype: i32) -> bool {
    matches!(
        base(dtype),
        dt::FLOAT
            | dt::DOUBLE
            | dt::HALF
            | dt::BFLOAT16
            | dt::FLOAT8_E5M2
            | dt::FLOAT8_E4M3FN
            | dt::FLOAT8_E4M3FNUZ
            | dt::FLOAT8_E4M3B11FNUZ
            | dt::FLOAT8_E5M2FNUZ
            | dt::FLOAT4_E2M1FN
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_refs() {
        assert_eq!(enum_name(dt::FLOAT), "DT_FLOAT");
        assert_eq!(enum_name(101), "DT_FLOAT_REF");
        assert_eq!(short_name(dt::HALF), "float16");
        assert_eq!(from_name("bfloat16"), Some(dt::BFLOAT16));
        assert_eq!(from_name("DT_INT8"), Some(dt::INT8));
        assert!(is_ref(101) && !is_ref(dt::FLOAT));
        assert_eq!(base(119), dt::HALF);
        assert_eq!(element_size(dt::COMPLEX128), Some(16));
        assert_eq!(element_size(dt::STRING), None);
        assert_eq!(enum_name(77), "DT_77");
    }
}
