//! Comparing two output tensors.
//!
//! Floating-point (and complex) outputs are compared numerically: maximum absolute error,
//! maximum relative error `|a-b| / max(|a|,|b|)`, cosine similarity, and the number of elements
//! with `|a-b| > atol + rtol*|a|` (graph A is the reference). NaN matches NaN and infinities match
//! infinities of the same sign; any other NaN/inf disagreement is an outlier. Integer, bool and
//! string outputs must be exactly equal. Different dtypes or shapes are always a mismatch.

use serde_json::{json, Value};

use crate::dtype::DType;
use crate::tensor::{fmt_shape, unravel, Data, HostTensor};

/// Tolerances; `None` picks a default from the dtype (see [`default_tolerance`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Tolerance {
    pub atol: Option<f64>,
    pub rtol: Option<f64>,
}

/// Default `(atol, rtol)` per dtype: float16 (1e-3, 1e-3), bfloat16 (1e-2, 1e-2), float32/64 and
/// complex (1e-5, 1e-4), float8 (1e-2, 0.125), float4 (0.5, 0.25); exact types (0, 0).
pub fn default_tolerance(dtype: DType) -> (f64, f64) {
    match dtype {
        DType::F16 => (1e-3, 1e-3),
        DType::BF16 => (1e-2, 1e-2),
        DType::F32 | DType::F64 | DType::Complex64 | DType::Complex128 => (1e-5, 1e-4),
        DType::Float4E2M1FN => (0.5, 0.25),
        d if d.is_minifloat() => (1e-2, 0.125),
        _ => (0.0, 0.0),
    }
}

/// Result of comparing one output pair.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub a_name: String,
    pub b_name: String,
    pub a_dtype: DType,
    pub b_dtype: DType,
    pub a_shape: Vec<u64>,
    pub b_shape: Vec<u64>,
    /// `true` when compared with tolerances, `false` for exact comparison.
    pub numeric: bool,
    pub atol: f64,
    pub rtol: f64,
    pub max_abs: Option<f64>,
    pub max_rel: Option<f64>,
    pub cosine: Option<f64>,
    /// Elements outside tolerance (or not equal, for exact types).
    pub outliers: usize,
    /// Number of elements compared.
    pub count: usize,
    /// Flat index of the first outlier, its multi-index and the two values.
    pub first_outlier: Option<Outlier>,
    /// Why the pair cannot match at all (dtype or shape mismatch).
    pub problem: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Outlier {
    pub flat: usize,
    pub index: Vec<u64>,
    pub a: String,
    pub b: String,
}

impl Comparison {
    pub fn ok(&self) -> bool {
        self.problem.is_none() && self.outliers == 0
    }

    pub fn to_json(&self) -> Value {
        json!({
            "a": self.a_name,
            "b": self.b_name,
            "dtype": self.a_dtype.name(),
            "b_dtype": self.b_dtype.name(),
            "shape": self.a_shape,
            "b_shape": self.b_shape,
            "numeric": self.numeric,
            "atol": self.atol,
            "rtol": self.rtol,
            "max_abs_error": self.max_abs,
            "max_rel_error": self.max_rel,
            "cosine_similarity": self.cosine,
            "elements": self.count,
            "outliers": self.outliers,
            "first_outlier": self.first_outlier.as_ref().map(|o| json!({
                "flat_index": o.flat,
                "index": o.index,
                "a": o.a,
                "b": o.b,
            })),
            "problem": self.problem,
            "ok": self.ok(),
        })
    }
}

/// Compare `a` (reference, from graph A) with `b`.
pub fn compare(
    a_name: &str,
    b_name: &str,
    a: &HostTensor,
    b: &HostTensor,
    tol: Tolerance,
) -> Comparison {
    let (da, db) = (a.dtype(), b.dtype());
    let (def_atol, def_rtol) = default_tolerance(da);
    let is_num = |d: DType| d.is_float() || d.is_complex() || d.is_minifloat();
    let numeric = is_num(da) || is_num(db);
    let (atol, rtol) = if numeric {
        (tol.atol.unwrap_or(def_atol), tol.rtol.unwrap_or(def_rtol))
    } else {
        (0.0, 0.0)
    };
    let mut c = Comparison {
        a_name: a_name.to_string(),
        b_name: b_name.to_string(),
        a_dtype: da,
        b_dtype: db,
        a_shape: a.shape.clone(),
        b_shape: b.shape.clone(),
        numeric,
        atol,
        rtol,
        max_abs: None,
        max_rel: None,
        cosine: None,
        outliers: 0,
        count: a.len(),
        first_outlier: None,
        problem: None,
    };
    let mut problems = Vec::new();
    if da != db {
        problems.push(format!("dtype mismatch: {da} vs {db}"));
    }
    if a.shape != b.shape {
        problems.push(format!(
            "shape mismatch: {} vs {}",
            fmt_shape(&a.shape),
            fmt_shape(&b.shape)
        ));
    }
    if !problems.is_empty() {
        c.problem = Some(problems.join("; "));
    }
    if a.len() != b.len() {
        return c;
    }
    let mut first: Option<usize> = None;
    if numeric {
        if let (Some(x), Some(y)) = (a.to_c128(), b.to_c128()) {
            numeric_compare(&x, &y, atol, rtol, &mut c, &mut first);
        } else {
            c.problem.get_or_insert_with(|| "not comparable".to_string());
        }
    } else {
        exact_compare(&a.data, &b.data, &mut c, &mut first);
    }
    if let Some(i) = first {
        c.first_outlier = Some(Outlier {
            flat: i,
            index: unravel(i, &a.shape),
            a: a.fmt_elem(i),
            b: b.fmt_elem(i),
        });
    }
    c
}

