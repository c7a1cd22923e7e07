//! Freezing: a graph plus its checkpoint become one GraphDef whose variables are constants,
//! without TensorFlow.
//!
//! [`Source::open`] resolves the forms a model comes in (SavedModel, checkpoint with `.meta`,
//! checkpoint directory, checkpoint with a separate GraphDef). [`freeze`] then:
//! 1. finds the outputs (`--outputs`, else the signature's, else the graph's candidate outputs)
//!    and, for a signature, names them after its output keys (Identity nodes) and the inputs
//!    after its input keys (Placeholders with the signature's dtype and shape);
//! 2. keeps only what the outputs need, then inlines every function call
//!    (PartitionedCall/StatefulPartitionedCall) recursively into one flat graph;
//! 3. replaces each variable by a Const read from the checkpoint (TF1 keys are the names the
//!    graph's saver wrote, else node names; TF2 keys come from the object graph, see [`keys`])
//!    and rewrites what read it ([`convert`]), including retyped copies of If/Case/While
//!    functions; the `Ref` forms that carried a TF1 variable become plain ops ([`refs`]). A
//!    graph that writes a variable is refused, naming it, except the idempotent pruning masks
//!    of tfmot models, frozen as `weight · mask` ([`mask`]);
//! 4. removes the NoOps and control edges that only ordered variable reads, prunes again, and
//!    drops library functions nothing calls any more.
//!
//! No `_REF` dtype is left where a variable was frozen. `library`, `versions` and `debug_info`
//! are kept. Variables matching `keep_variables` stay
//! variables (with a warning); any other stateful resource left (tables, iterators) is an
//! error naming it.

#![deny(missing_docs)]

mod convert;
mod keys;
mod mask;
mod refs;
mod source;

use std::collections::{BTreeSet, HashMap, HashSet};

use bytes::Bytes;
use regex::Regex;
use serde::Serialize;
use tf_graph::{Graph, Input, NodeId, TensorName};
use tf_ops::Registry;
use tf_proto::tensorflow::{attr_value, AttrValue, GraphDef, NodeDef, TensorInfo};
use tf_tensor::{dims_to_string, dt, dtype, Tensor};

pub use source::Source;

