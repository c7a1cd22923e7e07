//! The transforms that are tf-tools passes: `strip_unused_nodes` (tf-strip), the fold family
//! (tf-fold) and `quantize_weights`/`round_weights` (tf-quant).

use std::collections::BTreeMap;

use tf_fold::{FoldConfig, Pass};
use tf_graph::Graph;
use tf_quant::{Mode, QuantConfig};
use tf_strip::StripConfig;

use crate::{Ctx, Params, Transform};

fn dims(s: &str) -> Result<Vec<i64>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.parse::<i64>().ok().filter(|v| *v >= -1).ok_or(()))
        .collect::<Result<Vec<i64>, ()>>()
        .map_err(|()| format!("shape '{s}': dims must be integers (-1 unknown)"))
}

fn check_type(t: &str) -> Result<(), String> {
    let known = tf_tensor::dtype::from_name(t)
        .or_else(|| tf_tensor::dtype::from_name(&format!("DT_{}", t.to_ascii_uppercase())));
    known.map(|_| ()).ok_or_else(|| format!("type '{t}' is not a TensorFlow dtype"))
}

/// `strip_unused_nodes`: tf-strip with `--inputs` and `--outputs`; `shape`/`shape_for_name`
/// become its `--input-shape`s.
pub(crate) fn strip(
    g: Graph,
    p: &Params<'_>,
    ctx: &mut Ctx<'_>,
    changes: &mut BTreeMap<String, usize>,
) -> Result<Graph, String> {
    for t in p.all("type").iter().chain(&p.all("type_for_name")) {
        check_type(t)?;
    }
    let mut input_shapes = Vec::new();
    if let Some(shape) = p.one("shape")? {
        let d = dims(&shape)?;
        for i in &ctx.cfg.inputs {
            input_shapes.push((tf_graph::TensorName::parse(i).node, d.clone()));
        }
    }
    let (names, shapes) = (p.all("name"), p.all("shape_for_name"));
    if !shapes.is_empty() && shapes.len() != names.len() {
        return Err("shape_for_name must be given once per name".into());
    }
    for (n, s) in names.iter().zip(&shapes) {
        input_shapes.retain(|(m, _)| m != n);
        input_shapes.push((n.clone(), dims(s)?));
    }
    let cfg = StripConfig {
        outputs: ctx.cfg.outputs.clone(),
        signature_outputs: ctx.cfg.signature_outputs.clone(),
        inputs: ctx.cfg.inputs.clone(),
        input_shapes,
        ..StripConfig::default()
    };
    let (g, report) = tf_strip::strip(g, &cfg).map_err(|e| e.to_string())?;
    ctx.warnings.extend(report.warnings.iter().cloned());
    changes.insert("nodes_removed".into(), report.nodes_before.saturating_sub(report.nodes_after));
    Ok(g)
}

