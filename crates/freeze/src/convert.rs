//! Variables to constants, and the resource values that flowed from them to their readers:
//! ReadVariableOp becomes Identity, ResourceGather becomes GatherV2,
//! pass-through ops are retyped, and functional control flow (If, Case, While) gets retyped
//! copies of its functions in which the same rules apply.

use std::collections::{HashSet, VecDeque};

use tf_graph::{Graph, NodeId};
use tf_proto::tensorflow::{
    attr_value, AttrValue, FunctionDef, FunctionDefLibrary, NameAttrList, NodeDef, TensorShapeProto,
};
use tf_tensor::{dt, shape_proto, Tensor};

use crate::FreezeError;

/// A value that replaced a resource: its dtype and shape.
#[derive(Debug, Clone)]
pub(crate) struct Value {
    pub dtype: i32,
    pub shape: Vec<i64>,
}

fn type_attr(t: i32) -> AttrValue {
    AttrValue { value: Some(attr_value::Value::Type(t)) }
}

/// A Const node holding `t`, named `name`.
pub(crate) fn const_node(name: &str, t: &Tensor) -> NodeDef {
    let mut n = NodeDef { name: name.into(), op: "Const".into(), ..Default::default() };
    n.attr.insert("dtype".into(), type_attr(t.dtype));
    n.attr.insert("value".into(), AttrValue::from(t.to_proto()));
    n
}

fn unsupported(var: &str, node: &NodeDef) -> FreezeError {
    let op = node.op.as_str();
    // Every op that writes through a resource handle: assignments, optimizer updates,
    // scatters, strided-slice assignment, counters.
    let writes = op.starts_with("Assign")
        || (op.starts_with("Resource") && !op.starts_with("ResourceGather"))
        || op == "VarIsInitializedOp";
    if writes {
        return crate::refs::written(var, node);
    }
    FreezeError::Freeze(format!(
        "variable '{var}' flows into node '{}' ({op}), which is not an op the freezer can convert",
        node.name
    ))
}

/// Sets element `i` of a list(type) attr.
fn set_list_type(node: &mut NodeDef, attr: &str, i: usize, t: i32) {
    if let Some(attr_value::Value::List(l)) = node.attr.get_mut(attr).and_then(|a| a.value.as_mut())
    {
        if let Some(slot) = l.r#type.get_mut(i) {
            *slot = t;
        }
    }
}

fn set_list_shape(node: &mut NodeDef, attr: &str, i: usize, s: TensorShapeProto) {
    if let Some(attr_value::Value::List(l)) = node.attr.get_mut(attr).and_then(|a| a.value.as_mut())
    {
        if let Some(slot) = l.shape.get_mut(i) {
            *slot = s;
        }
    }
}

fn func_attr(node: &NodeDef, attr: &str) -> Option<String> {
    match node.attr.get(attr)?.value.as_ref()? {
        attr_value::Value::Func(f) => Some(f.name.clone()),
        _ => None,
    }
}

fn set_func_attr(node: &mut NodeDef, attr: &str, name: String) {
    node.attr.insert(
        attr.into(),
        AttrValue {
            value: Some(attr_value::Value::Func(NameAttrList { name, attr: Default::default() })),
        },
    );
}

fn func_list_attr(node: &NodeDef, attr: &str) -> Vec<String> {
    match node.attr.get(attr).and_then(|a| a.value.as_ref()) {
        Some(attr_value::Value::List(l)) => l.func.iter().map(|f| f.name.clone()).collect(),
        _ => Vec::new(),
    }
}

/// Copies of library functions with some resource arguments turned into values.
pub(crate) struct Retyper {
    pub library: FunctionDefLibrary,
    pub made: Vec<String>,
    var: String,
}

/// How one consumer of a converted value was rewritten; which of its outputs now carry values.
enum Step {
    Done,
    Follow(Vec<usize>),
}

impl Retyper {
    pub(crate) fn new(library: FunctionDefLibrary) -> Self {
        Retyper { library, made: Vec::new(), var: String::new() }
    }

