//! What `tf-inspect` reports about a graph: what `summarize_graph` and `saved_model_cli show`
//! print, and more.
//!
//! [`summarize`] builds a [`Summary`] (serializable as JSON) from a loaded model without
//! decoding any tensor payload: parameter counts come from shapes, so a graph of hundreds of
//! megabytes is summarized in milliseconds. [`render_text`] prints it for people.

#![deny(missing_docs)]

mod checkpoint;
mod gtt;
mod text;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::Serialize;
use tf_graph::analysis::is_machinery;
use tf_graph::Input;
use tf_io::Loaded;
use tf_ops::Registry;
use tf_proto::tensorflow::{attr_value, NodeDef, TensorInfo, TensorShapeProto};
use tf_tensor::dtype;

pub use checkpoint::{
    render_checkpoint, summarize_checkpoint, CheckpointSummary, CheckpointTensor,
};
pub use gtt::render_gtt;
pub use text::render_text;

/// A tensor at a graph boundary.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TensorDesc {
    /// `node:port` (or the node name for inputs).
    pub name: String,
    /// Op of the node.
    pub op: String,
    /// dtype short name, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dtype: Option<String>,
    /// Shape as `[?,224,224,3]`, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shape: Option<String>,
}

/// Parameters of one dtype.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ParamStats {
    /// Number of tensors.
    pub tensors: u64,
    /// Number of elements.
    pub elements: u64,
    /// Bytes of payload.
    pub bytes: u64,
}

/// A variable in a not yet frozen graph.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VariableDesc {
    /// Node name.
    pub name: String,
    /// Op (VariableV2, VarHandleOp, ...).
    pub op: String,
    /// dtype short name.
    pub dtype: String,
    /// Shape.
    pub shape: String,
}

/// A function of the library.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FunctionDesc {
    /// Function name.
    pub name: String,
    /// Number of nodes in its body.
    pub nodes: usize,
    /// Number of inputs.
    pub inputs: usize,
    /// Number of outputs.
    pub outputs: usize,
    /// Graph nodes that call it (op name or function-valued attr).
    pub callers: usize,
}

/// One signature of a SavedModel or MetaGraphDef.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SignatureDesc {
    /// Signature key.
    pub key: String,
    /// Method name.
    pub method: String,
    /// Inputs by key.
    pub inputs: BTreeMap<String, TensorDesc>,
    /// Outputs by key.
    pub outputs: BTreeMap<String, TensorDesc>,
}

/// Everything tf-inspect reports.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The path given.
    pub source: String,
    /// GraphDef, MetaGraphDef or SavedModel.
    pub format: String,
    /// binary or text.
    pub encoding: String,
    /// Input size in bytes.
    pub bytes: u64,
    /// `versions.producer`.
    pub producer: Option<i32>,
    /// `versions.min_consumer`.
    pub min_consumer: Option<i32>,
    /// Number of nodes.
    pub nodes: usize,
    /// Number of data edges.
    pub data_edges: usize,
    /// Number of control edges.
    pub control_edges: usize,
    /// Placeholders (candidate inputs).
    pub inputs: Vec<TensorDesc>,
    /// Nodes nothing consumes that are not machinery (candidate outputs).
    pub outputs: Vec<TensorDesc>,
    /// The outputs an earlier stage of a pipeline chose and recorded on the graph
    /// (`_tf_tools_outputs`), which later stages keep.
    pub marked_outputs: Vec<String>,
    /// Op → count in the graph, most frequent first in text.
    pub ops: BTreeMap<String, usize>,
    /// Op → count inside library functions.
    pub function_ops: BTreeMap<String, usize>,
    /// Ops neither in the TensorFlow 2.21 registry nor the library (custom ops).
    pub unknown_ops: Vec<String>,
    /// Const payloads by dtype.
    pub parameters: BTreeMap<String, ParamStats>,
    /// Total parameter elements over float dtypes.
    pub float_parameters: u64,
    /// Variables (graphs that are not frozen).
    pub variables: Vec<VariableDesc>,
    /// Library functions.
    pub functions: Vec<FunctionDesc>,
    /// Control-flow ops (v1 and v2) in the graph and its functions.
    pub control_flow: BTreeMap<String, usize>,
    /// Device string → node count (empty device not listed).
    pub devices: BTreeMap<String, usize>,
    /// SavedModel tag sets.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tag_sets: Vec<Vec<String>>,
    /// Signatures of the chosen MetaGraphDef.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<SignatureDesc>,
}