/// Adjacent `fold_constants`, `fold_batch_norms`, `fold_old_batch_norms` and
/// `merge_duplicate_nodes`: one tf-fold run with the union of their passes.
pub(crate) fn fold(
    mut g: Graph,
    group: &[Transform],
    ctx: &mut Ctx<'_>,
    changes: &mut BTreeMap<String, usize>,
) -> Result<Graph, String> {
    let mut passes = Vec::new();
    let mut keep = Vec::new();
    let mut max_const_bytes = FoldConfig::default().max_const_bytes;
    for t in group {
        let p = Params { t };
        match t.name.as_str() {
            "fold_constants" => {
                passes.extend([Pass::Constant, Pass::Control, Pass::Algebra, Pass::Dedupe]);
                keep.extend(p.all("exclude_node"));
                let ops = p.all("exclude_op");
                keep.extend(
                    g.nodes().filter(|(_, n)| ops.contains(&n.op)).map(|(_, n)| n.name.clone()),
                );
                if let Some(b) = p.one("max_constant_size_in_bytes")? {
                    max_const_bytes = b
                        .parse()
                        .map_err(|_| format!("max_constant_size_in_bytes: '{b}' is not a size"))?;
                }
                if p.bool("clear_output_shapes", true)? {
                    let mut n = 0;
                    for id in g.ids() {
                        if g.node(id).attr.contains_key("_output_shapes") {
                            g.node_mut(id).attr.remove("_output_shapes");
                            n += 1;
                        }
                    }
                    if n > 0 {
                        changes.insert("output_shapes_cleared".into(), n);
                    }
                }
            }
            "fold_batch_norms" | "fold_old_batch_norms" => passes.push(Pass::BatchNorm),
            _ => passes.push(Pass::Dedupe),
        }
    }
    for name in &keep {
        if g.id(name).is_none() {
            return Err(format!("exclude_node '{name}': no such node"));
        }
    }
    passes.sort();
    passes.dedup();
    let cfg = FoldConfig {
        outputs: ctx.cfg.outputs.clone(),
        signature_outputs: ctx.cfg.signature_outputs.clone(),
        keep,
        passes,
        max_const_bytes,
        ..FoldConfig::default()
    };
    let (g, report) = tf_fold::fold(g, &cfg).map_err(|e| e.to_string())?;
    ctx.warnings.extend(report.warnings.iter().cloned());
    for (pass, whats) in &report.passes {
        for (what, n) in whats {
            *changes.entry(format!("{pass}.{what}")).or_default() += n;
        }
    }
    if report.removed > 0 {
        changes.insert("nodes_removed".into(), report.removed);
    }
    Ok(g)
}

/// `quantize_weights(minimum_size=1024, mode=uint8)` and `round_weights(num_steps=256)`:
/// tf-quant's uint8 (or `mode`) and round:N modes.
pub(crate) fn quant(
    g: Graph,
    p: &Params<'_>,
    ctx: &mut Ctx<'_>,
    changes: &mut BTreeMap<String, usize>,
) -> Result<Graph, String> {
    let cfg = if p.t.name == "round_weights" {
        let steps = p.int("num_steps", 256)?;
        let steps = u32::try_from(steps)
            .ok()
            .filter(|s| (1..=1 << 24).contains(s))
            .ok_or_else(|| format!("num_steps {steps} is not between 1 and 16777216"))?;
        QuantConfig { mode: Mode::Round(steps), min_elements: 16, ..QuantConfig::default() }
    } else {
        let mode: Mode = p.string("mode", "uint8")?.parse().map_err(|e| format!("{e}"))?;
        let min = p.int("minimum_size", 1024)?;
        let min = u64::try_from(min).map_err(|_| format!("minimum_size {min} is negative"))?;
        QuantConfig { mode, min_elements: min, ..QuantConfig::default() }
    };
    let q = tf_quant::quantize_graph_def(g.into_graph_def(), &cfg).map_err(|e| e.to_string())?;
    ctx.warnings.extend(q.report.warnings.iter().cloned());
    changes.insert("weights_quantized".into(), q.report.tensors.len());
    ctx.payloads.push(q.payload);
    Graph::from_graph_def(q.graph).map_err(|e| e.to_string())
}

