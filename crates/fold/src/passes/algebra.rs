//! Algebraic simplification: rewrites that remove nodes without computing anything new.
//!
//! - pass-throughs (`Identity`, `Snapshot`, `StopGradient`, `PreventGradient`) with no control
//!   edges in or out: readers read their input;
//! - neutral elements: `x*1`, `1*x`, `x+0`, `0+x`, `x-0`, `x/1`, `BiasAdd(x, 0)` when the
//!   constant does not change `x`'s shape by broadcasting;
//! - `Cast` to the type it already has; `Transpose` by the identity permutation; a `Reshape` to
//!   the shape its input already has;
//! - `Transpose(Transpose(x, p), q)` → `Transpose(x, p∘q)` (or `x`);
//!   `Reshape(Reshape|ExpandDims|Squeeze(x), s)` → `Reshape(x, s)`;
//! - chains of constant `Mul`, `Add`/`AddV2` and `BiasAdd`: `(x·a)·b` → `x·(a·b)`.
//!
//! Protected nodes (outputs, `--keep`) are never removed: a protected node that would be
//! bypassed becomes an `Identity` of the tensor instead.

use std::collections::HashSet;

use tf_graph::{Graph, Input, NodeId, TensorName};
use tf_proto::tensorflow::{attr_value, AttrValue, NodeDef};
use tf_tensor::Tensor;

use super::{analyze, broadcasts_into, Analysis};
use crate::eval::{self, Vals};
use crate::{const_input, const_node, control_inputs, Ctx, FoldError, Pass};

/// Runs the simplifications once; returns the number of rewrites.
pub(crate) fn run(g: &mut Graph, ctx: &mut Ctx) -> Result<usize, FoldError> {
    let an = analyze(g, ctx, false)?;
    let mut touched: HashSet<NodeId> = HashSet::new();
    let mut total = 0;
    for &id in &an.order {
        if touched.contains(&id) || !g.is_live(id) {
            continue;
        }
        let node = g.node(id).clone();
        if ctx.keep.contains(&node.name) {
            continue;
        }
        let what = match node.op.as_str() {
            op if tf_ops::is_pass_through(op) => splice_identity(g, ctx, id, &node),
            "Mul" | "Add" | "AddV2" | "Sub" | "RealDiv" | "Div" | "BiasAdd" => {
                neutral(g, ctx, &an, id, &node).or_else(|| chain(g, ctx, id, &node, &mut touched))
            }
            "Cast" => (node.attr_opt_type("SrcT") == node.attr_opt_type("DstT")
                && node.attr_opt_type("SrcT").is_some())
            .then(|| forward(g, ctx, id, &node, 0).then_some("cast"))
            .flatten(),
            "Transpose" => transpose(g, ctx, &an, id, &node),
            "Reshape" => reshape(g, ctx, &an, id, &node),
            _ => None,
        };
        if let Some(what) = what {
            touched.insert(id);
            ctx.count(Pass::Algebra, what, 1);
            total += 1;
        }
    }
    Ok(total)
}

/// Makes the readers of `id:0` read data input `input` of the node instead (and control
/// readers wait on that input's producer). A protected node becomes an `Identity` instead.
fn forward(g: &mut Graph, ctx: &Ctx, id: NodeId, node: &NodeDef, input: usize) -> bool {
    let Some(src) = node.input.get(input).cloned() else { return false };
    if Input::parse(&src).is_control() {
        return false;
    }
    let ctl = control_inputs(node);
    if ctx.protected.contains(&node.name) || !ctl.is_empty() {
        if node.op == "Identity" && node.input.len() == 1 + ctl.len() {
            return false;
        }
        let t = node.attr.get("T").cloned().or_else(|| node.attr.get("DstT").cloned());
        let mut n = g.node_mut(id);
        n.op = "Identity".into();
        n.attr.clear();
        if let Some(t) = t {
            n.attr.insert("T".into(), t);
        }
        drop(n);
        g.set_inputs(id, std::iter::once(src).chain(ctl.iter().map(|c| format!("^{c}"))).collect());
        return true;
    }
    let to = TensorName::parse(&src);
    g.rewire(&TensorName { node: node.name.clone(), port: 0 }, &to);
    g.replace_control_input(&node.name, &to.node);
    true
}

