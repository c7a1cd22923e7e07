//! Activation ranges: the versioned JSON file `tf-run --calibrate` writes and
//! `tf-quant int8 --activations` reads, the histogram that records a tensor's values while the
//! samples run, and the threshold rules (`--calibration minmax|percentile:P|entropy`).
//!
//! The format (version 1) is documented in `docs/tools/tf-quant.md`:
//!
//! ```json
//! {"format": "tf-tools-activation-ranges", "version": 1,
//!  "source": "samples.npz", "samples": 64, "smoke_run_only": false, "bins": 2048,
//!  "tensors": {"conv1/Relu:0": {"min": 0.0, "max": 5.2, "count": 802816,
//!                               "hist_max": 6.4, "histogram": [..2048 counts of |x|..]}}}
//! ```
//!
//! The histogram counts |x| in `bins` equal bins over `[0, hist_max]`. While calibrating,
//! `hist_max` starts at the first batch's largest |x| and doubles (merging pairs of bins) when a
//! later batch exceeds it, so one pass over the samples is enough.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The `format` field of every ranges file.
pub const FORMAT: &str = "tf-tools-activation-ranges";
/// The version this build reads and writes.
pub const VERSION: u32 = 1;
/// Bins of the |x| histogram.
pub const BINS: usize = 2048;

/// What was recorded for one tensor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TensorRange {
    /// Smallest value seen.
    pub min: f64,
    /// Largest value seen.
    pub max: f64,
    /// Values seen (elements over every sample).
    pub count: u64,
    /// Upper edge of the histogram (at least max |x|).
    pub hist_max: f64,
    /// Counts of |x| in equal bins over `[0, hist_max]`.
    pub histogram: Vec<u64>,
    /// The tensor's dimensions, -1 where they differed between batches (absent in files from
    /// before shapes were recorded). Fusing a residual Add needs its two inputs' shapes equal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<Vec<i64>>,
}

/// A ranges file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RangesFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// The samples file, or `random (seed N)`.
    pub source: String,
    /// Rows (samples) run.
    pub samples: u64,
    /// True when the inputs were generated rather than real samples: the ranges are good for a
    /// smoke test of the pipeline only.
    pub smoke_run_only: bool,
    /// A note for people (says "smoke run only" for generated inputs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Bins of every histogram.
    pub bins: usize,
    /// By canonical tensor name (`node:port`).
    pub tensors: BTreeMap<String, TensorRange>,
}

impl RangesFile {
    /// Parses and validates a ranges file; the error is one line (without the file name).
    pub fn parse(text: &[u8]) -> Result<RangesFile, String> {
        let v: serde_json::Value =
            serde_json::from_slice(text).map_err(|e| format!("not valid JSON: {e}"))?;
        match v.get("format").and_then(|f| f.as_str()) {
            Some(FORMAT) => {}
            Some(other) => return Err(format!("format is '{other}', expected '{FORMAT}'")),
            None => return Err(format!("no \"format\": \"{FORMAT}\" field")),
        }
        match v.get("version").and_then(serde_json::Value::as_u64) {
            Some(n) if n == u64::from(VERSION) => {}
            Some(n) => {
                return Err(format!("version {n} is not supported (this build reads {VERSION})"))
            }
            None => return Err("no numeric \"version\" field".to_string()),
        }
        let f: RangesFile =
            serde_json::from_value(v).map_err(|e| format!("malformed ranges file: {e}"))?;
        for (name, t) in &f.tensors {
            // The range becomes float32 attributes: a value beyond float32 would turn infinite.
            let in_f32 = |v: f64| v.is_finite() && v.abs() <= f64::from(f32::MAX);
            let finite = in_f32(t.min) && in_f32(t.max) && in_f32(t.hist_max);
            if !finite || t.min > t.max || t.hist_max < 0.0 {
                return Err(format!("tensor '{name}': min/max/hist_max are not a finite range"));
            }
            if t.histogram.len() != f.bins {
                return Err(format!(
                    "tensor '{name}': histogram has {} bins, the file says {}",
                    t.histogram.len(),
                    f.bins
                ));
            }
        }
        Ok(f)
    }
}

/// How a tensor's quantization range is chosen from what was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Calibration {
    /// The smallest and largest values seen.
    #[default]
    MinMax,
    /// Clip |x| at the P-th percentile of the recorded |x| (0 < P ≤ 100).
    Percentile(f64),
    /// Clip |x| at the threshold whose 8-bit version of the |x| histogram is closest to the
    /// histogram itself (least Kullback-Leibler divergence), see [`entropy_threshold`].
    Entropy,
}

impl std::str::FromStr for Calibration {
    type Err = String;

