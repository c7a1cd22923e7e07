//! tf-transform: the Graph Transform Tool's `transform_graph`, every transform it registered,
//! on tf-tools' passes and without TensorFlow.
//!
//! A transform string (see [`grammar`]) names transforms that run in order on one graph.
//! Those with a counterpart in the pass libraries run it: `strip_unused_nodes` is tf-strip,
//! `fold_constants`, `fold_batch_norms`, `fold_old_batch_norms` and `merge_duplicate_nodes` are
//! passes of tf-fold (adjacent ones run as one tf-fold call, to a fixed point),
//! `quantize_weights` and `round_weights` are tf-quant's uint8 and round modes, `quantize_nodes`
//! its full-integer rewrite (`tf-quant int8 --activations`) with calibrated or fixed ranges. The others are
//! implemented here: attribute and device edits ([`edit`]) and pattern rewrites
//! ([`rewrite`]), among them `fake_quantize_training`.
//!
//! The input is checked once before any transform (a broken graph is the user's error), and
//! again after each transform. `ignore_errors=true` on a transform passes the graph through
//! that transform unchanged when it fails, with a warning. `versions`, `library` and
//! `debug_info` are kept.

#![deny(missing_docs)]

pub mod edit;
pub mod grammar;
mod passes;
pub mod rewrite;

use std::collections::BTreeMap;

pub use grammar::{parse, Transform};
use tf_graph::{Graph, GraphError, TensorName};
use tf_ops::Registry;
use tf_proto::tensorflow::GraphDef;

/// A transform GTT registered: its name, parameters (besides `ignore_errors`) and a summary.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// The name in transform strings.
    pub name: &'static str,
    /// The parameters it accepts.
    pub params: &'static [&'static str],
}

/// Every transform, in GTT's alphabetical order (plus `obsfucate_names`, GTT's older spelling).
pub const TRANSFORMS: &[Spec] = &[
    Spec { name: "add_default_attributes", params: &[] },
    Spec { name: "backport_concatv2", params: &[] },
    Spec { name: "backport_tensor_array_v3", params: &[] },
    Spec { name: "fake_quantize_training", params: &[] },
    Spec { name: "flatten_atrous_conv", params: &[] },
    Spec { name: "fold_batch_norms", params: &[] },
    Spec {
        name: "fold_constants",
        params: &[
            "exclude_op",
            "exclude_node",
            "clear_output_shapes",
            "max_constant_size_in_bytes",
        ],
    },
    Spec { name: "fold_old_batch_norms", params: &[] },
    Spec {
        name: "freeze_requantization_ranges",
        params: &["min_max_log_file", "min_percentile", "max_percentile"],
    },
    Spec { name: "fuse_pad_and_conv", params: &[] },
    Spec { name: "fuse_resize_and_conv", params: &[] },
    Spec { name: "fuse_resize_pad_and_conv", params: &[] },
    Spec { name: "inline_partitionedcall", params: &[] },
    Spec {
        name: "insert_logging",
        params: &["op", "prefix", "show_op", "show_name", "message", "first_n", "summarize"],
    },
    Spec { name: "merge_duplicate_nodes", params: &[] },
    Spec { name: "obfuscate_names", params: &[] },
    Spec { name: "obsfucate_names", params: &[] },
    Spec {
        name: "quantize_nodes",
        params: &[
            "ranges",
            "input_min",
            "input_max",
            "fallback_min",
            "fallback_max",
            "ignore_op",
            "legacy_gtt",
        ],
    },
    Spec { name: "quantize_weights", params: &["minimum_size", "mode"] },
    Spec { name: "remove_attribute", params: &["attribute_name", "op_name"] },
    Spec { name: "remove_control_dependencies", params: &[] },
    Spec { name: "remove_device", params: &[] },
    Spec { name: "remove_nodes", params: &["op", "max_inputs"] },
    Spec {
        name: "rename_attribute",
        params: &["old_attribute_name", "new_attribute_name", "op_name"],
    },
    Spec { name: "rename_node", params: &["old_node_name", "new_node_name"] },
    Spec { name: "rename_op", params: &["old_op_name", "new_op_name"] },
    Spec { name: "round_weights", params: &["num_steps"] },
    Spec { name: "set_device", params: &["device", "if_default"] },
    Spec { name: "sort_by_execution_order", params: &[] },
    Spec { name: "sparsify_gather", params: &["input_checkpoint", "group_init_node"] },
    Spec {
        name: "strip_unused_nodes",
        params: &["type", "shape", "name", "type_for_name", "shape_for_name"],
    },
];