fn splice_identity(g: &mut Graph, ctx: &Ctx, id: NodeId, node: &NodeDef) -> Option<&'static str> {
    if ctx.protected.contains(&node.name)
        || !control_inputs(node).is_empty()
        || !g.consumers().control_of(id).is_empty()
        || node.input.len() != 1
    {
        return None;
    }
    let Input::Data { node: p, .. } = Input::parse(&node.input[0]) else { return None };
    let pop = g.get(p)?.op.as_str();
    if pop.starts_with("Variable") || pop == "VarHandleOp" || pop.starts_with("Ref") {
        return None;
    }
    forward(g, ctx, id, node, 0).then_some("identity")
}

fn all_equal(t: &Tensor, v: f64) -> bool {
    match Vals::of(t) {
        Ok(Vals::F(x)) => x.iter().all(|e| *e == v),
        Ok(Vals::I(x)) => x.iter().all(|e| *e as f64 == v),
        _ => false,
    }
}

fn neutral(
    g: &mut Graph,
    ctx: &Ctx,
    an: &Analysis,
    id: NodeId,
    node: &NodeDef,
) -> Option<&'static str> {
    let op = node.op.as_str();
    let (one, slots): (f64, &[(usize, usize)]) = match op {
        "Mul" => (1.0, &[(1, 0), (0, 1)]),
        "Add" | "AddV2" => (0.0, &[(1, 0), (0, 1)]),
        "Sub" | "BiasAdd" => (0.0, &[(1, 0)]),
        _ => (1.0, &[(1, 0)]),
    };
    for &(ci, xi) in slots {
        let (Some(cs), Some(xs)) = (node.input.get(ci), node.input.get(xi)) else { return None };
        let Some((_, c)) = const_input(g, cs) else { continue };
        if !all_equal(&c, one) {
            continue;
        }
        let xf = an.input(g, xs)?;
        if xf.dtype.is_some_and(|d| d != c.dtype) {
            continue;
        }
        if op != "BiasAdd" && !broadcasts_into(&c.shape, xf.shape.as_deref()) {
            continue;
        }
        if forward(g, ctx, id, node, xi) {
            return Some("neutral");
        }
    }
    None
}

/// `op(op(x, a), b)` → `op(x, a∘b)` for Mul, Add/AddV2 and BiasAdd.
fn chain(
    g: &mut Graph,
    ctx: &Ctx,
    id: NodeId,
    node: &NodeDef,
    touched: &mut HashSet<NodeId>,
) -> Option<&'static str> {
    let kind = |op: &str| match op {
        "Mul" => Some("Mul"),
        "Add" | "AddV2" => Some("AddV2"),
        "BiasAdd" => Some("BiasAdd"),
        _ => None,
    };
    let k = kind(&node.op)?;
    let slots: &[(usize, usize)] = if k == "BiasAdd" { &[(1, 0)] } else { &[(1, 0), (0, 1)] };
    for &(ci, xi) in slots {
        let (Some(cs), Some(xs)) = (node.input.get(ci), node.input.get(xi)) else { return None };
        let Some((_, b)) = const_input(g, cs) else { continue };
        let Input::Data { node: inner_name, port: 0 } = Input::parse(xs) else { continue };
        let inner_id = g.id(inner_name)?;
        let inner = g.node(inner_id).clone();
        if kind(&inner.op) != Some(k)
            || ctx.protected.contains(&inner.name)
            || !control_inputs(&inner).is_empty()
            || g.consumers().data_out_degree(inner_id) != 1
            || !g.consumers().control_of(inner_id).is_empty()
            || touched.contains(&inner_id)
        {
            continue;
        }
        if k == "BiasAdd" && inner.attr.get("data_format") != node.attr.get("data_format") {
            continue;
        }
        let islots: &[(usize, usize)] = if k == "BiasAdd" { &[(1, 0)] } else { &[(1, 0), (0, 1)] };
        for &(ici, ixi) in islots {
            let (Some(ics), Some(ixs)) = (inner.input.get(ici), inner.input.get(ixi)) else {
                continue;
            };
            let Some((_, a)) = const_input(g, ics) else { continue };
            if const_input(g, ixs).is_some() {
                continue;
            }
            let mut op_node = NodeDef {
                op: if k == "Mul" { "Mul".into() } else { "AddV2".into() },
                ..Default::default()
            };
            op_node
                .attr
                .insert("T".into(), AttrValue { value: Some(attr_value::Value::Type(a.dtype)) });
            let Ok(mut out) = eval::evaluate(&op_node, &[a.clone(), b.clone()]) else { continue };
            let merged = out.pop()?;
            let limit = ctx.cfg.max_const_bytes;
            if merged.byte_size() > limit && merged.byte_size() > a.byte_size() + b.byte_size() {
                continue;
            }
            if k == "BiasAdd" && merged.shape.len() != 1 {
                continue;
            }
            let cname = g.unique_name(&format!("{}/merged", node.name));
            let device = node.device.clone();
            g.add_node(const_node(cname.clone(), &merged, &[], &device)).ok()?;
            g.set_input(id, xi, ixs.clone());
            g.set_input(id, ci, cname);
            touched.insert(inner_id);
            return Some("chain");
        }
    }
    None
}