    fn from_str(s: &str) -> Result<Calibration, String> {
        let s = s.trim();
        if s == "minmax" {
            return Ok(Calibration::MinMax);
        }
        if s == "entropy" {
            return Ok(Calibration::Entropy);
        }
        if let Some(p) = s.strip_prefix("percentile:") {
            return match p.parse::<f64>() {
                Ok(p) if p > 0.0 && p <= 100.0 => Ok(Calibration::Percentile(p)),
                _ => Err(format!("--calibration '{s}': P must be a number in (0, 100]")),
            };
        }
        Err(format!("--calibration '{s}': expected minmax, percentile:P or entropy"))
    }
}

impl std::fmt::Display for Calibration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Calibration::MinMax => f.write_str("minmax"),
            Calibration::Percentile(p) => write!(f, "percentile:{p}"),
            Calibration::Entropy => f.write_str("entropy"),
        }
    }
}

impl TensorRange {
    /// The range `[lo, hi]` the rule picks (always containing 0).
    pub fn pick(&self, rule: Calibration) -> (f32, f32) {
        let (mut lo, mut hi) = (self.min.min(0.0), self.max.max(0.0));
        if rule == Calibration::Entropy {
            // A non-negative tensor spreads its 8 bits over [0, t] (quint8), a signed one over
            // [-t, t]: 128 levels for |x|.
            let levels = if self.min >= 0.0 { 256 } else { 128 };
            if let Some(bins) = entropy_threshold(&self.histogram, levels) {
                let t = self.hist_max / self.histogram.len() as f64 * bins as f64;
                lo = lo.max(-t);
                hi = hi.min(t);
            }
        }
        if let Calibration::Percentile(p) = rule {
            // Counts come from a file: add them without overflowing.
            let total = self.histogram.iter().fold(0u64, |a, &c| a.saturating_add(c));
            if total > 0 && !self.histogram.is_empty() {
                let want = (total as f64 * p / 100.0).ceil() as u64;
                let width = self.hist_max / self.histogram.len() as f64;
                let mut seen = 0u64;
                for (i, c) in self.histogram.iter().enumerate() {
                    seen = seen.saturating_add(*c);
                    if seen >= want {
                        let t = width * (i + 1) as f64;
                        lo = lo.max(-t);
                        hi = hi.min(t);
                        break;
                    }
                }
            }
        }
        (lo as f32, hi as f32)
    }
}

/// The threshold, in bins, that the entropy rule picks for a histogram quantized to `levels`
/// levels: of every candidate `i` (from `levels` bins to the last non-empty bin), the one whose
/// distribution `P` (the first `i` bins, with everything beyond added to the last of them)
/// loses least information, in Kullback-Leibler divergence, when the first `i` bins are merged
/// into `levels` equal groups `Q` (each non-empty bin of a group getting the group's mean).
/// None when there is nothing to clip (at most `levels` bins in use).
///
/// Bin 0 is left out: it holds the zeros a Relu makes (exact at any threshold) and values below
/// one bin, which every candidate maps to its first level. Counted, a Relu output's zeros
/// dominate the divergence and drag the threshold to half the range.
pub fn entropy_threshold(hist: &[u64], levels: usize) -> Option<usize> {
    let last = hist.iter().rposition(|&c| c > 0)? + 1;
    if levels == 0 || last <= levels {
        return None;
    }
    // Counts come from a file: work in f64, which cannot overflow. Prefix sums over the bins
    // (bin 0 left out) make each candidate cost O(levels): counts, non-empty bins, c·ln c.
    let c = |j: usize| if j == 0 { 0.0 } else { hist[j] as f64 };
    let xlnx = |x: f64| if x > 0.0 { x * x.ln() } else { 0.0 };
    let (mut sum, mut nonzero, mut entropy) =
        (vec![0.0; last + 1], vec![0usize; last + 1], vec![0.0; last + 1]);
    for j in 0..last {
        sum[j + 1] = sum[j] + c(j);
        nonzero[j + 1] = nonzero[j] + usize::from(c(j) > 0.0);
        entropy[j + 1] = entropy[j] + xlnx(c(j));
    }
    let total = sum[last];
    if total <= 0.0 {
        return None;
    }
    let mut best: Option<(f64, usize)> = None;
    for i in levels..=last {
        // P: the first i bins, the outliers (everything from bin i on) added to bin i-1.
        let below = sum[i];
        let p_last = c(i - 1) + (total - below);
        let floor = 1e-4 / i as f64;
        // Q: group g holds bins [g*i/levels, (g+1)*i/levels); its count spread evenly over the
        // group's bins where P is non-empty, normalized by `below`. KL(P || Q) group by group:
        // sum over the group's bins of (P_j/T) ln((P_j/T) / q_g).
        let mut kl = 0.0;
        for g in 0..levels {
            let (a, b) = (g * i / levels, (g + 1) * i / levels);
            let mass = sum[b] - sum[a];
            let (mut used, mut p_mass, mut p_xlnx) =
                (nonzero[b] - nonzero[a], mass, entropy[b] - entropy[a]);
            if b == i {
                used = used + usize::from(p_last > 0.0) - usize::from(c(i - 1) > 0.0);
                p_mass = mass + (total - below);
                p_xlnx = entropy[i - 1] - entropy[a] + xlnx(p_last);
            }
            if p_mass <= 0.0 {
                continue;
            }
            // Only outliers in this group (and P non-empty where Q is empty): a small floor.
            let q = if mass > 0.0 { (mass / used as f64 / below).max(floor) } else { floor };
            kl += p_xlnx / total - p_mass / total * (total.ln() + q.ln());
        }
        if best.is_none_or(|(b, _)| kl < b) {
            best = Some((kl, i));
        }
    }
    best.map(|(_, i)| i)
}

