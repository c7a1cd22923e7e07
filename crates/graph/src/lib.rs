//! An editable TensorFlow graph.
//!
//! [`Graph`] owns the `NodeDef`s of a `GraphDef` in their original order, indexes them by name,
//! and passes `library`, `versions` and `debug_info` through untouched, so a graph that no pass
//! changed encodes back to the same bytes. Node inputs stay in their original spelling until a
//! pass rewires them; [`Input`] parses the three forms (`x`, `x:1`, `^x`).
//!
//! Removal leaves a tombstone so that [`NodeId`]s stay valid during a pass; the tombstones are
//! skipped when the graph is written back. Edges change only through `Graph`'s methods
//! ([`Graph::set_input`], [`Graph::rewire`], [`Graph::replace_control_input`], ...), which keep
//! a consumer index exact, so [`Graph::consumers`] answers in O(1) or O(readers). [`Graph::check`] verifies the invariants a GraphDef
//! importer enforces: unique names, every input resolves, control inputs after data inputs,
//! output ports within the producer's arity and colocation (`_class: loc:@x`) targets that exist.

#![deny(missing_docs)]

pub mod analysis;
mod clean;
mod inline;
mod input;
mod library;
pub mod synth;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

pub use clean::has_effects;
pub use inline::{called_function, InlineError, MAX_CALL_DEPTH};
pub use input::{Input, TensorName};
pub use library::{attr_functions, node_functions};
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
    /// A node's outputs cannot be counted: an attribute claims more than the limit.
    #[error("{0}")]
    Signature(String),
}

/// The readers of one producer (by name): data edges per output port, control edges.
/// Entries are `(consumer, index in its input list)`, kept sorted, so iteration follows the
/// original node order.
#[derive(Debug, Clone, Default)]
struct Readers {
    data: BTreeMap<u32, BTreeSet<(NodeId, usize)>>,
    control: BTreeSet<(NodeId, usize)>,
}

impl Readers {
    fn is_empty(&self) -> bool {
        self.data.is_empty() && self.control.is_empty()
    }
}

static NO_EDGES: BTreeSet<(NodeId, usize)> = BTreeSet::new();

/// Readers of one output: `(consumer, index in its input list)` in node order.
#[derive(Debug, Clone)]
pub struct OutputReaders<'a>(std::collections::btree_set::Iter<'a, (NodeId, usize)>);

impl Iterator for OutputReaders<'_> {
    type Item = (NodeId, usize);
    fn next(&mut self) -> Option<(NodeId, usize)> {
        self.0.next().copied()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for OutputReaders<'_> {}

impl OutputReaders<'_> {
    /// Whether nothing reads the output.
    pub fn is_empty(&self) -> bool {
        self.0.len() == 0
    }

    /// The readers, collected.
    pub fn to_vec(&self) -> Vec<(NodeId, usize)> {
        self.clone().collect()
    }
}

/// Nodes with a control input on one node, in node order (once per such input).
#[derive(Debug, Clone)]
pub struct ControlReaders<'a>(std::collections::btree_set::Iter<'a, (NodeId, usize)>);

impl Iterator for ControlReaders<'_> {
    type Item = NodeId;
    fn next(&mut self) -> Option<NodeId> {
        self.0.next().map(|(c, _)| *c)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for ControlReaders<'_> {}

impl ControlReaders<'_> {
    /// Whether nothing depends on the node.
    pub fn is_empty(&self) -> bool {
        self.0.len() == 0
    }

    /// The dependents, collected.
    pub fn to_vec(&self) -> Vec<NodeId> {
        self.clone().collect()
    }
}

/// Who reads each output and who depends on each node: a view of the index [`Graph`] keeps up
/// to date through every edit, so each question costs O(1) or O(readers).
#[derive(Debug, Clone, Copy)]
pub struct Consumers<'a> {
    g: &'a Graph,
}