    /// Rewrites `node`, which reads the value at its input `input` (a flat data-input index).
    /// Shared by the graph and function bodies; `in_function` picks the reference syntax.
    fn rewrite(
        &mut self,
        node: &mut NodeDef,
        input: usize,
        v: &Value,
    ) -> Result<Step, FreezeError> {
        let op = node.op.clone();
        match op.as_str() {
            "ReadVariableOp" => {
                node.op = "Identity".into();
                node.attr.remove("dtype");
                node.attr.insert("T".into(), type_attr(v.dtype));
                Ok(Step::Done)
            }
            "Identity" | "Snapshot" | "Switch" | "RefSwitch" | "Enter" | "RefEnter" | "Exit"
            | "RefExit" | "NextIteration" | "RefNextIteration" | "Merge" | "RefMerge"
            | "_SwitchN" | "RefIdentity" => {
                if let Some(plain) = op.strip_prefix("Ref") {
                    node.op = plain.to_string();
                }
                node.attr.insert("T".into(), type_attr(v.dtype));
                node.attr.remove("_output_shapes");
                let outs = match node.op.as_str() {
                    "Switch" => vec![0, 1],
                    "_SwitchN" => {
                        (0..node.attr_opt_i64("num_outs").unwrap_or(1).max(1) as usize).collect()
                    }
                    "Merge" => vec![0],
                    _ => vec![0],
                };
                Ok(Step::Follow(outs))
            }
            "IdentityN" => {
                set_list_type(node, "T", input, v.dtype);
                node.attr.remove("_output_shapes");
                Ok(Step::Follow(vec![input]))
            }
            "If" | "StatelessIf" | "Case" | "StatelessCase" => {
                let arg = input.checked_sub(1).ok_or_else(|| unsupported(&self.var, node))?;
                set_list_type(node, "Tin", arg, v.dtype);
                node.attr.remove("_output_shapes");
                node.attr.remove("_read_only_resource_inputs");
                if op.ends_with("If") {
                    for branch in ["then_branch", "else_branch"] {
                        let f =
                            func_attr(node, branch).ok_or_else(|| unsupported(&self.var, node))?;
                        let new = self.retype_function(&f, arg, v, false)?;
                        set_func_attr(node, branch, new);
                    }
                } else {
                    let mut names = Vec::new();
                    for f in func_list_attr(node, "branches") {
                        names.push(self.retype_function(&f, arg, v, false)?);
                    }
                    if let Some(attr_value::Value::List(l)) =
                        node.attr.get_mut("branches").and_then(|a| a.value.as_mut())
                    {
                        for (slot, n) in l.func.iter_mut().zip(names) {
                            slot.name = n;
                        }
                    }
                }
                Ok(Step::Done)
            }
            "While" | "StatelessWhile" => {
                set_list_type(node, "T", input, v.dtype);
                set_list_shape(node, "output_shapes", input, shape_proto(&v.shape));
                node.attr.remove("_output_shapes");
                node.attr.remove("_read_only_resource_inputs");
                let cond = func_attr(node, "cond").ok_or_else(|| unsupported(&self.var, node))?;
                let body = func_attr(node, "body").ok_or_else(|| unsupported(&self.var, node))?;
                let cond = self.retype_function(&cond, input, v, false)?;
                let body = self.retype_function(&body, input, v, true)?;
                set_func_attr(node, "cond", cond);
                set_func_attr(node, "body", body);
                Ok(Step::Follow(vec![input]))
            }
            _ => Err(unsupported(&self.var, node)),
        }
    }

    /// A copy of function `name` whose argument `arg` is a `v` instead of a resource (and, for
    /// a while body, so is output `arg`). Returns the copy's name.
    fn retype_function(
        &mut self,
        name: &str,
        arg: usize,
        v: &Value,
        is_body: bool,
    ) -> Result<String, FreezeError> {
        let mut f: FunctionDef = self
            .library
            .function
            .iter()
            .find(|f| f.signature.as_ref().is_some_and(|s| s.name == name))
            .cloned()
            .ok_or_else(|| {
                FreezeError::Freeze(format!("function '{name}' is not in the library"))
            })?;
        // A copy made for an earlier variable is edited in place: one copy per call site.
        let in_place = self.made.iter().any(|m| m == name);
        let new_name = if in_place {
            name.to_string()
        } else {
            (0..)
                .map(|i| format!("{name}_frozen_{i}"))
                .find(|n| {
                    !self
                        .library
                        .function
                        .iter()
                        .any(|f| f.signature.as_ref().is_some_and(|s| &s.name == n))
                })
                .expect("a free name")
        };
        let sig = f.signature.as_mut().expect("found by signature");
        sig.name = new_name.clone();
        let arg_name = {
            let a = sig.input_arg.get_mut(arg).ok_or_else(|| {
                FreezeError::Freeze(format!("function '{name}' has no argument {arg}"))
            })?;
            a.r#type = v.dtype;
            a.type_attr.clear();
            a.handle_data.clear();
            a.name.clone()
        };
        if is_body {
            if let Some(o) = sig.output_arg.get_mut(arg) {
                o.r#type = v.dtype;
                o.type_attr.clear();
                o.handle_data.clear();
            }
        }
        if let Some(a) = f.arg_attr.get_mut(&(arg as u32)) {
            a.attr.retain(|k, _| !k.starts_with("_handle"));
            a.attr.insert("_output_shapes".into(), AttrValue::from(vec![shape_proto(&v.shape)]));
        }
        f.resource_arg_unique_id.remove(&(arg as u32));
        // Propagate inside the body: references are `arg` or `node:out_arg:idx`.
        let mut queue: VecDeque<String> = VecDeque::from([arg_name]);
        while let Some(r) = queue.pop_front() {
            for i in 0..f.node_def.len() {
                let Some(pos) = f.node_def[i].input.iter().position(|s| *s == r) else { continue };
                let data_pos =
                    f.node_def[i].input[..pos].iter().filter(|s| !s.starts_with('^')).count();
                let mut node = f.node_def[i].clone();
                let was = node.op.clone();
                let step = self.rewrite(&mut node, data_pos, v)?;
                let node_name = node.name.clone();
                f.node_def[i] = node;
                match step {
                    Step::Done if was == "ReadVariableOp" => {
                        // Identity's output argument is `output`, ReadVariableOp's `value`.
                        let old = format!("{node_name}:value:0");
                        let new = format!("{node_name}:output:0");
                        for n in f.node_def.iter_mut() {
                            for s in n.input.iter_mut().filter(|s| **s == old) {
                                *s = new.clone();
                            }
                        }
                        for s in f.ret.values_mut().filter(|s| **s == old) {
                            *s = new.clone();
                        }
                    }
                    Step::Done => {}
                    Step::Follow(outs) => {
                        let arg_of = |k: usize| -> String {
                            match f.node_def[i].op.as_str() {
                                "Switch" => format!(
                                    "{node_name}:{}:0",
                                    if k == 0 { "output_false" } else { "output_true" }
                                ),
                                "IdentityN" | "While" | "StatelessWhile" | "_SwitchN" => {
                                    format!("{node_name}:output:{k}")
                                }
                                _ => format!("{node_name}:output:0"),
                            }
                        };
                        queue.extend(outs.into_iter().map(arg_of));
                    }
                }
            }
        }
        if in_place {
            let slot = self
                .library
                .function
                .iter_mut()
                .find(|x| x.signature.as_ref().is_some_and(|s| s.name == new_name))
                .expect("found above");
            *slot = f;
        } else {
            self.library.function.push(f);
            self.made.push(new_name.clone());
        }
        Ok(new_name)
    }
}

