//! The static decision procedure (see docs/tools/tf-xla-check.md), node by node, recursing into the bodies of
//! the functions nodes call (If/While/Case branches, PartitionedCall targets, function ops).

use std::collections::HashMap;

use serde::Serialize;
use tf_graph::analysis::is_shape_op;
use tf_graph::{Graph, Input, NodeId, TensorName};
use tf_ops::{signature, Registry};
use tf_proto::tensorflow::{attr_value, AttrValue, DataType, FunctionDef, NodeDef};

use crate::table::{Device, Kernel, Table};
use crate::XlaError;

/// Why a node will not compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FindingKind {
    /// The op has no XLA kernel on the device.
    UnsupportedOp,
    /// The op has kernels, but none allows the node's type for some attribute.
    DtypeNotAllowed,
    /// A string value crosses an op or the function boundary.
    StringValue,
    /// A resource or variant value where XLA allows none.
    ResourceValue,
    /// A TF1 control-flow primitive (Switch, Merge, Enter, Exit, NextIteration, LoopCond).
    Tf1ControlFlow,
    /// A stateful op that lives on the host (variables, tables, queues, I/O, printing).
    StatefulHostOp,
    /// The kernel rejects an attribute value (Dequantize mode, narrow_range, axis).
    AttrValueRejected,
    /// An input that must be a compile-time constant depends on a run-time value.
    NonConstantInput,
}

/// One node that will not compile.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The node's name (in its function body when `function` is set).
    pub node: String,
    /// The node's op.
    pub op: String,
    /// The library function the node lives in, if not the top-level graph.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// What kind of problem.
    pub kind: FindingKind,
    /// Why, in words.
    pub reason: String,
    /// The error line TensorFlow prints for this node under `jit_compile=True`.
    pub tf_error: String,
}

/// A connected region of compilable nodes that auto-clustering could compile as one unit.
#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    /// Number of nodes.
    pub size: usize,
    /// Node names, in graph order.
    pub nodes: Vec<String>,
}

/// The outcome of a check.
#[derive(Debug, Clone, Serialize)]
pub struct XlaReport {
    /// `XLA_CPU_JIT` or `XLA_GPU_JIT`.
    pub device: Device,
    /// TensorFlow version of the op table.
    pub table_version: String,
    /// Whether the checked part of the graph compiles under `jit_compile=True`.
    pub compilable: bool,
    /// Outputs the check started from.
    pub outputs: Vec<String>,
    /// Top-level nodes checked (those the outputs need).
    pub nodes_checked: usize,
    /// Nodes TensorFlow folds into constants before compiling (not checked).
    pub nodes_folded: usize,
    /// Function bodies checked.
    pub functions_checked: usize,
    /// Every node that will not compile.
    pub findings: Vec<Finding>,
    /// Compilable regions, largest first (only regions of at least 2 nodes).
    pub clusters: Vec<Cluster>,
}

/// What to check.
#[derive(Debug, Clone)]
pub struct CheckConfig {
    /// The JIT device.
    pub device: Device,
    /// Output tensors; empty means the graph's detected outputs.
    pub outputs: Vec<String>,
    /// Input tensors: the check cuts the graph there as `tf-strip --inputs` does (each becomes
    /// an argument of the compiled function, whatever op produced it). Empty: no cut.
    pub inputs: Vec<String>,
    /// Treat `VarHandleOp` nodes as resource arguments of the compiled function. True for
    /// SavedModels, whose functions capture their variables; false for a GraphDef that is
    /// imported whole into a compiled function, where a `VarHandleOp` is an op like any other.
    pub variables_as_args: bool,
}

impl Default for CheckConfig {
    fn default() -> CheckConfig {
        CheckConfig {
            device: Device::Cpu,
            outputs: Vec::new(),
            inputs: Vec::new(),
            variables_as_args: false,
        }
    }
}