impl<'a> Consumers<'a> {
    fn readers(&self, node: NodeId) -> Option<&'a Readers> {
        let name = &self.g.nodes.get(node.0)?.as_ref()?.name;
        self.g.readers.get(name)
    }

    /// Readers of output `port` of `node`: (consumer, index in its `input` list), in node order.
    pub fn of_output(&self, node: NodeId, port: u32) -> OutputReaders<'a> {
        OutputReaders(
            self.readers(node).and_then(|r| r.data.get(&port)).unwrap_or(&NO_EDGES).iter(),
        )
    }

    /// Nodes that have `^node` among their inputs (once per such input), in node order.
    pub fn control_of(&self, node: NodeId) -> ControlReaders<'a> {
        ControlReaders(self.readers(node).map(|r| &r.control).unwrap_or(&NO_EDGES).iter())
    }

    /// Whether anything reads any output of `node` or depends on it.
    pub fn has_any(&self, node: NodeId) -> bool {
        self.readers(node).is_some_and(|r| !r.is_empty())
    }

    /// Every data reader of any output of `node`, once per edge (by port, then node order).
    pub fn of_node(&self, node: NodeId) -> impl Iterator<Item = NodeId> + 'a {
        self.readers(node).into_iter().flat_map(|r| r.data.values()).flatten().map(|(c, _)| *c)
    }

    /// Number of data edges leaving `node` (over all ports).
    pub fn data_out_degree(&self, node: NodeId) -> usize {
        self.readers(node).map_or(0, |r| r.data.values().map(BTreeSet::len).sum())
    }

    /// The output ports of `node` that something reads, ascending.
    pub fn read_ports(&self, node: NodeId) -> impl Iterator<Item = u32> + 'a {
        self.readers(node).into_iter().flat_map(|r| r.data.keys().copied())
    }
}

fn link(readers: &mut NameMap<Readers>, id: NodeId, idx: usize, s: &str) {
    let input = Input::parse(s);
    let r = match readers.get_mut(input.node()) {
        Some(r) => r,
        None => readers.entry(input.node().to_string()).or_default(),
    };
    match input {
        Input::Data { port, .. } => r.data.entry(port).or_default().insert((id, idx)),
        Input::Control(_) => r.control.insert((id, idx)),
    };
}

fn unlink(readers: &mut NameMap<Readers>, id: NodeId, idx: usize, s: &str) {
    let input = Input::parse(s);
    let Some(r) = readers.get_mut(input.node()) else { return };
    match input {
        Input::Data { port, .. } => {
            if let Some(set) = r.data.get_mut(&port) {
                set.remove(&(id, idx));
                if set.is_empty() {
                    r.data.remove(&port);
                }
            }
        }
        Input::Control(_) => {
            r.control.remove(&(id, idx));
        }
    }
    if r.is_empty() {
        readers.remove(input.node());
    }
}

/// A node borrowed for editing from [`Graph::node_mut`]. It dereferences to the `NodeDef`;
/// when it is dropped, the graph re-indexes the node's inputs and name if they changed, so the
/// consumer index stays exact. Prefer the edge methods of [`Graph`] for changing inputs.
pub struct NodeMut<'a> {
    g: &'a mut Graph,
    id: NodeId,
    // Not `inputs`/`name`: a field of the guard would shadow the node's own in `guard.name`.
    old_inputs: Vec<String>,
    old_name: String,
}

impl std::ops::Deref for NodeMut<'_> {
    type Target = NodeDef;
    fn deref(&self) -> &NodeDef {
        self.g.nodes[self.id.0].as_ref().expect("live node")
    }
}

impl std::ops::DerefMut for NodeMut<'_> {
    fn deref_mut(&mut self) -> &mut NodeDef {
        self.g.nodes[self.id.0].as_mut().expect("live node")
    }
}

impl Drop for NodeMut<'_> {
    fn drop(&mut self) {
        let g = &mut *self.g;
        let node = g.nodes[self.id.0].as_ref().expect("live node");
        if node.input != self.old_inputs {
            for (i, s) in self.old_inputs.iter().enumerate() {
                unlink(&mut g.readers, self.id, i, s);
            }
            for (i, s) in node.input.iter().enumerate() {
                link(&mut g.readers, self.id, i, s);
            }
        }
        if node.name != self.old_name {
            let new = node.name.clone();
            if g.index.get(&self.old_name) == Some(&self.id) {
                g.index.remove(&self.old_name);
            }
            let old = g.index.insert(new, self.id);
            debug_assert!(old.is_none(), "node renamed onto an existing name");
        }
    }
}

