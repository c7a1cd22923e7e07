//! NPY / NPZ input and output of [`HostTensor`]s.
//!
//! Reading supports bool, (u)int8..64, float16/32/64, complex64/128, byte strings (`S`),
//! unicode strings (`U`, stored as UTF-8 bytes) and 2-byte raw values (`V2`, taken as bfloat16
//! bit patterns, which is how ml_dtypes' bfloat16 arrays are saved). Fortran-order arrays are
//! reordered to C order. Writing uses numpy's native types. Types numpy lacks are written in
//! their storage type, as the project's fixtures store them: bfloat16 as uint16 bit patterns,
//! float8/float4 as uint8 bit patterns, int4/int2 as int8, uint4/uint2 as uint8, quantized types
//! as their integer type. Strings are written as fixed-width byte strings (`S<n>`).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::Path;

use half::f16;
use npyz::num_complex::Complex;
use npyz::{NpyFile, Order, TypeChar, WriterBuilder};

use crate::error::{Error, Result};
use crate::tensor::{Data, HostTensor};

fn io_err(path: &Path) -> impl Fn(io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

/// Read a single array from an NPY stream.
pub fn read_npy_from<R: Read>(reader: R) -> io::Result<HostTensor> {
    let npy = NpyFile::new(reader)?;
    let shape = npy.shape().to_vec();
    let order = npy.order();
    let bad = |msg: String| io::Error::new(io::ErrorKind::InvalidData, msg);
    let type_str = match npy.dtype() {
        npyz::DType::Plain(ts) => ts,
        other => return Err(bad(format!("unsupported npy dtype {}", other.descr()))),
    };
    let size = type_str.size_field();
    let data = match (type_str.type_char(), size) {
        (TypeChar::Bool, 1) => Data::Bool(npy.into_vec()?),
        (TypeChar::Int, 1) => Data::I8(npy.into_vec()?),
        (TypeChar::Int, 2) => Data::I16(npy.into_vec()?),
        (TypeChar::Int, 4) => Data::I32(npy.into_vec()?),
        (TypeChar::Int, 8) => Data::I64(npy.into_vec()?),
        (TypeChar::Uint, 1) => Data::U8(npy.into_vec()?),
        (TypeChar::Uint, 2) => Data::U16(npy.into_vec()?),
        (TypeChar::Uint, 4) => Data::U32(npy.into_vec()?),
        (TypeChar::Uint, 8) => Data::U64(npy.into_vec()?),
        (TypeChar::Float, 2) => Data::F16(npy.into_vec::<f16>()?),
        (TypeChar::Float, 4) => Data::F32(npy.into_vec()?),
        (TypeChar::Float, 8) => Data::F64(npy.into_vec()?),
        (TypeChar::Complex, 8) => {
            Data::C64(npy.into_vec::<Complex<f32>>()?.into_iter().map(|c| [c.re, c.im]).collect())
        }
        (TypeChar::Complex, 16) => {
            Data::C128(npy.into_vec::<Complex<f64>>()?.into_iter().map(|c| [c.re, c.im]).collect())
        }
        (TypeChar::ByteStr, _) => Data::Str(npy.into_vec::<Vec<u8>>()?),
        (TypeChar::UnicodeStr, _) => {
            Data::Str(npy.into_vec::<String>()?.into_iter().map(String::into_bytes).collect())
        }
        (TypeChar::RawData, 2) => {
            let raw: Vec<Vec<u8>> = npy.into_vec()?;
            Data::BF16(
                raw.iter()
                    .map(|b| half::bf16::from_bits(u16::from_le_bytes([b[0], b[1]])))
                    .collect(),
            )
        }
        _ => {
            return Err(bad(format!(
                "unsupported npy dtype {}",
                npyz::DType::Plain(type_str.clone()).descr()
            )))
        }
    };
    let mut t = HostTensor::new(shape, data).map_err(|e| bad(e.to_string()))?;
    if order == Order::Fortran && t.shape.len() > 1 {
        t = fortran_to_c(t);
    }
    Ok(t)
}

/// Reorder a Fortran-order buffer (first index fastest) into C order.
fn fortran_to_c(t: HostTensor) -> HostTensor {
    fn reorder<T: Clone>(v: &[T], shape: &[u64]) -> Vec<T> {
        let n = v.len();
        let rank = shape.len();
        // Fortran strides.
        let mut fstride = vec![1usize; rank];
        for k in 1..rank {
            fstride[k] = fstride[k - 1] * shape[k - 1] as usize;
        }
        let mut out = Vec::with_capacity(n);
        let mut idx = vec![0usize; rank];
        for _ in 0..n {
            let off: usize = idx.iter().zip(&fstride).map(|(i, s)| i * s).sum();
            out.push(v[off].clone());
            // Increment the C-order multi-index (last axis fastest).
            for k in (0..rank).rev() {
                idx[k] += 1;
                if idx[k] < shape[k] as usize {
                    break;
                }
                idx[k] = 0;
            }
        }
        out
    }
    let shape = t.shape.clone();
    let data = match &t.data {
        Data::F32(v) => Data::F32(reorder(v, &shape)),
        Data::F64(v) => Data::F64(reorder(v, &shape)),
        Data::F16(v) => Data::F16(reorder(v, &shape)),
        Data::BF16(v) => Data::BF16(reorder(v, &shape)),
        Data::I8(v) => Data::I8(reorder(v, &shape)),
        Data::I16(v) => Data::I16(reorder(v, &shape)),
        Data::I32(v) => Data::I32(reorder(v, &shape)),
        Data::I64(v) => Data::I64(reorder(v, &shape)),
        Data::U8(v) => Data::U8(reorder(v, &shape)),
        Data::U16(v) => Data::U16(reorder(v, &shape)),
        Data::U32(v) => Data::U32(reorder(v, &shape)),
        Data::U64(v) => Data::U64(reorder(v, &shape)),
        Data::Bool(v) => Data::Bool(reorder(v, &shape)),
        Data::C64(v) => Data::C64(reorder(v, &shape)),
        Data::C128(v) => Data::C128(reorder(v, &shape)),
        Data::Str(v) => Data::Str(reorder(v, &shape)),
    };
    HostTensor { dtype: t.dtype, shape, data }
}

/// Read one `.npy` file.
pub fn read_npy(path: &Path) -> Result<HostTensor> {
    let mut f = File::open(path).map_err(io_err(path))?;
    let mut magic = [0u8; 4];
    let is_zip = f.read_exact(&mut magic).is_ok() && &magic == b"PK\x03\x04";
    if is_zip {
        return Err(Error::invalid(format!(
            "{}: is an .npz archive, not an .npy file (use --inputs for .npz)",
            path.display()
        )));
    }
    f.rewind().map_err(io_err(path))?;
    read_npy_from(BufReader::new(f)).map_err(io_err(path))
}

/// Read every array of an `.npz` file, by key (sorted).
pub fn read_npz(path: &Path) -> Result<BTreeMap<String, HostTensor>> {
    let f = File::open(path).map_err(io_err(path))?;
    read_npz_from(BufReader::new(f)).map_err(io_err(path))
}

pub fn read_npz_from<R: Read + Seek>(reader: R) -> io::Result<BTreeMap<String, HostTensor>> {
    let mut archive = npyz::npz::NpzArchive::new(reader)?;
    let names: Vec<String> = archive.array_names().map(str::to_string).collect();
    let mut out = BTreeMap::new();
    for name in names {
        let npy = archive
            .zip_archive()
            .by_name(&npyz::npz::file_name_from_array_name(&name))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        let t = read_npy_from(npy)
            .map_err(|e| io::Error::new(e.kind(), format!("array '{name}': {e}")))?;
        out.insert(name, t);
    }
    Ok(out)
}

/// Dispatch over the element types of a tensor for writing. `$put` is a local macro taking
/// `(rust type, iterator of values)`, or `(@str, &Vec<Vec<u8>>)` for strings.
macro_rules! dispatch_write {
    ($t:expr, $put:ident) => {
        match &$t.data {
            Data::F32(v) => $put!(f32, v.iter().copied()),
            Data::F64(v) => $put!(f64, v.iter().copied()),
            Data::F16(v) => $put!(f16, v.iter().copied()),
            Data::BF16(v) => $put!(u16, v.iter().map(|x| x.to_bits())),
            Data::I8(v) => $put!(i8, v.iter().copied()),
            Data::I16(v) => $put!(i16, v.iter().copied()),
            Data::I32(v) => $put!(i32, v.iter().copied()),
            Data::I64(v) => $put!(i64, v.iter().copied()),
            Data::U8(v) => $put!(u8, v.iter().copied()),
            Data::U16(v) => $put!(u16, v.iter().copied()),
            Data::U32(v) => $put!(u32, v.iter().copied()),
            Data::U64(v) => $put!(u64, v.iter().copied()),
            Data::Bool(v) => $put!(bool, v.iter().copied()),
            Data::C64(v) => $put!(Complex<f32>, v.iter().map(|c| Complex::new(c[0], c[1]))),
            Data::C128(v) => $put!(Complex<f64>, v.iter().map(|c| Complex::new(c[0], c[1]))),
            Data::Str(v) => $put!(@str, v),
        }
    };
}

/// numpy dtype for a list of byte strings: fixed width `S<max len>`.
fn bytes_dtype(v: &[Vec<u8>]) -> io::Result<npyz::DType> {
    let width = v.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let ts: npyz::TypeStr = format!("|S{width}")
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{e}")))?;
    Ok(npyz::DType::Plain(ts))
}

/// Write one array to an NPY stream.
pub fn write_npy_to<W: Write>(writer: W, t: &HostTensor) -> io::Result<()> {
    macro_rules! put {
        (@str, $v:expr) => {{
            let mut w = npyz::WriteOptions::<[u8]>::new()
                .dtype(bytes_dtype($v)?)
                .shape(&t.shape)
                .writer(writer)
                .begin_nd()?;
            for s in $v {
                w.push(&s[..])?;
            }
            w.finish()
        }};
        ($ty:ty, $it:expr) => {{
            let mut w = npyz::WriteOptions::<$ty>::new()
                .default_dtype()
                .shape(&t.shape)
                .writer(writer)
                .begin_nd()?;
            w.extend($it)?;
            w.finish()
        }};
    }
    dispatch_write!(t, put)
}

/// Write one `.npy` file.
pub fn write_npy(path: &Path, t: &HostTensor) -> Result<()> {
    let f = File::create(path).map_err(io_err(path))?;
    let mut w = BufWriter::new(f);
    write_npy_to(&mut w, t).map_err(io_err(path))?;
    w.flush().map_err(io_err(path))
}

/// Write arrays to an `.npz` file (keys in the given order).
pub fn write_npz(path: &Path, arrays: &[(String, HostTensor)]) -> Result<()> {
    let f = File::create(path).map_err(io_err(path))?;
    write_npz_to(BufWriter::new(f), arrays).map_err(io_err(path))
}

pub fn write_npz_to<W: Write + Seek>(writer: W, arrays: &[(String, HostTensor)]) -> io::Result<()> {
    let mut npz = npyz::npz::NpzWriter::new(writer);
    for (name, t) in arrays {
        let opts = npyz::zip::write::FileOptions::default();
        macro_rules! put {
            (@str, $v:expr) => {{
                let mut w = npz
                    .array::<[u8]>(name, opts)?
                    .dtype(bytes_dtype($v)?)
                    .shape(&t.shape)
                    .begin_nd()?;
                for s in $v {
                    w.push(&s[..])?;
                }
                w.finish()?;
            }};
            ($ty:ty, $it:expr) => {{
                let mut w =
                    npz.array::<$ty>(name, opts)?.default_dtype().shape(&t.shape).begin_nd()?;
                w.extend($it)?;
                w.finish()?;
            }};
        }
        dispatch_write!(t, put);
    }
    let mut inner = npz.zip_writer().finish()?;
    inner.flush()?;
    Ok(())
}
