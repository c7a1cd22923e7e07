//! Inlining function calls into the graph (PartitionedCall, StatefulPartitionedCall, and
//! nodes whose op is a library function).
//!
//! A call node `C` calling `F` is replaced by a copy of `F`'s body whose nodes are named
//! `C/<body node>` (Grappler's naming). Nested calls would make that name grow with the depth
//! of the nesting, and inlining quadratic in it, so when `C`'s name is longer than
//! [`MAX_INLINE_PREFIX`] bytes the body is named `<outermost>/<F>_<k>/<body node>` instead:
//! `<outermost>` is the first `/`-component of `C`'s name and `k` counts the calls inlined. Body references are converted from function syntax to
//! graph syntax: an argument name becomes the call's matching input, `node:out_arg:idx` becomes
//! `C/node:port` where `port` is the start of `out_arg`'s range in the op's outputs plus `idx`
//! (from the op registry, or the library for nested calls), `^node` becomes `^C/node`. Readers
//! of `C:k` are pointed at the tensor `F.ret[output_arg k]`; control dependents of `C` at the
//! body's control outputs and the nodes producing its outputs. The call's own control inputs
//! gate the body nodes that read nothing else.

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use tf_ops::Registry;
use tf_proto::tensorflow::{attr_value, FunctionDef, FunctionDefLibrary, NodeDef};

use crate::{Graph, Input, NodeId, TensorName};

/// Why a call could not be inlined; the message names the call node and the function.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("cannot inline call '{node}' to '{function}': {reason}")]
pub struct InlineError {
    /// The call node.
    pub node: String,
    /// The function.
    pub function: String,
    /// What prevented it.
    pub reason: String,
}

/// The function a node calls, if it is a call: `f` of (Stateful)PartitionedCall, or its op when
/// that names a library function.
pub fn called_function<'a>(g: &'a Graph, node: &'a NodeDef) -> Option<&'a str> {
    if matches!(node.op.as_str(), "PartitionedCall" | "StatefulPartitionedCall") {
        return match node.attr.get("f")?.value.as_ref()? {
            attr_value::Value::Func(f) => Some(f.name.as_str()),
            _ => None,
        };
    }
    g.function(&node.op).map(|_| node.op.as_str())
}

/// How deeply function calls may nest when they are inlined.
pub const MAX_CALL_DEPTH: usize = 100_000;

/// The longest call-node name used as the name prefix of its inlined body (bytes).
pub const MAX_INLINE_PREFIX: usize = 128;

/// The name prefix of the body inlined for call node `call` to `function`, the `seq`-th call
/// inlined: the call's name, or a short one when that is over [`MAX_INLINE_PREFIX`] bytes.
fn inline_prefix(call: &str, function: &str, seq: usize) -> String {
    if call.len() <= MAX_INLINE_PREFIX {
        return call.to_string();
    }
    let head = call.split('/').next().filter(|h| !h.is_empty() && h.len() <= 64);
    let f = Some(function).filter(|f| !f.is_empty() && f.len() <= 64);
    format!("{}/{}_{seq}", head.unwrap_or("inlined"), f.unwrap_or("call"))
}

/// For each library function (by index), whether it may call itself: it is on a cycle of the
/// library's static call graph or calls into one. Functions that cannot are left out of the
/// cycle check, which walks the chain of callers (the check would be quadratic in the depth of
/// a deep non-recursive nesting otherwise). Found by removing functions that call nothing left,
/// until none can be removed: linear in the library.
fn may_recurse(
    library: Option<&FunctionDefLibrary>,
    call_of: impl Fn(&NodeDef) -> Option<usize>,
) -> Vec<bool> {
    let Some(lib) = library else { return Vec::new() };
    let n = lib.function.len();
    let mut callers: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut out_degree = vec![0usize; n];
    for (f, fdef) in lib.function.iter().enumerate() {
        let mut callees: Vec<usize> = fdef.node_def.iter().filter_map(&call_of).collect();
        callees.sort_unstable();
        callees.dedup();
        out_degree[f] = callees.len();
        for c in callees {
            callers[c].push(f);
        }
    }
    let mut left = vec![true; n];
    let mut sinks: Vec<usize> = (0..n).filter(|&f| out_degree[f] == 0).collect();
    while let Some(f) = sinks.pop() {
        left[f] = false;
        for &c in &callers[f] {
            out_degree[c] -= 1;
            if out_degree[c] == 0 {
                sinks.push(c);
            }
        }
    }
    left
}

