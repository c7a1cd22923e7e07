//! Control flow with constant predicates, and control edges that only order pure work.
//!
//! - **TF1 conditionals**: a `Switch` whose predicate is a constant has one live output; the
//!   other is dead, and so is everything that reads it, through data or control edges, down to
//!   the `Merge`s. A `Merge` left with one live input is replaced by that tensor (its
//!   `value_index` output by a constant); readers of the live `Switch` output read the
//!   `Switch`'s input instead. Nothing is done when the dead part would reach a protected node
//!   or a loop (`Enter`, `Exit`, `NextIteration`, `LoopCond`).
//! - **Functional conditionals**: `If`/`StatelessIf` with a constant condition becomes a call
//!   of the taken branch, which is inlined (TensorFlow's truth rule for non-bool conditions).
//! - **Pure control edges**: a control edge `^p` is dropped when neither `p` nor anything it
//!   depends on is stateful or TF1 control flow ([`Graph::drop_ordering_edges`], as tf-strip
//!   and tf-freeze do).

use std::collections::{HashMap, HashSet};

use tf_graph::{Graph, Input, NodeId, TensorName};
use tf_ops::Registry;
use tf_proto::tensorflow::{attr_value, AttrValue, NodeDef};
use tf_tensor::{dt, Data, Tensor};

use crate::{const_input, const_node, Ctx, FoldError, Pass};

/// Runs the control-flow simplifications once; returns the number of changes.
pub(crate) fn run(g: &mut Graph, ctx: &mut Ctx) -> Result<usize, FoldError> {
    let s = dead_switches(g, ctx);
    ctx.count(Pass::Control, "switch", s);
    let i = constant_ifs(g, ctx);
    ctx.count(Pass::Control, "if", i);
    let c = pure_control_edges(g, ctx);
    ctx.count(Pass::Control, "control_edge", c);
    Ok(s + i + c)
}

/// TensorFlow's truth value of a condition tensor.
fn truth(t: &Tensor) -> Option<bool> {
    if !t.shape.is_empty() {
        return Some(!t.is_empty());
    }
    match &t.data {
        Data::Strings(s) => Some(!s.first()?.is_empty()),
        Data::Raw(b) => {
            if t.dtype == dt::BOOL {
                return Some(b.first()? != &0);
            }
            match crate::eval::Vals::of(t).ok()? {
                crate::eval::Vals::F(v) => Some(*v.first()? != 0.0),
                crate::eval::Vals::I(v) => Some(*v.first()? != 0),
                crate::eval::Vals::B(v) => v.first().copied(),
            }
        }
        _ => None,
    }
}

fn arity(ctx: &Ctx, n: &NodeDef) -> u32 {
    ctx.ops.output_types(n).map_or(8, |t| t.len() as u32)
}