fn numeric_compare(
    x: &[[f64; 2]],
    y: &[[f64; 2]],
    atol: f64,
    rtol: f64,
    c: &mut Comparison,
    first: &mut Option<usize>,
) {
    let (mut max_abs, mut max_rel) = (0.0f64, 0.0f64);
    let (mut dot, mut nx, mut ny) = (0.0f64, 0.0f64, 0.0f64);
    let mut outliers = 0usize;
    for (i, (p, q)) in x.iter().zip(y).enumerate() {
        let p_nan = p[0].is_nan() || p[1].is_nan();
        let q_nan = q[0].is_nan() || q[1].is_nan();
        let bad = if p_nan || q_nan {
            p_nan != q_nan
        } else if p.iter().chain(q).any(|v| v.is_infinite()) {
            p != q
        } else {
            let diff = (p[0] - q[0]).hypot(p[1] - q[1]);
            let pa = p[0].hypot(p[1]);
            let qa = q[0].hypot(q[1]);
            max_abs = max_abs.max(diff);
            let denom = pa.max(qa);
            if denom > 0.0 {
                max_rel = max_rel.max(diff / denom);
            }
            dot += p[0] * q[0] + p[1] * q[1];
            nx += pa * pa;
            ny += qa * qa;
            diff > atol + rtol * pa
        };
        if bad {
            outliers += 1;
            if first.is_none() {
                *first = Some(i);
            }
        }
    }
    c.max_abs = Some(max_abs);
    c.max_rel = Some(max_rel);
    c.cosine = Some(if (nx == 0.0 && ny == 0.0) || (max_abs == 0.0 && nx == ny) {
        1.0 // identical (finite parts): exactly 1, not 1 - rounding
    } else if nx == 0.0 || ny == 0.0 {
        0.0
    } else {
        (dot / (nx.sqrt() * ny.sqrt())).clamp(-1.0, 1.0)
    });
    c.outliers = outliers;
}

fn exact_compare(a: &Data, b: &Data, c: &mut Comparison, first: &mut Option<usize>) {
    let mut outliers = 0usize;
    let mut note = |i: usize| {
        outliers += 1;
        if first.is_none() {
            *first = Some(i);
        }
    };
    match (a, b) {
        (Data::Str(x), Data::Str(y)) => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                if p != q {
                    note(i);
                }
            }
        }
        _ => match (a.to_i128(), b.to_i128()) {
            (Some(x), Some(y)) => {
                let mut max_abs = 0u128;
                for (i, (p, q)) in x.iter().zip(&y).enumerate() {
                    if p != q {
                        note(i);
                        max_abs = max_abs.max(p.abs_diff(*q));
                    }
                }
                c.max_abs = Some(max_abs as f64);
            }
            _ => {
                c.problem.get_or_insert_with(|| "values are not comparable".to_string());
            }
        },
    }
    c.outliers = outliers;
}

fn fmt_metric(v: Option<f64>) -> String {
    match v {
        None => "-".to_string(),
        Some(0.0) => "0".to_string(),
        Some(x) => format!("{x:.3e}"),
    }
}

/// A plain-text table of comparisons (one row per output, then details of failures).
pub fn format_table(rows: &[Comparison]) -> String {
    let header = ["output", "dtype", "shape", "max_abs", "max_rel", "cosine", "outliers", "status"];
    let mut table: Vec<[String; 8]> = Vec::new();
    for c in rows {
        let name = if c.a_name == c.b_name {
            c.a_name.clone()
        } else {
            format!("{} = {}", c.a_name, c.b_name)
        };
        let dtype = if c.a_dtype == c.b_dtype {
            c.a_dtype.to_string()
        } else {
            format!("{}/{}", c.a_dtype, c.b_dtype)
        };
        let shape = if c.a_shape == c.b_shape {
            fmt_shape(&c.a_shape)
        } else {
            format!("{}/{}", fmt_shape(&c.a_shape), fmt_shape(&c.b_shape))
        };
        let cosine = c.cosine.map_or("-".to_string(), |x| {
            if x == 1.0 {
                "1".to_string()
            } else {
                format!("{x:.9}")
            }
        });
        table.push([
            name,
            dtype,
            shape,
            fmt_metric(c.max_abs),
            fmt_metric(c.max_rel),
            cosine,
            format!("{}/{}", c.outliers, c.count),
            if c.ok() { "ok" } else { "FAIL" }.to_string(),
        ]);
    }
    let mut widths = header.map(str::len);
    for r in &table {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let parts: Vec<String> =
            cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(parts.join("  ").trim_end());
        out.push('\n');
    };
    line(header.to_vec(), &mut out);
    for r in &table {
        line(r.iter().map(String::as_str).collect(), &mut out);
    }
    for c in rows.iter().filter(|c| !c.ok()) {
        if let Some(p) = &c.problem {
            out.push_str(&format!("{}: {}\n", c.a_name, p));
        }
        if let Some(o) = &c.first_outlier {
            let tol = if c.numeric {
                format!(" (atol={:e}, rtol={:e})", c.atol, c.rtol)
            } else {
                String::new()
            };
            out.push_str(&format!(
                "{}: first outlier at {:?} (flat {}): a={} b={}{}\n",
                c.a_name, o.index, o.flat, o.a, o.b, tol
            ));
        }
    }
    out
}
