//! Transforms that rewrite patterns of nodes: op backports, conv fusions, atrous flattening,
//! logging, node removal.
//!
//! Each rewrite leaves a pattern alone when one of its inner nodes is read outside the
//! pattern or is a graph input or output, so no reader is ever left dangling (GTT cancels
//! such replacements the same way).

use std::collections::HashSet;

use tf_graph::{Graph, Input, NodeId, TensorName};
use tf_ops::Registry;
use tf_proto::tensorflow::{AttrValue, DataType, NodeDef};
use tf_tensor::{dt, Tensor};

use crate::Params;

fn data_inputs(n: &NodeDef) -> Vec<&str> {
    n.input.iter().map(String::as_str).filter(|s| !s.starts_with('^')).collect()
}

fn control_inputs(n: &NodeDef) -> Vec<String> {
    n.input.iter().filter(|s| s.starts_with('^')).cloned().collect()
}

/// The node a data input names, if it exists.
fn producer(g: &Graph, input: &str) -> Option<NodeId> {
    g.id(Input::parse(input).node())
}

/// Whether `id` is read exactly once, by a data edge from port 0, and by no control edge.
fn only_reader(g: &Graph, id: NodeId) -> bool {
    let c = g.consumers();
    c.data_out_degree(id) == 1 && c.control_of(id).is_empty() && c.read_ports(id).all(|p| p == 0)
}

fn const_tensor(g: &Graph, input: &str) -> Option<Tensor> {
    let n = g.node(producer(g, input)?);
    if n.op != "Const" {
        return None;
    }
    Tensor::from_proto(n.attr_opt_tensor("value")?).ok()
}

fn const_node(name: &str, t: &Tensor) -> NodeDef {
    let mut n = NodeDef { name: name.to_string(), op: "Const".into(), ..Default::default() };
    n.attr.insert(
        "dtype".into(),
        AttrValue { value: Some(tf_proto::tensorflow::attr_value::Value::Type(t.dtype)) },
    );
    n.attr.insert("value".into(), t.to_proto().into());
    n
}

/// `backport_concatv2`: `ConcatV2(values..., axis)` becomes `Concat(axis, values...)`.
pub fn backport_concatv2(g: &mut Graph) -> Result<usize, String> {
    let mut n = 0;
    for id in g.ids() {
        if g.node(id).op != "ConcatV2" {
            continue;
        }
        let node = g.node(id);
        let mut data: Vec<String> = data_inputs(node).into_iter().map(String::from).collect();
        let Some(axis) = data.pop() else { continue };
        let mut inputs = vec![axis];
        inputs.extend(data);
        inputs.extend(control_inputs(node));
        g.set_inputs(id, inputs);
        let mut m = g.node_mut(id);
        m.op = "Concat".into();
        m.attr.remove("Tidx");
        n += 1;
    }
    Ok(n)
}

/// `backport_tensor_array_v3`: the V3 TensorArray ops become their V2 forms. The V3
/// constructors' flow output (`:1`) does not exist in V2: its readers get a Const 1.0
/// (`<node>/replacement_flow_node`), as GTT does. Attributes V2 does not have are dropped.
pub fn backport_tensor_array_v3(g: &mut Graph) -> Result<usize, String> {
    let reg = Registry::global();
    let mut n = 0;
    for id in g.ids() {
        let op = g.node(id).op.clone();
        let Some(base) = op.strip_suffix("V3").filter(|b| b.starts_with("TensorArray")) else {
            continue;
        };
        let new_op = format!("{base}V2");
        let Some(def) = reg.get(&new_op) else { continue };
        if matches!(op.as_str(), "TensorArrayV3" | "TensorArrayGradV3")
            && !g.consumers().of_output(id, 1).is_empty()
        {
            let name = g.unique_name(&format!("{}/replacement_flow_node", g.node(id).name));
            let one = Tensor::from_values(dt::FLOAT, &[], &[1.0f32]).map_err(|e| e.to_string())?;
            let mut c = const_node(&name, &one);
            c.device = g.node(id).device.clone();
            g.add_node(c).map_err(|e| e.to_string())?;
            let from = TensorName { node: g.node(id).name.clone(), port: 1 };
            g.rewire(&from, &TensorName { node: name, port: 0 });
        }
        let allowed: HashSet<&str> = def.attr.iter().map(|a| a.name.as_str()).collect();
        let mut m = g.node_mut(id);
        m.op = new_op;
        m.attr.retain(|k, _| k.starts_with('_') || allowed.contains(k.as_str()));
        n += 1;
    }
    Ok(n)
}