const TF1_CONTROL_FLOW: &[&str] = &[
    "Switch",
    "RefSwitch",
    "Merge",
    "RefMerge",
    "Enter",
    "RefEnter",
    "Exit",
    "RefExit",
    "NextIteration",
    "RefNextIteration",
    "LoopCond",
];

/// Ops that become `_Arg` when the graph is compiled as a function.
fn is_arg(op: &str) -> bool {
    matches!(op, "Placeholder" | "PlaceholderV2" | "_Arg")
}

fn dtype_name(t: i32) -> String {
    DataType::try_from(t).map_or_else(|_| format!("type {t}"), |d| d.as_str_name().to_string())
}

/// A function body being checked by [`Checker::check_function`].
struct Frame<'a> {
    key: String,
    name: String,
    body: &'a [NodeDef],
    /// The next body node to check.
    next: usize,
    ok: bool,
    /// Callees of the current node still to check, last first.
    calls: Vec<(String, bool)>,
}

struct Checker<'a> {
    table: &'a Table,
    ops: &'a Registry,
    graph: &'a Graph,
    device: Device,
    variables_as_args: bool,
    functions_done: HashMap<String, bool>,
    function_names: std::collections::BTreeSet<String>,
    findings: Vec<Finding>,
    /// The first broken reference met (a missing function, a dangling body input): the check
    /// ends in this error instead of a verdict.
    error: Option<XlaError>,
}

fn tf_error(dev: Device, n: &NodeDef, function: Option<&str>, extra: &str) -> String {
    let loc = match function {
        Some(f) => format!("{{{{function_node {f}}}}}{{{{node {}}}}}", n.name),
        None => format!("{{{{node {}}}}}", n.name),
    };
    format!(
        "{op} (No registered '{op}' OpKernel for {d} devices compatible with node {loc}{extra}){loc}",
        op = n.op,
        d = dev.jit_name()
    )
}

fn types_of(v: &AttrValue) -> Vec<i32> {
    match &v.value {
        Some(attr_value::Value::Type(t)) => vec![*t],
        Some(attr_value::Value::List(l)) => l.r#type.clone(),
        _ => Vec::new(),
    }
}

impl<'a> Checker<'a> {
    /// The attribute value of a node, or its op's default.
    fn attr<'n>(&'n self, n: &'n NodeDef, name: &str) -> Option<&'n AttrValue> {
        match self.ops.get(&n.op) {
            Some(def) => signature::attr_or_default(def, n, name),
            None => n.attr.get(name),
        }
    }

    /// The first attribute (name, bad type) that no kernel allows, if every kernel fails.
    fn type_mismatch(&self, n: &NodeDef, kernels: &[Kernel]) -> Option<(String, i32)> {
        let label = n.attr.get("_kernel").and_then(|a| match &a.value {
            Some(attr_value::Value::S(s)) => Some(String::from_utf8_lossy(s).into_owned()),
            _ => None,
        });
        let mut first = None;
        for k in kernels.iter().filter(|k| k.label == label) {
            let bad = k.constraints.iter().find_map(|(attr, allowed)| {
                let v = self.attr(n, attr)?;
                types_of(v).into_iter().find(|t| !allowed.contains(t)).map(|t| (attr.clone(), t))
            });
            match bad {
                None => return None,
                Some(b) => {
                    first.get_or_insert(b);
                }
            }
        }
        first.or_else(|| Some(("_kernel".into(), 0)))
    }

    /// Checks one node's op, types and attributes; pushes findings and returns whether it
    /// compiles. `function` is the body it lives in.
    fn check_node(&mut self, n: &NodeDef, function: Option<&str>) -> bool {
        match self.check_node_step(n, function) {
            Ok(ok) => ok,
            Err(calls) => {
                let mut ok = true;
                for (f, args_const) in calls {
                    ok &= self.check_function(&f, args_const);
                }
                ok
            }
        }
    }

