//! The logic behind `tf-ckpt`: list, compare, slim, cast and merge checkpoints.
//!
//! Each subcommand is a function from open checkpoints and plain options to a report (and, for
//! the writers, a checkpoint written with [`write::write`](crate::write::write)); the binary
//! parses arguments and prints. Unchanged tensors are handed to the writer as ranges of the
//! input's data files, so their bytes are copied by the kernel.

mod diff;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use prost::Message;
use regex::Regex;
use serde::Serialize;
use tf_proto::tensorflow::TrackableObjectGraph;
use tf_tensor::{dt, dtype};

pub use diff::{diff, render_diff, DiffOptions, DiffReport, DiffRow};

use crate::write::{self, OutEntry, Payload, WriteOptions, Written};
use crate::{Checkpoint, CkptError, OBJECT_GRAPH_KEY};

/// What a checkpoint key holds, guessed from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A model variable (weights, biases, batch-norm statistics, embeddings ...).
    Weight,
    /// Optimizer state: slots (Adam's m and v, momentum ...), its step and hyperparameters.
    Optimizer,
    /// Step and save counters, metrics: training bookkeeping.
    Counter,
    /// The TF2 object graph.
    ObjectGraph,
}

/// Last path components TF1 optimizers give their slots and accumulators.
fn tf1_slot_re() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(^|/)(Adam|Adam_\d+|AdamW(_\d+)?|Momentum|RMSProp(_\d+)?|Adagrad|AdagradDA(_\d+)?|Adadelta(_\d+)?|Ftrl(_\d+)?|ProximalAdagrad|Nadam(_\d+)?|Adamax(_\d+)?|beta[12]_power(_\d+)?)$",
        )
        .expect("valid regex")
    })
}

/// Guesses what `key` holds (TF1 variable names and TF2 object paths).
pub fn classify(key: &str) -> Kind {
    if key == OBJECT_GRAPH_KEY {
        return Kind::ObjectGraph;
    }
    // TF2: `path/to/object/.ATTRIBUTES/VARIABLE_VALUE`, slots under `.OPTIMIZER_SLOT`.
    let path = key.split("/.ATTRIBUTES/").next().unwrap_or(key);
    if path.contains(".OPTIMIZER_SLOT") {
        return Kind::Optimizer;
    }
    let parts: Vec<&str> = path.split('/').collect();
    if parts.iter().any(|p| *p == "optimizer" || *p == "_optimizer") {
        return Kind::Optimizer;
    }
    if tf1_slot_re().is_match(path) {
        return Kind::Optimizer;
    }
    let last = parts.last().copied().unwrap_or_default();
    if matches!(last, "global_step" | "save_counter" | "_save_counter" | "iterations" | "step")
        || parts
            .iter()
            .any(|p| matches!(*p, "metrics" | "_metrics" | "_compile_metrics" | "_loss_tracker"))
    {
        return Kind::Counter;
    }
    Kind::Weight
}

/// The kind of every key of `c`. For a TF2 checkpoint the object graph decides between model
/// and optimizer: a variable reachable from the root without passing through an `optimizer`
/// edge belongs to the model, even when its key is an optimizer path (Keras 3 optimizers track
/// the model's variables, and a variable is stored under its shortest path,
/// `optimizer/_trainable_variables/0`); one reachable only through the optimizer (slots,
/// Keras 3's `optimizer/_variables/N`) is optimizer state.
pub fn kinds(c: &Checkpoint) -> Result<BTreeMap<String, Kind>, CkptError> {
    let mut out: BTreeMap<String, Kind> =
        c.entries().into_iter().map(|e| (e.key.clone(), classify(&e.key))).collect();
    let Some(g) = c.object_graph()? else { return Ok(out) };
    let n = g.nodes.len();
    let mut model = vec![false; n];
    let mut stack = Vec::new();
    if n > 0 {
        model[0] = true;
        stack.push(0usize);
    }
    while let Some(i) = stack.pop() {
        for ch in &g.nodes[i].children {
            if matches!(ch.local_name.as_str(), "optimizer" | "_optimizer") {
                continue;
            }
            if let Some(j) = usize::try_from(ch.node_id).ok().filter(|j| *j < n) {
                if !model[j] {
                    model[j] = true;
                    stack.push(j);
                }
            }
        }
    }
    for (i, node) in g.nodes.iter().enumerate() {
        for a in &node.attributes {
            let Some(k) = out.get_mut(&a.checkpoint_key) else { continue };
            *k = match (*k, model[i]) {
                (Kind::Optimizer, true) => Kind::Weight,
                (Kind::Weight, false) => Kind::Optimizer,
                (k, _) => k,
            };
        }
    }
    Ok(out)
}

