//! What folding did: counts per pass, the constants it created, what it could not fold.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

/// A node named with its op.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct NodeOp {
    /// Node name.
    pub node: String,
    /// Its op.
    pub op: String,
}

/// A node left unfolded because folding it would have gone over a budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BudgetSkip {
    /// Node name.
    pub node: String,
    /// Its op.
    pub op: String,
    /// The budget: `max-const-bytes`, `max-live-bytes` or `max-work`.
    pub budget: &'static str,
    /// What folding the node would have needed (bytes, or element operations for
    /// `max-work`), as computed before anything was allocated.
    pub needed: u64,
    /// The limit (for `max-live-bytes`: what was left of it).
    pub limit: u64,
}

/// A tensor replaced by a constant computed by the native evaluator or from static shapes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FoldedTensor {
    /// The original tensor, `node:port`.
    pub tensor: String,
    /// The op that computed it.
    pub op: String,
    /// The `Const` node now holding its value (the same node, for single-output ops).
    pub node: String,
    /// `evaluated` (native kernel) or `shape` (from statically known shapes).
    pub how: &'static str,
}

/// The report of one tf-fold run (`--report` writes it under `changes.fold`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct FoldReport {
    /// The output tensors preserved.
    pub outputs: Vec<String>,
    /// Node count of the input.
    pub nodes_before: usize,
    /// Node count of the output.
    pub nodes_after: usize,
    /// Fixed-point iterations run (the last one changed nothing).
    pub iterations: usize,
    /// Changes per pass: pass name → what → count.
    pub passes: BTreeMap<String, BTreeMap<String, usize>>,
    /// Nodes removed because nothing needed them any more.
    pub removed: usize,
    /// Every tensor replaced by a constant that still exists in the output.
    pub folded: Vec<FoldedTensor>,
    /// Nodes whose op is neither in TensorFlow's registry nor in the graph's library: left
    /// unfolded.
    pub unknown_ops: Vec<NodeOp>,
    /// Ops with constant inputs that the native evaluator does not implement (node counts):
    /// what `--tf-eval` would be for.
    pub unsupported_ops: BTreeMap<String, usize>,
    /// Constants not created because they would exceed `--max-const-bytes`.
    pub skipped_large: Vec<NodeOp>,
    /// Every node left unfolded by a budget (`--max-const-bytes`, `--max-live-bytes`,
    /// `--max-work`), with the reason.
    pub skipped_budget: Vec<BudgetSkip>,
    /// Nodes whose evaluation failed (TensorFlow would fail on them at run time too).
    pub eval_errors: Vec<String>,
    /// Warnings (broken constants and the like).
    pub warnings: Vec<String>,
}

impl FoldReport {
    /// Records an unknown op once per node.
    pub(crate) fn unknown(&mut self, node: &str, op: &str) {
        let e = NodeOp { node: node.into(), op: op.into() };
        if !self.unknown_ops.contains(&e) {
            self.unknown_ops.push(e);
        }
    }

    /// Records a warning once.
    pub(crate) fn warn(&mut self, msg: String) {
        if !self.warnings.contains(&msg) {
            self.warnings.push(msg);
        }
    }

    /// A short human summary (for `--dry-run`-style output and logs).
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "outputs: {}", self.outputs.join(", "));
        for (pass, counts) in &self.passes {
            let parts: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(s, "{pass}: {}", parts.join(", "));
        }
        if !self.unknown_ops.is_empty() {
            let names: Vec<String> =
                self.unknown_ops.iter().map(|n| format!("{} ({})", n.node, n.op)).collect();
            let _ = writeln!(s, "unknown ops (left as they are): {}", names.join(", "));
        }
        if !self.unsupported_ops.is_empty() {
            let names: Vec<String> =
                self.unsupported_ops.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
            let _ = writeln!(s, "constant inputs but no native kernel: {}", names.join(", "));
        }
        for b in &self.skipped_budget {
            let _ = writeln!(
                s,
                "not folded: {} ({}): needs {} over --{} {}",
                b.node, b.op, b.needed, b.budget, b.limit
            );
        }
        let _ = writeln!(
            s,
            "nodes: {} -> {} ({} iterations, {} removed)",
            self.nodes_before, self.nodes_after, self.iterations, self.removed
        );
        s
    }
}
