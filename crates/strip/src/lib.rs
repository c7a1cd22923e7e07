//! `tf-strip`: remove everything inference does not need from a TensorFlow graph, without
//! breaking it.
//!
//! [`strip`] takes a [`Graph`] and a [`StripConfig`] and returns the stripped graph with a
//! [`StripReport`] that names every node it removed, spliced out or replaced, and why (what
//! `tf-strip --dry-run` and `--report` print). The passes, in order:
//!
//! 1. **Outputs** are `--outputs`, else the SavedModel signature's outputs, else detected:
//!    nodes nothing consumes that are not training or saving machinery ([`outputs`]).
//! 2. **`--set name=value`** turns a placeholder into a `Const` of its own dtype (so that
//!    `tf-fold` can then remove dropout and training branches); **`--inputs t1,t2`** cuts the
//!    graph at those tensors with new `Placeholder`s of each tensor's own dtype and shape
//!    ([`cut`]).
//! 3. **Prune** to what the outputs need through data and control edges. Training machinery
//!    (gradients, optimizer, save/restore, summaries, initializers, assigns) is unreachable from
//!    inference outputs, so it goes here, labelled by kind.
//! 4. **Splice** out debug ops (CheckNumerics, Assert, Print, PrintV2; `--keep-asserts`) and
//!    pass-throughs (Identity, Snapshot, StopGradient, PreventGradient, IdentityN;
//!    `--keep-identity`), and NoOps that group control edges (`--keep-control-deps`), rewiring
//!    their consumers and moving control dependencies onto what the spliced node waited for
//!    ([`splice`]).
//! 5. **Drop control edges that only order pure computations** (the NoOps a TF2 frozen graph
//!    keeps around its variable reads; `--keep-control-deps`), then prune again.
//! 6. **Tidy**: clear devices and `_class` colocations (`--keep-devices` keeps them and only
//!    drops entries naming removed nodes), optionally `_output_shapes`, strip or add default
//!    attributes, and drop library functions nothing references any more ([`tidy`]).
//!
//! `versions`, `debug_info`, the deprecated `version` and the referenced part of `library` are
//! always kept (TensorFlow's own tools lose them). Nodes are never renamed, Const
//! payloads are never decoded or copied, and a stateful op that an output depends on is never
//! removed (the debug ops of step 4 excepted, which is what `--keep-asserts` is for).

#![deny(missing_docs)]

mod config;
mod cut;
mod error;
pub mod outputs;
mod report;
mod splice;
mod tidy;
mod value;

use std::collections::HashSet;

pub use config::{DefaultAttrs, StripConfig};
pub use error::StripError;
pub use report::{Action, ActionKind, NewInput, OutputsFrom, StripReport, Why};
use tf_graph::{Graph, NodeId};
use tf_ops::{Registry, Signatures};
use tf_proto::tensorflow::GraphDef;

/// Strips a GraphDef; see [`strip`].
pub fn strip_graph_def(
    graph: GraphDef,
    cfg: &StripConfig,
) -> Result<(GraphDef, StripReport), StripError> {
    let (g, report) = strip(Graph::from_graph_def(graph)?, cfg)?;
    Ok((g.into_graph_def(), report))
}

/// Cuts `g` at the tensors `inputs` exactly as `tf-strip --inputs` does: each becomes a
/// `Placeholder` of the tensor's own dtype and shape (in place of its node when that node has
/// no other output in use, else a new `<node>_<port>`), and its readers read that instead. A
/// tensor that is already a placeholder's output is left as it is. Nothing is pruned: what
/// only fed the cut tensors stays in the graph, unreachable from the outputs. Returns the
/// placeholders' names, in the order of `inputs`.
pub fn cut_inputs(g: &mut Graph, inputs: &[String]) -> Result<Vec<String>, StripError> {
    let ops = Signatures::owned(Registry::global(), g.library.as_ref());
    let cfg = StripConfig { inputs: inputs.to_vec(), ..Default::default() };
    let mut report = StripReport::default();
    let ids = cut::apply(g, &ops, &cfg, &mut report)?;
    Ok(ids.into_iter().map(|id| g.node(id).name.clone()).collect())
}