fn is_plain_nhwc_conv(n: &NodeDef) -> bool {
    n.attr_opt_str("data_format").is_none_or(|f| f == "NHWC")
        && n.attr_opt_list_i64("dilations").is_none_or(|d| d.iter().all(|&x| x == 1))
        && matches!(n.attr_opt_str("padding"), Some("SAME" | "VALID"))
}

/// `fuse_pad_and_conv`, `fuse_resize_and_conv`, `fuse_resize_pad_and_conv`:
/// `Conv2D([MirrorPad]([ResizeBilinear](x, size), p), W)` becomes `FusedPadConv2D(x, p, W)` or
/// `FusedResizeAndPadConv2D(x, size, p, W)` under the conv's name. A resize with
/// `half_pixel_centers` is left alone (the fused kernel has no such mode).
pub fn fuse_conv(g: &mut Graph, resize: bool, pad: bool) -> Result<usize, String> {
    let mut n = 0;
    for id in g.ids() {
        if !g.is_live(id) || g.node(id).op != "Conv2D" || !is_plain_nhwc_conv(g.node(id)) {
            continue;
        }
        let conv = g.node(id);
        let [x, filter] = data_inputs(conv)[..] else { continue };
        let Some(first) = producer(g, x)
            .filter(|_| Input::parse(x) == Input::Data { node: Input::parse(x).node(), port: 0 })
        else {
            continue;
        };
        let mut chain: Vec<NodeId> = Vec::new();
        let (mut pad_node, mut resize_node) = (None, None);
        let mut cur = first;
        if pad {
            if g.node(cur).op != "MirrorPad" {
                continue;
            }
            pad_node = Some(cur);
            chain.push(cur);
            let Some(&inner) = data_inputs(g.node(cur)).first() else { continue };
            match producer(g, inner) {
                Some(p) => cur = p,
                None => continue,
            }
            if resize
                && Input::parse(inner)
                    != (Input::Data { node: Input::parse(inner).node(), port: 0 })
            {
                continue;
            }
        }
        if resize {
            let r = g.node(cur);
            if r.op != "ResizeBilinear" || r.attr_opt_bool("half_pixel_centers") == Some(true) {
                continue;
            }
            resize_node = Some(cur);
            chain.push(cur);
        }
        if !chain.iter().all(|&c| only_reader(g, c)) {
            continue;
        }
        let conv = g.node(id);
        let mut attrs = std::collections::BTreeMap::new();
        for k in ["T", "strides", "padding"] {
            if let Some(v) = conv.attr.get(k) {
                attrs.insert(k.to_string(), v.clone());
            }
        }
        let mut inputs: Vec<String> = Vec::new();
        let mut controls: Vec<String> = control_inputs(conv);
        let mut extra = None;
        if let Some(r) = resize_node {
            let rn = g.node(r);
            let [rx, size] = data_inputs(rn)[..] else { continue };
            inputs.extend([rx.to_string(), size.to_string()]);
            controls.extend(control_inputs(rn));
            let align = rn.attr_opt_bool("align_corners").unwrap_or(false);
            attrs.insert("resize_align_corners".into(), align.into());
        }
        match pad_node {
            Some(p) => {
                let pn = g.node(p);
                let [px, paddings] = data_inputs(pn)[..] else { continue };
                if resize_node.is_none() {
                    inputs.push(px.to_string());
                }
                inputs.push(paddings.to_string());
                controls.extend(control_inputs(pn));
                let mode = pn.attr_opt_str("mode").unwrap_or("REFLECT").to_string();
                attrs.insert("mode".into(), mode.into());
            }
            None => {
                let name = g.unique_name(&format!("{}/zero_paddings", conv.name));
                let zeros = Tensor::from_values(dt::INT32, &[4, 2], &[0i32; 8])
                    .map_err(|e| e.to_string())?;
                inputs.push(name.clone());
                attrs.insert("mode".into(), "REFLECT".into());
                extra = Some(const_node(&name, &zeros));
            }
        }
        inputs.push(filter.to_string());
        let op = if resize { "FusedResizeAndPadConv2D" } else { "FusedPadConv2D" };
        if let Some(mut c) = extra {
            c.device = g.node(id).device.clone();
            g.add_node(c).map_err(|e| e.to_string())?;
        }
        for c in chain {
            g.remove_node(c);
        }
        let mut seen = HashSet::new();
        controls.retain(|c| seen.insert(c.clone()));
        inputs.extend(controls);
        g.set_inputs(id, inputs);
        let mut m = g.node_mut(id);
        m.op = op.into();
        m.attr.retain(|k, _| k.starts_with('_'));
        m.attr.extend(attrs);
        n += 1;
    }
    Ok(n)
}

