//! Seeded random inputs: deterministic for a (seed, input name) pair, independent of the order
//! in which inputs are generated.
//!
//! - floats (f16, bf16, f32, f64): uniform in [-1, 1)
//! - complex: real and imaginary parts uniform in [-1, 1)
//! - float8/float4: uniform over the representable values in [-1, 1]
//! - integers (signed and unsigned, quantized): uniform in [0, 10) (small and non-negative, so
//!   that index-like inputs such as embedding ids stay in range); int4/uint4/int2/uint2 in
//!   [0, min(10, max + 1))
//! - bools: fair coin
//! - strings: 1 to 8 random lowercase letters

use half::{bf16, f16};

use crate::dtype::DType;
use crate::error::Result;
use crate::tensor::{num_elements, Data, HostTensor};

/// SplitMix64: tiny, fast, good enough for test inputs, and stable across platforms/versions.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A generator for one named input: mixes the seed with a hash of the name.
    pub fn for_name(seed: u64, name: &str) -> Rng {
        // FNV-1a over the name, then mixed with the seed.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        let mut r = Rng(seed ^ h.rotate_left(17));
        r.next_u64();
        r
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 bits of precision.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [-1, 1).
    pub fn signed_unit(&mut self) -> f64 {
        self.next_f64() * 2.0 - 1.0
    }

    /// Uniform integer in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

/// A random tensor of the given type and shape.
pub fn random_tensor(dtype: DType, shape: Vec<u64>, rng: &mut Rng) -> Result<HostTensor> {
    let n = num_elements(&shape)?;
    if let Some(mf) = dtype.minifloat() {
        // Every bit pattern whose value is finite and within [-1, 1].
        let codes: Vec<u8> = (0..1u32 << mf.bits())
            .map(|r| r as u8)
            .filter(|&r| mf.decode(r).abs() <= 1.0)
            .collect();
        let bits = (0..n).map(|_| codes[rng.below(codes.len() as u64) as usize]).collect();
        return HostTensor::with_dtype(dtype, shape, Data::U8(bits));
    }
    let int_range: u64 = match dtype.narrow_int_range() {
        Some((_, hi)) => (hi as u64 + 1).min(10),
        None => 10,
    };
    macro_rules! ints {
        ($variant:ident, $t:ty) => {
            Data::$variant((0..n).map(|_| rng.below(int_range) as $t).collect())
        };
    }
    let data = match dtype.storage() {
        DType::F32 => Data::F32((0..n).map(|_| rng.signed_unit() as f32).collect()),
        DType::F64 => Data::F64((0..n).map(|_| rng.signed_unit()).collect()),
        DType::F16 => Data::F16((0..n).map(|_| f16::from_f64(rng.signed_unit())).collect()),
        DType::BF16 => Data::BF16((0..n).map(|_| bf16::from_f64(rng.signed_unit())).collect()),
        DType::I8 => ints!(I8, i8),
        DType::I16 => ints!(I16, i16),
        DType::I32 => ints!(I32, i32),
        DType::I64 => ints!(I64, i64),
        DType::U8 => ints!(U8, u8),
        DType::U16 => ints!(U16, u16),
        DType::U32 => ints!(U32, u32),
        DType::U64 => ints!(U64, u64),
        DType::Bool => Data::Bool((0..n).map(|_| rng.next_u64() & 1 == 1).collect()),
        DType::Complex64 => Data::C64(
            (0..n).map(|_| [rng.signed_unit() as f32, rng.signed_unit() as f32]).collect(),
        ),
        DType::Complex128 => {
            Data::C128((0..n).map(|_| [rng.signed_unit(), rng.signed_unit()]).collect())
        }
        DType::String => Data::Str(
            (0..n)
                .map(|_| {
                    let len = 1 + rng.below(8) as usize;
                    (0..len).map(|_| b'a' + rng.below(26) as u8).collect()
                })
                .collect(),
        ),
        other => {
            return Err(crate::error::Error::invalid(format!("cannot generate {other} values")))
        }
    };
    HostTensor::with_dtype(dtype, shape, data)
}
