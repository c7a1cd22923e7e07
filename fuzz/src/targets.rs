//! The fuzz targets, shared by the libFuzzer binaries (`fuzz/fuzz_targets/`) and the seeded
//! smoke test on stable (`tests/fuzz_smoke.rs`).
//!
//! Each target takes one input and runs it through the libraries the way the tool would:
//! decode → pass → encode → decode. A clean `Err` is a correct answer to a bad input; a panic,
//! or output the tools cannot read back, is a bug (the latter is turned into a panic here, with
//! the reason). Seeds come from `tests/fixtures` ([`seeds`]); inputs are mutated by
//! [`mutate`](super::mutate) according to their [`Input`] kind.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bytes::Bytes;
use prost::Message;
use tf_io::{Encoding, Loaded, MessageKind, ReadOptions};
use tf_proto::tensorflow::GraphDef;

use super::mutate::{self, Profile, Rng};

/// What a target's input is, and therefore which mutator applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// A binary GraphDef, MetaGraphDef or SavedModel.
    Binary,
    /// The same in text format.
    Text,
    /// A packed checkpoint ([`mutate::pack_checkpoint`]).
    Checkpoint,
    /// A `saved_model.pb`, a TF1 `.meta` or a GraphDef, frozen against the fixture checkpoint it
    /// matches.
    Freeze,
}

/// A fuzz target.
pub struct Target {
    /// Its name (the libFuzzer binary is `fuzz_targets/<name>.rs`).
    pub name: &'static str,
    /// Its input kind.
    pub input: Input,
    /// Runs one input: true if the library accepted it (a result, not an error); panics on a
    /// bug.
    pub run: fn(&[u8]) -> bool,
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target { name: "graphdef", input: Input::Binary, run: graphdef },
    Target { name: "pbtxt", input: Input::Text, run: pbtxt },
    Target { name: "savedmodel", input: Input::Binary, run: savedmodel },
    Target { name: "checkpoint", input: Input::Checkpoint, run: checkpoint },
    Target { name: "strip", input: Input::Binary, run: strip },
    Target { name: "fold", input: Input::Binary, run: fold },
    Target { name: "quant", input: Input::Binary, run: quant },
    Target { name: "prune", input: Input::Binary, run: prune },
    Target { name: "xla", input: Input::Binary, run: xla },
    Target { name: "freeze", input: Input::Freeze, run: freeze },
    Target { name: "inspect", input: Input::Binary, run: inspect },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// One structure-aware mutation of `data` for `input`; `None` if `data` does not decode.
pub fn mutate(input: Input, data: &[u8], rng: &mut Rng, p: Profile) -> Option<Vec<u8>> {
    match input {
        Input::Binary | Input::Freeze => mutate::mutate_model(data, rng, p),
        Input::Text => mutate::mutate_pbtxt(data, rng, p),
        Input::Checkpoint => mutate::mutate_checkpoint(data, rng, p),
    }
}

/// `tests/fixtures`, from the root package or from `fuzz/`.
pub fn fixtures() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    [here.join("tests/fixtures"), here.join("../tests/fixtures")]
        .into_iter()
        .find(|p| p.is_dir())
        .expect("tests/fixtures not found")
}

const BINARY_SEEDS: &[&str] = &[
    "control_flow/v1_graph.pb",
    "dtypes/graph.pb",
    "dtypes/attrs.pb",
    "tf1_partitioned/graph.pb",
    "keras_cnn_savedmodel/frozen.pb",
    "control_flow/v1_model.ckpt.meta",
    "tf1_partitioned/model.ckpt.meta",
    "keras_mha_savedmodel/frozen.pb",
    "keras_seq_savedmodel/frozen.pb",
    "control_flow/saved_model/saved_model.pb",
    "tf1_cnn_train/graph.pb",
    "tf1_cnn_train/model.ckpt.meta",
    "keras_cnn_savedmodel/saved_model/saved_model.pb",
    "keras_mha_savedmodel/saved_model/saved_model.pb",
    "keras_seq_savedmodel/saved_model/saved_model.pb",
];