/// `quantize_nodes`: tf-quant's full-integer rewrite (`tf-quant int8 --activations`). GTT
/// measured activation ranges at run time; here they come from `ranges=FILE` (written by
/// `tf-run --calibrate`), and `fallback_min`/`fallback_max` give every tensor the rewrite needs
/// and the file lacks a fixed range (`input_min`/`input_max` do the same for tensors that are
/// graph inputs, before the fallback). `ignore_op` keeps chains starting with those ops float.
/// `legacy_gtt=frozen|dynamic` emits GTT's own graph form instead (`tf-quant --legacy-gtt`).
pub(crate) fn quantize_nodes(
    g: Graph,
    p: &Params<'_>,
    ctx: &mut Ctx<'_>,
    changes: &mut BTreeMap<String, usize>,
) -> Result<Graph, String> {
    use tf_quant::activations::{calibration_tensors, Activations, Form};
    use tf_quant::ranges::{RangesFile, TensorRange, BINS, FORMAT, VERSION};

    let pair = |lo: &str, hi: &str| -> Result<Option<(f64, f64)>, String> {
        match (p.one(lo)?, p.one(hi)?) {
            (None, None) => Ok(None),
            (Some(_), Some(_)) => {
                let (a, b) = (p.float(lo, 0.0)?, p.float(hi, 0.0)?);
                if a > b {
                    return Err(format!("{lo} {a} is greater than {hi} {b}"));
                }
                Ok(Some((a, b)))
            }
            _ => Err(format!("{lo} and {hi} must be given together")),
        }
    };
    let form = match p.one("legacy_gtt")? {
        None => Form::OneDnn,
        Some(r) => Form::LegacyGtt(r.parse().map_err(|e| format!("legacy_gtt={e}"))?),
    };
    let fallback = pair("fallback_min", "fallback_max")?;
    let input = pair("input_min", "input_max")?;
    let file = p.one("ranges")?;
    if file.is_none() && fallback.is_none() {
        return Err("needs activation ranges: calibrate with tf-run --calibrate and pass \
                    quantize_nodes(ranges=ranges.json), or give fallback_min/fallback_max"
            .to_string());
    }
    let (mut ranges, name) = match &file {
        Some(f) => {
            let text = std::fs::read(f).map_err(|e| format!("ranges={f}: {e}"))?;
            (RangesFile::parse(&text).map_err(|e| format!("ranges={f}: {e}"))?, f.clone())
        }
        None => (
            RangesFile {
                format: FORMAT.to_string(),
                version: VERSION,
                source: "fallback_min/fallback_max".to_string(),
                samples: 0,
                smoke_run_only: false,
                note: None,
                bins: BINS,
                tensors: BTreeMap::new(),
            },
            "fallback_min/fallback_max".to_string(),
        ),
    };
    let fixed = |(lo, hi): (f64, f64)| TensorRange {
        min: lo,
        max: hi,
        count: 0,
        hist_max: lo.abs().max(hi.abs()),
        histogram: vec![0; ranges.bins],
        shape: None,
    };
    let graph = g.into_graph_def();
    let needed = calibration_tensors(&graph).map_err(|e| e.to_string())?;
    let inputs: std::collections::HashSet<&str> = graph
        .node
        .iter()
        .filter(|n| n.op == "Placeholder" || n.op == "PlaceholderWithDefault")
        .map(|n| n.name.as_str())
        .collect();
    let mut filled = 0;
    for t in needed {
        if ranges.tensors.contains_key(&t) {
            continue;
        }
        let node = tf_graph::TensorName::parse(&t).node;
        let r = input.filter(|_| inputs.contains(node.as_str())).or(fallback);
        if let Some(r) = r {
            ranges.tensors.insert(t, fixed(r));
            filled += 1;
        }
    }
    let ignore = p.all("ignore_op");
    let exclude = graph
        .node
        .iter()
        .filter(|n| ignore.contains(&n.op))
        .map(|n| regex::Regex::new(&format!("^{}$", regex::escape(&n.name))))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let cfg = QuantConfig {
        mode: Mode::Int8,
        exclude,
        activations: Some(Activations {
            ranges,
            file: name,
            calibration: Default::default(),
            min_matmul_weights: tf_quant::activations::DEFAULT_MIN_MATMUL_WEIGHTS,
            form,
        }),
        ..QuantConfig::default()
    };
    let q = tf_quant::quantize_graph_def(graph, &cfg).map_err(|e| e.to_string())?;
    ctx.warnings.extend(q.report.warnings.iter().cloned());
    if let Some(a) = &q.report.activations {
        changes.insert("int8_kernels".into(), a.int8.len());
        changes.insert("quantize_nodes_added".into(), a.quantize_nodes);
    }
    if filled > 0 {
        changes.insert("fallback_ranges".into(), filled);
    }
    ctx.payloads.push(q.payload);
    Graph::from_graph_def(q.graph).map_err(|e| e.to_string())
}
