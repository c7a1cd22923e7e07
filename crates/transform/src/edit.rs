//! Transforms that edit attributes, devices, names and node order, and leave edges alone
//! (except `remove_control_dependencies`).

use std::collections::{HashMap, HashSet};

use tf_graph::{Graph, Input};
use tf_ops::Registry;
use tf_proto::tensorflow::{attr_value, GraphDef};

use crate::Params;

/// `add_default_attributes`: every attribute a node lacks gets its op's default, as
/// TensorFlow's importer does. Returns how many were added.
pub fn add_default_attributes(g: &mut Graph) -> usize {
    let reg = Registry::global();
    let mut n = 0;
    for id in g.ids() {
        n += reg.add_default_attrs(&mut g.node_mut(id));
    }
    n
}

fn op_matches(pattern: &str, op: &str) -> bool {
    pattern == "*" || pattern == op
}

/// `remove_attribute(attribute_name, op_name=*)`.
pub(crate) fn remove_attribute(g: &mut Graph, p: &Params<'_>) -> Result<usize, String> {
    let attr = p.required("attribute_name")?;
    let op = p.string("op_name", "*")?;
    let mut n = 0;
    for id in g.ids() {
        if op_matches(&op, &g.node(id).op) && g.node(id).attr.contains_key(&attr) {
            g.node_mut(id).attr.remove(&attr);
            n += 1;
        }
    }
    Ok(n)
}

/// `rename_attribute(old_attribute_name, new_attribute_name, op_name=*)`.
pub(crate) fn rename_attribute(g: &mut Graph, p: &Params<'_>) -> Result<usize, String> {
    let old = p.required("old_attribute_name")?;
    let new = p.required("new_attribute_name")?;
    let op = p.string("op_name", "*")?;
    let mut n = 0;
    for id in g.ids() {
        if op_matches(&op, &g.node(id).op) && g.node(id).attr.contains_key(&old) {
            let mut node = g.node_mut(id);
            let v = node.attr.remove(&old).expect("checked above");
            node.attr.insert(new.clone(), v);
            n += 1;
        }
    }
    Ok(n)
}

/// `remove_control_dependencies`: drops every `^x` input.
pub fn remove_control_dependencies(g: &mut Graph) -> usize {
    g.ids().into_iter().map(|id| g.retain_inputs(id, |s| !s.starts_with('^'))).sum()
}

/// `set_device(device, if_default)` (and `remove_device`, with an empty device): returns how
/// many nodes changed.
pub fn set_device(g: &mut Graph, device: &str, if_default: bool) -> usize {
    let mut n = 0;
    for id in g.ids() {
        let cur = &g.node(id).device;
        if cur != device && (!if_default || cur.is_empty()) {
            g.node_mut(id).device = device.to_string();
            n += 1;
        }
    }
    n
}

/// `rename_op(old_op_name, new_op_name)`.
pub(crate) fn rename_op(g: &mut Graph, p: &Params<'_>) -> Result<usize, String> {
    let old = p.required("old_op_name")?;
    let new = p.required("new_op_name")?;
    if new.is_empty() {
        return Err("new_op_name is empty".into());
    }
    let mut n = 0;
    for id in g.ids() {
        if g.node(id).op == old {
            g.node_mut(id).op = new.clone();
            n += 1;
        }
    }
    Ok(n)
}

/// `rename_node(old_node_name, new_node_name)`: the node and every reference to it.
pub(crate) fn rename_node(g: &mut Graph, p: &Params<'_>) -> Result<usize, String> {
    let old = p.required("old_node_name")?;
    let new = p.required("new_node_name")?;
    let id = g.id(&old).ok_or_else(|| format!("no node named '{old}'"))?;
    if old == new {
        return Ok(0);
    }
    if new.is_empty() || new.starts_with('^') || g.id(&new).is_some() {
        return Err(format!("cannot rename '{old}' to '{new}': name taken or invalid"));
    }
    g.rename(id, &new).map_err(|e| e.to_string())?;
    Ok(1)
}

/// The `i`-th obfuscated name: base 62 with digits `0-9a-zA-Z`.
pub fn base62(mut i: usize) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut s = Vec::new();
    loop {
        s.push(DIGITS[i % 62]);
        i /= 62;
        if i == 0 {
            break;
        }
    }
    s.reverse();
    String::from_utf8(s).expect("ascii")
}

/// `obfuscate_names`: every node not in `keep` gets a short meaningless name, in node order;
/// inputs and `_class` colocations follow.
pub(crate) fn obfuscate_names(g: &mut Graph, keep: &HashSet<String>) -> Result<usize, String> {
    let gd = std::mem::take(g).into_graph_def();
    let (gd, n) = obfuscate_graph_def(gd, keep);
    *g = Graph::from_graph_def(gd).map_err(|e| e.to_string())?;
    Ok(n)
}

fn obfuscate_graph_def(mut gd: GraphDef, keep: &HashSet<String>) -> (GraphDef, usize) {
    let mut map: HashMap<String, String> = HashMap::new();
    let mut next = 0;
    for node in &gd.node {
        if keep.contains(&node.name) {
            continue;
        }
        let name = loop {
            let s = base62(next);
            next += 1;
            if !keep.contains(&s) {
                break s;
            }
        };
        map.insert(node.name.clone(), name);
    }
    let renamed = map.len();
    for node in &mut gd.node {
        if let Some(new) = map.get(&node.name) {
            node.name = new.clone();
        }
        for s in &mut node.input {
            let new = match Input::parse(s) {
                Input::Data { node, port } => {
                    map.get(node).map(|n| Input::Data { node: n, port }.to_string())
                }
                Input::Control(node) => map.get(node).map(|n| Input::Control(n).to_string()),
            };
            if let Some(new) = new {
                *s = new;
            }
        }
        if let Some(attr_value::Value::List(l)) =
            node.attr.get_mut("_class").and_then(|a| a.value.as_mut())
        {
            for s in &mut l.s {
                let target = std::str::from_utf8(s).ok().and_then(|s| s.strip_prefix("loc:@"));
                if let Some(new) = target.and_then(|t| map.get(t)) {
                    *s = format!("loc:@{new}").into_bytes();
                }
            }
        }
    }
    (gd, renamed)
}

/// `sort_by_execution_order`: nodes in a topological order (inputs before their readers; among
/// nodes ready at the same time, the earlier in the input first). Returns the graph and how
/// many nodes changed position.
pub fn sort_by_execution_order(g: Graph) -> Result<(Graph, usize), String> {
    let order = g.topo_order().map_err(|e| e.to_string())?;
    let names: Vec<String> = order.iter().map(|&id| g.node(id).name.clone()).collect();
    let mut gd = g.into_graph_def();
    let pos: HashMap<&str, usize> =
        names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    let mut keyed: Vec<(usize, usize)> = gd
        .node
        .iter()
        .enumerate()
        .map(|(i, n)| (pos.get(n.name.as_str()).copied().unwrap_or(i), i))
        .collect();
    keyed.sort_unstable();
    let moved = keyed.iter().enumerate().filter(|(k, (_, i))| k != i).count();
    let mut old: Vec<Option<_>> = std::mem::take(&mut gd.node).into_iter().map(Some).collect();
    gd.node = keyed.into_iter().map(|(_, i)| old[i].take().expect("each once")).collect();
    Ok((Graph::from_graph_def(gd).map_err(|e| e.to_string())?, moved))
}