const CHECKPOINTS: &[&str] = &[
    "control_flow/v1_model.ckpt",
    "tf1_partitioned/model.ckpt",
    "control_flow/saved_model/variables/variables",
    "keras_cnn_savedmodel/saved_model/variables/variables",
    "keras_mha_savedmodel/saved_model/variables/variables",
    "keras_seq_savedmodel/saved_model/variables/variables",
    "tf1_cnn_train/model.ckpt",
];

/// Models tf-freeze can take: (graph file, checkpoint prefix), relative to the fixtures.
const FREEZABLE: &[(&str, &str)] = &[
    ("control_flow/saved_model/saved_model.pb", "control_flow/saved_model/variables/variables"),
    ("control_flow/v1_model.ckpt.meta", "control_flow/v1_model.ckpt"),
    ("tf1_partitioned/model.ckpt.meta", "tf1_partitioned/model.ckpt"),
    (
        "keras_cnn_savedmodel/saved_model/saved_model.pb",
        "keras_cnn_savedmodel/saved_model/variables/variables",
    ),
    (
        "keras_mha_savedmodel/saved_model/saved_model.pb",
        "keras_mha_savedmodel/saved_model/variables/variables",
    ),
    ("tf1_cnn_train/model.ckpt.meta", "tf1_cnn_train/model.ckpt"),
    (
        "keras_seq_savedmodel/saved_model/saved_model.pb",
        "keras_seq_savedmodel/saved_model/variables/variables",
    ),
];

fn read(rel: &str) -> Vec<u8> {
    let p = fixtures().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn packed_checkpoint(prefix: &str) -> Vec<u8> {
    mutate::pack_checkpoint(
        &read(&format!("{prefix}.index")),
        &read(&format!("{prefix}.data-00000-of-00001")),
    )
}

/// Seed inputs for `input` made from the fixtures, smallest first, each at most `max_bytes`:
/// (a name for the file, the bytes).
pub fn seeds(input: Input, max_bytes: usize) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = match input {
        Input::Binary => BINARY_SEEDS.iter().map(|f| (f.replace('/', "_"), read(f))).collect(),
        Input::Text => {
            let mut v =
                vec![("tf1_cnn_train_graph.pbtxt".to_string(), read("tf1_cnn_train/graph.pbtxt"))];
            for f in BINARY_SEEDS {
                if let Some(m) = mutate::decode_model(&read(f)) {
                    if let Some(t) = m.to_text() {
                        v.push((format!("{}.pbtxt", f.replace('/', "_")), t.into_bytes()));
                    }
                }
            }
            v
        }
        Input::Checkpoint => {
            CHECKPOINTS.iter().map(|c| (c.replace('/', "_"), packed_checkpoint(c))).collect()
        }
        Input::Freeze => FREEZABLE.iter().map(|(g, _)| (g.replace('/', "_"), read(g))).collect(),
    };
    out.retain(|(_, b)| b.len() <= max_bytes);
    out.sort_by_key(|(_, b)| b.len());
    out
}

// ---- helpers ------------------------------------------------------------------------------------

fn load(data: &[u8]) -> Option<Loaded> {
    tf_io::read_bytes(Bytes::copy_from_slice(data), "<fuzz>", None, &ReadOptions::default()).ok()
}

/// Whether a target other than `graphdef` and `pbtxt` checks the text form of its output too: for
/// one input in eight (by length). Printing and parsing text cost a third of an execution, and
/// `graphdef`/`pbtxt` check them on every input of the same kinds.
fn also_text(data: &[u8]) -> bool {
    data.len() % 8 == 0
}

