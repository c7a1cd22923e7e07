//! Splicing out debug ops and pass-throughs, and dropping control edges that only order pure
//! computations.
//!
//! # Splicing
//! A spliced node `N` disappears; its consumers are rewired, never just dropped (TF's
//! `remove_training_nodes` drops the inputs of CheckNumerics consumers):
//!
//! - a data input `N:k` becomes the tensor `N` passes through at `k` (`Identity`: its input 0;
//!   `IdentityN`: its input `k`; `CheckNumerics`, `Print`: input 0), following chains of
//!   spliced nodes; `N` and `N:0` are the same tensor;
//! - the consumer also inherits `N`'s own control inputs, since `N`'s output only existed once
//!   they had run;
//! - a control input `^N` becomes control inputs on everything `N` waited for (its data and
//!   control producers), so the order the graph asked for is kept. Control edges that thereby
//!   only order pure computations are removed by [`tf_graph::Graph::drop_ordering_edges`]
//!   afterwards.
//!
//! A node is not spliced when it is protected (an output, an `--inputs` placeholder, `--keep`),
//! when it is read through a control edge and waits on a `Switch` (TF1 `cond` pivots such as
//! `cond/switch_t`: a control edge from a Switch would not carry the branch's deadness), when
//! an `IdentityN` touches TF1 control flow at all, or when its inputs do not match its op.
//!
//! # Control edges
//! A control edge `^P` only forces `P` to run first. When neither `P` nor anything it depends on
//! is stateful (variables, random ops, I/O, asserts, unknown ops) or TF1 control flow (which
//! uses control edges to put nodes into `cond` branches and loop frames), nothing observable
//! depends on that order and the edge can go. This is what removes the NoOps that TF2 frozen
//! graphs keep around their former variable reads.

use std::collections::{HashMap, HashSet};

use tf_graph::{Graph, Input, NodeId, TensorName};
use tf_proto::tensorflow::NodeDef;

use crate::{ActionKind, StripError, StripReport, Why};
use tf_ops::{is_pass_through_per_port, Signatures};

/// Which kinds of nodes to splice.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Opts {
    pub debug: bool,
    pub identity: bool,
    pub noop: bool,
}

/// Debug ops removed unless `--keep-asserts`.
pub(crate) fn is_debug_op(op: &str) -> bool {
    matches!(
        op,
        "CheckNumerics"
            | "CheckNumericsV2"
            | "Assert"
            | "Print"
            | "PrintV2"
            | "DebugIdentity"
            | "DebugIdentityV2"
            | "DebugIdentityV3"
    )
}

pub(crate) use tf_graph::analysis::is_v1_control_flow;

fn is_switch(op: &str) -> bool {
    matches!(op, "Switch" | "RefSwitch" | "_SwitchN")
}

/// How a spliced node maps its outputs to its inputs.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Output 0 is data input 0 (Identity, CheckNumerics, Print, ...).
    First,
    /// Output k is data input k (IdentityN).
    Each,
    /// No outputs (Assert, PrintV2): only control consumers.
    None,
}

fn kind(op: &str) -> Kind {
    match op {
        "IdentityN" => Kind::Each,
        "Assert" | "PrintV2" | "NoOp" => Kind::None,
        _ => Kind::First,
    }
}

