use super::*;
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