/// One row of `tf-ckpt ls`.
#[derive(Debug, Clone, Serialize)]
pub struct LsRow {
    /// Key.
    pub key: String,
    /// dtype short name.
    pub dtype: String,
    /// Shape.
    pub shape: Vec<i64>,
    /// Bytes stored.
    pub bytes: u64,
    /// What it holds.
    pub kind: Kind,
    /// Slices of a partitioned variable (0 otherwise).
    pub slices: usize,
}

/// `tf-ckpt ls`.
#[derive(Debug, Clone, Serialize)]
pub struct LsReport {
    /// The checkpoint prefix.
    pub prefix: String,
    /// "V2" or "V1".
    pub format: &'static str,
    /// Data shards (V2) or files (V1).
    pub shards: i32,
    /// Tensors, by key.
    pub tensors: Vec<LsRow>,
    /// Bytes by kind.
    pub bytes_by_kind: BTreeMap<Kind, u64>,
    /// All tensor bytes.
    pub total_bytes: u64,
}

/// Lists a checkpoint.
pub fn ls(c: &Checkpoint) -> Result<LsReport, CkptError> {
    let kinds = kinds(c)?;
    let tensors: Vec<LsRow> = c
        .entries()
        .into_iter()
        .map(|e| LsRow {
            kind: kinds.get(&e.key).copied().unwrap_or(Kind::Weight),
            dtype: dtype::short_name(e.dtype),
            key: e.key,
            shape: e.shape,
            bytes: e.bytes,
            slices: e.slices,
        })
        .collect();
    let mut bytes_by_kind = BTreeMap::new();
    for t in &tensors {
        *bytes_by_kind.entry(t.kind).or_insert(0) += t.bytes;
    }
    Ok(LsReport {
        prefix: c.prefix().display().to_string(),
        format: if c.is_v1() { "V1" } else { "V2" },
        shards: c.header().num_shards.max(1),
        total_bytes: tensors.iter().map(|t| t.bytes).sum(),
        tensors,
        bytes_by_kind,
    })
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Weight => "weight",
        Kind::Optimizer => "optimizer",
        Kind::Counter => "counter",
        Kind::ObjectGraph => "object_graph",
    }
}

/// `ls` as text: one line per tensor (key, dtype, shape, bytes, kind), then totals.
pub fn render_ls(r: &LsReport) -> String {
    let width = r.tensors.iter().map(|t| t.key.chars().count()).max().unwrap_or(0).min(80);
    let mut out = String::new();
    for t in &r.tensors {
        let shape = tf_tensor::dims_to_string(&t.shape);
        let sliced = if t.slices > 0 { format!(" ({} slices)", t.slices) } else { String::new() };
        out.push_str(&format!(
            "{:<width$}  {:<8} {:<16} {:>12}  {}{}\n",
            t.key,
            t.dtype,
            shape,
            t.bytes,
            kind_name(t.kind),
            sliced
        ));
    }
    let kinds: Vec<String> =
        r.bytes_by_kind.iter().map(|(k, b)| format!("{} {b}", kind_name(*k))).collect();
    out.push_str(&format!(
        "{} tensors, {} bytes ({}); {} checkpoint, {} shard(s)\n",
        r.tensors.len(),
        r.total_bytes,
        kinds.join(", "),
        r.format,
        r.shards
    ));
    out
}

/// Which tensors `slim` keeps.
#[derive(Debug, Clone, Default)]
pub struct SlimOptions {
    /// Keep keys matching this, whatever their kind.
    pub keep: Option<Regex>,
    /// Drop keys matching this (applied after `keep`).
    pub drop: Option<Regex>,
    /// Keep exactly these variables (the checkpoint keys a model reads): a key is kept when it
    /// is one of them or ends with `/` and one of them (a training checkpoint's object paths
    /// start one level above the model's).
    pub keep_only: Option<BTreeSet<String>>,
}

/// What a writing subcommand did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WriteReport {
    /// Keys written.
    pub kept: Vec<String>,
    /// Keys left out.
    pub dropped: Vec<String>,
    /// Keys whose dtype changed (cast).
    pub cast: Vec<String>,
    /// Tensor bytes of the input(s).
    pub input_bytes: u64,
    /// Things the user should know.
    pub warnings: Vec<String>,
    /// What was written.
    pub written: Written,
}

fn keep_only_matches(set: &BTreeSet<String>, key: &str) -> bool {
    set.contains(key)
        || set.iter().any(|s| {
            key.len() > s.len()
                && key.ends_with(s.as_str())
                && key.as_bytes()[key.len() - s.len() - 1] == b'/'
        })
}