    /// [`Checker::check_node`] without following calls: `Err(callees)` when the node compiles
    /// if and only if every callee `(function, args_const)` does.
    fn check_node_step(
        &mut self,
        n: &NodeDef,
        function: Option<&str>,
    ) -> Result<bool, Vec<(String, bool)>> {
        let dev = self.device;
        let push = |me: &mut Self, kind, reason: String, extra: &str| {
            // A placeholder is compiled as an `_Arg`, and TF names it so.
            let tf_error = if is_arg(&n.op) {
                let arg = NodeDef { name: n.name.clone(), op: "_Arg".into(), ..NodeDef::default() };
                tf_error(dev, &arg, function, extra)
            } else {
                tf_error(dev, n, function, extra)
            };
            me.findings.push(Finding {
                node: n.name.clone(),
                op: n.op.clone(),
                function: function.map(str::to_string),
                kind,
                reason,
                tf_error,
            });
            false
        };
        if let Some(missing) = missing_function(self.graph, n) {
            self.error.get_or_insert(XlaError::MissingFunction {
                node: n.name.clone(),
                op: n.op.clone(),
                function: missing,
                caller: function.map(str::to_string),
            });
            return Ok(false);
        }
        // A captured variable is a resource argument (`_Arg` allows DT_RESOURCE).
        if self.variables_as_args && n.op == "VarHandleOp" && function.is_none() {
            return Ok(true);
        }
        // Calls of library functions by op name compile if their bodies do.
        if self.graph.function(&n.op).is_some() {
            return Err(self.calls(n));
        }
        let op = if is_arg(&n.op) { "_Arg" } else { n.op.as_str() };
        let Some(kernels) = self.table.kernels(dev, op) else {
            let (kind, reason) = self.classify_unsupported(n);
            return Ok(push(self, kind, reason, ""));
        };
        let mismatch = if is_arg(&n.op) {
            let t = self.attr(n, "dtype").map(types_of).unwrap_or_default();
            let arg = NodeDef {
                op: "_Arg".into(),
                attr: t.first().map(|t| ("T".to_string(), type_attr(*t))).into_iter().collect(),
                ..NodeDef::default()
            };
            self.type_mismatch(&arg, kernels)
        } else {
            self.type_mismatch(n, kernels)
        };
        if let Some((attr, t)) = mismatch {
            let kind = match DataType::try_from(t) {
                Ok(DataType::DtString) => FindingKind::StringValue,
                Ok(DataType::DtResource | DataType::DtVariant) => FindingKind::ResourceValue,
                _ => FindingKind::DtypeNotAllowed,
            };
            let tn = dtype_name(t);
            let reason = format!("{op} has XLA kernels, but none allows {attr}={tn}");
            let extra = format!("\n\t (OpKernel was found, but attributes didn't match) Requested Attributes: {attr}={tn}");
            return Ok(push(self, kind, reason, &extra));
        }
        if n.op == "Dequantize" {
            let s = |a: &str| match self.attr(n, a).and_then(|v| v.value.as_ref()) {
                Some(attr_value::Value::S(s)) => String::from_utf8_lossy(s).into_owned(),
                Some(attr_value::Value::B(b)) => b.to_string(),
                Some(attr_value::Value::I(i)) => i.to_string(),
                _ => String::new(),
            };
            let (mode, narrow, axis) = (s("mode"), s("narrow_range"), s("axis"));
            let bad = if !mode.is_empty() && mode != "MIN_COMBINED" {
                Some(format!("Mode string must be 'MIN_COMBINED' is '{mode}'"))
            } else if narrow == "true" {
                Some("narrow_range=true is not supported".into())
            } else if !axis.is_empty() && axis != "-1" {
                Some(format!("axis={axis}: only per-tensor (axis -1) dequantization is supported"))
            } else {
                None
            };
            if let Some(msg) = bad {
                let tf = format!("{msg}\n\t [[{{{{node {}}}}}]]", n.name);
                self.findings.push(Finding {
                    node: n.name.clone(),
                    op: n.op.clone(),
                    function: function.map(str::to_string),
                    kind: FindingKind::AttrValueRejected,
                    reason: format!("the XLA Dequantize kernel rejects it: {msg}"),
                    tf_error: tf,
                });
                return Ok(false);
            }
        }
        let calls = self.calls(n);
        if calls.is_empty() {
            Ok(true)
        } else {
            Err(calls)
        }
    }