/// The functions an inlined node came from: its own, then the caller's, and so on (by index in
/// the library; names only to report a cycle).
struct Chain {
    function: usize,
    name: String,
    depth: usize,
    parent: Option<Rc<Chain>>,
}

impl Chain {
    /// If function `f` (named `name`) is on this chain, the cycle `f -> ... -> f` in call order.
    fn cycle(&self, f: usize, name: &str) -> Option<String> {
        let mut c = self;
        while c.function != f {
            c = c.parent.as_deref()?;
        }
        let mut path = vec![name];
        let mut c = self;
        while c.function != f {
            path.push(&c.name);
            c = c.parent.as_deref().expect("found above");
        }
        path.push(name);
        path.reverse();
        Some(path.join(" -> "))
    }
}

impl Graph {
    /// The library function named `name` (the first of that name). O(1): a name index is
    /// built on first use and rebuilt when the library's function list was replaced, grew or
    /// shrank; a hit is verified, so a function renamed in place is no longer found under its
    /// old name (renaming one in place to a new name needs a new list to be found by it).
    pub fn function(&self, name: &str) -> Option<&FunctionDef> {
        let lib = self.library.as_ref()?;
        let key = (lib.function.len(), lib.function.as_ptr() as usize);
        let mut cache = self.fn_index.0.lock().unwrap_or_else(|e| e.into_inner());
        if cache.as_ref().is_none_or(|(k, _)| *k != key) {
            let mut map = HashMap::with_capacity(lib.function.len());
            for (i, f) in lib.function.iter().enumerate() {
                if let Some(sig) = &f.signature {
                    map.entry(sig.name.clone()).or_insert(i);
                }
            }
            *cache = Some((key, map));
        }
        let named = |f: &FunctionDef| f.signature.as_ref().is_some_and(|s| s.name == name);
        let map = &cache.as_ref().expect("built above").1;
        match map.get(name).map(|&i| &lib.function[i]) {
            Some(f) if named(f) => Some(f),
            Some(_) => lib.function.iter().find(|f| named(f)),
            None => None,
        }
    }

    /// Inlines every call node for which `want` returns true, repeatedly, until none is left
    /// (calls inside inlined bodies are inlined too). Returns the names of the functions
    /// inlined, once per call. A function that calls itself, directly or through others, is an
    /// error naming the cycle; so is nesting deeper than [`MAX_CALL_DEPTH`].
    pub fn inline_calls(
        &mut self,
        registry: &Registry,
        want: impl Fn(&NodeDef, &str) -> bool,
    ) -> Result<Vec<String>, InlineError> {
        let functions: HashMap<String, usize> = self
            .library
            .iter()
            .flat_map(|l| l.function.iter().enumerate())
            .filter_map(|(i, f)| Some((f.signature.as_ref()?.name.clone(), i)))
            .rev() // the first function of a name wins, as in `Graph::function`
            .collect();
        let recursive = may_recurse(self.library.as_ref(), |n| {
            let name = match n.op.as_str() {
                "PartitionedCall" | "StatefulPartitionedCall" => {
                    match n.attr.get("f")?.value.as_ref()? {
                        attr_value::Value::Func(f) => f.name.as_str(),
                        _ => return None,
                    }
                }
                op => op,
            };
            functions.get(name).copied()
        });
        let call_of = |n: &NodeDef| -> Option<String> {
            if matches!(n.op.as_str(), "PartitionedCall" | "StatefulPartitionedCall") {
                return match n.attr.get("f")?.value.as_ref()? {
                    attr_value::Value::Func(f) => Some(f.name.clone()),
                    _ => None,
                };
            }
            functions.contains_key(&n.op).then(|| n.op.clone())
        };
        // Inlining leaves the library as it is: one copy and one signature table serve all.
        let library = self.library.clone();
        let sigs = registry.with_library(library.as_ref());
        // The chain of functions each inlined node came from, innermost first.
        let mut origin: HashMap<NodeId, Rc<Chain>> = HashMap::new();
        let mut inlined = Vec::new();
        // Inlining appends the body after the last node and touches only inputs, so one scan
        // in id order finds every call, including those in inlined bodies.
        let mut i = 0;
        while i < self.nodes.len() {
            let id = NodeId(i);
            i += 1;
            let Some(n) = self.nodes[id.0].as_ref() else { continue };
            let Some(f) = call_of(n).filter(|f| want(n, f)) else { continue };
            let parent = origin.remove(&id);
            let depth = parent.as_ref().map_or(0, |c| c.depth) + 1;
            let index = functions.get(&f).copied();
            if let (Some(p), Some(k)) = (&parent, index.filter(|&k| recursive[k])) {
                if let Some(cycle) = p.cycle(k, &f) {
                    return Err(InlineError {
                        node: n.name.clone(),
                        function: f,
                        reason: format!("the function calls itself ({cycle})"),
                    });
                }
            }
            if depth > MAX_CALL_DEPTH {
                return Err(InlineError {
                    node: n.name.clone(),
                    function: f,
                    reason: format!("calls are nested deeper than {MAX_CALL_DEPTH}"),
                });
            }
            let fdef = index.and_then(|k| library.as_ref()?.function.get(k));
            let first_new = self.nodes.len();
            self.inline_one(&sigs, id, &f, fdef, inlined.len())?;
            let function = index.expect("inline_one fails on a missing function");
            let chain = Rc::new(Chain { function, name: f.clone(), depth, parent });
            for k in first_new..self.nodes.len() {
                origin.insert(NodeId(k), chain.clone());
            }
            inlined.push(f);
        }
        Ok(inlined)
    }