/// Removes from `graph` everything the outputs do not need for inference, as configured.
///
/// Errors name the offending node or tensor: an output, `--inputs` tensor, `--set` or
/// `--input-shape` name that does not exist, a `--set` value that does not fit the
/// placeholder's dtype, and so on.
pub fn strip(mut g: Graph, cfg: &StripConfig) -> Result<(Graph, StripReport), StripError> {
    let ops = Signatures::owned(Registry::global(), g.library.as_ref());
    let mut report = StripReport { nodes_before: g.len(), ..Default::default() };

    // 1. What must survive.
    let (outputs, from) = outputs::resolve(&g, &ops, cfg)?;
    report.outputs = outputs.iter().map(ToString::to_string).collect();
    report.outputs_from = from;
    let mut keep = Vec::new();
    for name in &cfg.keep {
        keep.push(g.id(name).ok_or_else(|| StripError::UnknownKeep(name.clone()))?);
    }
    if from == OutputsFrom::Detected {
        report.warn(format!(
            "no --outputs and no signature: using the detected output(s) {}",
            report.outputs.join(", ")
        ));
    }
    let mut roots: Vec<NodeId> =
        outputs.iter().map(|t| g.id(&t.node).expect("outputs were validated")).collect();
    roots.extend(&keep);
    let needed_before = g.reachable(&roots, false);
    let training = outputs::training_closure(&g, &needed_before);
    let saving = outputs::save_consumers(&g);
    let input_check = g.check(Some(Registry::global()));

    // 2. --set, --inputs.
    value::apply_set(&mut g, cfg, &mut report)?;
    let cut = cut::apply(&mut g, &ops, cfg, &mut report)?;
    roots.extend(&cut);
    let stateful_before = stateful_needed(&g, &ops, &roots, cfg);

    // 3. Prune to what the outputs need.
    prune(&mut g, &roots, &mut report, |n, id| {
        if needed_before.get(id.0).copied().unwrap_or(false) {
            Why::AboveCut
        } else {
            outputs::machinery(n).unwrap_or(match n.op.as_str() {
                "Placeholder" | "PlaceholderWithDefault" => Why::UnusedInput,
                _ if saving.contains(&id) => Why::SaveRestore,
                _ if training.get(id.0).copied().unwrap_or(false) => Why::Training,
                _ => Why::Unused,
            })
        }
    });

    // 4. Splice out debug ops and pass-throughs.
    let protected: HashSet<NodeId> = roots.iter().copied().collect();
    splice::splice(
        &mut g,
        &ops,
        &protected,
        splice::Opts {
            debug: !cfg.keep_asserts,
            identity: !cfg.keep_identity,
            noop: !cfg.keep_control_deps,
        },
        &mut report,
    )?;

    // 5. Control edges that only order pure computations, then what they alone kept alive.
    if !cfg.keep_control_deps {
        report.control_edges_removed = g.drop_ordering_edges(Registry::global(), |_| false);
    }
    prune(&mut g, &roots, &mut report, |_, _| Why::OrderingOnly);
    warn_kept_machinery(&g, &protected, &mut report);
    let output_roots = &roots[..roots.len() - cut.len()];
    let fed = g.reachable(output_roots, false);
    for id in &cut {
        if !fed[id.0] {
            report.warn(format!(
                "--inputs: placeholder '{}' is not needed by the outputs",
                g.node(*id).name
            ));
        }
    }

    // 6. Devices, shapes, default attributes, library.
    tidy::tidy(&mut g, cfg, &mut report);

    // Never drop a stateful op an output depends on (debug ops excepted, as asked; what lies
    // above an --inputs cut is no longer a dependency).
    for name in stateful_before {
        if g.id(&name).is_none() {
            return Err(StripError::Internal(format!(
                "stateful node '{name}' that an output depends on was removed"
            )));
        }
    }
    // The result must load in TensorFlow: every reference resolves, ports are in range and no
    // colocation names a missing node. A graph that was already broken is reported as such.
    if let Err(e) = g.check(Some(Registry::global())) {
        return Err(match input_check {
            Err(input) => StripError::InvalidInput(input),
            Ok(()) => StripError::InvalidResult(e),
        });
    }
    // Later stages keep the same outputs without being told again (detected ones are not a
    // choice and are not recorded).
    if from != OutputsFrom::Detected {
        g.mark_outputs(&outputs);
    }
    report.nodes_after = g.len();
    Ok((g, report))
}

/// Training machinery that an output depends on stays (it is stateful); say so, since it is
/// rarely intended in an inference graph.
fn warn_kept_machinery(g: &Graph, protected: &HashSet<NodeId>, report: &mut StripReport) {
    let kept: Vec<String> = g
        .nodes()
        .filter(|(id, n)| {
            !protected.contains(id)
                && matches!(
                    outputs::machinery(n),
                    Some(Why::Assign | Why::Optimizer | Why::SaveRestore | Why::Summary)
                )
        })
        .map(|(_, n)| format!("'{}' ({})", n.name, n.op))
        .collect();
    if !kept.is_empty() {
        let more =
            if kept.len() > 5 { format!(" and {} more", kept.len() - 5) } else { String::new() };
        report.warn(format!(
            "kept training machinery the outputs depend on: {}{more}",
            kept[..kept.len().min(5)].join(", ")
        ));
    }
}

/// Names of stateful nodes the roots depend on, minus the debug ops that step 4 removes.
fn stateful_needed(
    g: &Graph,
    ops: &Signatures<'_>,
    roots: &[NodeId],
    cfg: &StripConfig,
) -> Vec<String> {
    let reach = g.reachable(roots, false);
    g.nodes()
        .filter(|(id, n)| {
            reach[id.0]
                && ops.is_stateful(&n.op) != Some(false)
                && (cfg.keep_asserts || !splice::is_debug_op(&n.op))
        })
        .map(|(_, n)| n.name.clone())
        .collect()
}

/// Removes every node the roots do not depend on, recording why with `why`.
fn prune(
    g: &mut Graph,
    roots: &[NodeId],
    report: &mut StripReport,
    why: impl Fn(&tf_proto::tensorflow::NodeDef, NodeId) -> Why,
) {
    for (id, node) in g.prune_unreachable(roots) {
        let reason = why(&node, id);
        report.push(ActionKind::Removed, &node.name, &node.op, reason, String::new());
    }
}

#[cfg(test)]
mod tests;