/// Splices out debug ops and pass-throughs (see the module docs).
pub(crate) fn splice(
    g: &mut Graph,
    ops: &Signatures<'_>,
    protected: &HashSet<NodeId>,
    opts: Opts,
    report: &mut StripReport,
) -> Result<(), StripError> {
    let mut control_readers: HashMap<&str, usize> = HashMap::new();
    for (_, n) in g.nodes() {
        for s in &n.input {
            if let Input::Control(c) = Input::parse(s) {
                *control_readers.entry(c).or_default() += 1;
            }
        }
    }
    let mut chosen: HashMap<String, Why> = HashMap::new();
    for (id, n) in g.nodes() {
        let why = if opts.debug && is_debug_op(&n.op) {
            Why::DebugOp
        } else if opts.identity && is_pass_through_per_port(&n.op) {
            Why::PassThrough
        } else if opts.noop && n.op == "NoOp" {
            // Moving a NoOp's i control inputs onto its o readers must not multiply edges
            // (Grappler's dependency optimizer uses the same rule).
            let i = n.input.len();
            let o = control_readers.get(n.name.as_str()).copied().unwrap_or(0);
            if i * o > i + o {
                continue;
            }
            Why::ControlOnly
        } else {
            continue;
        };
        if protected.contains(&id) {
            continue;
        }
        let data: Vec<Input> =
            n.input.iter().map(|s| Input::parse(s)).filter(|i| !i.is_control()).collect();
        let shape_ok = match kind(&n.op) {
            Kind::First => !data.is_empty(),
            Kind::Each => ops.output_arity(n).is_ok_and(|a| a == data.len()),
            Kind::None => true,
        };
        let producer_op = |s: &String| g.get(Input::parse(s).node()).map_or("", |p| p.op.as_str());
        let identity_n_in_cf =
            n.op == "IdentityN" && n.input.iter().any(|s| is_v1_control_flow(producer_op(s)));
        // TF1 cond pivots (`cond/switch_t`): read through control edges, fed by a Switch. The
        // resolution below would find them too, one at a time; this keeps it to one pass.
        let pivot = control_readers.contains_key(n.name.as_str())
            && n.input.iter().any(|s| is_switch(producer_op(s)));
        if !shape_ok || identity_n_in_cf || pivot {
            if pivot && why == Why::DebugOp {
                report.warn(kept_pivot(&n.op, &n.name));
            }
            continue;
        }
        chosen.insert(n.name.clone(), why);
    }
    if chosen.is_empty() {
        return Ok(());
    }

    // Resolve what each spliced node stands for. A node whose control readers would end up
    // waiting on a Switch is kept instead, and the resolution starts over.
    let (rewrites, details) = loop {
        match plan(g, &chosen) {
            Ok(plan) => break plan,
            Err(Resolve::Blocked(name)) => {
                if chosen.remove(&name) == Some(Why::DebugOp) {
                    let op = g.get(&name).map(|n| n.op.clone()).unwrap_or_default();
                    report.warn(kept_pivot(&op, &name));
                }
            }
            Err(Resolve::Strip(e)) => return Err(e),
        }
    };
    for (id, inputs) in rewrites {
        g.set_inputs(id, inputs);
    }
    for id in g.ids() {
        let name = &g.node(id).name;
        if let Some(why) = chosen.get(name) {
            let detail = details.get(name).cloned().unwrap_or_default();
            let node = g.remove_node(id);
            report.push(ActionKind::Spliced, &node.name, &node.op, *why, detail);
        }
    }
    Ok(())
}

fn kept_pivot(op: &str, name: &str) -> String {
    format!("kept {op} '{name}': it is read through a control edge and waits on a TF1 Switch")
}

type Plan = (Vec<(NodeId, Vec<String>)>, HashMap<String, String>);

/// The new inputs of every node that reads a spliced node, and a description per spliced node.
fn plan(g: &Graph, chosen: &HashMap<String, Why>) -> Result<Plan, Resolve> {
    let mut r = Resolver { g, chosen, data: HashMap::new(), ctl: HashMap::new() };
    let mut rewrites: Vec<(NodeId, Vec<String>)> = Vec::new();
    for (id, n) in g.nodes() {
        if chosen.contains_key(&n.name)
            || !n.input.iter().any(|s| chosen.contains_key(Input::parse(s).node()))
        {
            continue;
        }
        let mut data: Vec<(&str, String)> = Vec::new();
        let mut controls: Vec<&str> = Vec::new();
        for s in &n.input {
            match Input::parse(s) {
                Input::Data { node, port } if chosen.contains_key(node) => {
                    let ((node, port), extra) = r.data(node, port)?;
                    data.push((node, Input::Data { node, port }.to_string()));
                    controls.extend(extra);
                }
                Input::Data { node, .. } => data.push((node, s.clone())),
                Input::Control(c) if chosen.contains_key(c) => controls.extend(r.ctl(c)?),
                Input::Control(c) => controls.push(c),
            }
        }
        // Each control input once, never on a node already read through a data edge, never
        // on the node itself.
        let readers: HashSet<&str> = data.iter().map(|(node, _)| *node).collect();
        let mut seen = HashSet::new();
        let controls = controls
            .into_iter()
            .filter(|c| *c != n.name && !readers.contains(c) && seen.insert(*c))
            .map(|c| format!("^{c}"));
        let inputs: Vec<String> = data.into_iter().map(|(_, s)| s).chain(controls).collect();
        rewrites.push((id, inputs));
    }
    let mut details = HashMap::new();
    for name in chosen.keys() {
        let n = g.get(name).expect("chosen from the graph");
        let detail = match kind(&n.op) {
            Kind::First => {
                let ((node, port), _) = r.data(&n.name, 0)?;
                format!("consumers now read {}", TensorName { node: node.into(), port })
            }
            Kind::Each => "consumers of output k now read its input k".to_string(),
            Kind::None => "control consumers now wait on its inputs".to_string(),
        };
        details.insert(name.clone(), detail);
    }
    Ok((rewrites, details))
}

/// Why a resolution stopped.
enum Resolve {
    /// This spliced node must stay: a control edge on it would move onto a Switch.
    Blocked(String),
    /// A real error.
    Strip(StripError),
}

impl From<StripError> for Resolve {
    fn from(e: StripError) -> Resolve {
        Resolve::Strip(e)
    }
}