    fn inline_one(
        &mut self,
        sigs: &tf_ops::Signatures<'_>,
        call: NodeId,
        fname: &str,
        fdef: Option<&FunctionDef>,
        seq: usize,
    ) -> Result<(), InlineError> {
        let call_node = self.node(call).clone();
        let err = |reason: String| InlineError {
            node: call_node.name.clone(),
            function: fname.to_string(),
            reason,
        };
        let fdef = fdef.ok_or_else(|| err("not in the function library".into()))?;
        let sig = fdef.signature.clone().unwrap_or_default();
        let prefix = inline_prefix(&call_node.name, fname, seq);

        let data_inputs: Vec<&String> =
            call_node.input.iter().filter(|s| !Input::parse(s).is_control()).collect();
        let control_inputs: Vec<&String> =
            call_node.input.iter().filter(|s| Input::parse(s).is_control()).collect();
        if data_inputs.len() != sig.input_arg.len() {
            return Err(err(format!(
                "the call has {} data inputs but the function takes {}",
                data_inputs.len(),
                sig.input_arg.len()
            )));
        }
        for a in sig.input_arg.iter().chain(&sig.output_arg) {
            if !a.number_attr.is_empty() || !a.type_list_attr.is_empty() {
                return Err(err(format!("argument '{}' is a list", a.name)));
            }
        }
        let args: HashMap<&str, &str> = sig
            .input_arg
            .iter()
            .map(|a| a.name.as_str())
            .zip(data_inputs.iter().map(|s| s.as_str()))
            .collect();

        // Names of the inlined nodes (unique in the graph).
        let mut names: HashMap<&str, String> = HashMap::new();
        let mut taken = BTreeSet::new();
        for b in &fdef.node_def {
            let mut name = format!("{prefix}/{}", b.name);
            if self.id(&name).is_some() || taken.contains(&name) {
                let base = name.clone();
                name = (1..)
                    .map(|i| format!("{base}_{i}"))
                    .find(|n| self.id(n).is_none() && !taken.contains(n))
                    .expect("a free name");
            }
            taken.insert(name.clone());
            names.insert(b.name.as_str(), name);
        }
        let body: HashMap<&str, &NodeDef> =
            fdef.node_def.iter().map(|n| (n.name.as_str(), n)).collect();
        // Converts a body reference to a graph input string.
        let convert = |s: &str| -> Result<String, InlineError> {
            if let Some(ctl) = s.strip_prefix('^') {
                let n = names
                    .get(ctl)
                    .ok_or_else(|| err(format!("control input '^{ctl}' names no body node")))?;
                return Ok(format!("^{n}"));
            }
            let mut parts = s.splitn(3, ':');
            let head = parts.next().unwrap_or_default();
            let (out_arg, idx) = (parts.next(), parts.next());
            if out_arg.is_none() {
                if let Some(a) = args.get(head) {
                    return Ok((*a).to_string());
                }
            }
            let b = body
                .get(head)
                .ok_or_else(|| err(format!("reference '{s}' names no argument or body node")))?;
            let port = match out_arg {
                None => 0,
                Some(out) => {
                    let idx: usize = idx
                        .unwrap_or("0")
                        .parse()
                        .map_err(|_| err(format!("bad reference '{s}'")))?;
                    let range = sigs.output_port_range(b, out).map_err(|e| err(e.to_string()))?;
                    if idx >= range.len() {
                        return Err(err(format!("reference '{s}' is past the end of '{out}'")));
                    }
                    range.start + idx
                }
            };
            Ok(Input::Data { node: &names[head], port: port as u32 }.to_string())
        };

        let mut new_nodes = Vec::with_capacity(fdef.node_def.len());
        for b in &fdef.node_def {
            if b.attr.values().any(|a| matches!(a.value, Some(attr_value::Value::Placeholder(_)))) {
                return Err(err(format!(
                    "body node '{}' has an attr placeholder (a generic function)",
                    b.name
                )));
            }
            let mut n = b.clone();
            n.name = names[b.name.as_str()].clone();
            n.input = b.input.iter().map(|s| convert(s)).collect::<Result<_, _>>()?;
            let reads_body = b
                .input
                .iter()
                .any(|s| body.contains_key(Input::parse(s).node().split(':').next().unwrap_or("")));
            if !reads_body {
                n.input.extend(control_inputs.iter().map(|s| s.to_string()));
            }
            new_nodes.push(n);
        }
        let outputs: Vec<String> = sig
            .output_arg
            .iter()
            .map(|a| {
                let r = fdef
                    .ret
                    .get(&a.name)
                    .ok_or_else(|| err(format!("no return value for '{}'", a.name)))?;
                convert(r)
            })
            .collect::<Result<_, _>>()?;
        let mut control_targets: BTreeSet<String> =
            fdef.control_ret.values().filter_map(|n| names.get(n.as_str()).cloned()).collect();
        control_targets.extend(outputs.iter().map(|o| Input::parse(o).node().to_string()));

        self.remove_node(call);
        for n in new_nodes {
            self.add_node(n).map_err(|e| err(e.to_string()))?;
        }
        for (k, out) in outputs.iter().enumerate() {
            let from = TensorName { node: call_node.name.clone(), port: k as u32 };
            self.rewire(&from, &TensorName::parse(out));
        }
        let targets: Vec<&str> = control_targets.iter().map(String::as_str).collect();
        self.redirect_control(&call_node.name, &targets);
        Ok(())
    }

