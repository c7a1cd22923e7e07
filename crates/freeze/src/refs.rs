//! TF1 reference types after freezing.
//!
//! A `VariableV2` outputs a reference (`float_ref`); what reads it directly through the `Ref`
//! forms of the pass-through ops (`RefIdentity`, `RefSwitch`, `RefMerge`, `RefEnter`, `RefExit`,
//! `RefNextIteration`, `RefSelect`) carries the reference on. Once the variable is a Const those
//! ops have no reference to pass and TensorFlow rejects them, as it rejects any attr holding a
//! `_REF` type where no reference flows: they become their plain forms and every `_REF` type
//! becomes its value type, except downstream of a variable kept with `--keep-variables`.
//!
//! An op with a reference input that is not a pass-through writes the variable (`Assign`,
//! `AssignAdd`, `ScatterUpdate`, the `Apply*` optimizers): a signature that writes a variable
//! changes state at every call and cannot be frozen, so it is refused, naming the variable.

use std::collections::{HashSet, VecDeque};

use tf_graph::{Graph, NodeId};
use tf_ops::Registry;
use tf_proto::tensorflow::{attr_value, NodeDef};
use tf_tensor::dtype;

use crate::FreezeError;

/// The plain form of a pass-through op that carries a reference.
fn plain(op: &str) -> Option<&'static str> {
    Some(match op {
        "RefIdentity" => "Identity",
        "RefSwitch" => "Switch",
        "RefMerge" => "Merge",
        "RefEnter" => "Enter",
        "RefExit" => "Exit",
        "RefNextIteration" => "NextIteration",
        "RefSelect" => "Select",
        _ => return None,
    })
}

/// The refusal for a variable written at run time, with the flag that keeps it.
pub(crate) fn written(var: &str, node: &NodeDef) -> FreezeError {
    if matches!(node.op.as_str(), "IsVariableInitialized" | "VarIsInitializedOp") {
        return FreezeError::Freeze(format!(
            "variable '{var}' is checked for initialisation at run time by node '{}' ({}): a \
             frozen graph has no variable to check; leave that node out with --outputs, or keep \
             the variable with --keep-variables '^{}$'",
            node.name,
            node.op,
            regex::escape(var)
        ));
    }
    FreezeError::Freeze(format!(
        "variable '{var}' is written at run time by node '{}' ({}): the graph changes state on \
         every call and cannot be frozen; keep the variable with --keep-variables '^{}$'",
        node.name,
        node.op,
        regex::escape(var)
    ))
}

/// Whether `op` takes a reference input (and, not being a pass-through, writes through it).
fn writes_ref(registry: &Registry, op: &str) -> bool {
    op == "IsVariableInitialized"
        || registry.get(op).is_some_and(|d| d.input_arg.iter().any(|a| a.is_ref))
}

/// The frozen ref variable `var` (now a Const) is read by plain values: its `Ref*` readers
/// become plain ops, transitively. Errors on a reader that writes the variable.
pub(crate) fn deref_readers(
    g: &mut Graph,
    registry: &Registry,
    var: NodeId,
    var_name: &str,
) -> Result<(), FreezeError> {
    let mut queue = VecDeque::from([var]);
    let mut seen = HashSet::from([var]);
    while let Some(id) = queue.pop_front() {
        let readers: Vec<NodeId> = g.consumers().of_node(id).collect();
        for r in readers {
            let op = g.node(r).op.clone();
            if let Some(p) = plain(&op) {
                g.node_mut(r).op = p.to_string();
                if seen.insert(r) {
                    queue.push_back(r);
                }
            } else if writes_ref(registry, &op) {
                return Err(written(var_name, g.node(r)));
            }
        }
    }
    Ok(())
}

fn deref_attr(v: &mut attr_value::Value) -> bool {
    match v {
        attr_value::Value::Type(t) if dtype::is_ref(*t) => {
            *t = dtype::base(*t);
            true
        }
        attr_value::Value::List(l) if l.r#type.iter().any(|t| dtype::is_ref(*t)) => {
            l.r#type.iter_mut().for_each(|t| *t = dtype::base(*t));
            true
        }
        _ => false,
    }
}

/// Turns every `_REF` type attr into its value type, and leftover `Ref*` pass-throughs into
/// plain ones, in every node no kept ref variable reaches. Returns how many nodes changed.
pub(crate) fn strip_ref_types(g: &mut Graph, kept: &HashSet<&str>) -> usize {
    let roots: Vec<NodeId> = g
        .nodes()
        .filter(|(_, n)| kept.contains(n.name.as_str()) && n.op != "VarHandleOp")
        .map(|(id, _)| id)
        .collect();
    let live = downstream(g, &roots);
    let mut changed = 0;
    for id in g.ids() {
        if live.contains(&id) {
            continue;
        }
        let mut n = g.node_mut(id);
        let mut any = false;
        if let Some(p) = plain(&n.op) {
            n.op = p.to_string();
            any = true;
        }
        for a in n.attr.values_mut() {
            if let Some(v) = a.value.as_mut() {
                any |= deref_attr(v);
            }
        }
        changed += usize::from(any);
    }
    changed
}

/// Nodes reachable by data edges from `roots` (roots included).
fn downstream(g: &Graph, roots: &[NodeId]) -> HashSet<NodeId> {
    let consumers = g.consumers();
    let mut seen: HashSet<NodeId> = roots.iter().copied().collect();
    let mut stack = roots.to_vec();
    while let Some(id) = stack.pop() {
        for r in consumers.of_node(id) {
            if seen.insert(r) {
                stack.push(r);
            }
        }
    }
    seen
}
