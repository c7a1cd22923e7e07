//! Clean-ups several tools finish with: nodes the outputs do not need, colocations naming
//! removed nodes, and control edges that only order pure work.

use tf_ops::{Registry, Signatures};
use tf_proto::tensorflow::{attr_value, NodeDef};

use crate::analysis::is_v1_control_flow;
use crate::library::attr_functions;
use crate::{Graph, Input, NodeId};

/// Whether a control edge from `n` may order something observable: `n` is stateful or
/// unknown (the stateful flag of its OpDef in `sigs`, a library function's signature included:
/// variables, random ops, I/O, asserts, stateful calls), calls a function (through a
/// function-valued attribute, at any depth) that is stateful or unknown, or is TF1 control
/// flow (which uses control edges to put nodes into `cond` branches and loop frames, and
/// passes deadness along them).
pub fn has_effects(sigs: &Signatures<'_>, n: &NodeDef) -> bool {
    if sigs.is_stateful(&n.op) != Some(false) || is_v1_control_flow(&n.op) {
        return true;
    }
    let mut called = Vec::new();
    for a in n.attr.values() {
        attr_functions(a, &mut called);
    }
    called.iter().any(|f| sigs.is_stateful(f) != Some(false))
}

impl Graph {
    /// Removes every node that `roots` do not depend on (through data and control inputs, see
    /// [`Graph::reachable`]); returns the removed nodes with their ids, in node order.
    pub fn prune_unreachable(&mut self, roots: &[NodeId]) -> Vec<(NodeId, NodeDef)> {
        let reach = self.reachable(roots, false);
        let dead: Vec<NodeId> = self.ids().into_iter().filter(|id| !reach[id.0]).collect();
        dead.into_iter().map(|id| (id, self.remove_node(id))).collect()
    }

    /// Removes the `_class` entries `loc:@x` whose `x` is not a node of the graph (TensorFlow
    /// refuses to import them; a name that is not UTF-8 names no node), and the attribute when
    /// that leaves it empty. Other entries, and an attribute that was empty already, stay.
    /// Returns how many entries went.
    pub fn drop_dangling_colocations(&mut self) -> usize {
        let dangling = |g: &Graph, s: &[u8]| match s.strip_prefix(b"loc:@") {
            Some(t) => std::str::from_utf8(t).map_or(true, |t| g.id(t).is_none()),
            None => false,
        };
        let stale: Vec<NodeId> = self
            .nodes()
            .filter(|(_, n)| match n.attr.get("_class").and_then(|a| a.value.as_ref()) {
                Some(attr_value::Value::List(l)) => l.s.iter().any(|s| dangling(self, s)),
                _ => false,
            })
            .map(|(id, _)| id)
            .collect();
        let mut removed = 0;
        for id in stale {
            let kept: Vec<Vec<u8>> = match self.node(id).attr["_class"].value.as_ref() {
                Some(attr_value::Value::List(l)) => {
                    l.s.iter().filter(|s| !dangling(self, s)).cloned().collect()
                }
                _ => unreachable!("chosen above"),
            };
            let mut n = self.node_mut(id);
            if let Some(attr_value::Value::List(l)) =
                n.attr.get_mut("_class").and_then(|a| a.value.as_mut())
            {
                removed += l.s.len() - kept.len();
                l.s = kept;
                if l.s.is_empty() {
                    n.attr.remove("_class");
                }
            }
        }
        removed
    }

    /// For every node slot: whether the node or anything it depends on (data or control,
    /// transitively) [`has_effects`], with the graph's library in front of `registry`.
    /// Computed by spreading from those nodes to their readers, which also handles the back
    /// edges of TF1 loops.
    pub fn effect_closure(&self, registry: &Registry) -> Vec<bool> {
        let sigs = registry.with_library(self.library.as_ref());
        let mut effects = vec![false; self.capacity()];
        let mut stack = Vec::new();
        for (id, n) in self.nodes() {
            if has_effects(&sigs, n) {
                effects[id.0] = true;
                stack.push(id);
            }
        }
        let consumers = self.consumers();
        while let Some(p) = stack.pop() {
            for c in consumers.of_node(p).chain(consumers.control_of(p)) {
                if !std::mem::replace(&mut effects[c.0], true) {
                    stack.push(c);
                }
            }
        }
        effects
    }

    /// Removes every control edge `^p` where neither `p` nor anything it depends on
    /// [`has_effects`]: nothing observable depends on that order (this is what removes the
    /// NoOps a TF2 frozen graph keeps around its former variable reads). The inputs of nodes
    /// for which `keep` is true are left alone. Returns how many edges went.
    pub fn drop_ordering_edges(
        &mut self,
        registry: &Registry,
        keep: impl Fn(&NodeDef) -> bool,
    ) -> usize {
        let effects = self.effect_closure(registry);
        let pure = |g: &Graph, s: &str| match Input::parse(s) {
            Input::Control(p) => g.id(p).is_some_and(|p| !effects[p.0]),
            Input::Data { .. } => false,
        };
        let targets: Vec<NodeId> = self
            .nodes()
            .filter(|(_, n)| !keep(n) && n.input.iter().any(|s| pure(self, s)))
            .map(|(id, _)| id)
            .collect();
        let mut removed = 0;
        for id in targets {
            let kept: Vec<String> =
                self.node(id).input.iter().filter(|s| !pure(self, s)).cloned().collect();
            removed += self.node(id).input.len() - kept.len();
            self.set_inputs(id, kept);
        }
        removed
    }
}