/// A tensor's running range and |x| histogram, fed batch by batch (used by `tf-run
/// --calibrate`).
#[derive(Debug, Clone)]
pub struct Accumulator {
    min: f64,
    max: f64,
    count: u64,
    hist_max: f64,
    hist: Vec<u64>,
    shape: Option<Vec<i64>>,
}

impl Default for Accumulator {
    fn default() -> Accumulator {
        Accumulator {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            count: 0,
            hist_max: 0.0,
            hist: vec![0; BINS],
            shape: None,
        }
    }
}

impl Accumulator {
    /// Records a batch's dimensions (call it before [`Accumulator::add`]): a dimension that
    /// differs from an earlier batch's becomes -1; a rank that differs leaves no shape.
    pub fn add_shape(&mut self, dims: &[i64]) {
        self.shape = match self.shape.take() {
            None if self.count == 0 => Some(dims.to_vec()),
            Some(s) if s.len() == dims.len() => {
                Some(s.iter().zip(dims).map(|(&a, &b)| if a == b { a } else { -1 }).collect())
            }
            _ => None,
        };
    }

    /// Records a batch of values; NaN and infinities are not counted.
    pub fn add(&mut self, values: impl Iterator<Item = f32> + Clone) {
        let mut amax = 0f64;
        for v in values.clone() {
            if v.is_finite() {
                let v = f64::from(v);
                self.min = self.min.min(v);
                self.max = self.max.max(v);
                amax = amax.max(v.abs());
            }
        }
        if self.hist_max == 0.0 {
            self.hist_max = amax;
        }
        while amax > self.hist_max {
            // Double the range: bin i of the new histogram holds old bins 2i and 2i+1.
            let old = std::mem::replace(&mut self.hist, vec![0; BINS]);
            for (i, c) in old.into_iter().enumerate() {
                self.hist[i / 2] += c;
            }
            self.hist_max *= 2.0;
        }
        let scale = if self.hist_max > 0.0 { BINS as f64 / self.hist_max } else { 0.0 };
        for v in values {
            if v.is_finite() {
                let b = ((f64::from(v).abs() * scale) as usize).min(BINS - 1);
                self.hist[b] += 1;
                self.count += 1;
            }
        }
    }