/// Why a run failed; one line naming the transform, node or parameter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransformError {
    /// The transform string does not parse.
    #[error(transparent)]
    Grammar(#[from] grammar::GrammarError),
    /// A transform name GTT never had.
    #[error("--transforms: unknown transform '{0}' (known: {1})")]
    Unknown(String, String),
    /// A parameter the transform does not take.
    #[error("--transforms: {0} has no parameter '{1}' (known: {2})")]
    UnknownParam(String, String, String),
    /// The input graph is broken.
    #[error("invalid graph: {0}")]
    InvalidInput(#[from] GraphError),
    /// A transform failed.
    #[error("{0}: {1}")]
    Failed(String, String),
}

/// What to run: the validated form of tf-transform's flags.
#[derive(Debug, Clone, Default)]
pub struct TransformConfig {
    /// `--inputs`: tensors the graph is fed at (`name` or `name:k`).
    pub inputs: Vec<String>,
    /// `--outputs`: tensors the graph must still compute.
    pub outputs: Vec<String>,
    /// The outputs of the SavedModel signature that was loaded, used when `outputs` is empty.
    pub signature_outputs: Vec<String>,
    /// The transforms, in order.
    pub transforms: Vec<Transform>,
}

impl TransformConfig {
    /// Parses and checks a transform string: every name and parameter must be known and
    /// `ignore_errors` must be a boolean.
    pub fn with_transforms(mut self, s: &str) -> Result<TransformConfig, TransformError> {
        let ts = grammar::parse(s)?;
        for t in &ts {
            let spec = spec(&t.name).ok_or_else(|| {
                let known: Vec<&str> = TRANSFORMS.iter().map(|s| s.name).collect();
                TransformError::Unknown(t.name.clone(), known.join(", "))
            })?;
            for (p, values) in &t.params {
                if p == "ignore_errors" {
                    if values.iter().any(|v| grammar::parse_bool(v).is_none()) {
                        return Err(TransformError::Failed(
                            format!("--transforms: {}", t.name),
                            format!("ignore_errors must be true or false, not '{}'", values[0]),
                        ));
                    }
                    continue;
                }
                if !spec.params.contains(&p.as_str()) {
                    let mut known: Vec<&str> = spec.params.to_vec();
                    known.push("ignore_errors");
                    return Err(TransformError::UnknownParam(
                        t.name.clone(),
                        p.clone(),
                        known.join(", "),
                    ));
                }
            }
        }
        self.transforms = ts;
        Ok(self)
    }
}

/// The spec of a transform name.
pub fn spec(name: &str) -> Option<&'static Spec> {
    TRANSFORMS.iter().find(|s| s.name == name)
}

/// One transform (or a group of fold transforms run as one) in the report.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Step {
    /// The transform name(s).
    pub transforms: Vec<String>,
    /// Nodes before.
    pub nodes_before: usize,
    /// Nodes after.
    pub nodes_after: usize,
    /// What changed, by kind.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub changes: BTreeMap<String, usize>,
    /// The error passed over with `ignore_errors=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored_error: Option<String>,
}

/// What a run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TransformReport {
    /// Nodes in the input.
    pub nodes_before: usize,
    /// Nodes in the output.
    pub nodes_after: usize,
    /// Each step in order.
    pub steps: Vec<Step>,
    /// Things worth telling the user (also printed by the tool).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// The result of [`transform_graph_def`].
#[derive(Debug)]
pub struct Transformed {
    /// The transformed graph.
    pub graph: GraphDef,
    /// What was done.
    pub report: TransformReport,
    /// Buffers new weights are slices of (tf-quant's payloads), for the writer.
    pub payloads: Vec<bytes::Bytes>,
}

/// What a transform sees besides the graph.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    pub cfg: &'a TransformConfig,
    pub payloads: Vec<bytes::Bytes>,
    pub warnings: Vec<String>,
}

