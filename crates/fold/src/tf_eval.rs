//! `--tf-eval`: ops the native evaluator does not implement, evaluated by TensorFlow's own
//! runtime through `tf-run` (the C API). Only built with the `tf-eval` feature
//! (`cargo build --release --features tf-fold/tf-eval`, with `build/tflib` set up as for
//! tf-run), so that a plain `cargo build` never needs TensorFlow.
//!
//! Each node is evaluated alone: a graph of one `Const` per input and a copy of the node (data
//! inputs pointing at those constants, control inputs dropped) is imported and run; every output
//! is fetched.

use crate::Fallback;

/// The TensorFlow-backed evaluator, or `None` when this build has no TensorFlow.
pub fn evaluator() -> Option<Fallback> {
    imp::evaluator()
}

/// Whether this build can evaluate with TensorFlow.
pub fn available() -> bool {
    cfg!(feature = "tf-eval")
}

#[cfg(not(feature = "tf-eval"))]
mod imp {
    pub(super) fn evaluator() -> Option<crate::Fallback> {
        None
    }
}

#[cfg(feature = "tf-eval")]
mod imp {
    use std::sync::Arc;

    use prost::Message;
    use tf_proto::tensorflow::{GraphDef, NodeDef};
    use tf_run::{Data as HostData, HostTensor, Model};
    use tf_tensor::{Data, Tensor};

    use crate::eval::EvalError;
    use crate::{const_node, Fallback};

    fn unsupported(what: String) -> EvalError {
        EvalError::Unsupported(what)
    }

    fn to_tensor(h: HostTensor) -> Result<Tensor, EvalError> {
        let shape: Vec<i64> = h.shape.iter().map(|&d| d as i64).collect();
        let dtype = h.dtype.code();
        if let HostData::Str(s) = h.data {
            return Tensor::from_strings(&shape, s).map_err(|e| unsupported(e.to_string()));
        }
        let bytes = h.to_bytes().map_err(|e| unsupported(e.to_string()))?;
        Ok(Tensor { dtype, shape, data: Data::Raw(bytes.into()) })
    }

    fn run(node: &NodeDef, inputs: &[Tensor]) -> Result<Vec<Tensor>, EvalError> {
        let arity = tf_ops::Registry::global()
            .output_arity(node)
            .map_err(|e| unsupported(e.to_string()))?;
        let mut g = GraphDef::default();
        let names: Vec<String> = (0..inputs.len()).map(|i| format!("tf_eval_input_{i}")).collect();
        for (name, t) in names.iter().zip(inputs) {
            g.node.push(const_node(name.clone(), t, &[], ""));
        }
        g.node.push(NodeDef {
            name: "tf_eval_node".into(),
            device: String::new(),
            input: names,
            ..node.clone()
        });
        let model = Model::load(&g.encode_to_vec(), &node.name)
            .map_err(|e| unsupported(format!("TensorFlow: {e}")))?;
        let fetches: Vec<String> = (0..arity).map(|k| format!("tf_eval_node:{k}")).collect();
        let refs: Vec<&str> = fetches.iter().map(String::as_str).collect();
        let outs =
            model.run(&[], &refs).map_err(|e| EvalError::Invalid(format!("TensorFlow: {e}")))?;
        outs.into_iter().map(to_tensor).collect()
    }

    pub(super) fn evaluator() -> Option<Fallback> {
        Some(Fallback(Arc::new(run)))
    }
}