/// Why freezing failed; messages name the variable, node, key or file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FreezeError {
    /// The input could not be read.
    #[error(transparent)]
    Read(#[from] tf_io::ReadError),
    /// The checkpoint could not be read.
    #[error(transparent)]
    Checkpoint(#[from] tf_ckpt::CkptError),
    /// The graph is inconsistent.
    #[error("{0}")]
    Graph(#[from] tf_graph::GraphError),
    /// A call could not be inlined.
    #[error("{0}")]
    Inline(#[from] tf_graph::InlineError),
    /// The input is not something to freeze.
    #[error("{0}")]
    Input(String),
    /// A variable or node could not be frozen.
    #[error("{0}")]
    Freeze(String),
}

/// What to freeze.
#[derive(Debug, Clone, Default)]
pub struct FreezeOptions {
    /// Output tensors (`node` or `node:k`); empty = the signature's, else detected.
    pub outputs: Vec<String>,
    /// Variables (by node name) to leave as variables.
    pub keep_variables: Option<Regex>,
}

/// One frozen variable, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct FrozenVariable {
    /// Node name in the graph.
    pub name: String,
    /// Checkpoint key it was read from.
    pub key: String,
    /// dtype short name.
    pub dtype: String,
    /// Shape.
    pub shape: Vec<i64>,
    /// Payload bytes.
    pub bytes: u64,
    /// The pruning mask variable the value was multiplied by (a tfmot model saved without
    /// `strip_pruning` re-applies it on every call).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masked_by: Option<String>,
}

/// What freezing did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FreezeReport {
    /// Variables turned into constants.
    pub variables: Vec<FrozenVariable>,
    /// Variables left as variables (`keep_variables`).
    pub kept_variables: Vec<String>,
    /// Functions inlined, once per call.
    pub functions_inlined: Vec<String>,
    /// Retyped copies made of control-flow functions.
    pub functions_retyped: Vec<String>,
    /// Nodes in the input graph.
    pub nodes_before: usize,
    /// Nodes in the frozen graph.
    pub nodes_after: usize,
    /// The graph's inputs (Placeholders).
    pub inputs: Vec<String>,
    /// The graph's outputs.
    pub outputs: Vec<String>,
    /// Things the user should know.
    pub warnings: Vec<String>,
}

/// A frozen graph.
#[derive(Debug, Clone)]
pub struct Frozen {
    /// The GraphDef.
    pub graph: GraphDef,
    /// What was done.
    pub report: FreezeReport,
    /// Buffers the graph's constants are slices of (the checkpoint shards, the input): hand
    /// them to the writer so the weights are written without copies.
    pub buffers: Vec<Bytes>,
}

pub(crate) const VARIABLE_OPS: &[&str] = &["VarHandleOp", "VariableV2", "Variable"];

fn identity(name: &str, input: &str, t: i32) -> NodeDef {
    let mut n = NodeDef {
        name: name.into(),
        op: "Identity".into(),
        input: vec![input.into()],
        ..Default::default()
    };
    n.attr.insert("T".into(), AttrValue { value: Some(attr_value::Value::Type(t)) });
    n
}

fn info_name(info: &TensorInfo) -> Option<&str> {
    match &info.encoding {
        Some(tf_proto::tensorflow::tensor_info::Encoding::Name(n)) => Some(n),
        _ => None,
    }
}

/// When the node `name` is a function call (inlining replaces it), renames it and puts under
/// its name an `Identity` (one output) or `IdentityN` of all its outputs, so that `name:k`
/// still names the call's output `k` once the body is inlined.
fn stand_in_for_call(g: &mut Graph, registry: &Registry, name: &str) -> Result<(), FreezeError> {
    let Some(id) = g.id(name) else { return Ok(()) };
    if tf_graph::called_function(g, g.node(id)).is_none() {
        return Ok(());
    }
    let types = registry
        .output_types_with_library(g.node(id), g.library.as_ref())
        .map_err(|e| FreezeError::Input(format!("output '{name}': {e}")))?;
    free_name(g, name)?;
    let call = g.node(id).name.clone();
    let node = if types.len() == 1 {
        identity(name, &call, dtype::base(types[0]))
    } else {
        let inputs: Vec<String> = (0..types.len())
            .map(|k| Input::Data { node: &call, port: k as u32 }.to_string())
            .collect();
        let mut n = NodeDef {
            name: name.into(),
            op: "IdentityN".into(),
            input: inputs,
            ..Default::default()
        };
        let list = attr_value::ListValue {
            r#type: types.iter().map(|&t| dtype::base(t)).collect(),
            ..Default::default()
        };
        n.attr
            .insert("T".into(), AttrValue { value: Some(attr_value::Value::List(Box::new(list))) });
        n
    };
    g.add_node(node)?;
    Ok(())
}

/// Frees `name` for a node of ours by renaming whatever holds it.
fn free_name(g: &mut Graph, name: &str) -> Result<(), FreezeError> {
    if let Some(id) = g.id(name) {
        let new = g.unique_name(&format!("{name}_orig"));
        g.rename(id, &new)?;
    }
    Ok(())
}

/// Freezes the source's graph.
pub fn freeze(mut src: Source, opts: &FreezeOptions) -> Result<Frozen, FreezeError> {
    let registry = Registry::global();
    let mut report = FreezeReport::default();
    let mut g = Graph::from_graph_def(std::mem::take(&mut src.loaded.graph))?;
    report.nodes_before = g.len();
    let meta = src.loaded.meta_graph.as_ref();
    let tf2_keys = keys::tf2_keys(&g, meta, &src.checkpoint)?;
    let partitions = keys::partitions(meta);
    // Node ids survive renaming: keyed by id, this map still holds for a renamed variable.
    let saver_keys = keys::saver_keys(&g);

    // 1. Outputs (and, for a signature, named inputs and outputs).
    let mut outputs: Vec<TensorName> = Vec::new();
    if !opts.outputs.is_empty() {
        for o in &opts.outputs {
            let t = TensorName::parse(o);
            if g.id(&t.node).is_none() {
                return Err(FreezeError::Input(format!("output '{o}' is not a node of the graph")));
            }
            outputs.push(t);
        }
    } else if let Some((key, sig)) = &src.loaded.signature {
        // Resolve the output tensors before anything is renamed.
        let mut sig_outputs = Vec::new();
        for (k, info) in &sig.outputs {
            let name = info_name(info).ok_or_else(|| {
                FreezeError::Input(format!("signature '{key}' output '{k}' is not a plain tensor"))
            })?;
            let t = TensorName::parse(name);
            let id = g.id(&t.node).ok_or_else(|| {
                FreezeError::Input(format!(
                    "signature '{key}' output '{k}' names missing node '{}'",
                    t.node
                ))
            })?;
            sig_outputs.push((k.clone(), id, t.port, info.dtype));
        }
        for (k, info) in &sig.inputs {
            let name = info_name(info).ok_or_else(|| {
                FreezeError::Input(format!("signature '{key}' input '{k}' is not a plain tensor"))
            })?;
            let t = TensorName::parse(name);
            let id = g.id(&t.node).ok_or_else(|| {
                FreezeError::Input(format!(
                    "signature '{key}' input '{k}' names missing node '{}'",
                    t.node
                ))
            })?;
            let mut node = g.node_mut(id);
            if node.op == "Placeholder" {
                node.attr.insert(
                    "dtype".into(),
                    AttrValue { value: Some(attr_value::Value::Type(info.dtype)) },
                );
                if let Some(s) = &info.tensor_shape {
                    node.attr.insert(
                        "shape".into(),
                        AttrValue { value: Some(attr_value::Value::Shape(s.clone())) },
                    );
                }
                node.attr.remove("_output_shapes");
                drop(node);
                if t.node != *k {
                    free_name(&mut g, k)?;
                    g.rename(id, k)?;
                }
            } else {
                // An input the graph computes (a TF1 serving export parses a tf.Example and
                // feeds it through an Identity): the graph is cut there. A Placeholder named
                // after the key takes the tensor's readers; what only fed it is pruned below.
                drop(node);
                free_name(&mut g, k)?;
                let producer = TensorName { node: g.node(id).name.clone(), port: t.port };
                let mut ph =
                    NodeDef { name: k.clone(), op: "Placeholder".into(), ..Default::default() };
                ph.attr.insert(
                    "dtype".into(),
                    AttrValue { value: Some(attr_value::Value::Type(info.dtype)) },
                );
                if let Some(s) = &info.tensor_shape {
                    ph.attr.insert(
                        "shape".into(),
                        AttrValue { value: Some(attr_value::Value::Shape(s.clone())) },
                    );
                }
                g.add_node(ph)?;
                g.rewire(&producer, &TensorName { node: k.clone(), port: 0 });
            }
            report.inputs.push(k.clone());
        }
        for (k, id, port, dtype) in sig_outputs {
            // Already named after its key: nothing to add.
            if g.node(id).name == k && port == 0 {
                outputs.push(TensorName { node: k, port: 0 });
                continue;
            }
            free_name(&mut g, &k)?;
            let source = g.node(id).name.clone();
            let input = Input::Data { node: &source, port }.to_string();
            g.add_node(identity(&k, &input, dtype::base(dtype)))?;
            outputs.push(TensorName { node: k, port: 0 });
        }
    } else {
        outputs = g
            .candidate_outputs()
            .into_iter()
            .map(|id| TensorName { node: g.node(id).name.clone(), port: 0 })
            .collect();
        if outputs.is_empty() {
            return Err(FreezeError::Input("no outputs found; name them with --outputs".into()));
        }
        report.warnings.push(format!(
            "no --outputs and no signature: using the detected outputs {}",
            outputs.iter().map(|t| t.node.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    report.outputs =
        outputs.iter().map(|t| t.node.clone()).collect::<BTreeSet<_>>().into_iter().collect();

    let chosen = !opts.outputs.is_empty() || src.loaded.signature.is_some();

    // 2. Keep what the outputs need; inline calls. An output that is itself a call would
    // vanish with the call: an Identity(N) of its outputs keeps the name.
    for name in &report.outputs {
        stand_in_for_call(&mut g, registry, name)?;
    }
    prune(&mut g, &report.outputs);
    let inlined_prefixes: Vec<String> = g
        .nodes()
        .filter(|(_, n)| tf_graph::called_function(&g, n).is_some())
        .map(|(_, n)| format!("{}/", n.name))
        .collect();
    report.functions_inlined = g.inline_calls(registry, |_, _| true)?;

    // 3. Variables to constants. First the pruning masks re-applied at run time (tfmot):
    // their assignments go, and each masked weight is read as weight · mask.
    let mut masked: HashMap<NodeId, (String, Tensor)> = HashMap::new();
    let maskings = mask::find(&g);
    let masks: HashSet<String> = maskings.iter().map(|m| g.node(m.mask).name.clone()).collect();
    for m in &maskings {
        let (wn, mn) = (g.node(m.var).clone(), g.node(m.mask).clone());
        if opts.keep_variables.as_ref().is_some_and(|re| re.is_match(&wn.name)) {
            continue;
        }
        let lookup = Lookup { src: &src, tf2: &tf2_keys, saver: &saver_keys, parts: &partitions };
        let (_, w) = lookup.read(m.var, &wn)?;
        let (_, k) = lookup.read(m.mask, &mn)?;
        masked.insert(m.var, (mn.name.clone(), mask::apply(&wn.name, &w, &mn.name, &k)?));
        let assign = g.node(m.assign).name.clone();
        for r in g.control_readers(&assign) {
            g.retain_inputs(r, |s| s != format!("^{assign}"));
        }
        g.remove_node(m.assign);
    }
    if !masked.is_empty() {
        prune(&mut g, &report.outputs);
    }
    let had_library = g.library.is_some();
    let mut retyper = convert::Retyper::new(g.library.take().unwrap_or_default());
    let mut buffers: Vec<Bytes> = vec![src.loaded.buffer.clone()];
    let var_ids: Vec<NodeId> = g
        .nodes()
        .filter(|(_, n)| VARIABLE_OPS.contains(&n.op.as_str()))
        .map(|(id, _)| id)
        .collect();
    for id in var_ids {
        let node = g.node(id).clone();
        if opts.keep_variables.as_ref().is_some_and(|re| re.is_match(&node.name)) {
            report.warnings.push(format!(
                "variable '{}' kept as a variable: the graph is not fully frozen",
                node.name
            ));
            report.kept_variables.push(node.name.clone());
            continue;
        }
        let lookup = Lookup { src: &src, tf2: &tf2_keys, saver: &saver_keys, parts: &partitions };
        let (key, mut t) = lookup.read(id, &node)?;
        let masked_by = masked.remove(&id).map(|(mask, product)| {
            t = product;
            mask
        });
        let want = node.attr.get("dtype").and_then(|a| a.as_type_i32()).map(dtype::base);
        if want.is_some_and(|w| w != t.dtype) {
            return Err(FreezeError::Freeze(format!(
                "variable '{}' is {} in the graph but checkpoint key '{key}' holds {}",
                node.name,
                dtype::short_name(want.unwrap_or(0)),
                dtype::short_name(t.dtype)
            )));
        }
        if let Some(s) = node.attr.get("shape").and_then(|a| a.as_shape()) {
            let dims: Vec<i64> = s.dim.iter().map(|d| d.size).collect();
            let agrees = s.unknown_rank
                || (dims.len() == t.shape.len()
                    && dims.iter().zip(&t.shape).all(|(a, b)| *a < 0 || a == b));
            if !agrees {
                return Err(FreezeError::Freeze(format!(
                    "variable '{}' has shape {} in the graph but checkpoint key '{key}' holds {}",
                    node.name,
                    dims_to_string(&dims),
                    dims_to_string(&t.shape)
                )));
            }
        }
        if let Some(raw) = t.raw() {
            if !buffers.iter().any(|b| {
                b.as_ptr() <= raw.as_ptr()
                    && raw.as_ptr() as usize + raw.len() <= b.as_ptr() as usize + b.len()
            }) {
                buffers.push(raw.clone());
            }
        }
        report.variables.push(FrozenVariable {
            name: node.name.clone(),
            key: key.clone(),
            dtype: dtype::short_name(t.dtype),
            shape: t.shape.clone(),
            bytes: t.byte_size(),
            masked_by,
        });
        let mut c = convert::const_node(&node.name, &t);
        c.experimental_debug_info = node.experimental_debug_info.clone();
        g.replace_node(id, c);
        if node.op == "VarHandleOp" {
            let v = convert::Value { dtype: t.dtype, shape: t.shape.clone() };
            convert::propagate(&mut g, &mut retyper, id, &v)?;
        } else {
            refs::deref_readers(&mut g, registry, id, &node.name)?;
        }
    }
    report.functions_retyped = retyper.made.clone();
    if had_library || !retyper.made.is_empty() {
        g.library = Some(retyper.library);
    }

    // 4. Clean up.
    g.drop_ordering_edges(registry, |_| false);
    splice_inlined_identities(&mut g, &inlined_prefixes, &report.outputs);
    prune(&mut g, &report.outputs);
    // Before the per-node signature lookups below: they search the library.
    g.prune_library();
    let kept: HashSet<&str> = report.kept_variables.iter().map(String::as_str).collect();
    for (_, n) in g.nodes() {
        if kept.contains(n.name.as_str()) {
            continue;
        }
        let resource_out = registry
            .output_types_with_library(n, g.library.as_ref())
            .map(|ts| ts.contains(&dt::RESOURCE))
            .unwrap_or(false);
        let reads_kept = n.input.iter().any(|s| kept.contains(Input::parse(s).node()));
        if resource_out && !reads_kept && n.op != "Const" {
            return Err(FreezeError::Freeze(format!(
                "node '{}' ({}) is a stateful resource that cannot be frozen (it needs initialising at run time)",
                n.name, n.op
            )));
        }
    }
    refs::strip_ref_types(&mut g, &kept);
    // A mask only the removed assignments read is gone with them: not a frozen variable.
    report.variables.retain(|v| !masks.contains(&v.name) || g.id(&v.name).is_some());
    g.drop_dangling_colocations();
    g.check(Some(registry))?;
    if let Some(lost) = report.outputs.iter().find(|o| g.id(o).is_none()) {
        return Err(FreezeError::Freeze(format!("output '{lost}' did not survive freezing")));
    }
    // The outputs that were asked for travel with the graph to the next stage.
    if chosen {
        g.mark_outputs(&outputs);
    }
    report.nodes_after = g.len();
    Ok(Frozen { graph: g.into_graph_def(), report, buffers })
}

/// Where a variable's value is in the checkpoint.
struct Lookup<'a> {
    src: &'a Source,
    tf2: &'a HashMap<String, String>,
    saver: &'a HashMap<NodeId, String>,
    parts: &'a HashMap<String, keys::Part>,
}

impl Lookup<'_> {
    /// The checkpoint key of variable `node` (id `id`) and its value: the object-graph key for
    /// TF2, else the key the graph's saver wrote it under, else its node name, else the full
    /// tensor it is a partition of.
    fn read(&self, id: NodeId, node: &NodeDef) -> Result<(String, Tensor), FreezeError> {
        let ckpt = &self.src.checkpoint;
        if let Some(k) = self.tf2.get(&node.name) {
            return Ok((k.clone(), ckpt.read(k)?));
        }
        if let Some(k) = self.saver.get(&id).filter(|k| ckpt.contains(k)) {
            return Ok((k.clone(), ckpt.read(k)?));
        }
        if ckpt.contains(&node.name) {
            return Ok((node.name.clone(), ckpt.read(&node.name)?));
        }
        if let Some(p) = self.parts.get(&node.name).filter(|p| ckpt.contains(&p.full_name)) {
            let t = ckpt.read_part(&p.full_name, &p.offset, &p.shape)?;
            return Ok((p.full_name.clone(), t));
        }
        Err(FreezeError::Freeze(format!(
            "variable '{}' ({}) is not in the checkpoint {}",
            node.name,
            node.op,
            ckpt.prefix().display()
        )))
    }
}

/// Removes every node the named outputs do not need.
fn prune(g: &mut Graph, outputs: &[String]) {
    let roots: Vec<NodeId> = outputs.iter().filter_map(|o| g.id(o)).collect();
    g.prune_unreachable(&roots);
}

/// Splices out the Identity nodes that inlining produced (function return values and variable
/// reads): one data input, no control input, not an output. Consumers read the input instead.
fn splice_inlined_identities(g: &mut Graph, prefixes: &[String], outputs: &[String]) {
    let prefixes: HashSet<&str> = prefixes.iter().map(String::as_str).collect();
    let outputs: HashSet<&str> = outputs.iter().map(String::as_str).collect();
    for id in g.ids() {
        let n = g.node(id);
        // One set lookup per enclosing scope of the name, however many calls were inlined.
        let inlined = n.name.match_indices('/').any(|(i, _)| prefixes.contains(&n.name[..=i]));
        if !inlined || n.op != "Identity" || n.input.len() != 1 || outputs.contains(n.name.as_str())
        {
            continue;
        }
        if n.input[0].starts_with('^') || !g.consumers().control_of(id).is_empty() {
            continue;
        }
        let from = TensorName { node: n.name.clone(), port: 0 };
        let to = TensorName::parse(&n.input[0]);
        g.rewire(&from, &to);
        g.remove_node(id);
    }
}