fn dead_switches(g: &mut Graph, ctx: &mut Ctx) -> usize {
    let mut live: Vec<(NodeId, u32)> = Vec::new();
    for (id, n) in g.nodes() {
        if !matches!(n.op.as_str(), "Switch" | "RefSwitch") || ctx.keep.contains(&n.name) {
            continue;
        }
        let Some((_, pred)) = n.input.get(1).and_then(|s| const_input(g, s)) else { continue };
        if pred.dtype != dt::BOOL || pred.len() != 1 {
            continue;
        }
        let Some(p) = truth(&pred) else { continue };
        live.push((id, p as u32));
    }
    if live.is_empty() {
        return 0;
    }
    let consumers = g.consumers();
    let mut dead = vec![false; g.capacity()];
    let mut merge_dead: HashMap<NodeId, HashSet<usize>> = HashMap::new();
    // Worklist of dead tensors: (node, Some(port)) or (node, None) for a whole dead node.
    let mut work: Vec<(NodeId, Option<u32>)> =
        live.iter().map(|&(s, l)| (s, Some(1 - l))).collect();
    while let Some((p, port)) = work.pop() {
        let ports: Vec<u32> = match port {
            Some(k) => vec![k],
            None => (0..arity(ctx, g.node(p))).collect(),
        };
        let mut readers: Vec<(NodeId, Option<usize>)> = Vec::new();
        for k in ports {
            readers.extend(consumers.of_output(p, k).map(|(c, i)| (c, Some(i))));
        }
        if port.is_none() {
            readers.extend(consumers.control_of(p).map(|c| (c, None)));
        }
        for (c, idx) in readers {
            if dead[c.0] {
                continue;
            }
            let cn = g.node(c);
            if matches!(cn.op.as_str(), "Merge" | "RefMerge") {
                let Some(i) = idx else { continue }; // a dead control input of a Merge: dropped
                let set = merge_dead.entry(c).or_default();
                set.insert(i);
                let n_data = cn.input.iter().filter(|s| !Input::parse(s).is_control()).count();
                if set.len() == n_data {
                    dead[c.0] = true;
                    work.push((c, None));
                }
            } else {
                dead[c.0] = true;
                work.push((c, None));
            }
        }
    }
    // Refuse when the dead part reaches something we must not remove.
    for (id, n) in g.nodes() {
        if dead[id.0] && (ctx.protected.contains(&n.name) || tf_graph::analysis::is_v1_loop(&n.op))
        {
            return 0;
        }
    }
    let dead_names: HashSet<String> =
        g.nodes().filter(|(id, _)| dead[id.0]).map(|(_, n)| n.name.clone()).collect();
    let mut changes = dead_names.len();
    // Merges.
    let mut merges: Vec<(NodeId, HashSet<usize>)> =
        merge_dead.into_iter().filter(|(m, _)| !dead[m.0]).collect();
    merges.sort_by_key(|(m, _)| *m);
    for (m, dead_idx) in merges {
        let node = g.node(m).clone();
        let data: Vec<(usize, &String)> =
            node.input.iter().enumerate().filter(|(_, s)| !Input::parse(s).is_control()).collect();
        let live_in: Vec<(usize, &String)> =
            data.iter().filter(|(i, _)| !dead_idx.contains(i)).copied().collect();
        let controls: Vec<String> = node
            .input
            .iter()
            .filter(|s| matches!(Input::parse(s), Input::Control(c) if !dead_names.contains(c)))
            .cloned()
            .collect();
        changes += 1;
        if live_in.len() == 1 {
            let (idx, live_s) = (live_in[0].0, live_in[0].1.clone());
            let lt = TensorName::parse(&live_s);
            if !g.consumers().of_output(m, 1).is_empty() {
                let Ok(t) = Tensor::from_values(dt::INT32, &[], &[idx as i32]) else { continue };
                let cname = g.unique_name(&format!("{}/value_index", node.name));
                let ctl: Vec<String> = vec![lt.node.clone()];
                if g.add_node(const_node(cname.clone(), &t, &ctl, &node.device)).is_err() {
                    continue;
                }
                g.rewire(
                    &TensorName { node: node.name.clone(), port: 1 },
                    &TensorName { node: cname, port: 0 },
                );
            }
            g.rewire(&TensorName { node: node.name.clone(), port: 0 }, &lt);
            g.replace_control_input(&node.name, &lt.node);
            if ctx.protected.contains(&node.name) {
                g.set_inputs(m, std::iter::once(live_s).chain(controls).collect());
                let mut n = g.node_mut(m);
                n.op = "Identity".into();
                let t = n.attr.get("T").cloned();
                n.attr.clear();
                if let Some(t) = t {
                    n.attr.insert("T".into(), t);
                }
            } else {
                g.set_inputs(m, controls); // unread now: pruned
            }
        } else {
            g.set_inputs(m, live_in.iter().map(|(_, s)| (*s).clone()).chain(controls).collect());
            g.node_mut(m).attr.insert(
                "N".into(),
                AttrValue { value: Some(attr_value::Value::I(live_in.len() as i64)) },
            );
        }
    }
    // Live Switch outputs read the Switch's input.
    for &(s, l) in &live {
        if dead[s.0] {
            continue;
        }
        let node = g.node(s);
        let Some(data) = node.input.first().cloned() else { continue };
        let name = node.name.clone();
        changes += g.rewire(&TensorName { node: name, port: l }, &TensorName::parse(&data));
    }
    let dead_ids: Vec<NodeId> = g.ids().into_iter().filter(|id| dead[id.0]).collect();
    for id in dead_ids {
        g.remove_node(id);
    }
    // Control inputs naming removed nodes (dead control readers were removed too, but a live
    // Merge may have waited on a dead node).
    let mut waiting: Vec<NodeId> = dead_names.iter().flat_map(|d| g.control_readers(d)).collect();
    waiting.sort();
    waiting.dedup();
    for id in waiting {
        g.retain_inputs(
            id,
            |s| !matches!(Input::parse(s), Input::Control(c) if dead_names.contains(c)),
        );
    }
    changes
}

fn constant_ifs(g: &mut Graph, ctx: &mut Ctx) -> usize {
    let mut todo: Vec<(String, NodeDef)> = Vec::new();
    for (_, n) in g.nodes() {
        if !matches!(n.op.as_str(), "If" | "StatelessIf") || ctx.protected.contains(&n.name) {
            continue;
        }
        let Some((_, c)) = n.input.first().and_then(|s| const_input(g, s)) else { continue };
        let Some(taken) = truth(&c) else { continue };
        let branch = if taken { "then_branch" } else { "else_branch" };
        let Some(f) = n.attr_opt_func(branch).cloned() else { continue };
        let mut call =
            NodeDef { op: "PartitionedCall".into(), input: n.input[1..].to_vec(), ..n.clone() };
        let keep: Vec<(String, AttrValue)> = ["Tin", "Tout"]
            .iter()
            .filter_map(|k| n.attr.get(*k).map(|v| (k.to_string(), v.clone())))
            .collect();
        call.attr.clear();
        call.attr.extend(keep);
        call.attr.insert("f".into(), AttrValue { value: Some(attr_value::Value::Func(f)) });
        todo.push((n.name.clone(), call));
    }
    let mut done = 0;
    for (name, call) in todo {
        let Some(id) = g.id(&name) else { continue };
        let before = g.node(id).clone();
        g.replace_node(id, call);
        match g.inline_calls(Registry::global(), |n, _| n.name == name) {
            Ok(_) => done += 1,
            Err(e) => {
                if let Some(id) = g.id(&name) {
                    g.replace_node(id, before);
                }
                ctx.report.warn(format!("constant condition of '{name}' not inlined: {e}"));
            }
        }
    }
    done
}

fn pure_control_edges(g: &mut Graph, ctx: &mut Ctx) -> usize {
    g.drop_ordering_edges(Registry::global(), |n| ctx.keep.contains(&n.name))
}