/// What a tool writes must be readable by the next tool in the pipeline, as the same graph:
/// encode, read back (no hint, as from stdin), encode again, same bytes. With `text`, the text
/// form too: printed, parsed, the same graph.
fn check_output(what: &str, g: &GraphDef, sources: &[Bytes], text: bool) {
    let Ok(enc) = tf_io::encode_graph(g, Encoding::Binary, sources) else {
        return; // Too large for protobuf: refused cleanly.
    };
    let bytes = enc.to_vec();
    let plain = g.encode_to_vec();
    if bytes.is_empty() {
        assert!(plain.is_empty(), "{what}: an empty output for a non-empty graph");
        return;
    }
    match tf_io::read_bytes(bytes.clone().into(), "<out>", None, &ReadOptions::default()) {
        Ok(back) => {
            assert_eq!(
                back.kind,
                MessageKind::GraphDef,
                "{what}: output read back as {:?}",
                back.kind
            );
            assert!(
                back.graph.encode_to_vec() == plain,
                "{what}: output read back is a different graph"
            );
        }
        Err(e) => panic!("{what}: output cannot be read back: {e}"),
    }
    if !text {
        return;
    }
    if let Ok(text) = tf_io::encode_graph(g, Encoding::Text, &[]) {
        let text = text.to_vec();
        match tf_io::text::parse::<GraphDef>(&text) {
            Ok(back) => assert!(
                back.encode_to_vec() == plain || nan_blind(&back) == nan_blind(g),
                "{what}: text output parses to a different graph"
            ),
            Err(e) => panic!("{what}: text output does not parse: {e}"),
        }
    }
}

/// `g` encoded with every NaN float and double made the canonical quiet NaN: text format writes
/// any NaN as `nan` (as TensorFlow does), so a NaN's sign and payload do not survive it.
fn nan_blind(g: &GraphDef) -> Vec<u8> {
    use tf_proto::tensorflow::{attr_value::Value, AttrValue, NodeDef, TensorProto};
    fn f32s(v: &mut [f32]) {
        v.iter_mut().filter(|x| x.is_nan()).for_each(|x| *x = f32::NAN);
    }
    fn tensor(t: &mut TensorProto) {
        f32s(&mut t.float_val);
        f32s(&mut t.scomplex_val);
        for x in t.double_val.iter_mut().chain(&mut t.dcomplex_val).filter(|x| x.is_nan()) {
            *x = f64::NAN;
        }
        t.variant_val.iter_mut().flat_map(|v| &mut v.tensors).for_each(tensor);
    }
    fn attr(a: &mut AttrValue) {
        match &mut a.value {
            Some(Value::F(f)) if f.is_nan() => *f = f32::NAN,
            Some(Value::Tensor(t)) => tensor(t),
            Some(Value::Func(f)) => f.attr.values_mut().for_each(attr),
            Some(Value::List(l)) => {
                f32s(&mut l.f);
                l.tensor.iter_mut().for_each(tensor);
                l.func.iter_mut().flat_map(|f| f.attr.values_mut()).for_each(attr);
            }
            _ => {}
        }
    }
    fn node(n: &mut NodeDef) {
        n.attr.values_mut().for_each(attr);
    }
    let mut g = g.clone();
    g.node.iter_mut().for_each(node);
    for f in g.library.iter_mut().flat_map(|l| &mut l.function) {
        f.node_def.iter_mut().for_each(node);
        let args = f.arg_attr.values_mut().flat_map(|a| a.attr.values_mut());
        f.attr.values_mut().chain(args).for_each(attr);
        for d in f.signature.iter_mut().flat_map(|s| &mut s.attr) {
            d.default_value.iter_mut().chain(&mut d.allowed_values).for_each(attr);
        }
    }
    g.encode_to_vec()
}

// ---- the targets ---------------------------------------------------------------------------------

/// Binary decoding (any of the three messages), re-encoding, text printing.
pub fn graphdef(data: &[u8]) -> bool {
    let Some(l) = load(data) else { return false };
    check_output("tf-convert", &l.graph, std::slice::from_ref(&l.buffer), true);
    true
}

/// Text format parsing, then the same as [`graphdef`].
pub fn pbtxt(data: &[u8]) -> bool {
    graphdef(data)
}