    fn classify_unsupported(&self, n: &NodeDef) -> (FindingKind, String) {
        let dev = self.device.jit_name();
        if TF1_CONTROL_FLOW.contains(&n.op.as_str()) {
            return (
                FindingKind::Tf1ControlFlow,
                format!("TF1 control-flow primitive {} has no {dev} kernel (use tf.cond/tf.while_loop v2: If/While)", n.op),
            );
        }
        let types: Vec<i32> = n.attr.values().flat_map(types_of).collect();
        let lib = self.graph.library.as_ref();
        let mut outs = self.ops.output_types_with_library(n, lib).unwrap_or_default();
        outs.extend(self.ops.with_library(lib).input_types(n).unwrap_or_default());
        let has = |t: DataType| types.contains(&(t as i32)) || outs.contains(&(t as i32));
        if has(DataType::DtString) {
            return (FindingKind::StringValue, format!("string op {} has no {dev} kernel", n.op));
        }
        if self.ops.is_stateful(&n.op) == Some(true) {
            return (
                FindingKind::StatefulHostOp,
                format!("stateful host op {} has no {dev} kernel", n.op),
            );
        }
        if has(DataType::DtResource) || has(DataType::DtVariant) {
            return (
                FindingKind::ResourceValue,
                format!("{} produces resource/variant values and has no {dev} kernel", n.op),
            );
        }
        (FindingKind::UnsupportedOp, format!("{} has no {dev} kernel", n.op))
    }

    /// The functions a node calls, each with whether its arguments count as compile-time
    /// constants. A While's body and condition run once per iteration: their arguments are
    /// loop values, never compile-time constants. Other callees are inlined or compiled with
    /// their constant inputs as constants.
    fn calls(&self, n: &NodeDef) -> Vec<(String, bool)> {
        let args_const = !matches!(n.op.as_str(), "While" | "StatelessWhile" | "XlaWhile");
        called_functions(self.graph, n).into_iter().map(|f| (f, args_const)).collect()
    }