const CONTROL_FLOW_OPS: &[&str] = &[
    "Switch",
    "Merge",
    "Enter",
    "Exit",
    "NextIteration",
    "LoopCond",
    "RefSwitch",
    "RefMerge",
    "RefEnter",
    "RefExit",
    "RefNextIteration",
    "If",
    "StatelessIf",
    "While",
    "StatelessWhile",
    "Case",
    "StatelessCase",
];

/// Output ports listed per candidate output node (a `Split` may claim a million).
const MAX_PORTS_LISTED: usize = 64;

const VARIABLE_OPS: &[&str] = &["VariableV2", "Variable", "VarHandleOp", "_VarHandlesOp"];

fn shape_str(s: Option<&TensorShapeProto>) -> Option<String> {
    s.map(|s| tf_tensor::shape_to_string(Some(s)))
}

fn attr_type(n: &NodeDef, name: &str) -> Option<i32> {
    match n.attr.get(name)?.value.as_ref()? {
        attr_value::Value::Type(t) => Some(*t),
        _ => None,
    }
}

fn attr_shape<'a>(n: &'a NodeDef, name: &str) -> Option<&'a TensorShapeProto> {
    match n.attr.get(name)?.value.as_ref()? {
        attr_value::Value::Shape(s) => Some(s),
        _ => None,
    }
}

fn tensor_desc(info: &TensorInfo) -> TensorDesc {
    use tf_proto::tensorflow::tensor_info::Encoding;
    let name = match &info.encoding {
        Some(Encoding::Name(n)) => n.clone(),
        Some(Encoding::CooSparse(c)) => format!("sparse({})", c.values_tensor_name),
        Some(Encoding::CompositeTensor(_)) => "composite".into(),
        None => String::new(),
    };
    TensorDesc {
        name,
        op: String::new(),
        dtype: Some(dtype::short_name(info.dtype)),
        shape: shape_str(info.tensor_shape.as_ref()),
    }
}