    /// Renames a node and every reference to it (inputs and `_class` colocations).
    pub fn rename(&mut self, id: NodeId, new: &str) -> Result<(), crate::GraphError> {
        if self.index.contains_key(new) {
            return Err(crate::GraphError::DuplicateName(new.to_string()));
        }
        let old = std::mem::replace(&mut self.node_mut(id).name, new.to_string());
        let loc_old = format!("loc:@{old}").into_bytes();
        let edges: Vec<(NodeId, usize)> = match self.readers.get(&old) {
            Some(r) => r.data.values().flatten().chain(&r.control).copied().collect(),
            None => Vec::new(),
        };
        for (c, k) in edges {
            let s = match Input::parse(&self.node(c).input[k]) {
                Input::Data { port, .. } => Input::Data { node: new, port }.to_string(),
                Input::Control(_) => Input::Control(new).to_string(),
            };
            self.set_input(c, k, s);
        }
        for n in self.nodes.iter_mut().flatten() {
            if let Some(attr_value::Value::List(l)) =
                n.attr.get_mut("_class").and_then(|a| a.value.as_mut())
            {
                for s in l.s.iter_mut() {
                    if *s == loc_old {
                        *s = format!("loc:@{new}").into_bytes();
                    }
                }
            }
        }
        Ok(())
    }
}