/// `flatten_atrous_conv`: `BatchToSpaceND(conv(SpaceToBatchND(x, block, pad), W), block,
/// crops)` with a constant filter becomes one conv with the filter dilated by the block
/// (zeros between taps), under the BatchToSpaceND's name. Unlike GTT, which always writes
/// padding SAME, the pattern is flattened only when paddings minus crops are exactly SAME's
/// or VALID's padding for the dilated filter, and the padding chosen is that one.
pub fn flatten_atrous_conv(g: &mut Graph) -> Result<usize, String> {
    let mut n = 0;
    for id in g.ids() {
        if !g.is_live(id) || g.node(id).op != "BatchToSpaceND" {
            continue;
        }
        let b2s = g.node(id);
        let [conv_in, block_in, crops_in] = data_inputs(b2s)[..] else { continue };
        let Some(conv_id) = producer(g, conv_in) else { continue };
        let conv = g.node(conv_id);
        if !matches!(conv.op.as_str(), "Conv2D" | "DepthwiseConv2dNative")
            || !is_plain_nhwc_conv(conv)
            || conv.attr_opt_str("padding") != Some("VALID")
            || conv.attr_opt_list_i64("strides").is_some_and(|s| s.iter().any(|&x| x != 1))
        {
            continue;
        }
        let [s2b_in, filter_in] = data_inputs(conv)[..] else { continue };
        let Some(s2b_id) = producer(g, s2b_in) else { continue };
        let s2b = g.node(s2b_id);
        if s2b.op != "SpaceToBatchND" || !only_reader(g, conv_id) || !only_reader(g, s2b_id) {
            continue;
        }
        let [x, block2_in, pads_in] = data_inputs(s2b)[..] else { continue };
        let x = x.to_string();
        let ints = |s: &str| -> Option<Vec<i64>> {
            let t = const_tensor(g, s)?;
            match t.dtype {
                dt::INT32 => t.values::<i32>().ok().map(|v| v.into_iter().map(i64::from).collect()),
                dt::INT64 => t.values::<i64>().ok(),
                _ => None,
            }
        };
        let (Some(block), Some(block2), Some(pads), Some(crops)) =
            (ints(block_in), ints(block2_in), ints(pads_in), ints(crops_in))
        else {
            continue;
        };
        let Some(w) = const_tensor(g, filter_in) else { continue };
        if block.len() != 2 || block != block2 || pads.len() != 4 || crops.len() != 4 {
            continue;
        }
        if w.dtype != dt::FLOAT
            || w.shape.len() != 4
            || block.iter().any(|&b| !(1..=64).contains(&b))
        {
            continue;
        }
        let (kh, kw, ci, co) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3]);
        let (uh, uw) = ((kh - 1) * block[0] + 1, (kw - 1) * block[1] + 1);
        let net: Vec<i64> = pads.iter().zip(&crops).map(|(p, c)| p - c).collect();
        let same = |k: i64| [(k - 1) / 2, (k - 1) - (k - 1) / 2];
        let padding = if net.iter().all(|&v| v == 0) {
            "VALID"
        } else if net[..2] == same(uh) && net[2..] == same(uw) {
            "SAME"
        } else {
            continue;
        };
        if kh < 1 || kw < 1 || ci < 1 || co < 1 {
            continue;
        }
        let Some(size) = (uh * uw).checked_mul(ci * co).filter(|&s| s <= 1 << 28) else {
            continue;
        };
        let src = w.values::<f32>().map_err(|e| e.to_string())?;
        let mut up = vec![0f32; size as usize];
        for h in 0..kh {
            for ww in 0..kw {
                for c in 0..ci * co {
                    let from = ((h * kw + ww) * ci * co + c) as usize;
                    let to = (((h * block[0]) * uw + ww * block[1]) * ci * co + c) as usize;
                    up[to] = src[from];
                }
            }
        }
        let up =
            Tensor::from_values(dt::FLOAT, &[uh, uw, ci, co], &up).map_err(|e| e.to_string())?;
        let filter_id = producer(g, filter_in).expect("a const above");
        let filter_name = if only_reader(g, filter_id) {
            g.node_mut(filter_id).attr.insert("value".into(), up.to_proto().into());
            g.node(filter_id).name.clone()
        } else {
            let name = g.unique_name(&format!("{}/flattened_filter", g.node(filter_id).name));
            let mut c = const_node(&name, &up);
            c.device = g.node(filter_id).device.clone();
            g.add_node(c).map_err(|e| e.to_string())?;
            name
        };
        let conv = g.node(conv_id).clone();
        let b2s = g.node(id);
        let mut controls = control_inputs(b2s);
        controls.extend(control_inputs(&conv));
        controls.extend(control_inputs(g.node(s2b_id)));
        let mut seen = HashSet::new();
        controls.retain(|c| seen.insert(c.clone()));
        let mut new = NodeDef {
            name: b2s.name.clone(),
            op: conv.op.clone(),
            device: conv.device.clone(),
            input: [x, filter_name].into_iter().chain(controls).collect(),
            ..Default::default()
        };
        for k in ["T", "strides", "data_format", "use_cudnn_on_gpu"] {
            if let Some(v) = conv.attr.get(k) {
                new.attr.insert(k.into(), v.clone());
            }
        }
        new.attr.insert("padding".into(), padding.into());
        g.remove_node(conv_id);
        g.remove_node(s2b_id);
        g.replace_node(id, new);
        n += 1;
    }
    Ok(n)
}