/// The object graph of `c` with every attribute whose key is not in `kept` removed, and the
/// optimizer slot references to objects left with no attribute, as its entry to write.
fn rewrite_object_graph(
    c: &Checkpoint,
    kept: &BTreeSet<String>,
) -> Result<Option<OutEntry>, CkptError> {
    let Some(mut g) = c.object_graph()? else { return Ok(None) };
    let mut empty = vec![false; g.nodes.len()];
    for (i, n) in g.nodes.iter_mut().enumerate() {
        let had = !n.attributes.is_empty();
        n.attributes.retain(|a| kept.contains(&a.checkpoint_key));
        empty[i] = had && n.attributes.is_empty();
    }
    for n in &mut g.nodes {
        n.slot_variables.retain(|s| {
            !usize::try_from(s.slot_variable_node_id)
                .ok()
                .and_then(|i| empty.get(i))
                .copied()
                .unwrap_or(false)
        });
    }
    Ok(Some(object_graph_entry(&g)))
}

fn object_graph_entry(g: &TrackableObjectGraph) -> OutEntry {
    OutEntry {
        key: OBJECT_GRAPH_KEY.as_bytes().to_vec(),
        dtype: dt::STRING,
        shape: Vec::new(),
        slices: Vec::new(),
        payload: Payload::Strings(vec![g.encode_to_vec()]),
    }
}

/// `tf-ckpt slim`: writes the tensors of `c` that inference needs to `out`. By default
/// weights are kept and optimizer state and counters dropped; the TF2 object graph is kept,
/// rewritten to name only what was kept.
pub fn slim(
    c: &Checkpoint,
    opts: &SlimOptions,
    out: &Path,
    w: &WriteOptions,
) -> Result<WriteReport, CkptError> {
    let mut report = WriteReport::default();
    let mut kept = BTreeSet::new();
    let kinds = kinds(c)?;
    for e in c.entries() {
        report.input_bytes += e.bytes;
        if e.key == OBJECT_GRAPH_KEY {
            continue;
        }
        let mut keep = match &opts.keep_only {
            Some(set) => keep_only_matches(set, &e.key),
            None => kinds.get(&e.key) == Some(&Kind::Weight),
        };
        if opts.keep.as_ref().is_some_and(|r| r.is_match(&e.key)) {
            keep = true;
        }
        if opts.drop.as_ref().is_some_and(|r| r.is_match(&e.key)) {
            keep = false;
        }
        if keep {
            kept.insert(e.key);
        } else {
            report.dropped.push(e.key);
        }
    }
    let mut entries = Vec::new();
    for k in &kept {
        entries.extend(c.payload_entries(k)?);
    }
    if let Some(g) = rewrite_object_graph(c, &kept)? {
        entries.push(g);
        kept.insert(OBJECT_GRAPH_KEY.to_string());
    }
    report.kept = kept.into_iter().collect();
    report.written = write::write(out, entries, w)?;
    Ok(report)
}

/// What `cast` converts float32 variables to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CastTo {
    /// IEEE half precision.
    Float16,
    /// bfloat16.
    Bfloat16,
}

impl CastTo {
    fn dtype(self) -> i32 {
        match self {
            CastTo::Float16 => dt::HALF,
            CastTo::Bfloat16 => dt::BFLOAT16,
        }
    }
}

/// Options of `cast`.
#[derive(Debug, Clone)]
pub struct CastOptions {
    /// The new dtype.
    pub to: CastTo,
    /// float32 keys to leave alone.
    pub exclude: Option<Regex>,
}

/// Converts float32 bytes (little-endian) to the target's, rounding to nearest even as
/// TensorFlow's Cast does; NaN stays NaN.
fn cast_bytes(src: &[u8], to: CastTo) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len() / 2);
    for c in src.chunks_exact(4) {
        let x = f32::from_le_bytes(c.try_into().expect("4 bytes"));
        let b = match to {
            CastTo::Float16 => half::f16::from_f32(x).to_bits(),
            CastTo::Bfloat16 => half::bf16::from_f32(x).to_bits(),
        };
        out.extend_from_slice(&b.to_le_bytes());
    }
    out
}

fn payload_bytes(p: &Payload) -> Result<bytes::Bytes, CkptError> {
    match p {
        Payload::Raw(b) => Ok(b.clone()),
        Payload::FileRange { path, offset, len, .. } => {
            use std::os::unix::fs::FileExt;
            let err = |source| CkptError::Io { path: path.display().to_string(), source };
            let f = std::fs::File::open(path).map_err(err)?;
            // The range was checked against the file's size when it was verified.
            let mut b = vec![0u8; usize::try_from(*len).unwrap_or(0)];
            f.read_exact_at(&mut b, *offset).map_err(err)?;
            Ok(b.into())
        }
        _ => Ok(bytes::Bytes::new()),
    }
}