/// Replaces each resource consumer chain starting at `var` (a converted variable node). Each
/// node output is followed once, so a resource passed around a loop (`Enter` → `Merge` →
/// `NextIteration` → `Merge`) or along paths that meet again is rewritten in linear time.
pub(crate) fn propagate(
    g: &mut Graph,
    retyper: &mut Retyper,
    var: NodeId,
    v: &Value,
) -> Result<(), FreezeError> {
    retyper.var = g.node(var).name.clone();
    let mut queue: VecDeque<(NodeId, u32)> = VecDeque::from([(var, 0)]);
    let mut followed: HashSet<(NodeId, u32)> = HashSet::from([(var, 0)]);
    let mut added: Vec<NodeDef> = Vec::new();
    while let Some((p, port)) = queue.pop_front() {
        let readers: Vec<(NodeId, usize)> = g.consumers().of_output(p, port).collect();
        for (c, input_idx) in readers {
            let mut node = g.node(c).clone();
            let Some(before) = node.input.get(..input_idx) else { continue };
            let data_pos = before.iter().filter(|s| !s.starts_with('^')).count();
            if matches!(node.op.as_str(), "ResourceGather" | "ResourceGatherNd") && data_pos == 0 {
                let axis = gather(&mut node, v, &mut added, g)?;
                g.replace_node(c, node);
                if let Some(axis) = axis {
                    g.add_data_input(c, axis);
                }
                continue;
            }
            match retyper.rewrite(&mut node, data_pos, v)? {
                Step::Done => {}
                Step::Follow(outs) => queue.extend(
                    outs.into_iter().map(|k| (c, k as u32)).filter(|&out| followed.insert(out)),
                ),
            }
            g.replace_node(c, node);
        }
    }
    for n in added {
        g.add_node(n)?;
    }
    Ok(())
}

/// ResourceGather(resource, indices) → GatherV2(params, indices, axis) with a Const axis.
/// Returns the name of the axis node to append as the last data input, if one is needed.
fn gather(
    node: &mut NodeDef,
    v: &Value,
    added: &mut Vec<NodeDef>,
    g: &Graph,
) -> Result<Option<String>, FreezeError> {
    if node.op == "ResourceGatherNd" {
        node.op = "GatherNd".into();
        node.attr.remove("dtype");
        node.attr.insert("Tparams".into(), type_attr(v.dtype));
        return Ok(None);
    }
    let batch_dims = node.attr_opt_i64("batch_dims").unwrap_or(0);
    let tindices = node.attr.get("Tindices").and_then(|a| a.as_type_i32()).unwrap_or(dt::INT32);
    let axis_name = g.unique_name(&format!("{}/axis", node.name));
    let axis = if tindices == dt::INT64 {
        Tensor::from_values(dt::INT64, &[], &[batch_dims])
    } else {
        Tensor::from_values(dt::INT32, &[], &[batch_dims as i32])
    }
    .map_err(|e| FreezeError::Freeze(e.to_string()))?;
    added.push(const_node(&axis_name, &axis));
    node.op = "GatherV2".into();
    node.attr.remove("dtype");
    node.attr.remove("validate_indices");
    node.attr.insert("Tparams".into(), type_attr(v.dtype));
    node.attr.insert(
        "Taxis".into(),
        type_attr(if tindices == dt::INT64 { dt::INT64 } else { dt::INT32 }),
    );
    node.attr
        .insert("batch_dims".into(), AttrValue { value: Some(attr_value::Value::I(batch_dims)) });
    Ok(Some(axis_name))
}
