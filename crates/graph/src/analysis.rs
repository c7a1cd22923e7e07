//! Questions several tools ask of a graph: which nodes are training, saving or bookkeeping
//! machinery, and which are the outputs a user most likely wants.

use std::collections::HashSet;

use tf_proto::tensorflow::NodeDef;

use crate::{Graph, Input, NodeId};

/// The kinds of nodes that serve training, saving or bookkeeping rather than inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Machinery {
    /// Checkpoint saving or restoring.
    SaveRestore,
    /// Part of a gradient computation.
    Gradient,
    /// An optimizer update.
    Optimizer,
    /// A summary op.
    Summary,
    /// Variable initialization.
    Initializer,
    /// A variable assignment.
    Assign,
    /// The loss.
    Training,
    /// A variable.
    Variable,
    /// NoOp, Assert, Print, ControlTrigger: ends of control chains.
    Bookkeeping,
}

/// Whether a node belongs to training, saving or bookkeeping rather than inference, and which
/// kind: by op (optimizer `Apply*`, `Assign*`, `SaveV2`/`RestoreV2`, summaries, variable
/// initialization) and by the scopes TF puts such nodes in (`gradients/`, `save/`).
pub fn machinery(n: &NodeDef) -> Option<Machinery> {
    let (op, name) = (n.op.as_str(), n.name.as_str());
    // `scope` is the whole name or one of its enclosing scopes.
    let in_scope = |scope: &str| {
        name == scope
            || name.rsplit_once('/').is_some_and(|(s, _)| s.split('/').any(|p| p == scope))
    };
    if matches!(
        op,
        "SaveV2"
            | "Save"
            | "SaveSlices"
            | "RestoreV2"
            | "Restore"
            | "RestoreSlice"
            | "MergeV2Checkpoints"
            | "ShardedFilename"
            | "ShardedFilespec"
    ) || name.starts_with("save/")
        || name.starts_with("saver_filename")
    {
        return Some(Machinery::SaveRestore);
    }
    if in_scope("gradients") || in_scope("gradient_tape") {
        return Some(Machinery::Gradient);
    }
    let optimizer = ["Apply", "ResourceApply", "SparseApply", "ResourceSparseApply"];
    if optimizer.iter().any(|p| op.starts_with(p) && op[p.len()..].starts_with(char::is_uppercase))
    {
        return Some(Machinery::Optimizer);
    }
    if op.contains("Summary") || matches!(op, "SummaryWriter" | "FlushSummaryWriter") {
        return Some(Machinery::Summary);
    }
    if matches!(
        op,
        "IsVariableInitialized"
            | "VarIsInitializedOp"
            | "InitializeTable"
            | "InitializeTableV2"
            | "InitializeTableFromTextFile"
            | "InitializeTableFromTextFileV2"
    ) || in_scope("Initializer")
        || (op == "NoOp" && (name == "init" || name.starts_with("init_")))
        || name.starts_with("report_uninitialized")
    {
        return Some(Machinery::Initializer);
    }
    if matches!(
        op,
        "Assign"
            | "AssignAdd"
            | "AssignSub"
            | "AssignVariableOp"
            | "AssignAddVariableOp"
            | "AssignSubVariableOp"
            | "ScatterUpdate"
            | "ScatterAdd"
            | "ScatterSub"
            | "ResourceScatterUpdate"
            | "ResourceScatterAdd"
            | "ResourceScatterSub"
    ) {
        return Some(Machinery::Assign);
    }
    let last = name.rsplit('/').next().unwrap_or("").to_ascii_lowercase();
    if last == "loss" || last.ends_with("_loss") || last.starts_with("loss_") {
        return Some(Machinery::Training);
    }
    if matches!(op, "VariableV2" | "Variable" | "VarHandleOp" | "_VarHandlesOp") {
        return Some(Machinery::Variable);
    }
    if matches!(op, "NoOp" | "Assert" | "Print" | "PrintV2" | "ControlTrigger") {
        return Some(Machinery::Bookkeeping);
    }
    None
}

/// TF1 control-flow ops (frames and deadness): control edges around them carry meaning beyond
/// ordering, and they have no XLA or folding semantics of their own.
pub fn is_v1_control_flow(op: &str) -> bool {
    is_v1_loop(op)
        || matches!(
            op,
            "Switch" | "RefSwitch" | "_SwitchN" | "Merge" | "RefMerge" | "ControlTrigger"
        )
}

/// The ops of TF1 while loops' frames: `Enter`, `Exit`, `NextIteration` (and their `Ref`
/// forms) and `LoopCond`.
pub fn is_v1_loop(op: &str) -> bool {
    matches!(
        op,
        "Enter"
            | "RefEnter"
            | "Exit"
            | "RefExit"
            | "NextIteration"
            | "RefNextIteration"
            | "LoopCond"
    )
}

/// Ops whose value is known whenever their input's shape is (not its values): what a compiler
/// or TensorFlow's constant folding evaluates when the shape is static.
pub fn is_shape_op(op: &str) -> bool {
    matches!(op, "Shape" | "ShapeN" | "Size" | "Rank" | "VariableShape" | "TensorListElementShape")
}

