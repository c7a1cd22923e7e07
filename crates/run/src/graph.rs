//! Loading GraphDefs and finding their inputs (placeholders) and candidate outputs.

use std::collections::HashSet;
use std::path::Path;

use prost::Message;
use tf_proto::tensorflow::attr_value::Value;
use tf_proto::tensorflow::{GraphDef, NodeDef};

use crate::dtype::{dtype_code_name, DType};
use crate::error::{Error, Result};
use crate::tf::Graph;

/// Load a graph from a file (`-` reads standard input; a directory is a SavedModel).
///
/// This is the one place that reads graph files. It goes through the project's tf-io reader, so
/// it accepts whatever the other tools accept: binary or text GraphDef, MetaGraphDef (`.meta`),
/// SavedModel (directory or `saved_model.pb`; its `serve` MetaGraphDef). Only frozen graphs run
/// as they are: variables of a SavedModel or checkpoint are not restored, so a warning is printed
/// when the graph has variable ops and did not come from a GraphDef.
pub fn load_graph_def(path: &Path) -> Result<GraphDef> {
    let loaded = tf_io::read_path(path, &tf_io::ReadOptions::default())
        .map_err(|e| Error::invalid(e.to_string()))?;
    if loaded.kind != tf_io::MessageKind::GraphDef {
        let vars = loaded
            .graph
            .node
            .iter()
            .filter(|n| matches!(n.op.as_str(), "VarHandleOp" | "VariableV2" | "Variable"))
            .count();
        if vars > 0 {
            eprintln!(
                "warning: {}: {} variable(s) will not be restored; freeze the graph (variables \
                 to constants) to run it",
                path.display(),
                vars
            );
        }
    }
    Ok(loaded.graph)
}

/// Decode binary GraphDef bytes.
pub fn decode_graph_def(bytes: &[u8]) -> std::result::Result<GraphDef, String> {
    let g = GraphDef::decode(bytes).map_err(|e| e.to_string())?;
    if g.node.is_empty() && !bytes.is_empty() {
        // A non-empty buffer that decodes to no nodes is almost certainly not a GraphDef
        // (e.g. a SavedModel or a text file that happened to parse).
        return Err("no nodes found".to_string());
    }
    Ok(g)
}

/// Serialize a GraphDef for `TF_GraphImportGraphDef`.
pub fn encode_graph_def(g: &GraphDef) -> Vec<u8> {
    g.encode_to_vec()
}

/// A placeholder of a graph: name, element type and (partially known) shape.
#[derive(Debug, Clone, PartialEq)]
pub struct InputSpec {
    pub name: String,
    /// TensorFlow type code (kept raw so unsupported types can be reported by name).
    pub dtype_code: i32,
    /// `None`: unknown rank; `Some(dims)` with `-1` for unknown dimensions.
    pub shape: Option<Vec<i64>>,
    /// A `PlaceholderWithDefault`: fed only when a value is given, never generated.
    pub optional: bool,
}

impl InputSpec {
    pub fn dtype(&self) -> Result<DType> {
        DType::from_code(self.dtype_code).map_err(|_| {
            Error::invalid(format!(
                "placeholder '{}' has unsupported type {}",
                self.name,
                dtype_code_name(self.dtype_code)
            ))
        })
    }

    /// Concrete shape: unknown leading dimension -> `batch`, other unknown dimensions -> 1.
    pub fn concrete_shape(&self, batch: u64) -> Result<Vec<u64>> {
        let dims = self.shape.as_ref().ok_or_else(|| {
            Error::invalid(format!(
                "placeholder '{}' has unknown rank; give its value or its shape (--shape)",
                self.name
            ))
        })?;
        Ok(dims
            .iter()
            .enumerate()
            .map(|(i, &d)| {
                if d >= 0 {
                    d as u64
                } else if i == 0 {
                    batch
                } else {
                    1
                }
            })
            .collect())
    }

    /// `[?,224,224,3]` style.
    pub fn shape_string(&self) -> String {
        match &self.shape {
            None => "<unknown rank>".to_string(),
            Some(d) => {
                let parts: Vec<String> =
                    d.iter().map(|&x| if x < 0 { "?".into() } else { x.to_string() }).collect();
                format!("[{}]", parts.join(","))
            }
        }
    }
}