/// Builds the summary of a loaded model.
pub fn summarize(l: &Loaded) -> Summary {
    let g = &l.graph;
    let registry = Registry::global();
    let library_fns: HashSet<&str> = g
        .library
        .iter()
        .flat_map(|lib| lib.function.iter())
        .filter_map(|f| f.signature.as_ref().map(|s| s.name.as_str()))
        .collect();

    let mut ops = BTreeMap::new();
    let mut devices = BTreeMap::new();
    let mut control_flow = BTreeMap::new();
    let mut consumed: HashSet<&str> = HashSet::new();
    let (mut data_edges, mut control_edges) = (0, 0);
    let mut parameters: BTreeMap<String, ParamStats> = BTreeMap::new();
    let mut inputs = Vec::new();
    let mut variables = Vec::new();
    let mut callers: BTreeMap<&str, usize> = BTreeMap::new();
    for n in &g.node {
        *ops.entry(n.op.clone()).or_insert(0) += 1;
        if !n.device.is_empty() {
            *devices.entry(n.device.clone()).or_insert(0) += 1;
        }
        if CONTROL_FLOW_OPS.contains(&n.op.as_str()) {
            *control_flow.entry(n.op.clone()).or_insert(0) += 1;
        }
        for s in &n.input {
            let i = Input::parse(s);
            consumed.insert(i.node());
            if i.is_control() {
                control_edges += 1;
            } else {
                data_edges += 1;
            }
        }
        if library_fns.contains(n.op.as_str()) {
            *callers.entry(n.op.as_str()).or_insert(0) += 1;
        }
        for a in n.attr.values() {
            if let Some(attr_value::Value::Func(f)) = &a.value {
                *callers.entry(f.name.as_str()).or_insert(0) += 1;
            }
        }
        match n.op.as_str() {
            "Const" => {
                if let Some(attr_value::Value::Tensor(t)) =
                    n.attr.get("value").and_then(|a| a.value.as_ref())
                {
                    let dims: Vec<i64> = t
                        .tensor_shape
                        .as_ref()
                        .map(|s| s.dim.iter().map(|d| d.size).collect())
                        .unwrap_or_default();
                    let elements = tf_tensor::num_elements(&dims).unwrap_or(0);
                    let bytes = match dtype::element_size(t.dtype) {
                        Some(size) => elements.saturating_mul(size as u64),
                        None => t.string_val.iter().map(|s| s.len() as u64).sum(),
                    };
                    let p = parameters.entry(dtype::short_name(t.dtype)).or_default();
                    // Claimed shapes can be absurd: totals saturate rather than overflow.
                    p.tensors += 1;
                    p.elements = p.elements.saturating_add(elements);
                    p.bytes = p.bytes.saturating_add(bytes);
                }
            }
            "Placeholder" | "PlaceholderWithDefault" => inputs.push(TensorDesc {
                name: n.name.clone(),
                op: n.op.clone(),
                dtype: attr_type(n, "dtype").map(dtype::short_name),
                shape: shape_str(attr_shape(n, "shape")),
            }),
            op if VARIABLE_OPS.contains(&op) => variables.push(VariableDesc {
                name: n.name.clone(),
                op: n.op.clone(),
                dtype: attr_type(n, "dtype").map(dtype::short_name).unwrap_or_default(),
                shape: shape_str(attr_shape(n, "shape")).unwrap_or_else(|| "?".into()),
            }),
            _ => {}
        }
    }

    // The SavedModel's own save and restore calls are machinery too.
    let saver_nodes: HashSet<&str> = l
        .meta_graph
        .iter()
        .filter_map(|m| m.saver_def.as_ref())
        .flat_map(|s| [s.save_tensor_name.as_str(), s.restore_op_name.as_str()])
        .map(|t| Input::parse(t).node())
        .collect();
    let marked_outputs = g
        .node
        .iter()
        .flat_map(|n| {
            tf_graph::analysis::marked_ports(n).into_iter().map(|p| format!("{}:{p}", n.name))
        })
        .collect();
    let outputs = g
        .node
        .iter()
        .filter(|n| {
            !consumed.contains(n.name.as_str())
                && !is_machinery(n)
                && !saver_nodes.contains(n.name.as_str())
        })
        .flat_map(|n| {
            let types = registry.output_types(n).ok();
            let arity = types.as_ref().map_or(1, Vec::len);
            let shapes = n.attr.get("_output_shapes").and_then(|a| match a.value.as_ref() {
                Some(attr_value::Value::List(l)) => Some(l.shape.clone()),
                _ => None,
            });
            // A node may claim a million outputs: list the first few.
            (0..arity.min(MAX_PORTS_LISTED)).map(move |k| TensorDesc {
                name: format!("{}:{k}", n.name),
                op: n.op.clone(),
                dtype: types.as_ref().and_then(|t| t.get(k)).map(|t| dtype::short_name(*t)),
                shape: shapes.as_ref().and_then(|s| s.get(k)).and_then(|s| shape_str(Some(s))),
            })
        })
        .collect();

    let mut function_ops = BTreeMap::new();
    let mut functions = Vec::new();
    for f in g.library.iter().flat_map(|lib| lib.function.iter()) {
        for n in &f.node_def {
            *function_ops.entry(n.op.clone()).or_insert(0) += 1;
            if CONTROL_FLOW_OPS.contains(&n.op.as_str()) {
                *control_flow.entry(n.op.clone()).or_insert(0) += 1;
            }
        }
        let sig = f.signature.as_ref();
        let name = sig.map(|s| s.name.clone()).unwrap_or_default();
        functions.push(FunctionDesc {
            callers: callers.get(name.as_str()).copied().unwrap_or(0),
            name,
            nodes: f.node_def.len(),
            inputs: sig.map_or(0, |s| s.input_arg.len()),
            outputs: sig.map_or(0, |s| s.output_arg.len()),
        });
    }

    let unknown_ops: BTreeSet<String> = ops
        .keys()
        .chain(function_ops.keys())
        .filter(|op| registry.get(op).is_none() && !library_fns.contains(op.as_str()))
        .cloned()
        .collect();
    let float_parameters = parameters
        .iter()
        .filter(|(d, _)| dtype::from_name(d).is_some_and(dtype::is_float))
        .fold(0u64, |a, (_, p)| a.saturating_add(p.elements));

    let signatures = l
        .meta_graph
        .iter()
        .flat_map(|m| m.signature_def.iter())
        .map(|(key, s)| SignatureDesc {
            key: key.clone(),
            method: s.method_name.clone(),
            inputs: s.inputs.iter().map(|(k, v)| (k.clone(), tensor_desc(v))).collect(),
            outputs: s.outputs.iter().map(|(k, v)| (k.clone(), tensor_desc(v))).collect(),
        })
        .collect();

    Summary {
        source: l.source_name.clone(),
        format: format!("{:?}", l.kind),
        encoding: match l.encoding {
            tf_io::Encoding::Binary => "binary".into(),
            tf_io::Encoding::Text => "text".into(),
        },
        bytes: l.input_bytes,
        producer: g.versions.as_ref().map(|v| v.producer),
        min_consumer: g.versions.as_ref().map(|v| v.min_consumer),
        nodes: g.node.len(),
        data_edges,
        control_edges,
        inputs,
        outputs,
        marked_outputs,
        ops,
        function_ops,
        unknown_ops: unknown_ops.into_iter().collect(),
        parameters,
        float_parameters,
        variables,
        functions,
        control_flow,
        devices,
        tag_sets: l.tag_sets.clone(),
        signatures,
    }
}