    /// What was recorded (a tensor with no finite value gets the range [0, 0]).
    pub fn finish(self) -> TensorRange {
        let seen = self.min <= self.max;
        TensorRange {
            min: if seen { self.min } else { 0.0 },
            max: if seen { self.max } else { 0.0 },
            count: self.count,
            hist_max: self.hist_max,
            histogram: self.hist,
            shape: self.shape,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_grows_and_percentile_clips() {
        let mut a = Accumulator::default();
        a.add([0.5f32, -1.0, 1.0].into_iter());
        a.add((0..1000).map(|i| i as f32 / 1000.0).chain([100.0f32]));
        let r = a.finish();
        assert_eq!((r.min, r.max, r.count), (-1.0, 100.0, 1004));
        assert!(r.hist_max >= 100.0);
        assert_eq!(r.histogram.iter().sum::<u64>(), 1004);
        assert_eq!(r.pick(Calibration::MinMax), (-1.0, 100.0));
        let (lo, hi) = r.pick(Calibration::Percentile(99.0));
        assert!(hi < 2.0 && lo >= -1.0, "{lo} {hi}");
    }

    #[test]
    fn shapes_keep_what_every_batch_agrees_on() {
        let mut a = Accumulator::default();
        a.add_shape(&[32, 7, 3]);
        a.add([1.0f32].into_iter());
        a.add_shape(&[8, 7, 3]);
        a.add([1.0f32].into_iter());
        assert_eq!(a.clone().finish().shape, Some(vec![-1, 7, 3]));
        a.add_shape(&[8, 7]);
        assert_eq!(a.finish().shape, None);
        // A file without shapes still parses; one with them round-trips.
        let mut r = Accumulator::default();
        r.add_shape(&[1, 2]);
        r.add([0.5f32, 1.0].into_iter());
        let t = r.finish();
        let back: TensorRange = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back.shape, Some(vec![1, 2]));
    }

    #[test]
    fn entropy_clips_rare_outliers_and_keeps_a_full_distribution() {
        // A bell of |x| (a folded normal, sigma 1) from a seeded generator, and 20 outliers at
        // 40..60 among 200,000 values: the histogram reaches 64, the bulk stays below ~5.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut uniform = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut values: Vec<f32> = (0..100_000)
            .flat_map(|_| {
                let (u, v) = (uniform().max(1e-300), uniform());
                let r = (-2.0 * u.ln()).sqrt();
                let a = 2.0 * std::f64::consts::PI * v;
                [(r * a.cos()) as f32, (r * a.sin()) as f32]
            })
            .collect();
        values.extend((0..20).map(|i| 40.0 + i as f32));
        let mut a = Accumulator::default();
        a.add(values.iter().copied());
        let r = a.finish();
        let (lo, hi) = r.pick(Calibration::Entropy);
        let (_, p9999) = r.pick(Calibration::Percentile(99.99));
        // Clips the outliers and a little of the bell's tail, not into its body.
        assert!(hi > 2.5 && hi < 20.0, "entropy threshold {hi}");
        assert!(hi < p9999 * 4.0 && lo == -hi, "{lo} {hi} (99.99th percentile {p9999})");
        assert_eq!(r.pick(Calibration::MinMax).1, 59.0);

        // Values spread evenly up to the top: nothing is worth clipping.
        let mut u = Accumulator::default();
        u.add((0..100_000).map(|i| i as f32 / 100_000.0));
        let r = u.finish();
        let (lo, hi) = r.pick(Calibration::Entropy);
        assert!(lo == 0.0 && hi > 0.95, "{lo} {hi}");

        // A Relu output: 90 % zeros, the rest spread evenly. The zeros do not pull the
        // threshold down.
        let mut z = Accumulator::default();
        z.add((0..100_000).map(|i| if i % 10 == 0 { (i / 10) as f32 / 10_000.0 } else { 0.0 }));
        let (lo, hi) = z.finish().pick(Calibration::Entropy);
        assert!(lo == 0.0 && hi > 0.9, "{lo} {hi}");

        // Few bins in use: nothing to choose; an empty histogram gives none either.
        assert_eq!(entropy_threshold(&[5, 0, 3, 1], 128), None);
        assert_eq!(entropy_threshold(&[0; 2048], 128), None);
        // Hostile counts: no overflow, a threshold within the histogram.
        let mut h = vec![u64::MAX; 300];
        h.extend([0; 1748]);
        let t = entropy_threshold(&h, 128).unwrap();
        assert!((128..=300).contains(&t), "{t}");
        assert_eq!("entropy".parse::<Calibration>(), Ok(Calibration::Entropy));
        assert_eq!(Calibration::Entropy.to_string(), "entropy");
    }

    #[test]
    fn parse_checks_format_version_and_bins() {
        let ok = r#"{"format":"tf-tools-activation-ranges","version":1,"source":"s","samples":1,
            "smoke_run_only":false,"bins":2,"tensors":{"x:0":{"min":0,"max":1,"count":2,
            "hist_max":1,"histogram":[1,1]}}}"#;
        assert!(RangesFile::parse(ok.as_bytes()).is_ok());
        let v2 = ok.replace("\"version\":1", "\"version\":2");
        assert!(RangesFile::parse(v2.as_bytes()).unwrap_err().contains("version 2"));
        let bins = ok.replace("[1,1]", "[1]");
        assert!(RangesFile::parse(bins.as_bytes()).unwrap_err().contains("'x:0'"));
        assert!(RangesFile::parse(b"{").unwrap_err().contains("JSON"));
        // A range beyond float32 would become an infinite attribute: refused.
        let huge = ok.replace("\"max\":1,", "\"max\":1e300,");
        assert!(RangesFile::parse(huge.as_bytes()).unwrap_err().contains("not a finite range"));
        // Hostile counts do not overflow the percentile.
        let many = ok.replace("[1,1]", "[18446744073709551615,18446744073709551615]");
        let f = RangesFile::parse(many.as_bytes()).unwrap();
        let (lo, hi) = f.tensors["x:0"].pick(Calibration::Percentile(50.0));
        assert!(lo == 0.0 && hi > 0.0 && hi <= 1.0, "{lo} {hi}");
        assert!("percentile:0".parse::<Calibration>().is_err());
        assert_eq!("percentile:99.9".parse::<Calibration>(), Ok(Calibration::Percentile(99.9)));
    }
}
