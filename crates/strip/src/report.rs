//! What stripping did, node by node, and why: printed by `--dry-run`, written by `--report`.

use std::fmt::{self, Write as _};

use serde::Serialize;

/// What happened to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Deleted, with nothing reading it any more.
    Removed,
    /// Deleted after pointing its consumers at its input (pass-throughs, debug ops).
    Spliced,
    /// Replaced in place by a node of the same name (a placeholder bound to a Const, a cut
    /// tensor's producer turned into a Placeholder).
    Replaced,
    /// Created (a Placeholder for an `--inputs` tensor that is not output 0 of its node).
    Added,
    /// Changed in place (an existing placeholder's shape).
    Edited,
}

impl ActionKind {
    fn word(self) -> &'static str {
        match self {
            ActionKind::Removed => "remove",
            ActionKind::Spliced => "splice",
            ActionKind::Replaced => "replace",
            ActionKind::Added => "add",
            ActionKind::Edited => "edit",
        }
    }
}

/// Why a node was touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Why {
    /// Not needed by the outputs.
    Unused,
    /// A placeholder the outputs do not need (a training-only input such as labels).
    UnusedInput,
    /// Part of a gradient computation.
    Gradient,
    /// An optimizer update.
    Optimizer,
    /// Checkpoint saving or restoring.
    SaveRestore,
    /// A summary op.
    Summary,
    /// Variable initialization.
    Initializer,
    /// A variable assignment.
    Assign,
    /// Only feeds training or saving machinery (the loss, batch norm's training branch...).
    Training,
    /// A variable the outputs do not read.
    Variable,
    /// Only needed above an `--inputs` cut or by the default of a `--set` placeholder.
    AboveCut,
    /// A placeholder bound to a constant by `--set`.
    BoundBySet,
    /// The producer of an `--inputs` tensor, replaced by a Placeholder.
    CutInput,
    /// `--input-shape` on an existing placeholder.
    InputShape,
    /// CheckNumerics, Assert, Print, PrintV2 (kept with `--keep-asserts`).
    DebugOp,
    /// An Identity-like pass-through (kept with `--keep-identity`).
    PassThrough,
    /// A NoOp that only groups control edges; its readers now wait on its inputs (kept with
    /// `--keep-control-deps`).
    ControlOnly,
    /// Only reached through control edges that ordered pure computations, such as the NoOps
    /// of TF2 frozen graphs (kept with `--keep-control-deps`).
    OrderingOnly,
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Why::Unused => "not needed by the outputs",
            Why::UnusedInput => "input not needed by the outputs",
            Why::Gradient => "training: gradient computation",
            Why::Optimizer => "training: optimizer update",
            Why::SaveRestore => "training: checkpoint save/restore",
            Why::Summary => "training: summary",
            Why::Initializer => "training: variable initialization",
            Why::Assign => "training: variable assignment",
            Why::Training => "training: only feeds training or saving machinery",
            Why::Variable => "variable the outputs do not read",
            Why::AboveCut => {
                "only needed above an --inputs cut or by a --set placeholder's default"
            }
            Why::BoundBySet => "placeholder bound to a constant by --set",
            Why::CutInput => "graph cut here by --inputs",
            Why::InputShape => "shape set by --input-shape",
            Why::DebugOp => "debug op (--keep-asserts keeps it)",
            Why::PassThrough => "pass-through (--keep-identity keeps it)",
            Why::ControlOnly => "NoOp grouping control edges (--keep-control-deps keeps it)",
            Why::OrderingOnly => {
                "only reached through control edges ordering pure computations \
                 (--keep-control-deps keeps it)"
            }
        })
    }
}

/// One node touched by stripping.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Action {
    /// What happened.
    pub kind: ActionKind,
    /// The node's name.
    pub node: String,
    /// Its op (before the change).
    pub op: String,
    /// Why.
    pub why: Why,
    /// Details: where consumers were rewired to, the new node's dtype and shape...
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// Where the outputs came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputsFrom {
    /// `--outputs`.
    #[default]
    Explicit,
    /// The SavedModel signature.
    Signature,
    /// Marked by an earlier stage of the pipeline.
    Marked,
    /// Nodes nothing consumes that are not machinery.
    Detected,
}

