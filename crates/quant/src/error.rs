//! Why quantization failed; every message names the flag, node or field at fault.

use tf_graph::GraphError;
use tf_tensor::TensorError;

/// A quantization failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QuantError {
    /// The MODE argument is not a mode.
    #[error("unknown mode '{0}' (expected int8, uint8, float16, bfloat16, round or round:N)")]
    UnknownMode(String),
    /// `round:N` with N not a number in 1..=2^24.
    #[error("round:{0}: the number of steps must be an integer from 1 to 16777216")]
    RoundSteps(String),
    /// `--encoding` is not an encoding.
    #[error("--encoding '{0}': expected cast-mul or dequantize")]
    UnknownEncoding(String),
    /// An int8-only flag with another mode.
    #[error("{flag} applies to int8 only, not {mode}")]
    Int8Only {
        /// The flag.
        flag: &'static str,
        /// The mode given.
        mode: String,
    },
    /// An `--include`/`--exclude` pattern that does not compile.
    #[error("{flag} '{pattern}': not a valid regular expression: {why}")]
    BadRegex {
        /// The flag.
        flag: &'static str,
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        why: String,
    },
    /// The input is not a valid graph (duplicate or empty names).
    #[error("{0}")]
    Graph(#[from] GraphError),
    /// A weight's value could not be decoded.
    #[error("node '{node}' (Const): {source}")]
    Tensor {
        /// The Const.
        node: String,
        /// What is wrong with its value.
        source: TensorError,
    },
    /// The ranges file lacks a tensor, or `--activations` does not fit the other flags.
    #[error("{file}: {why}")]
    Ranges {
        /// The ranges file.
        file: String,
        /// What is wrong.
        why: String,
    },
    /// Quantizing produced a graph TensorFlow would reject (a bug).
    #[error("internal error: the quantized graph is invalid: {0}")]
    InvalidResult(GraphError),
}