/// A `saved_model.pb`: tag and signature selection, the summary, re-encoding.
pub fn savedmodel(data: &[u8]) -> bool {
    let opts = ReadOptions::default();
    let hint = Some(MessageKind::SavedModel);
    let Ok(l) = tf_io::read_bytes(Bytes::copy_from_slice(data), "saved_model.pb", hint, &opts)
    else {
        return false;
    };
    let _ = l.signature_outputs();
    let s = tf_inspect::summarize(&l);
    let _ = tf_inspect::render_text(&s, 10);
    let _ = serde_json::to_string(&s);
    check_output(
        "tf-convert (SavedModel)",
        &l.graph,
        std::slice::from_ref(&l.buffer),
        also_text(data),
    );
    true
}

/// A checkpoint: the index and every block checksum, each tensor, the object graph, the summary.
pub fn checkpoint(data: &[u8]) -> bool {
    let (index, shard) = mutate::unpack_checkpoint(data);
    let dir = tempfile::tempdir().expect("temporary directory");
    let prefix = dir.path().join("model.ckpt");
    std::fs::write(dir.path().join("model.ckpt.index"), index).expect("write index");
    std::fs::write(dir.path().join("model.ckpt.data-00000-of-00001"), shard).expect("write data");
    let Ok(c) = tf_ckpt::Checkpoint::open(&prefix) else { return false };
    let mut ok = true;
    for e in c.entries() {
        ok &= c.read(&e.key).is_ok();
    }
    let _ = c.object_graph();
    let s = tf_inspect::summarize_checkpoint(&c);
    let _ = tf_inspect::render_checkpoint(&s);
    let _ = serde_json::to_string(&s);
    ok
}

/// Runs a pass on the decoded input and checks its output.
fn pass(tool: &str, data: &[u8], f: impl FnOnce(Loaded) -> Option<(GraphDef, Vec<Bytes>)>) -> bool {
    let Some((g, sources)) = load(data).and_then(f) else { return false };
    check_output(tool, &g, &sources, also_text(data));
    true
}

/// A cheap hash of the input, to vary the configuration with it.
fn variant(data: &[u8], n: usize) -> usize {
    data.iter().fold(0usize, |h, &b| h.wrapping_mul(31).wrapping_add(b as usize)) % n
}

/// tf-strip's defaults, or with identity/control edges kept and default attributes added/removed.
pub fn strip(data: &[u8]) -> bool {
    let v = variant(data, 4);
    pass("tf-strip", data, |l| {
        let cfg = tf_strip::StripConfig {
            signature_outputs: l.signature_outputs(),
            keep_identity: v == 1,
            keep_control_deps: v == 1,
            clear_output_shapes: v == 2,
            default_attrs: match v {
                2 => tf_strip::DefaultAttrs::Strip,
                3 => tf_strip::DefaultAttrs::Add,
                _ => tf_strip::DefaultAttrs::Keep,
            },
            ..Default::default()
        };
        let buffer = l.buffer.clone();
        let (g, _) = tf_strip::strip_graph_def(l.graph, &cfg).ok()?;
        Some((g, vec![buffer]))
    })
}

/// tf-fold with every pass.
pub fn fold(data: &[u8]) -> bool {
    pass("tf-fold", data, |l| {
        let cfg = tf_fold::FoldConfig {
            signature_outputs: l.signature_outputs(),
            max_const_bytes: 1 << 20,
            ..Default::default()
        };
        let buffer = l.buffer.clone();
        let (g, _) = tf_fold::fold_graph_def(l.graph, &cfg).ok()?;
        let mut sources = vec![buffer.clone()];
        sources.extend(tf_fold::new_payloads(&g, &buffer));
        Some((g, sources))
    })
}

