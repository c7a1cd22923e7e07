//! Merging of duplicate nodes: two nodes with the same op, the same inputs (in any order for
//! commutative ops), the same control inputs, device and attributes compute the same thing;
//! constants with the same dtype, shape and encoded value hold the same thing. The first in
//! topological order stays and the readers of the others read it.
//!
//! Stateful ops, placeholders, TF1 control flow, function calls and protected nodes are never
//! merged away (a protected node can be the one that stays).

use std::collections::HashMap;

use prost::Message;
use tf_graph::{Graph, Input};
use tf_proto::tensorflow::NodeDef;

use crate::{ops, Ctx, FoldError, Pass};

/// A cheap key: nodes with different keys are different; equal keys are compared in full.
fn key(n: &NodeDef) -> Vec<u8> {
    let mut k = Vec::new();
    k.extend_from_slice(n.op.as_bytes());
    k.push(0);
    k.extend_from_slice(n.device.as_bytes());
    k.push(0);
    let mut data: Vec<&str> = Vec::new();
    let mut ctl: Vec<&str> = Vec::new();
    for s in &n.input {
        if s.starts_with('^') {
            ctl.push(s);
        } else {
            data.push(s);
        }
    }
    if ops::get(&n.op).is_some_and(|o| o.commutative) {
        data.sort_unstable();
    }
    ctl.sort_unstable();
    ctl.dedup();
    for s in data.iter().chain(&ctl) {
        k.extend_from_slice(s.as_bytes());
        k.push(0);
    }
    for (name, v) in &n.attr {
        if name == "_output_shapes" {
            continue;
        }
        k.extend_from_slice(name.as_bytes());
        k.push(1);
        if n.op == "Const" && name == "value" {
            // Large payloads: dtype, shape, length and a prefix here; the rest compared in full.
            if let Some(t) = v.as_tensor() {
                let mut head = t.clone();
                let content = std::mem::take(&mut head.tensor_content);
                k.extend(head.encode_to_vec());
                k.extend((content.len() as u64).to_le_bytes());
                k.extend_from_slice(&content[..content.len().min(64)]);
                continue;
            }
        }
        k.extend(v.encode_to_vec());
        k.push(2);
    }
    k
}

fn same(a: &NodeDef, b: &NodeDef) -> bool {
    if a.op != b.op || a.device != b.device {
        return false;
    }
    let strip = |n: &NodeDef| {
        let mut attr = n.attr.clone();
        attr.remove("_output_shapes");
        attr
    };
    if strip(a) != strip(b) {
        return false;
    }
    fn split(n: &NodeDef) -> (Vec<&String>, Vec<&String>) {
        let mut d: Vec<&String> = n.input.iter().filter(|s| !s.starts_with('^')).collect();
        let mut c: Vec<&String> = n.input.iter().filter(|s| s.starts_with('^')).collect();
        if ops::get(&n.op).is_some_and(|o| o.commutative) {
            d.sort();
        }
        c.sort();
        c.dedup();
        (d, c)
    }
    split(a) == split(b)
}

/// Runs duplicate merging once; returns the number of nodes merged away.
pub(crate) fn run(g: &mut Graph, ctx: &mut Ctx) -> Result<usize, FoldError> {
    let order = g.topo_order()?;
    let mut canon: HashMap<String, String> = HashMap::new();
    let mut seen: HashMap<Vec<u8>, Vec<String>> = HashMap::new();
    let mut merged = 0;
    for id in order {
        // Readers see the surviving names first.
        if !canon.is_empty() {
            if let Some(inputs) = renamed(g.node(id), &canon, true) {
                g.set_inputs(id, inputs);
            }
        }
        let n = g.node(id);
        let eligible = super::is_mergeable(ctx, n);
        if !eligible {
            continue;
        }
        let k = key(n);
        let bucket = seen.entry(k).or_default();
        let found = bucket.iter().find(|other| g.get(other).is_some_and(|o| same(o, n))).cloned();
        match found {
            Some(keep) if !ctx.protected.contains(&n.name) => {
                canon.insert(n.name.clone(), keep);
                g.remove_node(id);
                merged += 1;
            }
            _ => bucket.push(n.name.clone()),
        }
    }
    if merged > 0 {
        // Folded tensors now held by the surviving duplicate.
        for f in ctx.report.folded.iter_mut() {
            if let Some(to) = canon.get(&f.node) {
                f.node = to.clone();
            }
        }
        // Back edges (NextIteration -> Merge) and anything visited before its producer.
        for id in g.ids() {
            if let Some(inputs) = renamed(g.node(id), &canon, false) {
                g.set_inputs(id, inputs);
            }
        }
    }
    ctx.count(Pass::Dedupe, "merged", merged);
    Ok(merged)
}

/// The inputs of `n` with every name merged away replaced by the one that stays (and, with
/// `dedup`, repeated control inputs dropped), or `None` when nothing changes.
fn renamed(n: &NodeDef, canon: &HashMap<String, String>, dedup: bool) -> Option<Vec<String>> {
    let mut seen = std::collections::HashSet::new();
    let inputs: Vec<String> = n
        .input
        .iter()
        .map(|s| match Input::parse(s) {
            Input::Data { node, port } => match canon.get(node) {
                Some(to) => Input::Data { node: to, port }.to_string(),
                None => s.clone(),
            },
            Input::Control(node) => match canon.get(node) {
                Some(to) => format!("^{to}"),
                None => s.clone(),
            },
        })
        .filter(|s| !dedup || !s.starts_with('^') || seen.insert(s.clone()))
        .collect();
    (inputs != n.input).then_some(inputs)
}
