//! An editable TensorFlow graph.
//!
//! [`Graph`] owns the `NodeDef`s of a `GraphDef` in their original order, indexes them by name,
//! and passes `library`, `versions` and `debug_info` through untouched, so a graph that no pass
//! changed encodes back to the same bytes. Node inputs stay in their original spelling until a
//! pass rewires them; [`Input`] parses the three forms (`x`, `x:1`, `^x`).
//!
//! Removal leaves a tombstone so that [`NodeId`]s stay valid during a pass; the tombstones are
//! skipped when the graph is written back. [`Graph::check`] verifies the invariants a GraphDef
//! importer enforces: unique names, every input resolves, control inputs after data inputs,
//! output ports within the producer's arity and colocation (`_class: loc:@x`) targets that exist.

#![deny(missing_docs)]

pub mod analysis;
mod inline;
mod input;

use std::collections::{BTreeSet, HashMap};

pub use inline::{called_function, InlineError};
pub use input::{Input, TensorName};
use tf_ops::Registry;
use tf_proto::tensorflow::{
    attr_value, FunctionDefLibrary, GraphDebugInfo, GraphDef, NodeDef, VersionDef,
};

/// Index of a node in its [`Graph`]; stable until the graph is written back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub usize);

/// A broken graph invariant, naming the node and the field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum GraphError {
    /// Two nodes share a name.
    #[error("duplicate node name '{0}'")]
    DuplicateName(String),
    /// A node has an empty name.
    #[error("node #{0} has an empty name")]
    EmptyName(usize),
    /// A node has no op.
    #[error("node '{0}' has an empty op")]
    EmptyOp(String),
    /// An input names a node that does not exist.
    #[error("node '{node}' input '{input}' refers to a node that does not exist")]
    MissingInput {
        /// The consumer.
        node: String,
        /// The input as written.
        input: String,
    },
    /// A control input precedes a data input.
    #[error("node '{0}': control inputs must come after data inputs")]
    ControlBeforeData(String),
    /// An input refers past the producer's last output.
    #[error(
        "node '{node}' input '{input}' refers to output {port} but '{producer}' ({op}) has {arity} output(s)"
    )]
    PortOutOfRange {
        /// The consumer.
        node: String,
        /// The input as written.
        input: String,
        /// The port referred to.
        port: u32,
        /// The producer.
        producer: String,
        /// The producer's op.
        op: String,
        /// The producer's number of outputs.
        arity: usize,
    },
    /// A `_class` colocation entry names a node that does not exist.
    #[error("node '{node}' is colocated with '{target}', which does not exist")]
    DanglingColocation {
        /// The node carrying `_class`.
        node: String,
        /// The missing node.
        target: String,
    },
    /// The data and control edges form a cycle outside a TF1 while loop.
    #[error("graph has a cycle through node '{0}'")]
    Cycle(String),
}

/// Who reads each output and who depends on each node.
#[derive(Debug, Default)]
pub struct Consumers {
    data: HashMap<(NodeId, u32), Vec<(NodeId, usize)>>,
    by_node: HashMap<NodeId, Vec<NodeId>>,
    control: HashMap<NodeId, Vec<NodeId>>,
}

