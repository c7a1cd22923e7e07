//! `tf-ckpt diff`: two checkpoints compared tensor by tensor.

use serde::Serialize;
use tf_tensor::{dt, dtype, Data, Tensor};

use crate::{Checkpoint, CkptError, OBJECT_GRAPH_KEY};

/// Tolerances of `diff`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiffOptions {
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance (of the second checkpoint's value).
    pub rtol: f64,
    /// Compare float tensors of different float dtypes (float32 against its float16 cast) by
    /// value instead of reporting a dtype change.
    pub across_dtypes: bool,
}

/// One tensor that is not the same in both.
#[derive(Debug, Clone, Serialize)]
pub struct DiffRow {
    /// Key.
    pub key: String,
    /// `only_in_a`, `only_in_b`, `dtype`, `shape` or `values`.
    pub status: &'static str,
    /// What each side holds (dtype and shape), for dtype and shape changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Largest |a - b| (values).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_abs: Option<f64>,
    /// Largest |a - b| / |b| (values).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_rel: Option<f64>,
    /// Elements outside atol + rtol * |b| (values).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outliers: Option<u64>,
}

/// `tf-ckpt diff`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DiffReport {
    /// Tensors compared that match.
    pub same: usize,
    /// Tensors that differ (or are only on one side).
    pub differ: Vec<DiffRow>,
}

/// Numeric values as f64 (None for strings and other dtypes).
fn as_f64(t: &Tensor) -> Option<Vec<f64>> {
    let Data::Raw(b) = &t.data else { return None };
    macro_rules! conv {
        ($ty:ty, $n:expr, $f:expr) => {
            b.chunks_exact($n)
                .map(|c| $f(<$ty>::from_le_bytes(c.try_into().expect("size"))))
                .collect()
        };
    }
    Some(match t.dtype {
        dt::FLOAT => conv!(f32, 4, f64::from),
        dt::DOUBLE => conv!(f64, 8, |x| x),
        dt::HALF => conv!(u16, 2, |x| f64::from(half::f16::from_bits(x))),
        dt::BFLOAT16 => conv!(u16, 2, |x| f64::from(half::bf16::from_bits(x))),
        dt::INT8 => conv!(i8, 1, f64::from),
        dt::UINT8 => conv!(u8, 1, f64::from),
        dt::INT16 => conv!(i16, 2, f64::from),
        dt::UINT16 => conv!(u16, 2, f64::from),
        dt::INT32 => conv!(i32, 4, f64::from),
        dt::UINT32 => conv!(u32, 4, f64::from),
        dt::INT64 => conv!(i64, 8, |x| x as f64),
        dt::UINT64 => conv!(u64, 8, |x| x as f64),
        dt::BOOL => conv!(u8, 1, |x| f64::from(x != 0)),
        _ => return None,
    })
}

fn describe(t: &Tensor) -> String {
    format!("{} {}", dtype::short_name(t.dtype), tf_tensor::dims_to_string(&t.shape))
}

/// Compares every tensor of `a` with the tensor of the same key in `b` (the TF2 object graph
/// is left out: object ids differ between equal models).
pub fn diff(a: &Checkpoint, b: &Checkpoint, o: &DiffOptions) -> Result<DiffReport, CkptError> {
    let ka: Vec<String> = a.entries().into_iter().map(|e| e.key).collect();
    let kb: std::collections::BTreeSet<String> = b.entries().into_iter().map(|e| e.key).collect();
    let mut r = DiffReport::default();
    let row = |key: &str, status| DiffRow {
        key: key.into(),
        status,
        detail: None,
        max_abs: None,
        max_rel: None,
        outliers: None,
    };
    for k in &ka {
        if k == OBJECT_GRAPH_KEY {
            continue;
        }
        if !kb.contains(k) {
            r.differ.push(row(k, "only_in_a"));
            continue;
        }
        let (ta, tb) = (a.read(k)?, b.read(k)?);
        if ta.shape != tb.shape {
            let mut d = row(k, "shape");
            d.detail = Some(format!("{} vs {}", describe(&ta), describe(&tb)));
            r.differ.push(d);
            continue;
        }
        let floats = dtype::is_float(ta.dtype) && dtype::is_float(tb.dtype);
        if ta.dtype != tb.dtype && !(o.across_dtypes && floats) {
            let mut d = row(k, "dtype");
            d.detail = Some(format!("{} vs {}", describe(&ta), describe(&tb)));
            r.differ.push(d);
            continue;
        }
        let same = match (as_f64(&ta), as_f64(&tb)) {
            (Some(va), Some(vb)) => {
                let (mut max_abs, mut max_rel, mut outliers) = (0f64, 0f64, 0u64);
                for (x, y) in va.iter().zip(&vb) {
                    if x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()) {
                        continue;
                    }
                    let d = (x - y).abs();
                    let d = if d.is_nan() { f64::INFINITY } else { d };
                    max_abs = max_abs.max(d);
                    if *y != 0.0 {
                        max_rel = max_rel.max(d / y.abs());
                    } else if d > 0.0 {
                        max_rel = f64::INFINITY;
                    }
                    if d > o.atol + o.rtol * y.abs() {
                        outliers += 1;
                    }
                }
                if outliers > 0 {
                    let mut d = row(k, "values");
                    d.max_abs = Some(max_abs);
                    d.max_rel = Some(max_rel);
                    d.outliers = Some(outliers);
                    r.differ.push(d);
                }
                outliers == 0
            }
            _ => {
                let same = ta.data == tb.data;
                if !same {
                    r.differ.push(row(k, "values"));
                }
                same
            }
        };
        if same {
            r.same += 1;
        }
    }
    let ka: std::collections::BTreeSet<&String> = ka.iter().collect();
    for k in &kb {
        if k != OBJECT_GRAPH_KEY && !ka.contains(k) {
            r.differ.push(row(k, "only_in_b"));
        }
    }
    Ok(r)
}

/// `diff` as text: one line per difference, then a summary.
pub fn render_diff(r: &DiffReport) -> String {
    let mut out = String::new();
    for d in &r.differ {
        let what = match (d.status, &d.detail) {
            ("values", _) if d.max_abs.is_some() => format!(
                "values differ: max abs {:.6e}, max rel {:.6e}, {} outside tolerance",
                d.max_abs.unwrap_or(0.0),
                d.max_rel.unwrap_or(0.0),
                d.outliers.unwrap_or(0)
            ),
            ("values", _) => "values differ".into(),
            ("only_in_a", _) => "only in the first".into(),
            ("only_in_b", _) => "only in the second".into(),
            (s, Some(detail)) => format!("{s} differs: {detail}"),
            (s, None) => format!("{s} differs"),
        };
        out.push_str(&format!("{}: {what}\n", d.key));
    }
    out.push_str(&format!("{} tensors equal, {} differ\n", r.same, r.differ.len()));
    out
}