/// `tf-ckpt cast`: every float32 tensor (except `exclude`) stored as float16 or bfloat16; the
/// rest copied unchanged.
pub fn cast(
    c: &Checkpoint,
    opts: &CastOptions,
    out: &Path,
    w: &WriteOptions,
) -> Result<WriteReport, CkptError> {
    let mut report = WriteReport::default();
    let mut entries = Vec::new();
    for e in c.entries() {
        report.input_bytes += e.bytes;
        let mut convert =
            e.dtype == dt::FLOAT && !opts.exclude.as_ref().is_some_and(|r| r.is_match(&e.key));
        if convert && e.slices > 0 && opts.to == CastTo::Float16 {
            // TensorFlow reads slices of float16 tensors with no kernel ("Dtype half not
            // supported"): a partitioned variable stays float32.
            report.warnings.push(format!(
                "'{}' is partitioned: left float32 (TensorFlow cannot read float16 slices)",
                e.key
            ));
            convert = false;
        }
        let mut parts = c.payload_entries(&e.key)?;
        if convert {
            for p in &mut parts {
                p.dtype = opts.to.dtype();
                if !matches!(p.payload, Payload::Empty) {
                    let raw = payload_bytes(&p.payload)?;
                    p.payload = Payload::Raw(cast_bytes(&raw, opts.to).into());
                }
            }
            report.cast.push(e.key.clone());
        }
        report.kept.push(e.key);
        entries.extend(parts);
    }
    report.written = write::write(out, entries, w)?;
    Ok(report)
}

/// `tf-ckpt merge`: the tensors of several checkpoints in one (e.g. the shards of a
/// distributed save, or one checkpoint re-sharded). A key in two inputs is an error, except the
/// TF2 object graph, which must then be the same in all.
pub fn merge(
    inputs: &[Checkpoint],
    out: &Path,
    w: &WriteOptions,
) -> Result<WriteReport, CkptError> {
    let mut report = WriteReport::default();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut graph: Option<Vec<u8>> = None;
    let mut entries = Vec::new();
    for c in inputs {
        let from = c.prefix().display().to_string();
        for e in c.entries() {
            report.input_bytes += e.bytes;
            if e.key == OBJECT_GRAPH_KEY {
                let g = c.object_graph()?.map(|g| g.encode_to_vec()).unwrap_or_default();
                match &graph {
                    Some(prev) if *prev != g => {
                        return Err(CkptError::Tensor {
                            path: from,
                            key: e.key,
                            msg: "the TF2 object graphs of the inputs differ; merge checkpoints of one object graph only".into(),
                        })
                    }
                    Some(_) => continue,
                    None => graph = Some(g),
                }
            }
            if let Some(first) = seen.insert(e.key.clone(), from.clone()) {
                if e.key != OBJECT_GRAPH_KEY {
                    return Err(CkptError::Tensor {
                        path: from,
                        key: e.key,
                        msg: format!(
                            "also in {first}; inputs to merge must hold different tensors"
                        ),
                    });
                }
            }
            report.kept.push(e.key.clone());
            entries.extend(c.payload_entries(&e.key)?);
        }
    }
    report.written = write::write(out, entries, w)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_classified() {
        for (k, want) in [
            ("dense/kernel", Kind::Weight),
            ("dense/kernel/Adam", Kind::Optimizer),
            ("dense/kernel/Adam_1", Kind::Optimizer),
            ("beta1_power", Kind::Optimizer),
            ("global_step", Kind::Counter),
            ("save_counter/.ATTRIBUTES/VARIABLE_VALUE", Kind::Counter),
            ("optimizer/iter/.ATTRIBUTES/VARIABLE_VALUE", Kind::Optimizer),
            (
                "model/layer-1/kernel/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE",
                Kind::Optimizer,
            ),
            ("model/layer-1/kernel/.ATTRIBUTES/VARIABLE_VALUE", Kind::Weight),
            ("_CHECKPOINTABLE_OBJECT_GRAPH", Kind::ObjectGraph),
            ("bn/moving_mean", Kind::Weight),
            ("model/keras_api/metrics/0/total/.ATTRIBUTES/VARIABLE_VALUE", Kind::Counter),
        ] {
            assert_eq!(classify(k), want, "{k}");
        }
    }

    #[test]
    fn float16_and_bfloat16_round_to_nearest_even() {
        let src: Vec<u8> = [1.0f32, 65520.0, f32::NAN, 1.0 + 1.0 / 256.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let h = cast_bytes(&src, CastTo::Float16);
        assert_eq!(&h[0..2], &0x3c00u16.to_le_bytes());
        assert_eq!(&h[2..4], &0x7c00u16.to_le_bytes(), "overflow to inf");
        let b = cast_bytes(&src, CastTo::Bfloat16);
        assert_eq!(&b[6..8], &0x3f80u16.to_le_bytes(), "ties to even");
    }
}