/// Whether nothing should treat this node as a graph output: [`machinery`], constants,
/// placeholders, shape queries.
pub fn is_machinery(n: &NodeDef) -> bool {
    machinery(n).is_some()
        || matches!(
            n.op.as_str(),
            "Const"
                | "Placeholder"
                | "PlaceholderWithDefault"
                | "Shape"
                | "ShapeN"
                | "Size"
                | "Rank"
        )
        || (n.op == "ReadVariableOp" && n.name.ends_with("/Read/ReadVariableOp"))
}

impl Graph {
    /// Nodes nothing reads (by data or control edge) that are not [`is_machinery`] nor the
    /// bookkeeping of TF1 control flow and variables (`cond/switch_t`, `cond/pred_id`, a loop
    /// counter's `Exit`, an unused `var/read`), in graph order: what a user most likely
    /// fetches. Used when no outputs are given.
    pub fn candidate_outputs(&self) -> Vec<NodeId> {
        let consumed: HashSet<&str> = self
            .nodes()
            .flat_map(|(_, n)| n.input.iter().map(|s| Input::parse(s).node()))
            .collect();
        let bookkeeping = |n: &NodeDef| {
            let last = n.name.rsplit('/').next().unwrap_or("");
            let producer = n.input.first().and_then(|s| self.get(Input::parse(s).node()));
            matches!(n.op.as_str(), "Exit" | "RefExit")
                || matches!(n.op.as_str(), "Identity" | "Snapshot")
                    && (matches!(last, "switch_t" | "switch_f" | "pred_id")
                        || producer.is_some_and(|p| {
                            matches!(
                                p.op.as_str(),
                                "Switch" | "RefSwitch" | "VariableV2" | "Variable" | "VarHandleOp"
                            ) || p.op == "ReadVariableOp"
                        }))
        };
        self.nodes()
            .filter(|(_, n)| {
                !consumed.contains(n.name.as_str()) && !is_machinery(n) && !bookkeeping(n)
            })
            .map(|(id, _)| id)
            .collect()
    }
}

/// The node attribute that carries the output set a pipeline chose, from one stage to the next.
///
/// A stage that was told its outputs (`--outputs`, a SavedModel signature, or this mark from an
/// earlier stage) records them on the producing nodes as `_tf_tools_outputs: list(int)` (the
/// output ports), so later stages keep exactly those outputs without repeating flags, even when
/// one output feeds another. TensorFlow ignores attributes whose name starts with `_` when it
/// imports and runs a graph, so the mark costs nothing at serving time.
pub const OUTPUTS_ATTR: &str = "_tf_tools_outputs";

/// The output ports of `n` that an earlier stage marked as graph outputs ([`OUTPUTS_ATTR`]).
pub fn marked_ports(n: &NodeDef) -> Vec<u32> {
    match n.attr.get(OUTPUTS_ATTR).and_then(|a| a.value.as_ref()) {
        Some(tf_proto::tensorflow::attr_value::Value::List(l)) => {
            l.i.iter().filter_map(|&p| u32::try_from(p).ok()).collect()
        }
        _ => Vec::new(),
    }
}

impl Graph {
    /// The outputs an earlier stage marked with [`OUTPUTS_ATTR`], in graph order; empty when
    /// none are marked.
    pub fn marked_outputs(&self) -> Vec<crate::TensorName> {
        self.nodes()
            .flat_map(|(_, n)| {
                marked_ports(n)
                    .into_iter()
                    .map(|port| crate::TensorName { node: n.name.clone(), port })
            })
            .collect()
    }

    /// Records `outputs` as the graph's output set ([`OUTPUTS_ATTR`]), replacing any earlier
    /// mark; nodes whose mark is already right are not touched.
    pub fn mark_outputs(&mut self, outputs: &[crate::TensorName]) {
        use tf_proto::tensorflow::{attr_value, AttrValue};
        let mut ports: std::collections::BTreeMap<&str, Vec<i64>> = Default::default();
        for t in outputs {
            let v = ports.entry(t.node.as_str()).or_default();
            if !v.contains(&i64::from(t.port)) {
                v.push(i64::from(t.port));
            }
        }
        let mut changes: Vec<(NodeId, Option<AttrValue>)> = Vec::new();
        for (id, n) in self.nodes() {
            let want = ports.get(n.name.as_str()).map(|p| {
                let mut p = p.clone();
                p.sort_unstable();
                AttrValue {
                    value: Some(attr_value::Value::List(Box::new(attr_value::ListValue {
                        i: p,
                        ..Default::default()
                    }))),
                }
            });
            if n.attr.get(OUTPUTS_ATTR) != want.as_ref() {
                changes.push((id, want));
            }
        }
        for (id, want) in changes {
            let mut n = self.node_mut(id);
            match want {
                Some(v) => {
                    n.attr.insert(OUTPUTS_ATTR.to_string(), v);
                }
                None => {
                    n.attr.remove(OUTPUTS_ATTR);
                }
            }
        }
    }
}
