//! What to quantize and how: the validated form of tf-quant's arguments.

use std::fmt;
use std::str::FromStr;

use regex::Regex;

use crate::QuantError;

/// The number format weights are stored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Symmetric int8, narrow range (±127), scale = max|w| / 127 per output channel (or per
    /// tensor); TFLite's dynamic-range weight format.
    Int8,
    /// The Graph Transform Tool's `quantize_weights`: quint8, MIN_FIRST, per tensor, range
    /// always containing 0.
    Uint8,
    /// IEEE half precision, cast back to float at run time.
    Float16,
    /// bfloat16 (float32's exponent, 8 bits of mantissa), cast back to float at run time.
    Bfloat16,
    /// The Graph Transform Tool's `round_weights(num_steps=N)`: values snapped to the centres
    /// of N equal buckets between the tensor's min and max; stays float, compresses well.
    Round(u32),
}

impl Mode {
    /// The mode's spelling on the command line.
    pub fn name(&self) -> String {
        match self {
            Mode::Int8 => "int8".into(),
            Mode::Uint8 => "uint8".into(),
            Mode::Float16 => "float16".into(),
            Mode::Bfloat16 => "bfloat16".into(),
            Mode::Round(n) => format!("round:{n}"),
        }
    }

    /// Whether `s` spells a mode (used to tell a mode from an input path).
    pub fn is_mode_name(s: &str) -> bool {
        s.parse::<Mode>().is_ok()
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl FromStr for Mode {
    type Err = QuantError;

    /// `int8`, `uint8`, `float16` (`fp16`, `half`), `bfloat16` (`bf16`), `round` (256 steps)
    /// or `round:N` with 1 ≤ N ≤ 2^24.
    fn from_str(s: &str) -> Result<Mode, QuantError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "int8" | "qint8" => Ok(Mode::Int8),
            "uint8" | "quint8" => Ok(Mode::Uint8),
            "float16" | "fp16" | "half" => Ok(Mode::Float16),
            "bfloat16" | "bf16" => Ok(Mode::Bfloat16),
            "round" => Ok(Mode::Round(256)),
            other => match other.strip_prefix("round:") {
                Some(n) => match n.parse::<u32>() {
                    Ok(n) if (1..=1 << 24).contains(&n) => Ok(Mode::Round(n)),
                    _ => Err(QuantError::RoundSteps(n.to_string())),
                },
                None => Err(QuantError::UnknownMode(s.to_string())),
            },
        }
    }
}

/// How int8 weights are turned back into float in the graph.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Encoding {
    /// `Const(DT_INT8) → Cast(INT8→FLOAT) → Mul(·, Const scale)`: runs on CPU, GPU and under
    /// XLA.
    #[default]
    CastMul,
    /// `Const(DT_QINT8) + min/max Consts → Dequantize(SCALED, narrow_range, axis)`: TFLite's
    /// exact parameters, one op; CPU only, not XLA-compilable.
    Dequantize,
}

impl Encoding {
    /// The encoding's spelling on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Encoding::CastMul => "cast-mul",
            Encoding::Dequantize => "dequantize",
        }
    }
}

impl FromStr for Encoding {
    type Err = QuantError;

    fn from_str(s: &str) -> Result<Encoding, QuantError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cast-mul" | "cast" | "castmul" | "mul" => Ok(Encoding::CastMul),
            "dequantize" => Ok(Encoding::Dequantize),
            _ => Err(QuantError::UnknownEncoding(s.to_string())),
        }
    }
}

/// Everything tf-quant can be asked to do. `Default` is `tf-quant int8`.
#[derive(Debug, Clone)]
pub struct QuantConfig {
    /// The number format.
    pub mode: Mode,
    /// int8 only: one scale per tensor instead of per output channel (`--per-tensor`).
    pub per_tensor: bool,
    /// int8 only: how the weights are dequantized in the graph (`--encoding`).
    pub encoding: Encoding,
    /// Tensors with fewer elements stay float (`--min-elements`, default 1024 as TFLite and
    /// the Graph Transform Tool).
    pub min_elements: u64,
    /// If not empty, only weights whose node name matches one of these are quantized
    /// (`--include`, unanchored search).
    pub include: Vec<Regex>,
    /// Weights whose node name matches one of these stay float (`--exclude`).
    pub exclude: Vec<Regex>,
    /// Worker threads for the numeric work; 0 means one per available core.
    pub threads: usize,
    /// `--activations`: rewrite into int8 kernels with these activation ranges.
    pub activations: Option<crate::activations::Activations>,
}

impl Default for QuantConfig {
    fn default() -> QuantConfig {
        QuantConfig {
            mode: Mode::Int8,
            per_tensor: false,
            encoding: Encoding::CastMul,
            min_elements: 1024,
            include: Vec::new(),
            exclude: Vec::new(),
            threads: 0,
            activations: None,
        }
    }
}

impl QuantConfig {
    /// Rejects flags that do not apply to the mode (`--per-tensor` and `--encoding` are
    /// int8's).
    pub fn validate(&self) -> Result<(), QuantError> {
        if let Some(a) = &self.activations {
            let clash = if self.mode != Mode::Int8 {
                Some(format!("--activations applies to int8 only, not {}", self.mode))
            } else if self.per_tensor {
                Some("--activations takes no --per-tensor (weights are per channel)".to_string())
            } else if self.encoding != Encoding::CastMul {
                Some(
                    "--activations takes no --encoding (weights feed the int8 kernels)".to_string(),
                )
            } else {
                None
            };
            if let Some(why) = clash {
                return Err(QuantError::Ranges { file: a.file.clone(), why });
            }
        }
        if self.mode != Mode::Int8 {
            if self.per_tensor {
                return Err(QuantError::Int8Only { flag: "--per-tensor", mode: self.mode.name() });
            }
            if self.encoding != Encoding::CastMul {
                return Err(QuantError::Int8Only { flag: "--encoding", mode: self.mode.name() });
            }
        }
        Ok(())
    }

    /// Whether a weight's node name passes `--include` and `--exclude`; `Err` names the
    /// reason it does not.
    pub(crate) fn name_filter(&self, name: &str) -> Result<(), crate::report::SkipReason> {
        use crate::report::SkipReason;
        if !self.include.is_empty() && !self.include.iter().any(|r| r.is_match(name)) {
            return Err(SkipReason::NotIncluded);
        }
        if let Some(r) = self.exclude.iter().find(|r| r.is_match(name)) {
            return Err(SkipReason::Excluded(r.as_str().to_string()));
        }
        Ok(())
    }
}

/// Compiles `--include`/`--exclude` patterns; a pattern that does not compile is an error
/// naming the flag, the pattern and what is wrong, on one line.
pub fn compile_patterns(flag: &'static str, patterns: &[String]) -> Result<Vec<Regex>, QuantError> {
    patterns
        .iter()
        .map(|p| {
            Regex::new(p).map_err(|e| {
                // regex's messages span several lines (the pattern, a caret, the error); the
                // last line says what is wrong.
                let text = e.to_string();
                let why = text
                    .lines()
                    .rev()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .unwrap_or("invalid")
                    .trim_start_matches("error: ")
                    .to_string();
                QuantError::BadRegex { flag, pattern: p.clone(), why }
            })
        })
        .collect()
}