    /// Starts checking a function: its cached verdict, or a frame for its body. The verdict
    /// is `true` while the check is under way, so recursion terminates.
    fn enter_function(&mut self, name: &str, args_const: bool) -> Result<Frame<'a>, bool> {
        let key = format!("{name}\u{0}{args_const}");
        if let Some(ok) = self.functions_done.get(&key) {
            return Err(*ok);
        }
        self.functions_done.insert(key.clone(), true);
        self.function_names.insert(name.to_string());
        let graph = self.graph;
        let Some(f) = graph.function(name) else { return Err(true) };
        if let Some((node, input)) = dangling_body_input(f) {
            self.error.get_or_insert(XlaError::DanglingInput {
                function: name.to_string(),
                node,
                input,
            });
            return Err(false);
        }
        let mut ok = true;
        if let Some(sig) = &f.signature {
            for a in sig.input_arg.iter().filter(|a| a.r#type == DataType::DtString as i32) {
                let arg = NodeDef { name: a.name.clone(), op: "_Arg".into(), ..NodeDef::default() };
                let extra = "\n\t (OpKernel was found, but attributes didn't match) Requested Attributes: T=DT_STRING";
                self.findings.push(Finding {
                    node: a.name.clone(),
                    op: "_Arg".into(),
                    function: Some(name.to_string()),
                    kind: FindingKind::StringValue,
                    reason: "string function argument".into(),
                    tf_error: tf_error(self.device, &arg, Some(name), extra),
                });
                ok = false;
            }
        }
        ok &= self.check_body_const_inputs(name, f, args_const);
        Ok(Frame { key, name: name.to_string(), body: &f.node_def, next: 0, ok, calls: Vec::new() })
    }

    /// Whether a function's body compiles (and its callees'), with findings for what does
    /// not. Iterative: calls may nest to any depth.
    fn check_function(&mut self, name: &str, args_const: bool) -> bool {
        let mut stack = match self.enter_function(name, args_const) {
            Ok(frame) => vec![frame],
            Err(ok) => return ok,
        };
        loop {
            let top = stack.last_mut().expect("a frame");
            if let Some((f, ac)) = top.calls.pop() {
                match self.enter_function(&f, ac) {
                    Ok(frame) => stack.push(frame),
                    Err(ok) => top.ok &= ok,
                }
                continue;
            }
            let body = top.body;
            if let Some(n) = body.get(top.next) {
                top.next += 1;
                let fname = top.name.clone();
                match self.check_node_step(n, Some(&fname)) {
                    Ok(ok) => stack.last_mut().expect("a frame").ok &= ok,
                    Err(mut calls) => {
                        calls.reverse();
                        stack.last_mut().expect("a frame").calls = calls;
                    }
                }
                continue;
            }
            let done = stack.pop().expect("a frame");
            self.functions_done.insert(done.key, done.ok);
            match stack.last_mut() {
                Some(parent) => parent.ok &= done.ok,
                None => return done.ok,
            }
        }
    }

    /// The compile-time-constant inputs of a function body's nodes: a body value is constant
    /// if it comes from constants, shapes, and (unless `args_const` is false) the arguments,
    /// through pure ops.
    fn check_body_const_inputs(&mut self, fname: &str, f: &FunctionDef, args_const: bool) -> bool {
        let index: HashMap<&str, usize> =
            f.node_def.iter().enumerate().map(|(i, n)| (n.name.as_str(), i)).collect();
        // 0 = unknown, 1 = in progress, 2 = not constant, 3 = constant
        let mut state = vec![0u8; f.node_def.len()];
        fn source(s: &str, index: &HashMap<&str, usize>) -> Option<Option<usize>> {
            // Some(Some(i)): body node i; Some(None): a function argument; None: control input.
            if s.starts_with('^') {
                return None;
            }
            let node = s.split(':').next().unwrap_or(s);
            Some(index.get(node).copied())
        }
        /// Whether body node `i` is a compile-time constant (memoized in `state`; iterative,
        /// visiting inputs in order and stopping at the first that is not constant).
        fn constant(
            i: usize,
            f: &FunctionDef,
            index: &HashMap<&str, usize>,
            state: &mut [u8],
            ops: &Registry,
            args_const: bool,
        ) -> bool {
            // Frames: (node, next input to look at).
            let mut stack: Vec<(usize, usize)> = Vec::new();
            // The verdict of the node last finished, for its parent.
            let mut finished: Option<bool> = None;
            let visit = |j: usize, stack: &mut Vec<(usize, usize)>, state: &mut [u8]| match state[j]
            {
                2 | 1 => Some(false), // 1: a cycle, not constant
                3 => Some(true),
                _ => {
                    state[j] = 1;
                    let n = &f.node_def[j];
                    let pure = ops.is_stateful(&n.op) == Some(false)
                        && !TF1_CONTROL_FLOW.contains(&n.op.as_str());
                    if n.op == "Const" || is_shape_op(&n.op) {
                        state[j] = 3;
                        Some(true)
                    } else if !pure {
                        state[j] = 2;
                        Some(false)
                    } else {
                        stack.push((j, 0));
                        None
                    }
                }
            };
            if let Some(c) = visit(i, &mut stack, state) {
                return c;
            }
            loop {
                let Some(&(j, mut next)) = stack.last() else {
                    return finished.unwrap_or(false);
                };
                let verdict = match finished.take() {
                    Some(false) => Some(false),
                    _ => loop {
                        let Some(s) = f.node_def[j].input.get(next) else { break Some(true) };
                        next += 1;
                        match source(s, index) {
                            None => continue,
                            Some(None) if args_const => continue,
                            Some(None) => break Some(false),
                            Some(Some(k)) => {
                                stack.last_mut().expect("a frame").1 = next;
                                match visit(k, &mut stack, state) {
                                    Some(true) => continue,
                                    Some(false) => break Some(false),
                                    None => break None,
                                }
                            }
                        }
                    },
                };
                if let Some(c) = verdict {
                    stack.pop();
                    state[j] = if c { 3 } else { 2 };
                    finished = Some(c);
                }
            }
        }
        let mut ok = true;
        for n in &f.node_def {
            for arg in self.table.const_inputs(&n.op) {
                let Ok(range) = self.ops.input_port_range(n, arg) else { continue };
                for i in range {
                    let Some(s) = n.input.get(i) else { continue };
                    let c = match source(s, &index) {
                        None => true,
                        Some(None) => args_const,
                        Some(Some(j)) => constant(j, f, &index, &mut state, self.ops, args_const),
                    };
                    if !c {
                        ok = false;
                        self.findings.push(Finding {
                            node: n.name.clone(),
                            op: n.op.clone(),
                            function: Some(fname.to_string()),
                            kind: FindingKind::NonConstantInput,
                            reason: format!(
                                "input {i} ('{arg}') must be a compile-time constant but depends on {} ('{s}')",
                                if args_const { "a run-time value" } else { "a loop variable" }
                            ),
                            tf_error: format!(
                                "Input {i} to node `{}` with op {} must be a compile-time constant.",
                                n.name, n.op
                            ),
                        });
                    }
                }
            }
        }
        ok
    }
}

