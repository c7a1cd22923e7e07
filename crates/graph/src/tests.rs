use super::*;

#[path = "clean_tests.rs"]
mod clean;
use tf_proto::tensorflow::{attr_value::ListValue, AttrValue};

fn node(name: &str, op: &str, inputs: &[&str]) -> NodeDef {
    NodeDef {
        name: name.into(),
        op: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn graph(nodes: Vec<NodeDef>) -> Graph {
    Graph::from_graph_def(GraphDef { node: nodes, ..Default::default() }).unwrap()
}

#[test]
#[allow(deprecated)]
fn round_trip_keeps_order_and_passthrough_fields() {
    let g = GraphDef {
        node: vec![node("b", "NoOp", &[]), node("a", "NoOp", &["^b"])],
        versions: Some(VersionDef { producer: 2474, ..Default::default() }),
        version: 7,
        ..Default::default()
    };
    assert_eq!(Graph::from_graph_def(g.clone()).unwrap().into_graph_def(), g);
}

#[test]
fn duplicate_names_are_rejected() {
    let g = GraphDef {
        node: vec![node("a", "NoOp", &[]), node("a", "NoOp", &[])],
        ..Default::default()
    };
    assert_eq!(Graph::from_graph_def(g).unwrap_err(), GraphError::DuplicateName("a".into()));
}

#[test]
fn consumers_rewire_and_remove() {
    let mut g = graph(vec![
        node("x", "Placeholder", &[]),
        node("id", "Identity", &["x"]),
        node("y", "Neg", &["id:0", "^x"]),
    ]);
    let c = g.consumers();
    let (x, id) = (g.id("x").unwrap(), g.id("id").unwrap());
    assert_eq!(c.of_output(id, 0).collect::<Vec<_>>(), [(g.id("y").unwrap(), 0)]);
    assert_eq!(c.control_of(x).collect::<Vec<_>>(), [g.id("y").unwrap()]);
    let n = g.rewire(&TensorName::parse("id"), &TensorName::parse("x"));
    assert_eq!(n, 1);
    g.remove_node(id);
    g.check(None).unwrap();
    assert_eq!(g.get("y").unwrap().input, vec!["x", "^x"]);
    assert_eq!(g.unique_name("y"), "y_1");
    assert_eq!(g.into_graph_def().node.len(), 2);
}

#[test]
fn check_finds_broken_invariants() {
    let missing = graph(vec![node("y", "Neg", &["nope"])]);
    assert!(matches!(missing.check(None), Err(GraphError::MissingInput { .. })));
    let order = graph(vec![node("x", "NoOp", &[]), node("y", "Neg", &["^x", "x"])]);
    assert_eq!(order.check(None), Err(GraphError::ControlBeforeData("y".into())));
    let mut coloc = node("y", "NoOp", &[]);
    coloc.attr.insert(
        "_class".into(),
        AttrValue {
            value: Some(attr_value::Value::List(Box::new(ListValue {
                s: vec![b"loc:@gone".to_vec()],
                ..Default::default()
            }))),
        },
    );
    assert!(matches!(graph(vec![coloc]).check(None), Err(GraphError::DanglingColocation { .. })));
}

#[test]
fn topo_order_and_cycles() {
    let g =
        graph(vec![node("c", "Neg", &["b"]), node("b", "Neg", &["a"]), node("a", "Const", &[])]);
    let names: Vec<_> = g.topo_order().unwrap().iter().map(|i| g.node(*i).name.clone()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    let cyc = graph(vec![node("a", "Neg", &["b"]), node("b", "Neg", &["a"])]);
    assert!(matches!(cyc.topo_order(), Err(GraphError::Cycle(_))));
    // A TF1 while loop: Merge reads NextIteration, a back edge.
    let lp = graph(vec![
        node("enter", "Enter", &[]),
        node("merge", "Merge", &["enter", "next"]),
        node("body", "Neg", &["merge"]),
        node("next", "NextIteration", &["body"]),
    ]);
    assert_eq!(lp.topo_order().unwrap().len(), 4);
}

#[test]
fn reachability_follows_control_and_colocation() {
    let g = graph(vec![
        node("a", "Const", &[]),
        node("b", "NoOp", &[]),
        node("c", "Neg", &["a", "^b"]),
        node("d", "Const", &[]),
    ]);
    let r = g.reachable(&[g.id("c").unwrap()], true);
    assert_eq!(r, vec![true, true, true, false]);
}

#[test]
fn edge_methods_keep_the_consumer_index_exact() {
    let mut g = graph(vec![
        node("x", "Placeholder", &[]),
        node("a", "Neg", &["x"]),
        node("b", "Neg", &["a", "^x"]),
        node("c", "AddV2", &["a", "b", "^b"]),
    ]);
    let (x, a, b, c) =
        (g.id("x").unwrap(), g.id("a").unwrap(), g.id("b").unwrap(), g.id("c").unwrap());
    assert_eq!(g.consumers().data_out_degree(a), 2);
    assert!(g.consumers().has_any(b));
    g.set_input(c, 1, "x");
    assert_eq!(g.consumers().of_output(x, 0).collect::<Vec<_>>(), [(a, 0), (c, 1)]);
    g.replace_control_input("b", "a");
    assert_eq!(g.node(c).input, ["a", "x", "^a"]);
    assert!(!g.consumers().has_any(b));
    g.add_control_input(b, "c");
    g.retain_inputs(b, |s| s != "^x");
    g.add_data_input(b, "x:0");
    assert_eq!(g.node(b).input, ["a", "x:0", "^c"]);
    assert_eq!(g.consumers().control_of(c).collect::<Vec<_>>(), [b]);
    // Edits through node_mut are re-indexed when the guard goes.
    g.node_mut(a).input[0] = "b".into();
    assert_eq!(g.consumers().of_output(b, 0).collect::<Vec<_>>(), [(a, 0)]);
    let removed = g.remove_node(b);
    assert_eq!(removed.name, "b");
    assert!(!g.is_live(b) && g.is_live(a));
    // A reader of a removed producer comes back when a node of that name is added.
    let b2 = g.add_node(node("b", "Neg", &["x"])).unwrap();
    assert_eq!(g.consumers().of_output(b2, 0).collect::<Vec<_>>(), [(a, 0)]);
    g.rename(b2, "b_new").unwrap();
    assert_eq!(g.node(a).input, ["b_new"]);
    assert_eq!(g.rewire(&TensorName::parse("b_new"), &TensorName::parse("x")), 1);
    g.check(None).unwrap(); // in debug builds, also compares the index with a rebuilt one
}

#[test]
fn long_chains_are_handled_without_recursion() {
    let n = 20_000;
    let mut g = Graph::from_graph_def(synth::identity_chain(n)).unwrap();
    assert_eq!(g.topo_order().unwrap().len(), n + 2);
    let y = g.id("y").unwrap();
    assert!(g.reachable(&[y], false).iter().all(|r| *r));
    // Splice every Identity out, one rewire each.
    for i in 0..n {
        let id = g.id(&format!("id_{i}")).unwrap();
        let src = TensorName::parse(&g.node(id).input[0]);
        g.rewire(&TensorName { node: format!("id_{i}"), port: 0 }, &src);
        g.remove_node(id);
    }
    assert_eq!(g.get("y").unwrap().input, ["x"]);
    g.check(Some(Registry::global())).unwrap();
}

#[test]
fn nested_calls_inline_and_recursion_is_an_error() {
    let mut g = Graph::from_graph_def(synth::call_chain(2_000)).unwrap();
    let inlined = g.inline_calls(Registry::global(), |_, _| true).unwrap();
    assert_eq!(inlined.len(), 2_000);
    assert!(g.nodes().all(|(_, n)| called_function(&g, n).is_none()));
    let neg = g.nodes().find(|(_, n)| n.op == "Neg").map(|(_, n)| n.name.clone()).unwrap();
    assert_eq!(g.get("y").unwrap().input, std::slice::from_ref(&neg));
    g.check(Some(Registry::global())).unwrap();
    // Names stay short however deep the nesting: `C/<body node>` until C's name is long, then
    // a short prefix (the cost of inlining would grow with the square of the depth otherwise).
    let longest = g.nodes().map(|(_, n)| n.name.len()).max().unwrap();
    assert!(longest <= tf_graph_limit(), "a {longest}-byte name");
    assert!(neg.starts_with("call/") && neg.ends_with("/neg"), "{neg}");

    for (def, cycle) in [
        (synth::recursive_call(false), "f -> f"),
        (synth::recursive_call(true), "f -> f"),
        (synth::mutual_recursion(), "f -> g -> f"),
    ] {
        let mut g = Graph::from_graph_def(def).unwrap();
        let e = g.inline_calls(Registry::global(), |_, _| true).unwrap_err();
        assert!(e.reason.contains(&format!("calls itself ({cycle})")), "{e}");
    }
}

/// The longest name inlining a chain of `f_k` calls into `call` can make: the prefix limit
/// plus one body node name.
fn tf_graph_limit() -> usize {
    crate::inline::MAX_INLINE_PREFIX + "/call".len() + 16
}

#[test]
fn function_lookup_follows_library_changes() {
    let mut g = Graph::from_graph_def(synth::call_chain(3)).unwrap();
    assert!(g.function("f_2").is_some() && g.function("nope").is_none());
    let lib = g.library.as_mut().unwrap();
    lib.function.remove(0);
    assert!(g.function("f_0").is_none() && g.function("f_1").is_some());
    let lib = g.library.as_mut().unwrap();
    lib.function[0].signature.as_mut().unwrap().name = "renamed".into();
    // A hit is verified: the old name is gone.
    assert!(g.function("f_1").is_none());
    assert!(g.function("f_2").is_some());
}