fn attr<'a>(node: &'a NodeDef, name: &str) -> Option<&'a Value> {
    node.attr.get(name).and_then(|a| a.value.as_ref())
}

/// Ops that take no feed and are required inputs of a graph.
pub fn is_placeholder_op(op: &str) -> bool {
    matches!(op, "Placeholder" | "PlaceholderV2")
}

/// Every `Placeholder` of the graph, in graph order.
pub fn placeholders(g: &GraphDef) -> Vec<InputSpec> {
    feedable_inputs(g).into_iter().filter(|s| !s.optional).collect()
}

/// Every `Placeholder` and `PlaceholderWithDefault` of the graph, in graph order.
pub fn feedable_inputs(g: &GraphDef) -> Vec<InputSpec> {
    g.node
        .iter()
        .filter(|n| is_placeholder_op(&n.op) || n.op == "PlaceholderWithDefault")
        .map(|n| {
            let dtype_code = match attr(n, "dtype") {
                Some(Value::Type(t)) => *t,
                _ => 0,
            };
            let shape = match attr(n, "shape") {
                Some(Value::Shape(s)) if s.unknown_rank => None,
                Some(Value::Shape(s)) => Some(s.dim.iter().map(|d| d.size).collect()),
                _ => None,
            };
            InputSpec {
                name: n.name.clone(),
                dtype_code,
                shape,
                optional: n.op == "PlaceholderWithDefault",
            }
        })
        .collect()
}

/// Ops never reported as outputs: side effects, constants, inputs and checkpoint machinery.
const NOT_OUTPUT_OPS: &[&str] = &[
    "NoOp",
    "Const",
    "HostConst",
    "Placeholder",
    "PlaceholderV2",
    "PlaceholderWithDefault",
    "Assert",
    "Print",
    "PrintV2",
    "SaveV2",
    "Save",
    "SaveSlices",
    "RestoreV2",
    "Restore",
    "RestoreSlice",
    "MergeV2Checkpoints",
    "ShardedFilename",
    "ShardedFilespec",
    "StringJoin",
    "Assign",
    "AssignVariableOp",
    "AssignAdd",
    "AssignSub",
    "AssignAddVariableOp",
    "AssignSubVariableOp",
    "VarHandleOp",
    "VariableV2",
    "Variable",
    "VarIsInitializedOp",
    "IsVariableInitialized",
    "DestroyResourceOp",
    "ReadVariableOp",
    "SummaryWriter",
    "WriteSummary",
    "ScalarSummary",
    "HistogramSummary",
    "MergeSummary",
];

fn node_of_input(input: &str) -> &str {
    let s = input.strip_prefix('^').unwrap_or(input);
    match s.rsplit_once(':') {
        Some((node, port)) if port.parse::<u32>().is_ok() => node,
        _ => s,
    }
}

/// Candidate outputs: every output tensor (`node:port`) of nodes that no other node consumes
/// (by data or control edge), skipping [`NOT_OUTPUT_OPS`], nodes under a `save/` scope, and
/// resource/variant outputs. `graph` (the imported graph) gives the number and types of outputs.
pub fn candidate_outputs(g: &GraphDef, graph: &Graph) -> Vec<String> {
    let consumed: HashSet<&str> =
        g.node.iter().flat_map(|n| n.input.iter().map(|i| node_of_input(i))).collect();
    let mut out = Vec::new();
    for n in &g.node {
        if consumed.contains(n.name.as_str())
            || NOT_OUTPUT_OPS.contains(&n.op.as_str())
            || n.name.starts_with("save/")
            || n.name.contains("/save/")
        {
            continue;
        }
        let k = graph.num_outputs(&n.name).unwrap_or(0);
        for port in 0..k {
            match graph.output_type_code(&n.name, port) {
                Some(20) | Some(21) | Some(120) | Some(121) => continue, // resource, variant
                _ => out.push(format!("{}:{}", n.name, port)),
            }
        }
    }
    out
}
