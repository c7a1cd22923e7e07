//! tf-run: execute TensorFlow GraphDefs through the real TensorFlow C runtime.
//!
//! This crate is the verification side of the toolbox: the other tools rewrite GraphDefs without
//! TensorFlow; `tf-run` runs a graph on given or seeded-random inputs, and `tf-diff` runs two
//! graphs on the same inputs and compares their outputs.
//!
//! - [`tf`]: a small safe wrapper over the C API (import, session, run, tensors; RAII for every
//!   C object, TF status mapped to [`Error::Tf`] with TensorFlow's message).
//! - [`graph`]: loading graphs ([`graph::load_graph_def`], through tf-io, is the one place that
//!   reads files), placeholders and candidate outputs.
//! - [`npy`]: NPY/NPZ input and output.
//! - [`random`]: seeded random inputs.
//! - [`compare`]: output comparison metrics and the report table.
//! - [`cli`]: the logic of the two binaries.
//!
//! Linking needs libtensorflow; see `docs/tools/tf-run.md` and `scripts/setup_tflib.sh`.

pub mod calibrate;
pub mod cli;
pub mod compare;
pub mod dtype;
pub mod error;
pub mod fold_eval;
pub mod graph;
pub mod npy;
pub mod random;
pub mod tensor;
pub mod tf;

pub use dtype::DType;
pub use error::{Error, Result};
pub use tensor::{Data, HostTensor};
pub use tf::Model;