/// `insert_logging(op, prefix, show_op, show_name, message, first_n=-1, summarize=1024)`:
/// a `Print` node `<node>__print__` after every matching node whose outputs are read; the
/// readers of output 0 read the Print instead, so it runs.
pub(crate) fn insert_logging(g: &mut Graph, p: &Params<'_>) -> Result<usize, String> {
    let ops = p.all("op");
    let prefixes = p.all("prefix");
    let message = p.string("message", "")?;
    let show_name = p.bool("show_name", false)?;
    let show_op = p.bool("show_op", false)?;
    let first_n = p.int("first_n", -1)?;
    let summarize = p.int("summarize", 1024)?;
    let reg = Registry::global();
    let mut n = 0;
    for id in g.ids() {
        let node = g.node(id);
        let ports: Vec<u32> = g.consumers().read_ports(id).collect();
        if ports.is_empty()
            || (!ops.is_empty() && !ops.contains(&node.op))
            || (!prefixes.is_empty() && !prefixes.iter().any(|p| node.name.starts_with(p.as_str())))
        {
            continue;
        }
        let Ok(types) = reg.output_types_with_library(node, g.library.as_ref()) else { continue };
        if types.is_empty() || ports.iter().any(|&p| p as usize >= types.len()) {
            continue;
        }
        let name = g.unique_name(&format!("{}__print__", node.name));
        let mut text = String::new();
        if show_op {
            text += &format!(";{};", node.op);
        }
        if show_name {
            text += &format!(";{name};");
        }
        text += &message;
        let inputs = std::iter::once(node.name.clone())
            .chain(ports.iter().map(|&p| Input::Data { node: &node.name, port: p }.to_string()));
        let mut print = NodeDef {
            name: name.clone(),
            op: "Print".into(),
            input: inputs.collect(),
            ..Default::default()
        };
        let ty = |t: i32| DataType::try_from(t).unwrap_or(DataType::DtInvalid);
        print.attr.insert("T".into(), ty(types[0]).into());
        print.attr.insert(
            "U".into(),
            ports.iter().map(|&p| ty(types[p as usize])).collect::<Vec<_>>().into(),
        );
        print.attr.insert("message".into(), text.into());
        print.attr.insert("first_n".into(), first_n.into());
        print.attr.insert("summarize".into(), summarize.into());
        let inputs = print.input.clone();
        let from = TensorName { node: node.name.clone(), port: 0 };
        let pid = g.add_node(print).map_err(|e| e.to_string())?;
        g.rewire(&from, &TensorName { node: name, port: 0 });
        g.set_inputs(pid, inputs);
        n += 1;
    }
    Ok(n)
}

