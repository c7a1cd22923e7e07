//! The Rust element types a tensor's values can be read as.

use crate::dt;

/// A fixed-size element type and the dtypes whose bytes it reads.
pub trait Element: Copy {
    /// Bytes per element.
    const SIZE: usize;
    /// Name used in error messages.
    const NAME: &'static str;
    /// The base dtypes stored with this layout.
    const DTYPES: &'static [i32];
    /// Reads one element from `SIZE` little-endian bytes.
    fn read_le(b: &[u8]) -> Self;
    /// Appends the little-endian bytes of `self`.
    fn write_le(&self, out: &mut Vec<u8>);
}

macro_rules! element {
    ($t:ty, $name:literal, [$($d:expr),*]) => {
        impl Element for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            const NAME: &'static str = $name;
            const DTYPES: &'static [i32] = &[$($d),*];
            fn read_le(b: &[u8]) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(&b[..std::mem::size_of::<$t>()]);
                <$t>::from_le_bytes(a)
            }
            fn write_le(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    };
}

element!(f32, "float32", [dt::FLOAT]);
element!(f64, "float64", [dt::DOUBLE]);
element!(i64, "int64", [dt::INT64]);
element!(i32, "int32", [dt::INT32, dt::QINT32]);
element!(i16, "int16", [dt::INT16, dt::QINT16]);
element!(i8, "int8", [dt::INT8, dt::QINT8, dt::INT4, dt::INT2]);
element!(u8, "uint8", [dt::UINT8, dt::QUINT8, dt::UINT4, dt::UINT2]);
element!(u16, "uint16", [dt::UINT16, dt::QUINT16]);
element!(u32, "uint32", [dt::UINT32]);
element!(u64, "uint64", [dt::UINT64]);
element!(half::f16, "float16", [dt::HALF]);
element!(half::bf16, "bfloat16", [dt::BFLOAT16]);

impl Element for bool {
    const SIZE: usize = 1;
    const NAME: &'static str = "bool";
    const DTYPES: &'static [i32] = &[dt::BOOL];
    fn read_le(b: &[u8]) -> Self {
        b[0] != 0
    }
    fn write_le(&self, out: &mut Vec<u8>) {
        out.push(*self as u8);
    }
}
