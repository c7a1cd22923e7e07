//! `--inputs t1,t2`: cut the graph at these tensors.
//!
//! Each tensor becomes a `Placeholder` with the tensor's **own** dtype (from the op registry,
//! not one dtype stamped on every input as `strip_unused` does) and its shape:
//! `--input-shape`, else the producer's `_output_shapes`, else what a Placeholder, Const or
//! pass-through chain above it says, else unknown rank.
//!
//! When every cut tensor of a node is its output 0 and nothing reads its other outputs, the node
//! itself is replaced by a Placeholder of the same name, so `name:0` is fed as before. Otherwise
//! a new Placeholder `<node>_<port>` is created per cut tensor and its readers are rewired to it.
//! Whatever only fed the cut tensors is pruned afterwards.

use std::collections::{BTreeMap, BTreeSet};

use tf_graph::{Graph, Input, NodeId, TensorName};
use tf_proto::tensorflow::{
    attr_value, attr_value::ListValue, AttrValue, NodeDef, TensorShapeProto,
};
use tf_tensor::dtype;

use crate::{ActionKind, NewInput, StripConfig, StripError, StripReport, Why};
use tf_ops::Signatures;

/// Applies the cuts and `--input-shape`s; returns the placeholders that carry `--inputs`.
pub(crate) fn apply(
    g: &mut Graph,
    ops: &Signatures<'_>,
    cfg: &StripConfig,
    report: &mut StripReport,
) -> Result<Vec<NodeId>, StripError> {
    // Validate and group by node.
    let mut by_node: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    let mut given: Vec<(TensorName, String)> = Vec::new();
    for name in &cfg.inputs {
        let t = TensorName::parse(name.trim());
        let node = g.get(&t.node).ok_or_else(|| StripError::UnknownInput(name.clone()))?;
        if let Ok(arity) = ops.output_arity(node) {
            if t.port as usize >= arity {
                return Err(StripError::InputPort {
                    name: name.clone(),
                    node: node.name.clone(),
                    op: node.op.clone(),
                    arity,
                });
            }
        }
        if given.iter().any(|(g, _)| *g == t) {
            return Err(StripError::Duplicate { flag: "--inputs", name: name.clone() });
        }
        by_node.entry(t.node.clone()).or_default().insert(t.port);
        given.push((t, name.clone()));
    }
    let mut shapes: Vec<(TensorName, &[i64], bool)> = Vec::new();
    for (name, dims) in &cfg.input_shapes {
        let t = TensorName::parse(name.trim());
        let is_cut = given.iter().any(|(g, _)| *g == t);
        let is_placeholder = t.port == 0
            && g.get(&t.node)
                .is_some_and(|n| matches!(n.op.as_str(), "Placeholder" | "PlaceholderWithDefault"));
        if !is_cut && !is_placeholder {
            return Err(StripError::UnknownShapeTarget(name.clone()));
        }
        shapes.push((t, dims.as_slice(), false));
    }
    let mut shape_for = |t: &TensorName| -> Option<TensorShapeProto> {
        let s = shapes.iter_mut().find(|(s, _, _)| s == t)?;
        s.2 = true;
        Some(tf_tensor::shape_proto(s.1))
    };

    // Which ports of the cut nodes are read at all.
    let mut read: BTreeMap<&str, BTreeSet<u32>> = BTreeMap::new();
    for (_, n) in g.nodes() {
        for s in &n.input {
            if let Input::Data { node, port } = Input::parse(s) {
                if by_node.contains_key(node) {
                    read.entry(node).or_default().insert(port);
                }
            }
        }
    }
    let in_place: BTreeSet<String> = by_node
        .iter()
        .filter(|(node, ports)| {
            **ports == BTreeSet::from([0])
                && read.get(node.as_str()).is_none_or(|r| r.iter().all(|p| *p == 0))
        })
        .map(|(n, _)| n.clone())
        .collect();

    let mut placeholders = Vec::new();
    for (t, name) in &given {
        let id = g.id(&t.node).expect("validated above");
        let old = g.node(id).clone();
        let dtype = tensor_dtype(g, ops, &old, t.port).ok_or_else(|| StripError::InputDtype {
            name: name.clone(),
            node: old.name.clone(),
            op: old.op.clone(),
            port: t.port,
        })?;
        let explicit = shape_for(t);
        if old.op == "Placeholder" && t.port == 0 {
            // Already an input: at most its shape changes.
            if let Some(shape) = explicit {
                set_shape(&mut g.node_mut(id), shape);
                report.push(ActionKind::Edited, &old.name, &old.op, Why::InputShape, String::new());
            }
            placeholders.push(id);
            continue;
        }
        let shape = explicit.or_else(|| infer_shape(g, &old, t.port, 0));
        let ph_name = if in_place.contains(&t.node) {
            t.node.clone()
        } else {
            g.unique_name(&format!("{}_{}", t.node, t.port))
        };
        let mut ph =
            NodeDef { name: ph_name.clone(), op: "Placeholder".into(), ..Default::default() };
        ph.attr.insert("dtype".into(), AttrValue { value: Some(attr_value::Value::Type(dtype)) });
        let shape_proto =
            shape.clone().unwrap_or(TensorShapeProto { unknown_rank: true, ..Default::default() });
        ph.attr.insert(
            "shape".into(),
            AttrValue { value: Some(attr_value::Value::Shape(shape_proto.clone())) },
        );
        if old.attr.contains_key("_output_shapes") {
            ph.attr.insert(
                "_output_shapes".into(),
                AttrValue {
                    value: Some(attr_value::Value::List(Box::new(ListValue {
                        shape: vec![shape_proto.clone()],
                        ..Default::default()
                    }))),
                },
            );
        }
        let detail = format!(
            "Placeholder {} {}",
            dtype::short_name(dtype),
            tf_tensor::shape_to_string(Some(&shape_proto))
        );
        let new_id = if in_place.contains(&t.node) {
            *g.node_mut(id) = ph;
            report.push(ActionKind::Replaced, &old.name, &old.op, Why::CutInput, detail);
            id
        } else {
            let new_id = g.add_node(ph)?;
            g.rewire(t, &TensorName { node: ph_name.clone(), port: 0 });
            report.push(
                ActionKind::Added,
                &ph_name,
                "Placeholder",
                Why::CutInput,
                format!("{detail} for {t}"),
            );
            new_id
        };
        report.new_inputs.push(NewInput {
            tensor: t.to_string(),
            placeholder: ph_name,
            dtype: dtype::short_name(dtype),
            shape: tf_tensor::shape_to_string(Some(&shape_proto)),
        });
        placeholders.push(new_id);
    }

    // --input-shape on existing placeholders.
    for (t, dims, used) in shapes {
        if used {
            continue;
        }
        let id = g.id(&t.node).expect("validated above");
        let op = g.node(id).op.clone();
        set_shape(&mut g.node_mut(id), tf_tensor::shape_proto(dims));
        report.push(
            ActionKind::Edited,
            &t.node,
            &op,
            Why::InputShape,
            tf_tensor::dims_to_string(dims),
        );
    }
    Ok(placeholders)
}