/// `remove_nodes(op=..., max_inputs=1)`: nodes of these ops with 1 to `max_inputs` data
/// inputs are spliced out: readers of their output read their first input instead, `^node`
/// becomes `^first input`. Unlike GTT, the node's own control inputs move to its readers
/// instead of being dropped. Graph inputs and outputs (`keep`) stay, as do nodes whose other
/// outputs are read.
pub(crate) fn remove_nodes(
    g: &mut Graph,
    p: &Params<'_>,
    keep: &HashSet<String>,
) -> Result<usize, String> {
    let ops = p.all("op");
    if ops.is_empty() {
        return Err("parameter 'op' is required".into());
    }
    let max_inputs = p.int("max_inputs", 1)?;
    let mut n = 0;
    for id in g.ids() {
        let node = g.node(id);
        if !ops.contains(&node.op) || keep.contains(&node.name) {
            continue;
        }
        let data = data_inputs(node);
        if data.is_empty() || data.len() as i64 > max_inputs {
            continue;
        }
        let first = TensorName::parse(data[0]);
        if first.node == node.name || g.consumers().read_ports(id).any(|p| p != 0) {
            continue;
        }
        let name = node.name.clone();
        let controls = control_inputs(node);
        let readers: Vec<NodeId> = g.consumers().of_node(id).collect();
        g.rewire(&TensorName { node: name.clone(), port: 0 }, &first);
        g.replace_control_input(&name, &first.node);
        for r in readers {
            for c in &controls {
                if c[1..] != *g.node(r).name {
                    g.add_control_input(r, &c[1..]);
                }
            }
        }
        g.remove_node(id);
        n += 1;
    }
    Ok(n)
}