/// A Placeholder created for an `--inputs` tensor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewInput {
    /// The tensor as asked (`node:port`).
    pub tensor: String,
    /// The Placeholder's name (the node's own name when it replaced the node).
    pub placeholder: String,
    /// Its dtype (short name).
    pub dtype: String,
    /// Its shape (`[?,224,224,3]`, `<unknown>`).
    pub shape: String,
}

/// Everything one run of [`strip`](crate::strip) did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StripReport {
    /// The output tensors kept.
    pub outputs: Vec<String>,
    /// Where they came from.
    pub outputs_from: OutputsFrom,
    /// Nodes in the input.
    pub nodes_before: usize,
    /// Nodes in the output.
    pub nodes_after: usize,
    /// Every node removed, spliced, replaced or added, in the order it happened.
    pub actions: Vec<Action>,
    /// Placeholders created by `--inputs`.
    pub new_inputs: Vec<NewInput>,
    /// Control edges dropped because they only ordered pure computations.
    pub control_edges_removed: usize,
    /// Nodes whose `device` was cleared.
    pub devices_cleared: usize,
    /// `_class` colocation entries removed.
    pub colocations_removed: usize,
    /// `_output_shapes` attributes removed.
    pub output_shapes_cleared: usize,
    /// Attributes equal to their default that were removed.
    pub default_attrs_stripped: usize,
    /// Default attributes that were added.
    pub default_attrs_added: usize,
    /// Library functions nothing references any more.
    pub functions_removed: Vec<String>,
    /// Things worth telling the user.
    pub warnings: Vec<String>,
}

impl StripReport {
    pub(crate) fn push(
        &mut self,
        kind: ActionKind,
        node: &str,
        op: &str,
        why: Why,
        detail: String,
    ) {
        self.actions.push(Action { kind, node: node.into(), op: op.into(), why, detail });
    }

    pub(crate) fn warn(&mut self, msg: String) {
        self.warnings.push(msg);
    }

    /// Number of actions of one kind.
    pub fn count(&self, kind: ActionKind) -> usize {
        self.actions.iter().filter(|a| a.kind == kind).count()
    }

    /// The actions on a node, if any.
    pub fn action(&self, node: &str) -> Option<&Action> {
        self.actions.iter().find(|a| a.node == node)
    }

    /// A human-readable listing: one line per action, then totals (what `--dry-run` prints).
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        let from = match self.outputs_from {
            OutputsFrom::Explicit => "--outputs",
            OutputsFrom::Signature => "signature",
            OutputsFrom::Marked => "marked by an earlier stage",
            OutputsFrom::Detected => "detected",
        };
        let _ = writeln!(s, "outputs ({from}): {}", self.outputs.join(", "));
        for a in &self.actions {
            let _ = write!(s, "{:<8} {} ({}): {}", a.kind.word(), a.node, a.op, a.why);
            if !a.detail.is_empty() {
                let _ = write!(s, "; {}", a.detail);
            }
            s.push('\n');
        }
        for i in &self.new_inputs {
            let _ = writeln!(
                s,
                "input    {} -> Placeholder '{}' {} {}",
                i.tensor, i.placeholder, i.dtype, i.shape
            );
        }
        for f in &self.functions_removed {
            let _ = writeln!(s, "remove   function {f}: no node calls it any more");
        }
        let _ = writeln!(
            s,
            "nodes: {} -> {} ({} removed, {} spliced, {} replaced, {} added); control edges \
             removed: {}; devices cleared: {}; colocations removed: {}; _output_shapes \
             cleared: {}; default attrs stripped/added: {}/{}; functions removed: {}",
            self.nodes_before,
            self.nodes_after,
            self.count(ActionKind::Removed),
            self.count(ActionKind::Spliced),
            self.count(ActionKind::Replaced),
            self.count(ActionKind::Added),
            self.control_edges_removed,
            self.devices_cleared,
            self.colocations_removed,
            self.output_shapes_cleared,
            self.default_attrs_stripped,
            self.default_attrs_added,
            self.functions_removed.len(),
        );
        s
    }
}