fn type_attr(t: i32) -> AttrValue {
    AttrValue { value: Some(attr_value::Value::Type(t)) }
}

/// The functions a node's function-valued attributes name, at any depth
/// ([`tf_graph::attr_functions`]); internal (`_`) attributes are not calls.
fn attr_calls(n: &NodeDef) -> Vec<&str> {
    let mut out = Vec::new();
    for (_, v) in n.attr.iter().filter(|(k, _)| !k.starts_with('_')) {
        tf_graph::attr_functions(v, &mut out);
    }
    out
}

/// The first function a node calls (by a function-valued attribute) that the graph's library
/// does not define.
fn missing_function(g: &Graph, n: &NodeDef) -> Option<String> {
    attr_calls(n).into_iter().find(|f| g.function(f).is_none()).map(str::to_string)
}

/// The first data input of a function body that names neither a body node nor an argument.
fn dangling_body_input(f: &FunctionDef) -> Option<(String, String)> {
    let mut known: std::collections::HashSet<&str> =
        f.node_def.iter().map(|n| n.name.as_str()).collect();
    if let Some(sig) = &f.signature {
        known.extend(sig.input_arg.iter().map(|a| a.name.as_str()));
    }
    f.node_def.iter().find_map(|n| {
        n.input.iter().find_map(|s| {
            let s2 = s.strip_prefix('^').unwrap_or(s);
            let node = s2.split(':').next().unwrap_or(s2);
            (!known.contains(node)).then(|| (n.name.clone(), s.clone()))
        })
    })
}

/// Every library function a node calls: an op that names a library function, and
/// function-valued attributes (If/While/Case branches, PartitionedCall `f`, and the functions
/// those are handed in their own attributes).
pub fn called_functions(g: &Graph, n: &NodeDef) -> Vec<String> {
    std::iter::once(n.op.as_str())
        .chain(attr_calls(n))
        .filter(|f| g.function(f).is_some())
        .map(str::to_string)
        .collect()
}

