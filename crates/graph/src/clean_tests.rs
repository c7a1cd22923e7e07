//! Tests of the clean-ups (`clean.rs`) and of library pruning (`library.rs`).

use tf_proto::tensorflow::attr_value::{ListValue, Value};
use tf_proto::tensorflow::{
    AttrValue, FunctionDef, FunctionDefLibrary, GradientDef, GraphDef, NameAttrList, NodeDef, OpDef,
};

use super::node;
use crate::{Graph, NodeId};

fn graph(nodes: Vec<NodeDef>, functions: Vec<FunctionDef>) -> Graph {
    let library = (!functions.is_empty())
        .then(|| FunctionDefLibrary { function: functions, ..Default::default() });
    Graph::from_graph_def(GraphDef { node: nodes, library, ..Default::default() }).unwrap()
}

fn func_attr(name: &str, attrs: &[(&str, AttrValue)]) -> AttrValue {
    let f = NameAttrList {
        name: name.into(),
        attr: attrs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
    };
    AttrValue { value: Some(Value::Func(f)) }
}

fn function(name: &str, body: Vec<NodeDef>) -> FunctionDef {
    FunctionDef {
        signature: Some(OpDef { name: name.into(), ..Default::default() }),
        node_def: body,
        ..Default::default()
    }
}

fn names(g: &Graph) -> Vec<String> {
    let lib = g.library.as_ref().unwrap();
    lib.function.iter().map(|f| f.signature.as_ref().unwrap().name.clone()).collect()
}

fn with_attr(mut n: NodeDef, k: &str, v: AttrValue) -> NodeDef {
    n.attr.insert(k.into(), v);
    n
}

fn string_attr(s: &str) -> AttrValue {
    AttrValue { value: Some(Value::S(s.as_bytes().to_vec())) }
}

#[test]
fn library_keeps_what_is_referred_to_at_any_depth() {
    // `outer` is called through PartitionedCall; it is handed `inner` in its own attribute
    // (a nested function attribute); `listed` is in a list(func); `in_body` is called by
    // `inner`'s body; `unused` nothing refers to.
    let call = with_attr(
        node("call", "PartitionedCall", &[]),
        "f",
        func_attr("outer", &[("fn", func_attr("inner", &[]))]),
    );
    let listed = AttrValue {
        value: Some(Value::List(Box::new(ListValue {
            func: vec![NameAttrList { name: "listed".into(), ..Default::default() }],
            ..Default::default()
        }))),
    };
    let case = with_attr(node("case", "Case", &[]), "branches", listed);
    let mut g = graph(
        vec![call, case],
        vec![
            function("outer", vec![]),
            function("inner", vec![node("x", "in_body", &[])]),
            function("in_body", vec![]),
            function("listed", vec![]),
            function("unused", vec![node("y", "in_body", &[])]),
        ],
    );
    g.library.as_mut().unwrap().gradient = vec![
        GradientDef { function_name: "outer".into(), gradient_func: "outer_grad".into() },
        GradientDef { function_name: "unused".into(), gradient_func: "in_body".into() },
    ];
    g.library.as_mut().unwrap().function.push(function("outer_grad", vec![]));
    assert_eq!(g.prune_library(), vec!["unused".to_string()]);
    assert_eq!(names(&g), ["outer", "inner", "in_body", "listed", "outer_grad"]);
    let grads = &g.library.as_ref().unwrap().gradient;
    assert_eq!(grads.len(), 1);
    assert_eq!(grads[0].function_name, "outer");
    // Nothing more to drop: the library is left as it is.
    assert!(g.prune_library().is_empty());
}

#[test]
fn library_keeps_other_implementations_of_a_kept_interface() {
    let mut cpu = function("lstm_cpu", vec![]);
    cpu.attr.insert("api_implements".into(), string_attr("lstm_abc"));
    let mut gpu = function("lstm_gpu", vec![]);
    gpu.attr.insert("api_implements".into(), string_attr("lstm_abc"));
    let mut other = function("gru_cpu", vec![]);
    other.attr.insert("api_implements".into(), string_attr("gru_abc"));
    let call =
        with_attr(node("call", "StatefulPartitionedCall", &[]), "f", func_attr("lstm_cpu", &[]));
    let mut g = graph(vec![call], vec![cpu, gpu, other]);
    assert_eq!(g.prune_library(), vec!["gru_cpu".to_string()]);
    assert_eq!(names(&g), ["lstm_cpu", "lstm_gpu"]);
}

