//! Which tensors the stripped graph must still compute, and which nodes are training or
//! saving machinery.
//!
//! Outputs are `--outputs`, else the SavedModel signature's, else detected the way
//! `summarize_graph` suggests them: nodes that nothing consumes (through data or control edges)
//! and that are not [`machinery`]: a TF1 training graph's dangling `train` op, `init`,
//! `save/...` and summaries are not inference outputs.

use std::collections::HashSet;

use tf_graph::{Graph, Input, NodeId, TensorName};
use tf_proto::tensorflow::{tensor_info, NodeDef, SignatureDef, TensorInfo};

use crate::ops::Ops;
use crate::{OutputsFrom, StripConfig, StripError, Why};

/// The output tensors and where they came from; every one is checked to exist.
pub(crate) fn resolve(
    g: &Graph,
    ops: &Ops,
    cfg: &StripConfig,
) -> Result<(Vec<TensorName>, OutputsFrom), StripError> {
    let (names, from) = if !cfg.outputs.is_empty() {
        (&cfg.outputs, OutputsFrom::Explicit)
    } else if !cfg.signature_outputs.is_empty() {
        (&cfg.signature_outputs, OutputsFrom::Signature)
    } else {
        let found = detect(g);
        if found.is_empty() {
            return Err(StripError::NoOutputs);
        }
        return Ok((found, OutputsFrom::Detected));
    };
    let mut out: Vec<TensorName> = Vec::new();
    for name in names {
        let t = TensorName::parse(name.trim());
        let node = g.get(&t.node).ok_or_else(|| StripError::UnknownOutput(name.clone()))?;
        // A node without outputs (a NoOp, a stateful call) may be named as `name` or `name:0`.
        if let Some(arity) = ops.output_arity(node) {
            if t.port as usize >= arity.max(1) {
                return Err(StripError::OutputPort {
                    name: name.clone(),
                    node: node.name.clone(),
                    op: node.op.clone(),
                    arity,
                });
            }
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok((out, from))
}

/// Nodes nothing consumes that are not machinery, as `node:0`, in graph order. Besides
/// [`machinery`], constants, placeholders, shape queries, and the bookkeeping of TF1 control
/// flow and variables (`cond/switch_t`, `cond/pred_id`, a loop counter's `Exit`, an unused
/// `var/read`) are never outputs.
pub fn detect(g: &Graph) -> Vec<TensorName> {
    let consumed: HashSet<&str> =
        g.nodes().flat_map(|(_, n)| n.input.iter().map(|s| Input::parse(s).node())).collect();
    let bookkeeping = |n: &NodeDef| {
        let last = n.name.rsplit('/').next().unwrap_or("");
        let producer = n.input.first().and_then(|s| g.get(Input::parse(s).node()));
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
    g.nodes()
        .map(|(_, n)| n)
        .filter(|n| !consumed.contains(n.name.as_str()) && machinery(n).is_none())
        .filter(|n| {
            !matches!(
                n.op.as_str(),
                "Const"
                    | "Placeholder"
                    | "PlaceholderWithDefault"
                    | "Shape"
                    | "ShapeN"
                    | "Size"
                    | "Rank"
            )
        })
        .filter(|n| !bookkeeping(n))
        .map(|n| TensorName { node: n.name.clone(), port: 0 })
        .collect()
}

/// Nodes the outputs do not need but training or saving machinery does (the loss, the training
/// branches of batch norm, optimizer hyper-parameters...), by node slot.
pub(crate) fn training_closure(g: &Graph, needed: &[bool]) -> Vec<bool> {
    let roots: Vec<_> = g
        .nodes()
        .filter(|(id, n)| {
            !needed[id.0] && machinery(n).is_some_and(|w| !matches!(w, Why::Unused | Why::Variable))
        })
        .map(|(id, _)| id)
        .collect();
    g.reachable(&roots, false)
}

/// Nodes that read checkpoint machinery (a SavedModel's save and restore function calls read
/// `saver_filename`).
pub(crate) fn save_consumers(g: &Graph) -> HashSet<NodeId> {
    g.nodes()
        .filter(|(_, n)| {
            n.input.iter().any(|s| {
                g.get(Input::parse(s).node())
                    .is_some_and(|p| machinery(p) == Some(Why::SaveRestore))
            })
        })
        .map(|(id, _)| id)
        .collect()
}

/// Whether a node belongs to training, saving or bookkeeping rather than inference, and which
/// kind: by op (optimizer `Apply*`, `Assign*`, `SaveV2`/`RestoreV2`, summaries, variable
/// initialization) and by the scopes TF puts such nodes in (`gradients/`, `save/`).
pub fn machinery(n: &NodeDef) -> Option<Why> {
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
        return Some(Why::SaveRestore);
    }
    if in_scope("gradients") || in_scope("gradient_tape") {
        return Some(Why::Gradient);
    }
    let optimizer = ["Apply", "ResourceApply", "SparseApply", "ResourceSparseApply"];
    if optimizer.iter().any(|p| op.starts_with(p) && op[p.len()..].starts_with(char::is_uppercase))
    {
        return Some(Why::Optimizer);
    }
    if op.contains("Summary") || matches!(op, "SummaryWriter" | "FlushSummaryWriter") {
        return Some(Why::Summary);
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
        return Some(Why::Initializer);
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
        return Some(Why::Assign);
    }
    let last = name.rsplit('/').next().unwrap_or("").to_ascii_lowercase();
    if last == "loss" || last.ends_with("_loss") || last.starts_with("loss_") {
        return Some(Why::Training);
    }
    if matches!(op, "VariableV2" | "Variable" | "VarHandleOp" | "_VarHandlesOp") {
        return Some(Why::Variable);
    }
    if matches!(op, "NoOp" | "Assert" | "Print" | "PrintV2" | "ControlTrigger") {
        return Some(Why::Unused);
    }
    None
}

/// The graph tensors a signature outputs, in key order (sparse and composite outputs by their
/// component tensors).
pub fn signature_outputs(sig: &SignatureDef) -> Vec<String> {
    fn names(info: &TensorInfo) -> Vec<String> {
        match &info.encoding {
            Some(tensor_info::Encoding::Name(n)) => vec![n.clone()],
            Some(tensor_info::Encoding::CooSparse(c)) => vec![
                c.values_tensor_name.clone(),
                c.indices_tensor_name.clone(),
                c.dense_shape_tensor_name.clone(),
            ],
            Some(tensor_info::Encoding::CompositeTensor(c)) => {
                c.components.iter().flat_map(names).collect()
            }
            None => Vec::new(),
        }
    }
    sig.outputs.values().flat_map(names).filter(|n| !n.is_empty()).collect()
}