/// tf-quant in each mode, small tensors included, and `--activations` (both forms) with ranges
/// made up from the input's bytes for every tensor the rewrite asks for (hostile shapes too).
pub fn quant(data: &[u8]) -> bool {
    use tf_quant::{Encoding as E, Mode};
    let v = variant(data, 8);
    pass("tf-quant", data, |l| {
        let activations = if v >= 6 { Some(made_up_ranges(&l.graph, data, v == 7)?) } else { None };
        let cfg = tf_quant::QuantConfig {
            mode: [
                Mode::Int8,
                Mode::Int8,
                Mode::Uint8,
                Mode::Float16,
                Mode::Bfloat16,
                Mode::Round(16),
                Mode::Int8,
                Mode::Int8,
            ][v],
            per_tensor: v == 1,
            encoding: if v == 0 { E::Dequantize } else { E::CastMul },
            min_elements: 4,
            threads: if v == 6 { 2 } else { 1 },
            activations,
            ..Default::default()
        };
        let buffer = l.buffer.clone();
        let q = tf_quant::quantize_graph_def(l.graph, &cfg).ok()?;
        Some((q.graph, vec![buffer, q.payload]))
    })
}

/// The `--activations` settings for `g` with a range and a shape per tensor it needs, taken
/// from `data`: signed or not, small or huge, shapes plausible or absurd.
fn made_up_ranges(
    g: &tf_proto::tensorflow::GraphDef,
    data: &[u8],
    legacy: bool,
) -> Option<tf_quant::activations::Activations> {
    use tf_quant::activations::{Activations, Form};
    use tf_quant::ranges::{RangesFile, TensorRange};
    let needed = tf_quant::activations::calibration_tensors(g).ok()?;
    let byte = |i: usize| data.get(i % data.len().max(1)).copied().unwrap_or(0);
    let tensors = needed
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let b = byte(i);
            let hi = [1.0, 6.0, 1e-7, 3e38][usize::from(b) % 4];
            let lo = if b & 4 == 0 { 0.0 } else { -hi * f64::from(b >> 3) / 31.0 };
            let side = [4, 7, 1, 0, i64::MAX, -1][usize::from(b >> 2) % 6];
            let shape = (b & 1 == 0).then(|| vec![-1, side, side, 3]);
            let r = TensorRange {
                min: lo,
                max: hi,
                count: 1,
                hist_max: hi,
                histogram: vec![1, 0],
                shape,
            };
            (t, r)
        })
        .collect();
    let ranges = RangesFile {
        format: tf_quant::ranges::FORMAT.into(),
        version: tf_quant::ranges::VERSION,
        source: "fuzz".into(),
        samples: 1,
        smoke_run_only: false,
        note: None,
        bins: 2,
        tensors,
    };
    Some(Activations {
        ranges,
        file: "ranges.json".into(),
        calibration: Default::default(),
        min_matmul_weights: 0,
        form: if legacy { Form::LegacyGtt(Default::default()) } else { Form::OneDnn },
    })
}

/// tf-prune: magnitude, blocks, N:M, channels.
pub fn prune(data: &[u8]) -> bool {
    let v = variant(data, 4);
    pass("tf-prune", data, |l| {
        let cfg = tf_prune::PruneConfig {
            sparsity: Some(0.5),
            global: v == 1,
            block: (v == 2).then_some((1, 2)),
            n_m: (v == 3).then_some((2, 4)),
            channels: v == 0 || v == 1,
            channel_sparsity: (v == 0).then_some(0.25),
            embeddings: true,
            ..Default::default()
        };
        let buffer = l.buffer.clone();
        let (g, _) = tf_prune::prune_graph_def(l.graph, &cfg).ok()?;
        let _ = tf_prune::gzip_size(&g);
        Some((g, vec![buffer]))
    })
}

/// tf-xla-check, annotating clusters.
pub fn xla(data: &[u8]) -> bool {
    let v = variant(data, 2);
    pass("tf-xla-check", data, |l| {
        let cfg = tf_xla_check::CheckConfig {
            device: if v == 0 { tf_xla_check::Device::Cpu } else { tf_xla_check::Device::Gpu },
            outputs: l.signature_outputs(),
            variables_as_args: l.kind == MessageKind::SavedModel,
            ..Default::default()
        };
        let buffer = l.buffer.clone();
        let (g, report, _) = tf_xla_check::check_graph_def(l.graph, &cfg, Some(1)).ok()?;
        let _ = report.render_text();
        Some((g, vec![buffer]))
    })
}

