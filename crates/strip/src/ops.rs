//! Op signatures for one graph: its library's functions first, then TensorFlow's registry.
//!
//! Unlike [`tf_ops::Signatures`], this owns copies of the (small) function signatures, so it
//! can be queried while the graph is being edited.

use std::collections::HashMap;

use tf_ops::{signature, Registry};
use tf_proto::tensorflow::{FunctionDefLibrary, NodeDef, OpDef};

pub(crate) struct Ops {
    registry: &'static Registry,
    functions: HashMap<String, OpDef>,
}

impl Ops {
    pub(crate) fn new(registry: &'static Registry, library: Option<&FunctionDefLibrary>) -> Ops {
        let functions = library
            .into_iter()
            .flat_map(|l| &l.function)
            .filter_map(|f| f.signature.clone())
            .map(|s| (s.name.clone(), s))
            .collect();
        Ops { registry, functions }
    }

    pub(crate) fn op_def(&self, op: &str) -> Option<&OpDef> {
        self.functions.get(op).or_else(|| self.registry.get(op))
    }

    /// Whether `op` has side effects or hidden state; `None` for an unknown op.
    pub(crate) fn is_stateful(&self, op: &str) -> Option<bool> {
        self.op_def(op).map(|d| d.is_stateful)
    }

    pub(crate) fn output_types(&self, node: &NodeDef) -> Option<Vec<i32>> {
        signature::output_types(self.op_def(&node.op)?, node).ok()
    }

    pub(crate) fn output_arity(&self, node: &NodeDef) -> Option<usize> {
        signature::output_arity(self.op_def(&node.op)?, node).ok()
    }

    pub(crate) fn input_types(&self, node: &NodeDef) -> Option<Vec<i32>> {
        signature::input_types(self.op_def(&node.op)?, node).ok()
    }
}