/// Memoized resolution of spliced nodes to what they stand for. Names borrow from the graph.
struct Resolver<'a> {
    g: &'a Graph,
    chosen: &'a HashMap<String, Why>,
    /// (node, port) -> (tensor, control inputs that must accompany it)
    data: HashMap<(&'a str, u32), Resolved<'a>>,
    /// node -> what a control edge on it becomes
    ctl: HashMap<&'a str, Vec<&'a str>>,
}

/// A tensor `(node, port)` and the control inputs that must accompany it.
type Resolved<'a> = ((&'a str, u32), Vec<&'a str>);

impl<'a> Resolver<'a> {
    fn node(&self, name: &str) -> &'a NodeDef {
        self.g.get(name).expect("spliced nodes exist")
    }

    /// The tensor that output `port` of spliced node `name` passes through, and the control
    /// inputs a reader must inherit. Iterative: a chain of spliced nodes can be any length.
    fn data(&mut self, name: &'a str, port: u32) -> Result<Resolved<'a>, Resolve> {
        // Spliced tensors read through, nearest first, with their own control inputs.
        let mut pending: Vec<((&'a str, u32), Vec<&'a str>)> = Vec::new();
        let mut visiting = HashSet::new();
        let (mut name, mut port) = (name, port);
        let mut result = loop {
            if let Some(v) = self.data.get(&(name, port)) {
                break v.clone();
            }
            if !visiting.insert((name, port)) {
                return Err(StripError::Internal(format!(
                    "a cycle of spliced nodes through '{name}'"
                ))
                .into());
            }
            let n = self.node(name);
            let index = match kind(&n.op) {
                Kind::First => 0,
                Kind::Each => port as usize,
                Kind::None => {
                    return Err(StripError::Internal(format!(
                        "'{name}' ({}) has no outputs but is read as {name}:{port}",
                        n.op
                    ))
                    .into())
                }
            };
            let Some(Input::Data { node: src, port: src_port }) =
                n.input.get(index).map(|s| Input::parse(s))
            else {
                return Err(StripError::Internal(format!(
                    "'{name}' ({}) lacks input {index}",
                    n.op
                ))
                .into());
            };
            let controls = self.own_controls(n)?;
            if !self.chosen.contains_key(src) {
                let v = ((src, src_port), controls);
                self.data.insert((name, port), v.clone());
                break v;
            }
            if src == name {
                return Err(StripError::Internal(format!("'{name}' reads itself")).into());
            }
            pending.push(((name, port), controls));
            (name, port) = (src, src_port);
        };
        while let Some((key, mut controls)) = pending.pop() {
            controls.extend(result.1.iter().copied());
            result = (result.0, controls);
            self.data.insert(key, result.clone());
        }
        Ok(result)
    }

    /// The control inputs of spliced node `n`, themselves resolved.
    fn own_controls(&mut self, n: &'a NodeDef) -> Result<Vec<&'a str>, Resolve> {
        let mut out = Vec::new();
        for s in &n.input {
            if let Input::Control(c) = Input::parse(s) {
                if self.chosen.contains_key(c) {
                    out.extend(self.ctl(c)?);
                } else {
                    out.push(c);
                }
            }
        }
        Ok(out)
    }

    /// What a control edge on spliced node `name` becomes: control edges on everything it
    /// waited for. Iterative (an explicit stack of frames), in the order a recursive walk
    /// would take.
    fn ctl(&mut self, name: &'a str) -> Result<Vec<&'a str>, Resolve> {
        if let Some(v) = self.ctl.get(name) {
            return Ok(v.clone());
        }
        // Guards against a cycle of spliced nodes (not a valid graph).
        self.ctl.insert(name, Vec::new());
        // (node, next input to look at, what it waits for so far)
        let mut stack: Vec<(&'a str, usize, Vec<&'a str>)> = vec![(name, 0, Vec::new())];
        loop {
            let frame = stack.last_mut().expect("a frame");
            let n = self.node(frame.0);
            if let Some(s) = n.input.get(frame.1) {
                frame.1 += 1;
                let p = Input::parse(s).node();
                if self.chosen.contains_key(p) {
                    if let Some(v) = self.ctl.get(p) {
                        frame.2.extend(v.iter().copied());
                    } else {
                        self.ctl.insert(p, Vec::new());
                        stack.push((p, 0, Vec::new()));
                    }
                } else if self.g.get(p).is_some_and(|p| is_switch(&p.op)) {
                    return Err(Resolve::Blocked(frame.0.to_string()));
                } else {
                    frame.2.push(p);
                }
                continue;
            }
            let (done, _, mut out) = stack.pop().expect("a frame");
            let mut seen = HashSet::new();
            out.retain(|c| seen.insert(*c));
            self.ctl.insert(done, out.clone());
            match stack.last_mut() {
                Some(parent) => parent.2.extend(out),
                None => return Ok(out),
            }
        }
    }
}