/// tf-inspect's summary of a graph.
pub fn inspect(data: &[u8]) -> bool {
    let Some(l) = load(data) else { return false };
    let s = tf_inspect::summarize(&l);
    let _ = tf_inspect::render_text(&s, 10);
    let _ = serde_json::to_string(&s);
    true
}

/// Node names of each freezable fixture, to pair a mutated graph with its checkpoint.
fn freezable_names() -> &'static Vec<Vec<String>> {
    static NAMES: OnceLock<Vec<Vec<String>>> = OnceLock::new();
    NAMES.get_or_init(|| FREEZABLE.iter().map(|(g, _)| node_names(&read(g))).collect())
}

fn node_names(data: &[u8]) -> Vec<String> {
    let mut v: Vec<String> = match load(data) {
        Some(l) => l.graph.node.into_iter().map(|n| n.name).collect(),
        None => Vec::new(),
    };
    v.sort();
    v
}

/// tf-freeze of a `saved_model.pb`, a `.meta` or a GraphDef (binary or text, given with
/// `--graph`) next to the fixture checkpoint whose graph has the most node names in common with it.
pub fn freeze(data: &[u8]) -> bool {
    let model = mutate::decode_model(data);
    let graph = match &model {
        Some(mutate::Model::Graph(g)) => Some(g),
        Some(mutate::Model::Meta(m)) => m.graph_def.as_ref(),
        Some(mutate::Model::Saved(s)) => s.meta_graphs.first().and_then(|m| m.graph_def.as_ref()),
        None => None,
    };
    let mut names: Vec<String> = match graph {
        Some(g) => g.node.iter().map(|n| n.name.clone()).collect(),
        // A text GraphDef.
        None => match load(data) {
            Some(l) => l.graph.node.into_iter().map(|n| n.name).collect(),
            None => return false,
        },
    };
    names.sort();
    let (best, _) = freezable_names()
        .iter()
        .enumerate()
        .map(|(i, known)| (i, names.iter().filter(|n| known.binary_search(n).is_ok()).count()))
        .max_by_key(|(i, n)| (*n, usize::MAX - i))
        .expect("fixtures");
    let ckpt = fixtures().join(FREEZABLE[best].1);
    let dir = tempfile::tempdir().expect("temporary directory");
    let link_checkpoint = |prefix: &Path| {
        for ext in [".index", ".data-00000-of-00001"] {
            let to = PathBuf::from(format!("{}{ext}", prefix.display()));
            std::os::unix::fs::symlink(format!("{}{ext}", ckpt.display()), to).expect("symlink");
        }
    };
    let (path, graph) = match model {
        Some(mutate::Model::Saved(_)) => {
            std::fs::create_dir(dir.path().join("variables")).expect("mkdir");
            link_checkpoint(&dir.path().join("variables/variables"));
            std::fs::write(dir.path().join("saved_model.pb"), data).expect("write");
            (dir.path().to_path_buf(), None)
        }
        Some(mutate::Model::Meta(_)) => {
            link_checkpoint(&dir.path().join("model.ckpt"));
            std::fs::write(dir.path().join("model.ckpt.meta"), data).expect("write");
            (dir.path().join("model.ckpt"), None)
        }
        _ => {
            link_checkpoint(&dir.path().join("model.ckpt"));
            std::fs::write(dir.path().join("graph.pb"), data).expect("write");
            (dir.path().join("model.ckpt"), Some(dir.path().join("graph.pb")))
        }
    };
    let opts = ReadOptions::default();
    let Ok(source) = tf_freeze::Source::open(&path, graph.as_deref(), &opts) else {
        return false;
    };
    let Ok(frozen) = tf_freeze::freeze(source, &tf_freeze::FreezeOptions::default()) else {
        return false;
    };
    check_output("tf-freeze", &frozen.graph, &frozen.buffers, also_text(data));
    true
}