/// `freeze_requantization_ranges(min_max_log_file, min_percentile=5, max_percentile=5)`:
/// each `RequantizationRange` whose ranges were logged (lines with
/// `;<node>__print__;__requant_min_max:[min][max]`) becomes two Consts, the given percentiles
/// of the logged minimums and maximums.
pub(crate) fn freeze_requantization_ranges(g: &mut Graph, p: &Params<'_>) -> Result<usize, String> {
    let path = p.required("min_max_log_file")?;
    let min_pct = p.float("min_percentile", 5.0)?;
    let max_pct = p.float("max_percentile", 5.0)?;
    let text = std::fs::read(&path).map_err(|e| format!("min_max_log_file '{path}': {e}"))?;
    let text = String::from_utf8_lossy(&text);
    let mut logged: std::collections::HashMap<String, (Vec<f32>, Vec<f32>)> = Default::default();
    for line in text.lines() {
        let Some(at) = line.find("__requant_min_max:") else { continue };
        let head = &line[..at];
        let Some(name) = head.trim_end_matches(';').rsplit(';').next() else { continue };
        let Some(name) = name.strip_suffix("__print__") else { continue };
        let rest = &line[at + "__requant_min_max:".len()..];
        let nums: Vec<f32> = rest
            .split(['[', ']'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.parse().ok())
            .collect();
        if let [lo, hi, ..] = nums[..] {
            let e = logged.entry(name.to_string()).or_default();
            e.0.push(lo);
            e.1.push(hi);
        }
    }
    let pick = |v: &mut Vec<f32>, pct: f64, low: bool| -> f32 {
        v.sort_by(f32::total_cmp);
        let k = ((v.len() as f64) * pct / 100.0) as usize;
        let k = k.min(v.len() - 1);
        if low {
            v[k]
        } else {
            v[v.len() - 1 - k]
        }
    };
    let mut n = 0;
    for id in g.ids() {
        if g.node(id).op != "RequantizationRange" {
            continue;
        }
        let name = g.node(id).name.clone();
        let Some((mins, maxs)) = logged.get_mut(&name) else { continue };
        let (lo, hi) = (pick(mins, min_pct, true), pick(maxs, max_pct, false));
        for (port, v, suffix) in [(0, lo, "requant_range_min"), (1, hi, "requant_range_max")] {
            let cname = g.unique_name(&format!("{name}/{suffix}"));
            let t = Tensor::from_values(dt::FLOAT, &[], &[v]).map_err(|e| e.to_string())?;
            g.add_node(const_node(&cname, &t)).map_err(|e| e.to_string())?;
            g.rewire(
                &TensorName { node: name.clone(), port },
                &TensorName { node: cname, port: 0 },
            );
        }
        if !g.consumers().has_any(id) {
            g.remove_node(id);
        }
        n += 1;
    }
    Ok(n)
}

/// `sparsify_gather(input_checkpoint, group_init_node=group_deps)`: `Gather`/`GatherV2` (axis
/// 0) of float weights of shape `[N, 1]` (a `Const`, or a `Variable`/`VariableV2` read from
/// `input_checkpoint`, directly or through an `Identity`) becomes a hash-table lookup of the
/// weights that are not ~0 (|w| ≥ 1e-5): `<w>/indices` and `<w>/values` Consts fill a
/// `HashTableV2` through `InitializeTableV2` (run by the `group_init_node` NoOp, created if
/// missing), and the gather becomes `LookupTableFindV2` (default 0) + `ExpandDims(-1)` under
/// its own name. Int32 ids are cast to int64 first.
pub(crate) fn sparsify_gather(
    g: &mut Graph,
    p: &Params<'_>,
    keep: &HashSet<String>,
) -> Result<usize, String> {
    let group = p.string("group_init_node", "group_deps")?;
    let ckpt = match p.one("input_checkpoint")? {
        Some(path) => Some(
            tf_ckpt::Checkpoint::open(std::path::Path::new(&path))
                .map_err(|e| format!("input_checkpoint '{path}': {e}"))?,
        ),
        None => None,
    };
    let mut inits = Vec::new();
    let mut n = 0;
    for id in g.ids() {
        if !g.is_live(id) || !matches!(g.node(id).op.as_str(), "Gather" | "GatherV2") {
            continue;
        }
        let gather = g.node(id).clone();
        let data = data_inputs(&gather);
        if data.len() < 2 {
            continue;
        }
        if gather.op == "GatherV2" {
            let axis = data.get(2).and_then(|a| const_tensor(g, a));
            let zero = axis.is_some_and(|t| match t.dtype {
                dt::INT32 => t.values::<i32>().is_ok_and(|v| v == [0]),
                dt::INT64 => t.values::<i64>().is_ok_and(|v| v == [0]),
                _ => false,
            });
            if !zero || gather.attr_opt_i64("batch_dims").is_some_and(|b| b != 0) {
                continue;
            }
        }
        let Some(mut w_id) = producer(g, data[0]) else { continue };
        let mut chain = vec![];
        if g.node(w_id).op == "Identity" {
            chain.push(w_id);
            match data_inputs(g.node(w_id)).first().and_then(|s| producer(g, s)) {
                Some(p) => w_id = p,
                None => continue,
            }
        }
        let w = g.node(w_id);
        let tensor = match w.op.as_str() {
            "Const" => w.attr_opt_tensor("value").and_then(|t| Tensor::from_proto(t).ok()),
            "Variable" | "VariableV2" => match &ckpt {
                Some(c) => {
                    Some(c.read(&w.name).map_err(|e| format!("variable '{}': {e}", w.name))?)
                }
                None => continue,
            },
            _ => None,
        };
        let Some(t) = tensor else { continue };
        if t.dtype != dt::FLOAT || t.shape.len() != 2 || t.shape[1] != 1 {
            continue;
        }
        let values = t.values::<f32>().map_err(|e| e.to_string())?;
        let (idx, vals): (Vec<i64>, Vec<f32>) = values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.abs() >= 1e-5)
            .map(|(i, v)| (i as i64, *v))
            .unzip();
        let base = w.name.clone();
        let name = gather.name.clone();
        let k = idx.len() as i64;
        let fresh = |g: &Graph, s: String| g.unique_name(&s);
        let (ni, nv, nt, nit) = (
            fresh(g, format!("{base}/indices")),
            fresh(g, format!("{base}/values")),
            fresh(g, format!("{base}/HashTable")),
            fresh(g, format!("{base}/InitializeTable")),
        );
        let it = Tensor::from_values(dt::INT64, &[k], &idx).map_err(|e| e.to_string())?;
        let vt = Tensor::from_values(dt::FLOAT, &[k], &vals).map_err(|e| e.to_string())?;
        g.add_node(const_node(&ni, &it)).map_err(|e| e.to_string())?;
        g.add_node(const_node(&nv, &vt)).map_err(|e| e.to_string())?;
        let mut table =
            NodeDef { name: nt.clone(), op: "HashTableV2".into(), ..Default::default() };
        table.attr.insert("key_dtype".into(), DataType::DtInt64.into());
        table.attr.insert("value_dtype".into(), DataType::DtFloat.into());
        table.attr.insert("shared_name".into(), format!("sparsify_gather/{nt}").into());
        g.add_node(table).map_err(|e| e.to_string())?;
        let mut init = NodeDef {
            name: nit.clone(),
            op: "InitializeTableV2".into(),
            input: vec![nt.clone(), ni, nv],
            ..Default::default()
        };
        init.attr.insert("Tkey".into(), DataType::DtInt64.into());
        init.attr.insert("Tval".into(), DataType::DtFloat.into());
        g.add_node(init).map_err(|e| e.to_string())?;
        inits.push(nit);
        let mut ids = data[1].to_string();
        if gather.attr_opt_type("Tindices") != Some(DataType::DtInt64) {
            let cast_name = fresh(g, format!("{name}/ids_int64"));
            let mut cast = NodeDef {
                name: cast_name.clone(),
                op: "Cast".into(),
                input: vec![ids],
                device: gather.device.clone(),
                ..Default::default()
            };
            cast.attr.insert("SrcT".into(), DataType::DtInt32.into());
            cast.attr.insert("DstT".into(), DataType::DtInt64.into());
            cast.attr.insert("Truncate".into(), false.into());
            g.add_node(cast).map_err(|e| e.to_string())?;
            ids = cast_name;
        }
        let zero = Tensor::from_values(dt::FLOAT, &[], &[0f32]).map_err(|e| e.to_string())?;
        let nd = fresh(g, format!("{name}/Const"));
        g.add_node(const_node(&nd, &zero)).map_err(|e| e.to_string())?;
        let nl = fresh(g, format!("{name}/LookupTableFind"));
        let mut lookup = NodeDef {
            name: nl.clone(),
            op: "LookupTableFindV2".into(),
            input: vec![nt, ids, nd],
            device: gather.device.clone(),
            ..Default::default()
        };
        lookup.attr.insert("Tin".into(), DataType::DtInt64.into());
        lookup.attr.insert("Tout".into(), DataType::DtFloat.into());
        g.add_node(lookup).map_err(|e| e.to_string())?;
        let minus1 = Tensor::from_values(dt::INT32, &[], &[-1i32]).map_err(|e| e.to_string())?;
        let ne = fresh(g, format!("{name}/ExpandDims/Const"));
        g.add_node(const_node(&ne, &minus1)).map_err(|e| e.to_string())?;
        let mut expand = NodeDef {
            name: name.clone(),
            op: "ExpandDims".into(),
            input: [nl, ne].into_iter().chain(control_inputs(&gather)).collect(),
            device: gather.device.clone(),
            ..Default::default()
        };
        expand.attr.insert("T".into(), DataType::DtFloat.into());
        expand.attr.insert("Tdim".into(), DataType::DtInt32.into());
        g.replace_node(id, expand);
        // The weights (and their Identity) go when nothing else reads them.
        chain.push(w_id);
        for c in chain {
            if g.is_live(c) && !g.consumers().has_any(c) && !keep.contains(&g.node(c).name) {
                g.remove_node(c);
            }
        }
        n += 1;
    }
    if !inits.is_empty() {
        let gid = match g.id(&group) {
            Some(gid) if g.node(gid).op == "NoOp" => gid,
            Some(_) => return Err(format!("group_init_node '{group}' is not a NoOp")),
            None => g
                .add_node(NodeDef { name: group.clone(), op: "NoOp".into(), ..Default::default() })
                .map_err(|e| e.to_string())?,
        };
        for i in &inits {
            g.add_control_input(gid, i);
        }
    }
    Ok(n)
}