impl Ctx<'_> {
    /// The outputs to protect: `--outputs`, else the signature's, else the marked ones.
    pub fn outputs(&self, g: &Graph) -> Vec<String> {
        if !self.cfg.outputs.is_empty() {
            return self.cfg.outputs.clone();
        }
        if !self.cfg.signature_outputs.is_empty() {
            return self.cfg.signature_outputs.clone();
        }
        g.marked_outputs().iter().map(ToString::to_string).collect()
    }

    /// Node names no structural transform may remove or rename: the inputs and outputs, and
    /// when no outputs are known, every node nothing reads.
    pub fn protected(&self, g: &Graph) -> std::collections::HashSet<String> {
        let mut out: std::collections::HashSet<String> =
            self.cfg.inputs.iter().map(|s| TensorName::parse(s).node).collect();
        let outputs = self.outputs(g);
        out.extend(outputs.iter().map(|s| TensorName::parse(s).node));
        if outputs.is_empty() {
            let c = g.consumers();
            out.extend(g.nodes().filter(|(id, _)| !c.has_any(*id)).map(|(_, n)| n.name.clone()));
        }
        out
    }
}

/// A transform's parameters with GTT's typed getters.
#[derive(Debug)]
pub(crate) struct Params<'a> {
    pub t: &'a Transform,
}

impl Params<'_> {
    pub fn all(&self, p: &str) -> Vec<String> {
        self.t.params.get(p).cloned().unwrap_or_default()
    }
    pub fn one(&self, p: &str) -> Result<Option<String>, String> {
        match self.t.params.get(p).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([v]) => Ok(Some(v.clone())),
            Some(_) => Err(format!("parameter '{p}' given more than once")),
        }
    }
    pub fn string(&self, p: &str, default: &str) -> Result<String, String> {
        Ok(self.one(p)?.unwrap_or_else(|| default.to_string()))
    }
    pub fn required(&self, p: &str) -> Result<String, String> {
        self.one(p)?.ok_or_else(|| format!("parameter '{p}' is required"))
    }
    pub fn int(&self, p: &str, default: i64) -> Result<i64, String> {
        match self.one(p)? {
            None => Ok(default),
            Some(v) => {
                v.trim().parse().map_err(|_| format!("parameter '{p}': '{v}' is not an integer"))
            }
        }
    }
    pub fn float(&self, p: &str, default: f64) -> Result<f64, String> {
        match self.one(p)? {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .ok_or_else(|| format!("parameter '{p}': '{v}' is not a number")),
        }
    }
    pub fn bool(&self, p: &str, default: bool) -> Result<bool, String> {
        match self.one(p)? {
            None => Ok(default),
            Some(v) => grammar::parse_bool(&v)
                .ok_or_else(|| format!("parameter '{p}': '{v}' is not true or false")),
        }
    }
}

/// Transforms that are tf-fold passes; adjacent ones run as one tf-fold call.
fn is_fold(name: &str) -> bool {
    matches!(
        name,
        "fold_constants" | "fold_batch_norms" | "fold_old_batch_norms" | "merge_duplicate_nodes"
    )
}

/// Runs the transforms of `cfg` on a GraphDef, in order.
pub fn transform_graph_def(
    graph: GraphDef,
    cfg: &TransformConfig,
) -> Result<Transformed, TransformError> {
    let mut g = Graph::from_graph_def(graph)?;
    // A broken input is the user's error, reported before any transform runs.
    g.check(Some(Registry::global()))?;
    g.topo_order()?;
    let mut report = TransformReport { nodes_before: g.len(), ..Default::default() };
    let mut ctx = Ctx { cfg, payloads: Vec::new(), warnings: Vec::new() };
    let ts = &cfg.transforms;
    let mut i = 0;
    while i < ts.len() {
        let mut j = i + 1;
        if is_fold(&ts[i].name) {
            while j < ts.len() && is_fold(&ts[j].name) {
                j += 1;
            }
        }
        let group = &ts[i..j];
        let label = group.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(" ");
        let ignore = group.iter().all(|t| {
            t.params
                .get("ignore_errors")
                .and_then(|v| v.last())
                .and_then(|v| grammar::parse_bool(v))
                == Some(true)
        });
        let before = ignore.then(|| g.clone());
        let mut step = Step {
            transforms: group.iter().map(|t| t.name.clone()).collect(),
            nodes_before: g.len(),
            ..Default::default()
        };
        let result = run_group(std::mem::take(&mut g), group, &mut ctx, &mut step.changes)
            .and_then(|new| {
                new.check(Some(Registry::global()))
                    .map_err(|e| format!("produced an invalid graph: {e}"))?;
                Ok(new)
            });
        match result {
            Ok(new) => g = new,
            Err(e) => match before {
                Some(old) => {
                    ctx.warnings
                        .push(format!("{label}: {e} (ignore_errors: graph passed through)"));
                    step.ignored_error = Some(e);
                    step.changes.clear();
                    g = old;
                }
                None => return Err(TransformError::Failed(label, e)),
            },
        }
        step.nodes_after = g.len();
        report.steps.push(step);
        i = j;
    }
    report.nodes_after = g.len();
    report.warnings = ctx.warnings;
    Ok(Transformed { graph: g.into_graph_def(), report, payloads: ctx.payloads })
}