fn transpose(
    g: &mut Graph,
    ctx: &Ctx,
    an: &Analysis,
    id: NodeId,
    node: &NodeDef,
) -> Option<&'static str> {
    let perm = eval::ints(&const_input(g, node.input.get(1)?)?.1).ok()?;
    let xs = node.input.first()?.clone();
    let rank = an.input(g, &xs).and_then(|f| f.rank());
    if perm.iter().enumerate().all(|(i, &p)| p == i as i64) && rank == Some(perm.len()) {
        return forward(g, ctx, id, node, 0).then_some("transpose");
    }
    let Input::Data { node: inner_name, port: 0 } = Input::parse(&xs) else { return None };
    let inner = g.get(inner_name)?.clone();
    if inner.op != "Transpose" {
        return None;
    }
    let p1 = eval::ints(&const_input(g, inner.input.get(1)?)?.1).ok()?;
    if p1.len() != perm.len() {
        return None;
    }
    let mut combined = Vec::with_capacity(perm.len());
    for &q in &perm {
        combined.push(*p1.get(usize::try_from(q).ok()?)?);
    }
    let x = inner.input.first()?.clone();
    if combined.iter().enumerate().all(|(i, &p)| p == i as i64) {
        let n2 = NodeDef {
            input: std::iter::once(x).chain(node.input[1..].iter().cloned()).collect(),
            ..node.clone()
        };
        return forward(g, ctx, id, &n2, 0).then_some("transpose");
    }
    let inner_id = g.id(inner_name)?;
    if g.consumers().data_out_degree(inner_id) != 1 {
        return None;
    }
    let (_, pt) = const_input(g, node.input.get(1)?)?;
    let t = eval::int_tensor(pt.dtype, &[combined.len() as i64], &combined).ok()?;
    let cname = g.unique_name(&format!("{}/perm", node.name));
    g.add_node(const_node(cname.clone(), &t, &[], &node.device)).ok()?;
    g.set_input(id, 0, x);
    g.set_input(id, 1, cname);
    Some("transpose")
}

fn reshape(
    g: &mut Graph,
    ctx: &Ctx,
    an: &Analysis,
    id: NodeId,
    node: &NodeDef,
) -> Option<&'static str> {
    let xs = node.input.first()?.clone();
    let xf = an.input(g, &xs)?;
    let out = an.facts.get(id.0)?.first()?;
    if let (Some(xk), Some(ok)) = (xf.known_shape(), out.known_shape()) {
        if xk == ok {
            return forward(g, ctx, id, node, 0).then_some("reshape");
        }
    }
    let Input::Data { node: inner_name, port: 0 } = Input::parse(&xs) else { return None };
    let inner = g.get(inner_name)?;
    if !matches!(inner.op.as_str(), "Reshape" | "ExpandDims" | "Squeeze")
        || !control_inputs(inner).is_empty()
    {
        return None;
    }
    let x = inner.input.first()?.clone();
    g.set_input(id, 0, x);
    Some("reshape")
}
