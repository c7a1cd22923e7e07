//! Which checkpoint key holds each variable of the graph.
//!
//! TF1 checkpoints key a variable by its node name. TF2 object-based checkpoints key it by its
//! path in the object graph (`layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE`); a
//! SavedModel's object graph and the checkpoint's `_CHECKPOINTABLE_OBJECT_GRAPH` number their
//! nodes the same way, so a variable is found either through the captures of a concrete
//! function (`bound_inputs`, in the order of the call's extra inputs) or through the
//! `SavedVariable.name`, which is the VarHandleOp's name.

use std::collections::HashMap;

use tf_ckpt::Checkpoint;
use tf_graph::{Graph, Input, NodeId};
use tf_proto::tensorflow::{attr_value, saved_object, MetaGraphDef, TrackableObjectGraph};

use crate::FreezeError;

fn variable_key(tog: &TrackableObjectGraph, id: i32) -> Option<String> {
    let node = tog.nodes.get(usize::try_from(id).ok()?)?;
    node.attributes.iter().find(|a| a.name == "VARIABLE_VALUE").map(|a| a.checkpoint_key.clone())
}

/// Variable node name → checkpoint key, for TF2 SavedModels. Empty for TF1 checkpoints.
pub(crate) fn tf2_keys(
    g: &Graph,
    meta: Option<&MetaGraphDef>,
    ckpt: &Checkpoint,
) -> Result<HashMap<String, String>, FreezeError> {
    let mut keys = HashMap::new();
    let Some(tog) = ckpt.object_graph()? else { return Ok(keys) };
    let Some(sog) = meta.and_then(|m| m.object_graph_def.as_ref()) else { return Ok(keys) };
    for (i, obj) in sog.nodes.iter().enumerate() {
        if let Some(saved_object::Kind::Variable(v)) = &obj.kind {
            if let Some(key) = variable_key(&tog, i as i32) {
                keys.insert(v.name.clone(), key);
            }
        }
    }
    // Captures of each called concrete function, which override names when they disagree.
    for (_, n) in g.nodes() {
        let Some(attr_value::Value::Func(f)) = n.attr.get("f").and_then(|a| a.value.as_ref())
        else {
            continue;
        };
        let Some(cf) = sog.concrete_functions.get(&f.name) else { continue };
        let data: Vec<&str> = n
            .input
            .iter()
            .map(|s| Input::parse(s))
            .filter(|i| !i.is_control())
            .map(|i| i.node())
            .collect();
        if cf.bound_inputs.len() > data.len() {
            continue;
        }
        let captured = &data[data.len() - cf.bound_inputs.len()..];
        for (name, id) in captured.iter().zip(&cf.bound_inputs) {
            let is_var = g.get(name).is_some_and(|v| v.op == "VarHandleOp");
            if let (true, Some(key)) = (is_var, variable_key(&tog, *id)) {
                keys.insert((*name).to_string(), key);
            }
        }
    }
    Ok(keys)
}

/// A partition of a partitioned variable: the full tensor's key and this part's place in it.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    pub full_name: String,
    pub offset: Vec<i64>,
    pub shape: Vec<i64>,
}

/// Partitions named by the MetaGraphDef's variable collections (`VariableDef`s with a
/// `SaveSliceInfoDef`), by variable node name.
pub(crate) fn partitions(meta: Option<&MetaGraphDef>) -> HashMap<String, Part> {
    use prost::Message;
    use tf_proto::tensorflow::{collection_def, VariableDef};
    let mut parts = HashMap::new();
    let Some(meta) = meta else { return parts };
    for c in meta.collection_def.values() {
        let Some(collection_def::Kind::BytesList(list)) = &c.kind else { continue };
        for bytes in &list.value {
            let Ok(v) = VariableDef::decode(bytes.as_slice()) else { continue };
            let Some(info) = v.save_slice_info_def else { continue };
            let name = Input::parse(&v.variable_name).node().to_string();
            parts.insert(
                name,
                Part { full_name: info.full_name, offset: info.var_offset, shape: info.var_shape },
            );
        }
    }
    parts
}

/// Follows `Identity`-like readers back to the variable they read, if any.
pub(crate) fn variable_behind(g: &Graph, input: &str) -> Option<NodeId> {
    let mut name = Input::parse(input).node().to_string();
    for _ in 0..64 {
        let id = g.id(&name)?;
        let n = g.node(id);
        if crate::VARIABLE_OPS.contains(&n.op.as_str()) {
            return Some(id);
        }
        if !matches!(n.op.as_str(), "Identity" | "RefIdentity" | "ReadVariableOp" | "Snapshot") {
            return None;
        }
        let first = n.input.iter().map(|s| Input::parse(s)).find(|i| !i.is_control())?;
        name = first.node().to_string();
    }
    None
}

/// Variable → the key the graph's own saver writes it under, for TF1 graphs.
///
/// A variable's node name is its key only until something renames the node (a signature output
/// key equal to a variable's name makes the freezer move the variable aside). The saver's
/// `SaveV2`/`SaveSlices`/`Save` op names the key of each tensor it writes (its `tensor_names`
/// Const, in the order of its data inputs), so this map is taken before anything is renamed.
/// Slices of partitioned variables are left to [`partitions`].
pub(crate) fn saver_keys(g: &Graph) -> HashMap<NodeId, String> {
    let mut keys = HashMap::new();
    for (_, n) in g.nodes() {
        let (first_data, has_slices) = match n.op.as_str() {
            "SaveV2" | "SaveSlices" => (3, true),
            "Save" => (2, false),
            _ => continue,
        };
        let data: Vec<&str> =
            n.input.iter().filter(|s| !Input::parse(s).is_control()).map(String::as_str).collect();
        let strings = |i: usize| -> Vec<Vec<u8>> {
            data.get(i)
                .and_then(|s| g.get(Input::parse(s).node()))
                .filter(|c| c.op == "Const")
                .and_then(|c| c.attr.get("value"))
                .and_then(|a| a.as_tensor())
                .map(|t| t.string_val.clone())
                .unwrap_or_default()
        };
        let names = strings(1);
        let slices = if has_slices { strings(2) } else { Vec::new() };
        for (i, name) in names.iter().enumerate() {
            if slices.get(i).is_some_and(|s| !s.is_empty()) {
                continue;
            }
            let (Some(input), Ok(key)) = (data.get(first_data + i), std::str::from_utf8(name))
            else {
                continue;
            };
            if let Some(var) = variable_behind(g, input) {
                keys.insert(var, key.to_string());
            }
        }
    }
    keys
}