#[test]
fn library_pruning_walks_a_deep_chain_without_recursion() {
    // f0 calls f1 calls f2 ... calls f9999, each by op name; `dead` calls into the chain.
    let n = 10_000;
    let mut functions: Vec<FunctionDef> = (0..n)
        .map(|i| {
            let body =
                if i + 1 < n { vec![node("c", &format!("f{}", i + 1), &[])] } else { vec![] };
            function(&format!("f{i}"), body)
        })
        .collect();
    functions.push(function("dead", vec![node("c", "f5", &[])]));
    let mut g = graph(vec![node("call", "f0", &[])], functions);
    assert_eq!(g.prune_library(), vec!["dead".to_string()]);
    assert_eq!(g.library.as_ref().unwrap().function.len(), n);
    // Without the call, the whole chain goes.
    let id = g.id("call").unwrap();
    g.node_mut(id).op = "NoOp".into();
    assert_eq!(g.prune_library().len(), n);
}

fn class(entries: &[&[u8]]) -> AttrValue {
    AttrValue {
        value: Some(Value::List(Box::new(ListValue {
            s: entries.iter().map(|e| e.to_vec()).collect(),
            ..Default::default()
        }))),
    }
}

#[test]
fn dangling_colocations_go_and_the_rest_stays() {
    let mut g = graph(
        vec![
            node("a", "NoOp", &[]),
            with_attr(
                node("b", "NoOp", &[]),
                "_class",
                class(&[b"loc:@a", b"loc:@gone", b"other"]),
            ),
            with_attr(node("c", "NoOp", &[]), "_class", class(&[b"loc:@gone", b"loc:@\xff"])),
            with_attr(node("d", "NoOp", &[]), "_class", class(&[])),
            with_attr(node("e", "NoOp", &[]), "_class", class(&[b"loc:@a"])),
        ],
        vec![],
    );
    let before_e = g.get("e").unwrap().clone();
    assert_eq!(g.drop_dangling_colocations(), 3);
    assert_eq!(g.get("b").unwrap().attr["_class"], class(&[b"loc:@a", b"other"]));
    assert!(!g.get("c").unwrap().attr.contains_key("_class"));
    // An attribute that was empty already, and one with nothing dangling, are not touched.
    assert_eq!(g.get("d").unwrap().attr["_class"], class(&[]));
    assert_eq!(g.get("e").unwrap(), &before_e);
    assert_eq!(g.drop_dangling_colocations(), 0);
    g.check(None).unwrap();
}

#[test]
fn prune_unreachable_returns_what_it_removed() {
    let mut g = graph(
        vec![
            node("x", "Placeholder", &[]),
            node("unused", "Neg", &["x"]),
            node("ctl", "NoOp", &[]),
            node("y", "Neg", &["x", "^ctl"]),
        ],
        vec![],
    );
    let y = g.id("y").unwrap();
    let removed = g.prune_unreachable(&[y]);
    assert_eq!(removed.len(), 1);
    assert_eq!((removed[0].0, removed[0].1.name.as_str()), (NodeId(1), "unused"));
    assert_eq!(g.len(), 3);
    assert!(g.prune_unreachable(&[y]).is_empty());
}

fn inputs(g: &Graph, name: &str) -> Vec<String> {
    g.get(name).unwrap().input.clone()
}

#[test]
fn ordering_edges_go_only_where_nothing_observable_is_ordered() {
    let registry = tf_ops::Registry::global();
    let stateful_fn = FunctionDef {
        signature: Some(OpDef {
            name: "stateful_fn".into(),
            is_stateful: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut g = graph(
        vec![
            node("x", "Placeholder", &[]),
            node("c", "Const", &[]),
            node("pure", "Neg", &["c"]),
            node("group", "NoOp", &["^pure"]),
            node("var", "VarHandleOp", &[]),
            node("read", "ReadVariableOp", &["var"]),
            // Stateless itself, but waits on a stateful node.
            node("after_read", "Identity", &["c", "^read"]),
            node("unknown", "SomeCustomOp", &[]),
            node("pred", "Placeholder", &[]),
            node("sw", "Switch", &["x", "pred"]),
            node("pivot", "Identity", &["sw:1"]),
            node("in_branch", "Const", &["^pivot"]),
            with_attr(node("calls", "PartitionedCall", &[]), "f", func_attr("stateful_fn", &[])),
            node("call_direct", "stateful_fn", &[]),
            node(
                "y",
                "AddN",
                &[
                    "x",
                    "^group",
                    "^pure",
                    "^after_read",
                    "^unknown",
                    "^in_branch",
                    "^calls",
                    "^call_direct",
                ],
            ),
            node("kept", "Neg", &["x", "^pure"]),
        ],
        vec![stateful_fn],
    );
    let removed = g.drop_ordering_edges(registry, |n| n.name == "kept");
    assert_eq!(removed, 3);
    assert_eq!(
        inputs(&g, "y"),
        ["x", "^after_read", "^unknown", "^in_branch", "^calls", "^call_direct"]
    );
    assert_eq!(inputs(&g, "kept"), ["x", "^pure"]);
    // `group` waited on pure work only: its edge went, and its own one with `y`'s.
    assert_eq!(inputs(&g, "group"), Vec::<String>::new());
    g.check(None).unwrap();
}