/// Library function names to their index, for [`Graph::function`], with the (length, address)
/// of the function list it was built from. Not copied by `clone`.
#[derive(Default)]
struct FnIndex(std::sync::Mutex<Option<FnMap>>);

type FnMap = ((usize, usize), HashMap<String, usize>);

/// Maps keyed by node name, the graph's hottest lookups: foldhash (several times faster than
/// the standard SipHash on short names) with a per-process random seed, so that names crafted
/// to collide cannot be prepared in advance.
type NameMap<V> = HashMap<String, V, foldhash::fast::RandomState>;

impl Clone for FnIndex {
    fn clone(&self) -> FnIndex {
        FnIndex::default()
    }
}

impl std::fmt::Debug for FnIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FnIndex")
    }
}

/// A GraphDef as an editable graph.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    nodes: Vec<Option<NodeDef>>,
    index: NameMap<NodeId>,
    /// Readers of each producer name (whether or not a node has that name yet).
    readers: NameMap<Readers>,
    fn_index: FnIndex,
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
        let mut index = NameMap::with_capacity_and_hasher(g.node.len(), Default::default());
        let mut readers = NameMap::with_capacity_and_hasher(g.node.len(), Default::default());
        for (i, n) in g.node.iter().enumerate() {
            if n.name.is_empty() {
                return Err(GraphError::EmptyName(i));
            }
            if index.insert(n.name.clone(), NodeId(i)).is_some() {
                return Err(GraphError::DuplicateName(n.name.clone()));
            }
            for (k, s) in n.input.iter().enumerate() {
                link(&mut readers, NodeId(i), k, s);
            }
        }
        Ok(Graph {
            nodes: g.node.into_iter().map(Some).collect(),
            index,
            readers,
            fn_index: FnIndex::default(),
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

    /// One more than the largest [`NodeId`] ever handed out (removed nodes included): the size
    /// of a table indexed by node id.
    pub fn capacity(&self) -> usize {
        self.nodes.len()
    }

    /// Live nodes in order.
    pub fn nodes(&self) -> impl Iterator<Item = (NodeId, &NodeDef)> {
        self.nodes.iter().enumerate().filter_map(|(i, n)| n.as_ref().map(|n| (NodeId(i), n)))
    }

    /// Ids of live nodes in order.
    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes().map(|(id, _)| id).collect()
    }

    /// Whether `id` names a node that has not been removed.
    pub fn is_live(&self, id: NodeId) -> bool {
        self.nodes.get(id.0).is_some_and(Option::is_some)
    }

    /// The node with this id. Panics on a removed node: ids come from this graph.
    pub fn node(&self, id: NodeId) -> &NodeDef {
        self.nodes[id.0].as_ref().expect("node id refers to a removed node")
    }

    /// The node with this id, for editing its op, attrs or device. Input edits made through it
    /// are re-indexed when it is dropped, but passes use the edge methods
    /// ([`Graph::set_input`], [`Graph::rewire`], ...) instead.
    pub fn node_mut(&mut self, id: NodeId) -> NodeMut<'_> {
        let node = self.nodes[id.0].as_ref().expect("node id refers to a removed node");
        let (old_inputs, old_name) = (node.input.clone(), node.name.clone());
        NodeMut { g: self, id, old_inputs, old_name }
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
        for (k, s) in node.input.iter().enumerate() {
            link(&mut self.readers, id, k, s);
        }
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
        for (k, s) in node.input.iter().enumerate() {
            unlink(&mut self.readers, id, k, s);
        }
        node
    }

    /// Replaces a node by another with the same id (its name may differ if the new one is
    /// free); returns the old node.
    pub fn replace_node(&mut self, id: NodeId, node: NodeDef) -> NodeDef {
        std::mem::replace(&mut *self.node_mut(id), node)
    }

    /// The consumer index of the current graph (kept up to date by every edit).
    pub fn consumers(&self) -> Consumers<'_> {
        Consumers { g: self }
    }

    /// Sets input `idx` of node `id` to `s`.
    pub fn set_input(&mut self, id: NodeId, idx: usize, s: impl Into<String>) {
        let s = s.into();
        let node = self.nodes[id.0].as_mut().expect("node id refers to a removed node");
        let old = std::mem::replace(&mut node.input[idx], s);
        unlink(&mut self.readers, id, idx, &old);
        let node = self.nodes[id.0].as_ref().expect("live node");
        link(&mut self.readers, id, idx, &node.input[idx]);
    }

    /// Replaces the whole input list of node `id`.
    pub fn set_inputs(&mut self, id: NodeId, inputs: Vec<String>) {
        let node = self.nodes[id.0].as_mut().expect("node id refers to a removed node");
        let old = std::mem::replace(&mut node.input, inputs);
        for (k, s) in old.iter().enumerate() {
            unlink(&mut self.readers, id, k, s);
        }
        let node = self.nodes[id.0].as_ref().expect("live node");
        for (k, s) in node.input.iter().enumerate() {
            link(&mut self.readers, id, k, s);
        }
    }

    /// Keeps the inputs of node `id` for which `keep` returns true; returns how many went.
    pub fn retain_inputs(&mut self, id: NodeId, mut keep: impl FnMut(&str) -> bool) -> usize {
        let old = &self.node(id).input;
        let kept: Vec<String> = old.iter().filter(|s| keep(s)).cloned().collect();
        let removed = old.len() - kept.len();
        if removed > 0 {
            self.set_inputs(id, kept);
        }
        removed
    }

    /// Appends a data input to node `id`, before its control inputs.
    pub fn add_data_input(&mut self, id: NodeId, s: impl Into<String>) {
        let mut inputs = self.node(id).input.clone();
        let at = inputs.iter().position(|s| s.starts_with('^')).unwrap_or(inputs.len());
        inputs.insert(at, s.into());
        self.set_inputs(id, inputs);
    }

    /// Adds `^producer` to node `id` unless it is there already; returns whether it was added.
    pub fn add_control_input(&mut self, id: NodeId, producer: &str) -> bool {
        let dep = Input::Control(producer).to_string();
        if self.node(id).input.contains(&dep) {
            return false;
        }
        let node = self.nodes[id.0].as_mut().expect("node id refers to a removed node");
        node.input.push(dep);
        let k = node.input.len() - 1;
        link(&mut self.readers, id, k, &node.input[k]);
        true
    }

    /// Drops repeated control inputs of node `id` (the first of each stays); returns how many.
    pub fn dedup_control_inputs(&mut self, id: NodeId) -> usize {
        let mut seen = std::collections::HashSet::new();
        self.retain_inputs(id, |s| !s.starts_with('^') || seen.insert(s.to_string()))
    }

    /// Points every data input that reads `from` at `to` instead; returns how many changed.
    /// Costs O(readers of `from`).
    pub fn rewire(&mut self, from: &TensorName, to: &TensorName) -> usize {
        let new = Input::Data { node: &to.node, port: to.port }.to_string();
        let edges: Vec<(NodeId, usize)> = match self.readers.get(&from.node) {
            Some(r) => r.data.get(&from.port).into_iter().flatten().copied().collect(),
            None => return 0,
        };
        for &(c, k) in &edges {
            self.set_input(c, k, new.clone());
        }
        edges.len()
    }

    /// Nodes with a control input `^producer`, in node order (by name, so it works for a
    /// producer that has been removed or not added yet).
    pub fn control_readers(&self, producer: &str) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = self
            .readers
            .get(producer)
            .map(|r| r.control.iter().map(|(c, _)| *c).collect())
            .unwrap_or_default();
        v.dedup();
        v
    }

    /// Replaces the control input `^from` of every node that has one by `^to`, in place, and
    /// drops the repeats that makes; returns the nodes changed.
    pub fn replace_control_input(&mut self, from: &str, to: &str) -> Vec<NodeId> {
        let readers = self.control_readers(from);
        let (dep, new) = (Input::Control(from).to_string(), Input::Control(to).to_string());
        for &c in &readers {
            let mut seen = std::collections::HashSet::new();
            let inputs: Vec<String> = self
                .node(c)
                .input
                .iter()
                .map(|s| if *s == dep { new.clone() } else { s.clone() })
                .filter(|s| !s.starts_with('^') || seen.insert(s.clone()))
                .collect();
            self.set_inputs(c, inputs);
        }
        readers
    }

    /// Replaces the control input `^from` of every node that has one by `^t` for each of `to`
    /// (skipping ones already there and dropping repeats); returns the nodes changed.
    pub fn redirect_control(&mut self, from: &str, to: &[&str]) -> Vec<NodeId> {
        let readers = self.control_readers(from);
        let dep = Input::Control(from).to_string();
        for &c in &readers {
            self.retain_inputs(c, |s| s != dep);
            for t in to {
                self.add_control_input(c, t);
            }
        }
        readers
    }

    /// Node ids in an order where every producer precedes its consumers (data and control
    /// edges), ties broken by original order. Edges into a `Merge` from a `NextIteration` are
    /// the back edges of TF1 while loops and are not ordering constraints.
    pub fn topo_order(&self) -> Result<Vec<NodeId>, GraphError> {
        let n = self.nodes.len();
        let mut indeg = vec![0u32; n];
        // Edges producer -> consumer, then grouped by producer (one allocation, not one per node).
        let mut edges: Vec<(u32, u32)> = Vec::new();
        for (id, node) in self.nodes() {
            let merge = node.op == "Merge" || node.op == "RefMerge";
            for s in &node.input {
                let Some(p) = self.id(Input::parse(s).node()) else { continue };
                if merge && matches!(self.node(p).op.as_str(), "NextIteration" | "RefNextIteration")
                {
                    continue;
                }
                indeg[id.0] += 1;
                edges.push((p.0 as u32, id.0 as u32));
            }
        }
        let mut start = vec![0u32; n + 1];
        for &(p, _) in &edges {
            start[p as usize + 1] += 1;
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        let mut next = start.clone();
        let mut out = vec![0u32; edges.len()];
        for &(p, c) in &edges {
            out[next[p as usize] as usize] = c;
            next[p as usize] += 1;
        }
        drop(edges);
        let mut ready: BinaryHeap<Reverse<u32>> = self
            .nodes()
            .map(|(id, _)| id.0 as u32)
            .filter(|i| indeg[*i as usize] == 0)
            .map(Reverse)
            .collect();
        let mut order = Vec::with_capacity(self.len());
        while let Some(Reverse(i)) = ready.pop() {
            order.push(NodeId(i as usize));
            for &c in &out[start[i as usize] as usize..start[i as usize + 1] as usize] {
                indeg[c as usize] -= 1;
                if indeg[c as usize] == 0 {
                    ready.push(Reverse(c));
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
        #[cfg(debug_assertions)]
        self.check_index();
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
                        let arity = match registry
                            .map(|r| r.output_arity_with_library(producer, self.library.as_ref()))
                        {
                            Some(Ok(a)) => Some(a),
                            // An absurd count is the input's fault; an op this registry does not
                            // know (a custom op) is not.
                            Some(Err(e @ tf_ops::OpError::TooLong { .. })) => {
                                return Err(GraphError::Signature(e.to_string()))
                            }
                            _ => None,
                        };
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

impl Graph {
    /// Panics if the consumer index differs from one rebuilt from scratch (debug builds).
    #[cfg(debug_assertions)]
    fn check_index(&self) {
        let mut fresh: NameMap<Readers> = NameMap::default();
        for (id, n) in self.nodes() {
            for (k, s) in n.input.iter().enumerate() {
                link(&mut fresh, id, k, s);
            }
        }
        let same = fresh.len() == self.readers.len()
            && fresh.iter().all(|(k, r)| {
                self.readers.get(k).is_some_and(|o| o.data == r.data && o.control == r.control)
            });
        assert!(same, "tf-graph: the consumer index is out of date");
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