impl Consumers {
    /// Readers of output `port` of `node`: (consumer, index in its `input` list).
    pub fn of_output(&self, node: NodeId, port: u32) -> &[(NodeId, usize)] {
        self.data.get(&(node, port)).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Nodes that have `^node` among their inputs.
    pub fn control_of(&self, node: NodeId) -> &[NodeId] {
        self.control.get(&node).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Whether anything reads any output of `node` or depends on it.
    pub fn has_any(&self, node: NodeId) -> bool {
        !self.control_of(node).is_empty() || self.data.keys().any(|(n, _)| *n == node)
    }

    /// Every data reader of any output of `node`.
    pub fn of_node(&self, node: NodeId) -> &[NodeId] {
        self.by_node.get(&node).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Number of data edges leaving `node` (over all ports).
    pub fn data_out_degree(&self, node: NodeId) -> usize {
        self.data.iter().filter(|((n, _), _)| *n == node).map(|(_, v)| v.len()).sum()
    }
}

/// A GraphDef as an editable graph.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    nodes: Vec<Option<NodeDef>>,
    index: HashMap<String, NodeId>,
    /// `GraphDef.library`, passed through.
    pub library: Option<FunctionDefLibrary>,
    /// `GraphDef.versions`, passed through.
    pub versions: Option<VersionDef>,
    /// `GraphDef.debug_info`, passed through.
    pub debug_info: Option<GraphDebugInfo>,
    /// The deprecated `GraphDef.version` (field 3), passed through.
    pub version: i32,
}

impl Graph {
    /// Takes ownership of a GraphDef's nodes; fails on an empty or duplicate name.
    #[allow(deprecated)] // `version` (field 3) is passed through, not used.
    pub fn from_graph_def(g: GraphDef) -> Result<Graph, GraphError> {
        let mut index = HashMap::with_capacity(g.node.len());
        for (i, n) in g.node.iter().enumerate() {
            if n.name.is_empty() {
                return Err(GraphError::EmptyName(i));
            }
            if index.insert(n.name.clone(), NodeId(i)).is_some() {
                return Err(GraphError::DuplicateName(n.name.clone()));
            }
        }
        Ok(Graph {
            nodes: g.node.into_iter().map(Some).collect(),
            index,
            library: g.library,
            versions: g.versions,
            debug_info: g.debug_info,
            version: g.version,
        })
    }

    /// Writes the graph back: live nodes in their original order, new nodes after them.
    #[allow(deprecated)]
    pub fn into_graph_def(self) -> GraphDef {
        GraphDef {
            node: self.nodes.into_iter().flatten().collect(),
            library: self.library,
            versions: self.versions,
            debug_info: self.debug_info,
            version: self.version,
        }
    }

    /// Number of live nodes.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Live nodes in order.
    pub fn nodes(&self) -> impl Iterator<Item = (NodeId, &NodeDef)> {
        self.nodes.iter().enumerate().filter_map(|(i, n)| n.as_ref().map(|n| (NodeId(i), n)))
    }

    /// Ids of live nodes in order.
    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes().map(|(id, _)| id).collect()
    }

    /// The node with this id. Panics on a removed node: ids come from this graph.
    pub fn node(&self, id: NodeId) -> &NodeDef {
        self.nodes[id.0].as_ref().expect("node id refers to a removed node")
    }

    /// The node with this id, mutable. Renaming through this breaks the index: don't.
    pub fn node_mut(&mut self, id: NodeId) -> &mut NodeDef {
        self.nodes[id.0].as_mut().expect("node id refers to a removed node")
    }

    /// Looks a node up by name.
    pub fn id(&self, name: &str) -> Option<NodeId> {
        self.index.get(name).copied()
    }

    /// Looks a node up by name.
    pub fn get(&self, name: &str) -> Option<&NodeDef> {
        self.id(name).map(|id| self.node(id))
    }

    /// Adds a node at the end; fails if the name is taken or empty.
    pub fn add_node(&mut self, node: NodeDef) -> Result<NodeId, GraphError> {
        if node.name.is_empty() {
            return Err(GraphError::EmptyName(self.nodes.len()));
        }
        if self.index.contains_key(&node.name) {
            return Err(GraphError::DuplicateName(node.name));
        }
        let id = NodeId(self.nodes.len());
        self.index.insert(node.name.clone(), id);
        self.nodes.push(Some(node));
        Ok(id)
    }

    /// A free node name derived from `base`: `base` itself, else `base_1`, `base_2`, ...
    pub fn unique_name(&self, base: &str) -> String {
        if !self.index.contains_key(base) {
            return base.to_string();
        }
        (1..).map(|i| format!("{base}_{i}")).find(|n| !self.index.contains_key(n)).unwrap()
    }

    /// Removes a node and returns it. Inputs that referred to it are left for the caller to
    /// rewire or drop; [`Graph::check`] reports any that remain.
    pub fn remove_node(&mut self, id: NodeId) -> NodeDef {
        let node = self.nodes[id.0].take().expect("node removed twice");
        self.index.remove(&node.name);
        node
    }

    /// Builds the consumer index of the current graph.
    pub fn consumers(&self) -> Consumers {
        let mut c = Consumers::default();
        for (id, n) in self.nodes() {
            for (i, s) in n.input.iter().enumerate() {
                match Input::parse(s) {
                    Input::Data { node, port } => {
                        if let Some(p) = self.id(node) {
                            c.data.entry((p, port)).or_default().push((id, i));
                            c.by_node.entry(p).or_default().push(id);
                        }
                    }
                    Input::Control(node) => {
                        if let Some(p) = self.id(node) {
                            c.control.entry(p).or_default().push(id);
                        }
                    }
                }
            }
        }
        c
    }

    /// Points every data input that reads `from` at `to` instead; returns how many changed.
    pub fn rewire(&mut self, from: &TensorName, to: &TensorName) -> usize {
        let new = Input::Data { node: &to.node, port: to.port }.to_string();
        let mut changed = 0;
        for n in self.nodes.iter_mut().flatten() {
            for s in n.input.iter_mut() {
                if let Input::Data { node, port } = Input::parse(s) {
                    if node == from.node && port == from.port {
                        *s = new.clone();
                        changed += 1;
                    }
                }
            }
        }
        changed
    }

    /// Node ids in an order where every producer precedes its consumers (data and control
    /// edges), ties broken by original order. Edges into a `Merge` from a `NextIteration` are
    /// the back edges of TF1 while loops and are not ordering constraints.
    pub fn topo_order(&self) -> Result<Vec<NodeId>, GraphError> {
        let n = self.nodes.len();
        let mut indeg = vec![0usize; n];
        let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (id, node) in self.nodes() {
            let merge = node.op == "Merge" || node.op == "RefMerge";
            for s in &node.input {
                let Some(p) = self.id(Input::parse(s).node()) else { continue };
                if merge && matches!(self.node(p).op.as_str(), "NextIteration" | "RefNextIteration")
                {
                    continue;
                }
                indeg[id.0] += 1;
                out[p.0].push(id.0);
            }
        }
        let mut ready: BTreeSet<usize> =
            self.nodes().map(|(id, _)| id.0).filter(|i| indeg[*i] == 0).collect();
        let mut order = Vec::with_capacity(self.len());
        while let Some(i) = ready.pop_first() {
            order.push(NodeId(i));
            for &c in &out[i] {
                indeg[c] -= 1;
                if indeg[c] == 0 {
                    ready.insert(c);
                }
            }
        }
        if order.len() != self.len() {
            let stuck = self.nodes().find(|(id, _)| indeg[id.0] > 0).map(|(_, n)| n.name.clone());
            return Err(GraphError::Cycle(stuck.unwrap_or_default()));
        }
        Ok(order)
    }

    /// Marks every node the given roots depend on (through data and control inputs, and
    /// through `_class` colocation targets when `follow_colocation`), roots included.
    pub fn reachable(&self, roots: &[NodeId], follow_colocation: bool) -> Vec<bool> {
        let mut seen = vec![false; self.nodes.len()];
        let mut stack: Vec<NodeId> = roots.to_vec();
        while let Some(id) = stack.pop() {
            if std::mem::replace(&mut seen[id.0], true) {
                continue;
            }
            let node = self.node(id);
            let colocated =
                colocation_targets(node).filter(|_| follow_colocation).filter_map(|t| self.id(t));
            let inputs = node.input.iter().filter_map(|s| self.id(Input::parse(s).node()));
            stack.extend(inputs.chain(colocated).filter(|p| !seen[p.0]));
        }
        seen
    }

    /// Checks the invariants a GraphDef importer enforces (see the module docs). Output ports
    /// are checked for ops the registry or the graph's function library knows.
    pub fn check(&self, registry: Option<&Registry>) -> Result<(), GraphError> {
        for (_, node) in self.nodes() {
            if node.op.is_empty() {
                return Err(GraphError::EmptyOp(node.name.clone()));
            }
            let mut seen_control = false;
            for s in &node.input {
                let input = Input::parse(s);
                let Some(pid) = self.id(input.node()) else {
                    return Err(GraphError::MissingInput {
                        node: node.name.clone(),
                        input: s.clone(),
                    });
                };
                match input {
                    Input::Control(_) => seen_control = true,
                    Input::Data { port, .. } => {
                        if seen_control {
                            return Err(GraphError::ControlBeforeData(node.name.clone()));
                        }
                        let producer = self.node(pid);
                        let arity = registry.and_then(|r| {
                            r.output_arity_with_library(producer, self.library.as_ref()).ok()
                        });
                        if let Some(arity) = arity {
                            if port as usize >= arity {
                                return Err(GraphError::PortOutOfRange {
                                    node: node.name.clone(),
                                    input: s.clone(),
                                    port,
                                    producer: producer.name.clone(),
                                    op: producer.op.clone(),
                                    arity,
                                });
                            }
                        }
                    }
                }
            }
            for target in colocation_targets(node) {
                if self.id(target).is_none() {
                    return Err(GraphError::DanglingColocation {
                        node: node.name.clone(),
                        target: target.to_string(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// The node names in a node's `_class` colocation attr (`loc:@name` entries).
pub fn colocation_targets(node: &NodeDef) -> impl Iterator<Item = &str> {
    let list = match node.attr.get("_class").and_then(|a| a.value.as_ref()) {
        Some(attr_value::Value::List(l)) => l.s.as_slice(),
        _ => &[],
    };
    list.iter().filter_map(|s| std::str::from_utf8(s).ok()?.strip_prefix("loc:@"))
}

#[cfg(test)]
mod tests;