/// GTT's `FindType` for a tensor a MatMul/Conv2D reads: whether it can be negative and the
/// range its producer fixes (Relu6 [0, 6], Sigmoid [0, 1], Tanh [-1, 1]), looking through
/// Identity, Reshape and pools; anything else (weights, graph inputs) is signed, range unknown.
fn fake_quant_type(g: &Graph, input: &str, depth: usize) -> (bool, Option<(f32, f32)>) {
    let Some(id) = producer(g, input) else { return (true, None) };
    let n = g.node(id);
    match n.op.as_str() {
        "Relu" => (false, None),
        "Relu6" => (false, Some((0.0, 6.0))),
        "Sigmoid" => (false, Some((0.0, 1.0))),
        "Tanh" => (true, Some((-1.0, 1.0))),
        "Identity" | "Reshape" | "MaxPool" | "AvgPool" | "MaxPool3D" | "AvgPool3D"
            if depth < 256 =>
        {
            match data_inputs(n).first() {
                Some(i) => fake_quant_type(g, i, depth + 1),
                None => (true, None),
            }
        }
        _ => (true, None),
    }
}

/// `fake_quantize_training`: every float input of every `MatMul` and `Conv2D` (not under
/// `gradients/`) goes through an 8-bit fake quantization, one per tensor however many read it.
/// A range its producer fixes (see [`fake_quant_type`]) gives GTT's
/// `FakeQuantWithMinMaxVars(x, <t>/InputMin, <t>/InputMax)` with Const ends; otherwise GTT
/// created EMA min/max variables, which a frozen graph cannot hold, so the tensor's own range
/// is taken at each run: `QuantizeAndDequantizeV2(range_given=false, signed_input)`.
pub fn fake_quantize_training(g: &mut Graph) -> Result<usize, String> {
    let mut made: std::collections::HashMap<String, String> = Default::default();
    let mut count = 0;
    for id in g.ids() {
        let node = g.node(id);
        let float = node.attr.get("T").and_then(AttrValue::as_type) == Some(DataType::DtFloat);
        if !matches!(node.op.as_str(), "MatMul" | "Conv2D")
            || node.name.starts_with("gradients")
            || !float
        {
            continue;
        }
        let inputs = node.input.clone();
        let mut rewired = Vec::with_capacity(inputs.len());
        for input in inputs {
            if input.starts_with('^') {
                rewired.push(input);
                continue;
            }
            let t = TensorName::parse(&input);
            let key = t.to_string();
            if let Some(q) = made.get(&key) {
                rewired.push(q.clone());
                continue;
            }
            let (signed, range) = fake_quant_type(g, &input, 0);
            let prefix =
                if t.port == 0 { t.node.clone() } else { format!("{}_{}", t.node, t.port) };
            let (op, (lo, hi)) = match range {
                Some(r) => ("FakeQuantWithMinMaxVars", r),
                None => ("QuantizeAndDequantizeV2", (0.0, 0.0)),
            };
            let mut ends = Vec::new();
            for (what, v) in [("InputMin", lo), ("InputMax", hi)] {
                let name = g.unique_name(&format!("{prefix}/{what}"));
                let c = Tensor::from_values(dt::FLOAT, &[], &[v]).map_err(|e| e.to_string())?;
                g.add_node(const_node(&name, &c)).map_err(|e| e.to_string())?;
                ends.push(name);
            }
            let name = g.unique_name(&format!("{prefix}/{op}"));
            let mut q = NodeDef { name: name.clone(), op: op.into(), ..Default::default() };
            q.input = vec![input.clone(), ends[0].clone(), ends[1].clone()];
            q.attr.insert("num_bits".into(), 8i64.into());
            q.attr.insert("narrow_range".into(), false.into());
            if range.is_none() {
                q.attr.insert("T".into(), DataType::DtFloat.into());
                q.attr.insert("signed_input".into(), signed.into());
                q.attr.insert("range_given".into(), false.into());
                q.attr.insert("round_mode".into(), "HALF_TO_EVEN".into());
                q.attr.insert("axis".into(), (-1i64).into());
            }
            g.add_node(q).map_err(|e| e.to_string())?;
            made.insert(key, name.clone());
            rewired.push(name);
            count += 1;
        }
        g.set_inputs(id, rewired);
    }
    Ok(count)
}
