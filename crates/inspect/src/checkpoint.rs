//! What tf-inspect shows of a checkpoint: its tensors, without reading their data.

use std::fmt::Write;

use serde::Serialize;
use tf_ckpt::Checkpoint;
use tf_tensor::{dims_to_string, dtype};

/// One tensor of a checkpoint.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointTensor {
    /// Key.
    pub key: String,
    /// dtype short name.
    pub dtype: String,
    /// Shape.
    pub shape: Vec<i64>,
    /// Bytes stored.
    pub bytes: u64,
    /// Number of slices of a partitioned variable (0 otherwise).
    pub slices: usize,
}

/// A checkpoint's contents.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointSummary {
    /// The prefix.
    pub prefix: String,
    /// Number of data shards.
    pub shards: i32,
    /// Whether it is a TF2 object-based checkpoint.
    pub object_based: bool,
    /// The format: "V2" (tensor bundle) or "V1" (tensor slices, one table per shard).
    pub format: &'static str,
    /// Every tensor, sorted by key.
    pub tensors: Vec<CheckpointTensor>,
    /// Total bytes stored.
    pub bytes: u64,
}

/// Lists a checkpoint's tensors.
pub fn summarize_checkpoint(c: &Checkpoint) -> CheckpointSummary {
    let tensors: Vec<CheckpointTensor> = c
        .entries()
        .into_iter()
        .map(|e| CheckpointTensor {
            key: e.key,
            dtype: dtype::short_name(e.dtype),
            shape: e.shape,
            bytes: e.bytes,
            slices: e.slices,
        })
        .collect();
    CheckpointSummary {
        prefix: c.prefix().display().to_string(),
        shards: c.header().num_shards,
        object_based: c.contains(tf_ckpt::OBJECT_GRAPH_KEY),
        format: if c.is_v1() { "V1" } else { "V2" },
        bytes: tensors.iter().fold(0u64, |a, t| a.saturating_add(t.bytes)),
        tensors,
    }
}

/// Renders a checkpoint summary as text.
pub fn render_checkpoint(s: &CheckpointSummary) -> String {
    let mut o = String::new();
    let kind = if s.object_based { "object-based (TF2)" } else { "name-based (TF1)" };
    let _ = writeln!(
        o,
        "{}: {} checkpoint, {kind}, {} shard(s), {} tensors, {} bytes",
        s.prefix,
        s.format,
        s.shards,
        s.tensors.len(),
        s.bytes
    );
    let width = s.tensors.iter().map(|t| t.key.len()).max().unwrap_or(0).min(72);
    for t in &s.tensors {
        let part = if t.slices > 0 { format!(" ({} slices)", t.slices) } else { String::new() };
        let _ = writeln!(
            o,
            "  {:<width$}  {:<8} {:<16} {:>10}{part}",
            t.key,
            t.dtype,
            dims_to_string(&t.shape),
            t.bytes
        );
    }
    o
}