fn set_shape(n: &mut NodeDef, shape: TensorShapeProto) {
    if let Some(AttrValue { value: Some(attr_value::Value::List(l)) }) =
        n.attr.get_mut("_output_shapes")
    {
        if let Some(s) = l.shape.first_mut() {
            *s = shape.clone();
        }
    }
    n.attr.insert("shape".into(), AttrValue { value: Some(attr_value::Value::Shape(shape)) });
}

/// The dtype of output `port` of `node`: from its op's signature, else from what a consumer
/// expects there. Ref types become their base type (a Placeholder is never a ref).
fn tensor_dtype(g: &Graph, ops: &Signatures<'_>, node: &NodeDef, port: u32) -> Option<i32> {
    if let Some(t) = ops.output_types(node).ok().and_then(|t| t.get(port as usize).copied()) {
        return Some(dtype::base(t));
    }
    for (_, c) in g.nodes() {
        for (i, s) in c.input.iter().enumerate() {
            if Input::parse(s) == (Input::Data { node: &node.name, port }) {
                if let Some(t) = ops.input_types(c).ok().and_then(|t| t.get(i).copied()) {
                    return Some(dtype::base(t));
                }
            }
        }
    }
    None
}

/// What the graph says about the shape of `node:port`, without running shape inference.
fn infer_shape(g: &Graph, node: &NodeDef, port: u32, depth: usize) -> Option<TensorShapeProto> {
    let attr = |name: &str| node.attr.get(name).and_then(|a| a.value.as_ref());
    if let Some(attr_value::Value::List(l)) = attr("_output_shapes") {
        if let Some(s) = l.shape.get(port as usize) {
            return Some(s.clone());
        }
    }
    match (node.op.as_str(), port) {
        ("Placeholder" | "PlaceholderWithDefault", 0) => match attr("shape") {
            Some(attr_value::Value::Shape(s)) => Some(s.clone()),
            _ => None,
        },
        ("Const", 0) => match attr("value") {
            Some(attr_value::Value::Tensor(t)) => Some(t.tensor_shape.clone().unwrap_or_default()),
            _ => None,
        },
        (op, 0)
            if depth < 64
                && (tf_ops::is_pass_through(op)
                    || matches!(op, "CheckNumerics" | "CheckNumericsV2" | "EnsureShape")) =>
        {
            if node.op == "EnsureShape" {
                if let Some(attr_value::Value::Shape(s)) = attr("shape") {
                    return Some(s.clone());
                }
            }
            let first = node.input.first()?;
            let Input::Data { node: p, port } = Input::parse(first) else { return None };
            infer_shape(g, g.get(p)?, port, depth + 1)
        }
        _ => None,
    }
}