/// Checks the part of `graph` that `cfg.outputs` (or the detected outputs) need.
///
/// With `cfg.inputs`, the check runs on a copy of the graph cut there (tf-strip's cut); the
/// copy is made only when some input is not already a placeholder's output.
pub fn check_graph(graph: &Graph, cfg: &CheckConfig) -> Result<XlaReport, XlaError> {
    let is_arg_tensor = |s: &String| {
        let t = TensorName::parse(s.trim());
        t.port == 0 && graph.get(&t.node).is_some_and(|n| is_arg(&n.op))
    };
    if cfg.inputs.iter().all(is_arg_tensor) {
        return check_graph_with(graph, cfg, Table::global(), Registry::global());
    }
    graph.check(Some(Registry::global()))?;
    let mut cut = graph.clone();
    tf_strip::cut_inputs(&mut cut, &cfg.inputs)?;
    check_graph_with(&cut, cfg, Table::global(), Registry::global())
}

/// [`check_graph`] with an explicit table and registry.
pub fn check_graph_with(
    graph: &Graph,
    cfg: &CheckConfig,
    table: &Table,
    ops: &Registry,
) -> Result<XlaReport, XlaError> {
    // A graph TensorFlow would not import gets no verdict.
    graph.check(Some(ops))?;
    let order = graph.topo_order()?;
    let marked: Vec<String> = graph.marked_outputs().iter().map(ToString::to_string).collect();
    let asked = if cfg.outputs.is_empty() { &marked } else { &cfg.outputs };
    let (roots, outputs) = if asked.is_empty() {
        let ids = graph.candidate_outputs();
        let names = ids.iter().map(|id| format!("{}:0", graph.node(*id).name)).collect();
        (ids, names)
    } else {
        let mut ids = Vec::new();
        for o in asked {
            let t = TensorName::parse(o);
            ids.push(graph.id(&t.node).ok_or_else(|| XlaError::UnknownOutput(o.clone()))?);
        }
        (ids, asked.clone())
    };
    let needed = graph.reachable(&roots, false);
    let mut ck = Checker {
        table,
        ops,
        graph,
        device: cfg.device,
        variables_as_args: cfg.variables_as_args,
        functions_done: HashMap::new(),
        function_names: Default::default(),
        findings: Vec::new(),
        error: None,
    };
    // Value classes, in topological order:
    // `folded`: Grappler turns it into a Const before XLA sees it (all inputs constant, pure);
    // `xla_const`: its value is known when XLA compiles (constants, arguments, shapes, pure
    // functions of those).
    let n = order.iter().map(|i| i.0 + 1).max().unwrap_or(0);
    let mut folded = vec![false; n];
    let mut xla_const = vec![false; n];
    let mut ok = vec![true; n];
    let mut checked = 0;
    let mut nfolded = 0;
    for &id in order.iter().filter(|id| needed[id.0]) {
        let node = graph.node(id);
        let data: Vec<NodeId> = node
            .input
            .iter()
            .map(|s| Input::parse(s))
            .filter(|i| !i.is_control())
            .filter_map(|i| graph.id(i.node()))
            .collect();
        let pure = ops.is_stateful(&node.op) == Some(false)
            && !TF1_CONTROL_FLOW.contains(&node.op.as_str())
            && !is_arg(&node.op)
            && called_functions(graph, node).is_empty()
            && missing_function(graph, node).is_none();
        folded[id.0] =
            node.op == "Const" || (pure && !data.is_empty() && data.iter().all(|p| folded[p.0]));
        xla_const[id.0] = folded[id.0]
            || is_arg(&node.op)
            || is_shape_op(&node.op)
            || (pure && data.iter().all(|p| xla_const[p.0]));
        if folded[id.0] && node.op != "Const" {
            nfolded += 1;
            continue;
        }
        checked += 1;
        let mut node_ok = ck.check_node(node, None);
        for arg in table.const_inputs(&node.op) {
            let Ok(range) = ops.input_port_range(node, arg) else { continue };
            for i in range {
                let Some(s) = node.input.get(i) else { continue };
                let Some(p) = graph.id(Input::parse(s).node()) else { continue };
                if !xla_const[p.0] {
                    node_ok = false;
                    ck.findings.push(Finding {
                        node: node.name.clone(),
                        op: node.op.clone(),
                        function: None,
                        kind: FindingKind::NonConstantInput,
                        reason: format!(
                            "input {i} ('{arg}') must be a compile-time constant but depends on a run-time value ('{s}')"
                        ),
                        tf_error: format!(
                            "Input {i} to node `{}` with op {} must be a compile-time constant.",
                            node.name, node.op
                        ),
                    });
                }
            }
        }
        ok[id.0] = node_ok;
    }
    // Fetched tensors become _Retval nodes.
    if let Some(kernels) = table.kernels(cfg.device, "_Retval") {
        for o in &outputs {
            let t = TensorName::parse(o);
            let Some(id) = graph.id(&t.node) else { continue };
            let node = graph.node(id);
            let Ok(types) = ops.output_types_with_library(node, graph.library.as_ref()) else {
                continue;
            };
            let Some(&ty) = types.get(t.port as usize) else { continue };
            let ret = NodeDef {
                name: format!("{}_RetVal", node.name),
                op: "_Retval".into(),
                attr: [("T".to_string(), type_attr(ty))].into_iter().collect(),
                ..NodeDef::default()
            };
            if let Some((attr, t)) = ck.type_mismatch(&ret, kernels) {
                let tn = dtype_name(t);
                let extra = format!("\n\t (OpKernel was found, but attributes didn't match) Requested Attributes: {attr}={tn}");
                ck.findings.push(Finding {
                    node: ret.name.clone(),
                    op: "_Retval".into(),
                    function: None,
                    kind: if t == DataType::DtString as i32 {
                        FindingKind::StringValue
                    } else {
                        FindingKind::DtypeNotAllowed
                    },
                    reason: format!("output '{o}' is {tn}, which XLA cannot return"),
                    tf_error: tf_error(cfg.device, &ret, None, &extra),
                });
            }
        }
    }
    if let Some(e) = ck.error.take() {
        return Err(e);
    }
    if checked == 0 && nfolded == 0 {
        let what = if outputs.is_empty() { "none found".to_string() } else { outputs.join(", ") };
        return Err(XlaError::NothingToCheck(what));
    }
    let clusters = clusters(graph, &needed, &ok);
    let functions_checked = ck.function_names.len();
    Ok(XlaReport {
        device: cfg.device,
        table_version: table.tensorflow.clone(),
        compilable: ck.findings.is_empty(),
        outputs,
        nodes_checked: checked,
        nodes_folded: nfolded,
        functions_checked,
        findings: ck.findings,
        clusters,
    })
}

