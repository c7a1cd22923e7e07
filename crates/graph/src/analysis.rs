//! Questions several tools ask of a graph.

use std::collections::HashSet;

use tf_proto::tensorflow::NodeDef;

use crate::{Graph, Input, NodeId};

/// Ops that end a graph without being one of its outputs: bookkeeping, saving and restoring,
/// initialisation, variable updates, summaries.
pub fn is_machinery(n: &NodeDef) -> bool {
    let op = n.op.as_str();
    matches!(
        op,
        "NoOp"
            | "Const"
            | "Placeholder"
            | "PlaceholderWithDefault"
            | "Assert"
            | "SaveV2"
            | "Save"
            | "SaveSlices"
            | "RestoreV2"
            | "Restore"
            | "RestoreSlice"
            | "MergeV2Checkpoints"
            | "ShardedFilename"
            | "ShardedFilespec"
            | "StringJoin"
            | "VarIsInitializedOp"
            | "IsVariableInitialized"
            | "VariableV2"
            | "Variable"
            | "VarHandleOp"
            | "MergeSummary"
            | "Print"
            | "PrintV2"
            | "ControlTrigger"
    ) || op.starts_with("Assign")
        || op.starts_with("Apply")
        || op.starts_with("ResourceApply")
        || op.starts_with("Scatter")
        || op.starts_with("ResourceScatter")
        || op.ends_with("Summary")
        || op.ends_with("SummaryV2")
        || n.name.starts_with("save/")
        || n.name.starts_with("saver_filename")
        || n.name.starts_with("gradients/")
        || (op == "ReadVariableOp" && n.name.ends_with("/Read/ReadVariableOp"))
}

impl Graph {
    /// Nodes nothing reads (by data or control edge) that are not [`is_machinery`]: what a
    /// user most likely fetches. Used when no outputs are given.
    pub fn candidate_outputs(&self) -> Vec<NodeId> {
        let consumed: HashSet<&str> = self
            .nodes()
            .flat_map(|(_, n)| n.input.iter().map(|s| Input::parse(s).node()))
            .collect();
        // TF1 conds leave their branch pivots (Identity of a Switch output) unread.
        let is_pivot = |n: &NodeDef| {
            n.op == "Identity"
                && n.input
                    .first()
                    .and_then(|s| self.get(Input::parse(s).node()))
                    .is_some_and(|p| p.op == "Switch")
        };
        self.nodes()
            .filter(|(_, n)| {
                !consumed.contains(n.name.as_str()) && !is_machinery(n) && !is_pivot(n)
            })
            .map(|(id, _)| id)
            .collect()
    }
}
