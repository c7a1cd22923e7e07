//! Integration tests of the tf-* binaries and the I/O layer on fixtures made by real
//! TensorFlow 2.21 (see `tests/fixtures/README.md`). The tier that runs TensorFlow itself is in
//! `tests/tf/` (pytest) and `crates/run/tests/`.

mod ckpt;
mod convert;
mod freeze;
mod fuzz_smoke;
mod hostile;
mod inspect;
mod output;
mod pipes;
mod robustness;
mod roundtrip;
mod snapshot;
mod util;
