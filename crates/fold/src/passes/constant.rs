//! Constant folding: every pure node whose value is known (all data inputs constant and a
//! native kernel, or a shape query on a statically shaped tensor) becomes a `Const`.
//!
//! Only the frontier is materialized: a known node is replaced when something that is not
//! itself known reads it (or it is an output, or something waits on it through a control
//! edge); the rest of the constant subgraph becomes unused and is pruned. A single-output node
//! is replaced in place, keeping its name, so its readers are untouched; each used output of a
//! multi-output node (`Unpack`, `ShapeN`, `Split`) gets a new `Const` named `<node>/folded_<k>`.
//!
//! A new constant keeps the control inputs of the node it replaces and of the constants it was
//! computed from, and, in graphs with TF1 control flow, a control edge from any non-constant
//! input inside a conditional branch or loop frame: this keeps it in the same frame and dead
//! exactly when the original would have been.
//!
//! A `Reshape` whose shape is known except for one dimension (typically the batch) gets a
//! constant shape with `-1` there, which lets the `Shape`/`StridedSlice`/`Prod`/`Pack` chain
//! that computed it go.

use std::collections::HashSet;

use tf_graph::{Graph, Input, NodeId, TensorName};

use super::{analyze, control_flow_context, Analysis};
use crate::{const_node, control_inputs, replace_with_const, Ctx, FoldError, FoldedTensor, Pass};

/// Runs constant folding once; returns the number of constants created or shapes fixed.
pub(crate) fn run(g: &mut Graph, ctx: &mut Ctx) -> Result<usize, FoldError> {
    let an = analyze(g, ctx, true)?;
    let in_cf = control_flow_context(g);
    let ctrl = inherited_control(g, &an, &in_cf);
    let mut changes = 0;
    for &id in &an.order {
        let Some(how) = an.known[id.0] else { continue };
        let node = g.node(id);
        let arity = an.facts[id.0].len();
        let name = node.name.clone();
        let op = node.op.clone();
        let is_root = ctx.roots.contains(&name);
        let consumers = g.consumers();
        let read_by_unknown: Vec<bool> = (0..arity as u32)
            .map(|port| consumers.of_output(id, port).any(|(c, _)| an.known[c.0].is_none()))
            .collect();
        let read_by_unknown = |port: u32| read_by_unknown[port as usize];
        let has_control_readers = !consumers.control_of(id).is_empty();
        if arity == 1 {
            if !(is_root || has_control_readers || read_by_unknown(0)) {
                continue;
            }
            let Some(t) = an.facts[id.0][0].value.clone() else { continue };
            if !ctx.may_create_const(g.node(id), super::value_bytes(&t)) {
                continue;
            }
            replace_with_const(g, id, &t, &ctrl[id.0]);
            ctx.report.folded.push(FoldedTensor {
                tensor: format!("{name}:0"),
                op,
                node: name.clone(),
                how: how.name(),
            });
            changes += 1;
        } else {
            if ctx.protected.contains(&name) {
                continue;
            }
            let device = node.device.clone();
            for port in 0..arity as u32 {
                if !read_by_unknown(port) {
                    continue;
                }
                let Some(t) = an.facts[id.0][port as usize].value.clone() else { continue };
                if !ctx.may_create_const(g.node(id), super::value_bytes(&t)) {
                    continue;
                }
                let cname = g.unique_name(&format!("{name}/folded_{port}"));
                if g.add_node(const_node(cname.clone(), &t, &ctrl[id.0], &device)).is_err() {
                    continue;
                }
                g.rewire(
                    &TensorName { node: name.clone(), port },
                    &TensorName { node: cname.clone(), port: 0 },
                );
                ctx.report.folded.push(FoldedTensor {
                    tensor: format!("{name}:{port}"),
                    op: op.clone(),
                    node: cname,
                    how: how.name(),
                });
                changes += 1;
            }
        }
    }
    ctx.count(Pass::Constant, "folded", changes);
    let shapes = static_reshapes(g, ctx, &an, &in_cf);
    ctx.count(Pass::Constant, "reshape_shape", shapes);
    Ok(changes + shapes)
}

/// The control inputs a constant replacing each known node must carry (see the module docs).
fn inherited_control(g: &Graph, an: &Analysis, in_cf: &[bool]) -> Vec<Vec<String>> {
    let mut ctrl: Vec<Vec<String>> = vec![Vec::new(); an.facts.len()];
    for &id in &an.order {
        let node = g.node(id);
        let is_const = node.op == "Const";
        if !is_const && an.known[id.0].is_none() {
            continue;
        }
        let mut set: Vec<String> = control_inputs(node);
        if !is_const {
            for s in &node.input {
                let Input::Data { node: p, .. } = Input::parse(s) else { continue };
                let Some(pid) = g.id(p) else { continue };
                if g.node(pid).op == "Const" || an.known[pid.0].is_some() {
                    set.extend(ctrl[pid.0].iter().cloned());
                } else if in_cf.get(pid.0).copied().unwrap_or(false) {
                    set.push(p.to_string());
                }
            }
        }
        let mut seen = HashSet::new();
        set.retain(|s| s != &node.name && seen.insert(s.clone()));
        ctrl[id.0] = set;
    }
    ctrl
}

/// Gives a constant shape (with `-1` for the one unknown dimension) to every `Reshape` whose
/// shape input is not constant but known except for one element.
fn static_reshapes(g: &mut Graph, ctx: &mut Ctx, an: &Analysis, in_cf: &[bool]) -> usize {
    let mut edits: Vec<(NodeId, tf_tensor::Tensor, Vec<String>)> = Vec::new();
    for &id in &an.order {
        let n = g.node(id);
        if n.op != "Reshape" || an.known[id.0].is_some() || ctx.keep.contains(&n.name) {
            continue;
        }
        let Some(shape_in) = n.input.get(1) else { continue };
        let Input::Data { node: sp, .. } = Input::parse(shape_in) else { continue };
        if g.get(sp).is_none_or(|p| p.op == "Const") {
            continue;
        }
        let Some(f) = an.input(g, shape_in) else { continue };
        let (Some(partial), Some(dtype)) = (&f.partial, f.dtype) else { continue };
        if f.rank() != Some(1) {
            continue;
        }
        let unknown = partial.iter().filter(|v| v.is_none_or(|d| d < 0)).count();
        if unknown != 1 || partial.contains(&Some(0)) {
            continue;
        }
        let dims: Vec<i64> = partial.iter().map(|v| v.unwrap_or(-1).max(-1)).collect();
        let Ok(t) = crate::eval::int_tensor(dtype, &[dims.len() as i64], &dims) else { continue };
        let mut control = Vec::new();
        if let Some(Input::Data { node: x, .. }) = n.input.first().map(|s| Input::parse(s)) {
            if let Some(xid) = g.id(x) {
                if in_cf.get(xid.0).copied().unwrap_or(false) {
                    control.push(x.to_string());
                }
            }
        }
        edits.push((id, t, control));
    }
    let mut done = 0;
    for (id, t, control) in edits {
        let name = g.node(id).name.clone();
        let device = g.node(id).device.clone();
        let cname = g.unique_name(&format!("{name}/shape"));
        if g.add_node(const_node(cname.clone(), &t, &control, &device)).is_ok() {
            g.set_input(id, 1, cname);
            done += 1;
        }
    }
    done
}
