//! The inputs (placeholders) and default outputs of a graph. Graphs are read by tf-cli/tf-io
//! like every tool's (see [`crate::cli::LoadedGraph`]).

use prost::Message;
use tf_proto::tensorflow::attr_value::Value;
use tf_proto::tensorflow::{GraphDef, NodeDef};

use tf_tensor::dt;

use crate::dtype::{dtype_code_name, DType};
use crate::error::{Error, Result};
use crate::tf::Graph;

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

/// Default outputs: every output tensor (`node:port`) of the nodes tf-graph detects as outputs
/// ([`tf_graph::Graph::candidate_outputs`], shared with the other tools), except resource and
/// variant tensors, which cannot be fetched. `graph` (the imported graph) gives the number and
/// types of each node's outputs.
pub fn candidate_outputs(g: &GraphDef, graph: &Graph) -> Result<Vec<String>> {
    let tg =
        tf_graph::Graph::from_graph_def(g.clone()).map_err(|e| Error::invalid(e.to_string()))?;
    let mut out = Vec::new();
    for id in tg.candidate_outputs() {
        let name = &tg.node(id).name;
        let k = graph.num_outputs(name).unwrap_or(0);
        for port in 0..k {
            let code = graph.output_type_code(name, port).unwrap_or(0);
            if !matches!(tf_tensor::dtype::base(code), dt::RESOURCE | dt::VARIANT) {
                out.push(format!("{name}:{port}"));
            }
        }
    }
    Ok(out)
}