/// Connected components (over data edges) of needed, compilable, non-argument nodes.
fn clusters(graph: &Graph, needed: &[bool], ok: &[bool]) -> Vec<Cluster> {
    let member = |id: NodeId| {
        needed[id.0] && ok[id.0] && !is_arg(&graph.node(id).op) && graph.node(id).op != "NoOp"
    };
    let n = needed.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    for (id, node) in graph.nodes() {
        if !member(id) {
            continue;
        }
        for s in &node.input {
            let i = Input::parse(s);
            if i.is_control() {
                continue;
            }
            if let Some(p) = graph.id(i.node()).filter(|p| member(*p)) {
                let (a, b) = (find(&mut parent, id.0), find(&mut parent, p.0));
                parent[a] = b;
            }
        }
    }
    let mut groups: HashMap<usize, Vec<String>> = HashMap::new();
    let mut first: HashMap<usize, usize> = HashMap::new();
    for (id, node) in graph.nodes() {
        if member(id) {
            let r = find(&mut parent, id.0);
            first.entry(r).or_insert(id.0);
            groups.entry(r).or_default().push(node.name.clone());
        }
    }
    let mut out: Vec<(usize, Cluster)> = groups
        .into_iter()
        .filter(|(_, v)| v.len() >= 2)
        .map(|(r, nodes)| (first[&r], Cluster { size: nodes.len(), nodes }))
        .collect();
    out.sort_by(|a, b| b.1.size.cmp(&a.1.size).then(a.0.cmp(&b.0)));
    out.into_iter().map(|(_, c)| c).collect()
}
