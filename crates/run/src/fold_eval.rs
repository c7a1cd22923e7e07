//! tf-fold's `--tf-eval`: ops the native evaluator does not implement, evaluated by TensorFlow's
//! own runtime. [`TfEvaluator`] implements [`tf_fold::Evaluator`]; the `tf-fold` binary plugs it
//! in when built with the root package's `tf-eval` feature
//! (`cargo build --release --features tf-eval`, with `build/tflib` set up as for tf-run), so that
//! tf-fold itself, and a plain `cargo build`, never need TensorFlow.
//!
//! Each node is evaluated alone: a graph of one `Const` per input and a copy of the node (data
//! inputs pointing at those constants, control inputs dropped, no device) is imported and run;
//! every output is fetched.

use std::sync::Arc;

use tf_fold::eval::EvalError;
use tf_fold::{Evaluator, Fallback};
use tf_proto::tensorflow::{attr_value, AttrValue, GraphDef, NodeDef};
use tf_tensor::{Data, Tensor};

use crate::tensor::{Data as HostData, HostTensor};
use crate::tf::Model;

/// Name of the evaluated node in the one-node graph.
const NODE: &str = "tf_eval_node";

/// The TensorFlow-backed evaluator (stateless: one graph and session per evaluated node).
#[derive(Debug, Clone, Copy, Default)]
pub struct TfEvaluator;

/// [`TfEvaluator`] as tf-fold's [`Fallback`].
pub fn evaluator() -> Fallback {
    Fallback(Arc::new(TfEvaluator))
}

impl Evaluator for TfEvaluator {
    fn eval(&self, node: &NodeDef, inputs: &[Tensor]) -> Result<Vec<Tensor>, EvalError> {
        let g = one_node_graph(node, inputs);
        let model = Model::load(&crate::graph::encode_graph_def(&g), &node.name)
            .map_err(|e| EvalError::Unsupported(format!("TensorFlow: {e}")))?;
        // The number of outputs as TensorFlow resolved it for these attributes.
        let arity = model.graph().num_outputs(NODE).unwrap_or(0);
        let fetches: Vec<String> = (0..arity).map(|k| format!("{NODE}:{k}")).collect();
        let refs: Vec<&str> = fetches.iter().map(String::as_str).collect();
        let outs =
            model.run(&[], &refs).map_err(|e| EvalError::Invalid(format!("TensorFlow: {e}")))?;
        outs.into_iter().map(to_tensor).collect()
    }
}

/// `tf_eval_input_<i>` = `Const(inputs[i])` for every input, then the node reading them.
fn one_node_graph(node: &NodeDef, inputs: &[Tensor]) -> GraphDef {
    let names: Vec<String> = (0..inputs.len()).map(|i| format!("tf_eval_input_{i}")).collect();
    let mut nodes: Vec<NodeDef> =
        names.iter().zip(inputs).map(|(name, t)| const_node(name, t)).collect();
    nodes.push(NodeDef {
        name: NODE.into(),
        op: node.op.clone(),
        input: names,
        attr: node.attr.clone(),
        experimental_type: node.experimental_type.clone(),
        ..Default::default()
    });
    GraphDef { node: nodes, ..Default::default() }
}

fn const_node(name: &str, t: &Tensor) -> NodeDef {
    let attr = [
        ("dtype".to_string(), AttrValue { value: Some(attr_value::Value::Type(t.dtype)) }),
        (
            "value".to_string(),
            AttrValue { value: Some(attr_value::Value::Tensor(Box::new(t.to_proto()))) },
        ),
    ];
    NodeDef {
        name: name.into(),
        op: "Const".into(),
        attr: attr.into_iter().collect(),
        ..Default::default()
    }
}

fn to_tensor(h: HostTensor) -> Result<Tensor, EvalError> {
    let unsupported = |e: &dyn std::fmt::Display| EvalError::Unsupported(e.to_string());
    let shape: Vec<i64> = h.shape.iter().map(|&d| d as i64).collect();
    let dtype = h.dtype.code();
    if let HostData::Str(s) = h.data {
        return Tensor::from_strings(&shape, s).map_err(|e| unsupported(&e));
    }
    let bytes = h.to_bytes().map_err(|e| unsupported(&e))?;
    Ok(Tensor { dtype, shape, data: Data::Raw(bytes.into()) })
}
