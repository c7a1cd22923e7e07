//! What quantization did, tensor by tensor: written under `changes.quant` by `--report`.

use serde::Serialize;

/// One quantized weight.
#[derive(Debug, Clone, Serialize)]
pub struct TensorReport {
    /// The weight's node name (now the name of the node that dequantizes it).
    pub name: String,
    /// The ops that read it as a weight: `Conv2D input 1 of 'conv1/Conv2D'`.
    pub read_by: Vec<String>,
    /// Its shape.
    pub shape: Vec<i64>,
    /// The output-channel axes that got their own scale; empty for one scale per tensor.
    /// Absent for modes without scales (float16, bfloat16, round).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub axis: Option<Vec<usize>>,
    /// Number of scales (1 per tensor).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scales: Option<usize>,
    /// Element count.
    pub elements: u64,
    /// Payload bytes before (4 per element).
    pub bytes_before: u64,
    /// Payload bytes after: quantized values plus scales or ranges.
    pub bytes_after: u64,
    /// max |w − ŵ| over the tensor, ŵ being what the graph computes.
    pub max_abs_error: f64,
    /// 10·log10(Σw² / Σ(w − ŵ)²); `null` when the error is zero.
    pub snr_db: Option<f64>,
    /// The nodes that now stand for the weight, the last one carrying its name.
    pub nodes: Vec<String>,
    /// Why the scale is per tensor although the mode is per channel, if it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Why a constant was left as it was.
#[derive(Debug, Clone, PartialEq)]
pub enum SkipReason {
    /// Not read as a weight (a bias, batch-norm parameter, shape, ...).
    NotAWeight(String),
    /// Fewer elements than `--min-elements`.
    TooSmall(u64),
    /// No `--include` pattern matches.
    NotIncluded,
    /// An `--exclude` pattern matches.
    Excluded(String),
    /// A NaN or infinite value.
    NotFinite,
    /// Values beyond float16's range (±65504).
    HalfOverflow(f32),
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::NotAWeight(why) => write!(f, "not a weight: {why}"),
            SkipReason::TooSmall(min) => write!(f, "fewer than {min} elements (--min-elements)"),
            SkipReason::NotIncluded => write!(f, "matches no --include pattern"),
            SkipReason::Excluded(p) => write!(f, "matches --exclude '{p}'"),
            SkipReason::NotFinite => write!(f, "holds NaN or infinite values"),
            SkipReason::HalfOverflow(m) => {
                write!(f, "max |w| = {m} exceeds float16's largest value 65504")
            }
        }
    }
}

/// A float constant left alone, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    /// The Const's name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<i64>,
    /// Why it stays float.
    pub why: String,
}

/// Sums over the quantized tensors.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    /// Tensors quantized.
    pub tensors: usize,
    /// Their elements.
    pub elements: u64,
    /// Their payload bytes before.
    pub bytes_before: u64,
    /// Their payload bytes after.
    pub bytes_after: u64,
    /// bytes_after / bytes_before.
    pub ratio: f64,
    /// The largest max_abs_error.
    pub max_abs_error: f64,
    /// SNR over all quantized elements together; `null` when the error is zero.
    pub snr_db: Option<f64>,
    /// Float constants left alone.
    pub skipped: usize,
}

/// The report of one run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QuantReport {
    /// `int8`, `uint8`, `float16`, `bfloat16` or `round:N`.
    pub mode: String,
    /// int8: `per_channel` or `per_tensor`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub granularity: Option<String>,
    /// int8: `cast-mul` or `dequantize`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// `--min-elements`.
    pub min_elements: u64,
    /// Every quantized tensor, in graph order.
    pub tensors: Vec<TensorReport>,
    /// Weights left float (too small, excluded, not finite) and large float constants that
    /// are not weights, with the reason.
    pub skipped: Vec<Skipped>,
    /// Sums.
    pub totals: Totals,
    /// `--activations`: the int8 kernels, region boundaries and what stayed float.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activations: Option<crate::activations::ActivationReport>,
    /// Warnings (also printed by the tool).
    #[serde(skip)]
    pub warnings: Vec<String>,
}