/// Runs one transform, or a group of adjacent fold transforms.
fn run_group(
    g: Graph,
    group: &[Transform],
    ctx: &mut Ctx<'_>,
    changes: &mut BTreeMap<String, usize>,
) -> Result<Graph, String> {
    let t = &group[0];
    if is_fold(&t.name) {
        return passes::fold(g, group, ctx, changes);
    }
    let p = Params { t };
    let mut g = g;
    let mut count = |what: &str, n: usize| {
        if n > 0 {
            *changes.entry(what.to_string()).or_default() += n;
        }
    };
    match t.name.as_str() {
        "add_default_attributes" => count("attributes_added", edit::add_default_attributes(&mut g)),
        "backport_concatv2" => count("nodes_rewritten", rewrite::backport_concatv2(&mut g)?),
        "backport_tensor_array_v3" => {
            count("nodes_rewritten", rewrite::backport_tensor_array_v3(&mut g)?);
        }
        "flatten_atrous_conv" => count("convs_flattened", rewrite::flatten_atrous_conv(&mut g)?),
        "freeze_requantization_ranges" => {
            count("ranges_frozen", rewrite::freeze_requantization_ranges(&mut g, &p)?);
        }
        "fuse_pad_and_conv" => count("convs_fused", rewrite::fuse_conv(&mut g, false, true)?),
        "fuse_resize_and_conv" => count("convs_fused", rewrite::fuse_conv(&mut g, true, false)?),
        "fuse_resize_pad_and_conv" => {
            count("convs_fused", rewrite::fuse_conv(&mut g, true, true)?);
        }
        "inline_partitionedcall" => {
            let done = g
                .inline_calls(Registry::global(), |n, _| n.op == "PartitionedCall")
                .map_err(|e| e.to_string())?;
            count("calls_inlined", done.len());
        }
        "insert_logging" => count("print_nodes_added", rewrite::insert_logging(&mut g, &p)?),
        "obfuscate_names" | "obsfucate_names" => {
            let keep = ctx.protected(&g);
            count("nodes_renamed", edit::obfuscate_names(&mut g, &keep)?);
        }
        "quantize_nodes" => g = passes::quantize_nodes(g, &p, ctx, changes)?,
        "fake_quantize_training" => {
            count("fake_quant_nodes_added", rewrite::fake_quantize_training(&mut g)?);
        }
        "quantize_weights" | "round_weights" => {
            g = passes::quant(g, &p, ctx, changes)?;
        }
        "remove_attribute" => count("attributes_removed", edit::remove_attribute(&mut g, &p)?),
        "remove_control_dependencies" => {
            count("control_inputs_removed", edit::remove_control_dependencies(&mut g));
        }
        "remove_device" => count("devices_cleared", edit::set_device(&mut g, "", false)),
        "remove_nodes" => {
            let keep = ctx.protected(&g);
            count("nodes_removed", rewrite::remove_nodes(&mut g, &p, &keep)?);
        }
        "rename_attribute" => count("attributes_renamed", edit::rename_attribute(&mut g, &p)?),
        "rename_node" => count("nodes_renamed", edit::rename_node(&mut g, &p)?),
        "rename_op" => count("nodes_rewritten", edit::rename_op(&mut g, &p)?),
        "set_device" => {
            let device = p.string("device", "")?;
            count("devices_set", edit::set_device(&mut g, &device, p.bool("if_default", false)?));
        }
        "sort_by_execution_order" => {
            let (sorted, moved) = edit::sort_by_execution_order(g)?;
            g = sorted;
            count("nodes_moved", moved);
        }
        "sparsify_gather" => {
            let keep = ctx.protected(&g);
            count("gathers_sparsified", rewrite::sparsify_gather(&mut g, &p, &keep)?);
        }
        "strip_unused_nodes" => g = passes::strip(g, &p, ctx, changes)?,
        other => return Err(format!("unknown transform '{other}'")),
    }
    Ok(g)
}

#[cfg(test)]
mod tests;
