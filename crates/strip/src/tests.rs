//! Each behaviour of tf-strip on small hand-built graphs. The pitfalls of TensorFlow's own
//! tools that concern stripping each have a test named `pitfall_*`.

use super::*;
use tf_proto::tensorflow::attr_value::{ListValue, Value};
use tf_proto::tensorflow::{
    AttrValue, FunctionDef, FunctionDefLibrary, GradientDef, GraphDebugInfo, NameAttrList, NodeDef,
    OpDef, TensorProto, TensorShapeProto, VersionDef,
};
use tf_tensor::dt;

fn node(name: &str, op: &str, inputs: &[&str]) -> NodeDef {
    NodeDef {
        name: name.into(),
        op: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn ty(t: i32) -> AttrValue {
    AttrValue { value: Some(Value::Type(t)) }
}

fn shape(dims: &[i64]) -> AttrValue {
    AttrValue { value: Some(Value::Shape(tf_tensor::shape_proto(dims))) }
}

fn attr(mut n: NodeDef, key: &str, v: AttrValue) -> NodeDef {
    n.attr.insert(key.into(), v);
    n
}

fn f32s(n: NodeDef) -> NodeDef {
    attr(n, "T", ty(dt::FLOAT))
}

fn placeholder(name: &str, dtype: i32) -> NodeDef {
    attr(node(name, "Placeholder", &[]), "dtype", ty(dtype))
}

fn constant(name: &str, values: &[f32]) -> NodeDef {
    let t = TensorProto {
        dtype: dt::FLOAT,
        tensor_shape: Some(tf_tensor::shape_proto(&[values.len() as i64])),
        float_val: values.to_vec(),
        ..Default::default()
    };
    let n = attr(node(name, "Const", &[]), "dtype", ty(dt::FLOAT));
    attr(n, "value", AttrValue { value: Some(Value::Tensor(Box::new(t))) })
}

fn class(targets: &[&str]) -> AttrValue {
    AttrValue {
        value: Some(Value::List(Box::new(ListValue {
            s: targets.iter().map(|t| format!("loc:@{t}").into_bytes()).collect(),
            ..Default::default()
        }))),
    }
}

fn graph(nodes: Vec<NodeDef>) -> Graph {
    Graph::from_graph_def(GraphDef { node: nodes, ..Default::default() }).unwrap()
}

fn outputs(names: &[&str]) -> StripConfig {
    StripConfig { outputs: names.iter().map(|s| s.to_string()).collect(), ..Default::default() }
}

/// Strips, checks the result, and checks that the chosen outputs are marked for the next stage
/// (then removes the marks, so tests compare graphs as they were).
fn run(g: Graph, cfg: &StripConfig) -> (Graph, StripReport) {
    let (mut out, report) = strip(g, cfg).unwrap();
    out.check(Some(Registry::global())).unwrap();
    let marked: Vec<String> = out.marked_outputs().iter().map(ToString::to_string).collect();
    if report.outputs_from == OutputsFrom::Detected {
        assert!(marked.is_empty(), "detected outputs are not marked: {marked:?}");
    } else {
        let mut want = report.outputs.clone();
        want.sort();
        let mut got = marked;
        got.sort();
        assert_eq!(got, want, "the outputs are marked for the next stage");
    }
    out.mark_outputs(&[]);
    (out, report)
}

fn names(g: &Graph) -> Vec<&str> {
    g.nodes().map(|(_, n)| n.name.as_str()).collect()
}

fn inputs<'a>(g: &'a Graph, name: &str) -> Vec<&'a str> {
    g.get(name)
        .unwrap_or_else(|| panic!("no node {name}"))
        .input
        .iter()
        .map(|s| s.as_str())
        .collect()
}

// --- outputs and pruning -----------------------------------------------------------------

#[test]
fn keeps_only_what_the_outputs_need() {
    let g = graph(vec![
        placeholder("x", dt::FLOAT),
        f32s(node("relu", "Relu", &["x"])),
        f32s(node("neg", "Neg", &["x"])),
        f32s(node("other", "Tanh", &["x"])),
    ]);
    let (out, report) = run(g, &outputs(&["relu", "neg:0"]));
    assert_eq!(names(&out), ["x", "relu", "neg"]);
    assert_eq!(report.outputs, ["relu:0", "neg:0"]);
    let a = report.action("other").unwrap();
    assert_eq!((a.kind, a.why), (ActionKind::Removed, Why::Unused));
    assert_eq!((report.nodes_before, report.nodes_after), (4, 3));
}

#[test]
fn training_machinery_goes_with_a_reason() {
    let g = graph(vec![
        placeholder("x", dt::FLOAT),
        placeholder("labels", dt::INT64),
        attr(node("w", "VariableV2", &[]), "dtype", ty(dt::FLOAT)),
        f32s(node("w/read", "Identity", &["w"])),
        constant("w/Initializer/zeros", &[0.0]),
        f32s(node("w/Assign", "Assign", &["w", "w/Initializer/zeros"])),
        node("init", "NoOp", &["^w/Assign"]),
        f32s(node("y", "Mul", &["x", "w/read"])),
        f32s(node("loss", "Sub", &["y", "labels"])),
        f32s(node("gradients/grad", "Neg", &["loss"])),
        constant("lr", &[0.1]),
        f32s(node(
            "GradientDescent/update_w",
            "ApplyGradientDescent",
            &["w", "lr", "gradients/grad"],
        )),
        node("save/filename", "Placeholder", &[]),
        node("save/SaveV2", "SaveV2", &["save/filename"]),
        attr(node("summary", "ScalarSummary", &["loss"]), "T", ty(dt::FLOAT)),
    ]);
    let (out, report) = run(g, &outputs(&["y"]));
    assert_eq!(names(&out), ["x", "w", "y"]);
    let why = |n: &str| report.action(n).unwrap().why;
    assert_eq!(why("labels"), Why::UnusedInput);
    assert_eq!(why("w/Assign"), Why::Assign);
    assert_eq!(why("init"), Why::Initializer);
    assert_eq!(why("w/Initializer/zeros"), Why::Initializer);
    assert_eq!(why("loss"), Why::Training);
    assert_eq!(why("gradients/grad"), Why::Gradient);
    assert_eq!(why("GradientDescent/update_w"), Why::Optimizer);
    assert_eq!(why("save/SaveV2"), Why::SaveRestore);
    assert_eq!(why("summary"), Why::Summary);
    assert_eq!(why("lr"), Why::Training);
    assert_eq!(why("w/read"), Why::PassThrough);
}

#[test]
fn detects_outputs_that_are_not_machinery() {
    let g = graph(vec![
        placeholder("x", dt::FLOAT),
        attr(node("w", "VariableV2", &[]), "dtype", ty(dt::FLOAT)),
        f32s(node("w/read", "Identity", &["w"])),
        f32s(node("y", "Mul", &["x", "w/read"])),
        f32s(node("probs", "Softmax", &["y"])),
        f32s(node("loss", "Neg", &["y"])),
        f32s(node("train", "AssignAdd", &["w", "loss"])),
        node("init", "NoOp", &["^w"]),
        attr(node("shape", "Shape", &["y"]), "T", ty(dt::FLOAT)),
        constant("unused_const", &[1.0]),
    ]);
    let (out, report) = run(g, &StripConfig::default());
    assert_eq!(report.outputs, ["probs:0"]);
    assert_eq!(report.outputs_from, OutputsFrom::Detected);
    assert_eq!(names(&out), ["x", "w", "y", "probs"]);
    assert!(report.warnings[0].contains("detected output(s) probs:0"));
}

#[test]
fn signature_outputs_are_used_when_no_outputs_are_given() {
    let g = graph(vec![
        placeholder("x", dt::FLOAT),
        f32s(node("a", "Neg", &["x"])),
        f32s(node("b", "Neg", &["x"])),
    ]);
    let cfg = StripConfig { signature_outputs: vec!["b:0".into()], ..Default::default() };
    let (out, report) = run(g, &cfg);
    assert_eq!(names(&out), ["x", "b"]);
    assert_eq!(report.outputs_from, OutputsFrom::Signature);
}

#[test]
fn keep_protects_a_node() {
    let g = graph(vec![
        placeholder("x", dt::FLOAT),
        f32s(node("id", "Identity", &["x"])),
        f32s(node("y", "Neg", &["id"])),
        f32s(node("extra", "Neg", &["x"])),
    ]);
    let cfg = StripConfig { keep: vec!["id".into(), "extra".into()], ..outputs(&["y"]) };
    let (out, _) = run(g, &cfg);
    assert_eq!(names(&out), ["x", "id", "y", "extra"]);
    assert_eq!(inputs(&out, "y"), ["id"]);
}

// --- pitfall: versions, library and debug_info are kept -----------------------------

#[test]
#[allow(deprecated)]
fn pitfall_versions_library_and_debug_info_are_kept() {
    let used = FunctionDef {
        signature: Some(OpDef { name: "used_fn".into(), ..Default::default() }),
        ..Default::default()
    };
    let unused = FunctionDef {
        signature: Some(OpDef { name: "unused_fn".into(), ..Default::default() }),
        ..Default::default()
    };
    let library = FunctionDefLibrary {
        function: vec![used.clone(), unused],
        gradient: vec![GradientDef {
            function_name: "used_fn".into(),
            gradient_func: "unused_fn".into(),
        }],
        ..Default::default()
    };
    let versions = VersionDef { producer: 2474, min_consumer: 12, bad_consumers: vec![7] };
    let debug_info = GraphDebugInfo { files: vec!["model.py".into()], ..Default::default() };
    let g = GraphDef {
        node: vec![
            placeholder("x", dt::FLOAT),
            f32s(node("id", "Identity", &["x"])),
            node("call", "used_fn", &["id"]),
            f32s(node("y", "Neg", &["x"])),
        ],
        library: Some(library.clone()),
        versions: Some(versions.clone()),
        debug_info: Some(debug_info.clone()),
        version: 3,
    };
    let (out, _) = strip_graph_def(g, &outputs(&["call"])).unwrap();
    assert_eq!(out.versions, Some(versions));
    assert_eq!(out.debug_info, Some(debug_info));
    assert_eq!(out.version, 3);
    // The gradient of a kept function keeps its gradient function alive.
    assert_eq!(out.library, Some(library));

    let g = GraphDef {
        node: vec![placeholder("x", dt::FLOAT), f32s(node("y", "Neg", &["x"]))],
        library: Some(FunctionDefLibrary { function: vec![used], ..Default::default() }),
        ..Default::default()
    };
    let (out, report) = strip_graph_def(g, &outputs(&["y"])).unwrap();
    assert_eq!(out.library, Some(FunctionDefLibrary::default()));
    assert_eq!(report.functions_removed, ["used_fn"]);
}

#[test]
fn functions_referenced_through_attrs_and_interfaces_stay() {
    let func = |name: &str, body: Vec<NodeDef>, api: Option<&str>| {
        let mut f = FunctionDef {
            signature: Some(OpDef { name: name.into(), ..Default::default() }),
            node_def: body,
            ..Default::default()
        };
        if let Some(api) = api {
            f.attr.insert("api_implements".into(), AttrValue { value: Some(Value::S(api.into())) });
        }
        f
    };
    let fref = |name: &str| AttrValue {
        value: Some(Value::Func(NameAttrList { name: name.into(), ..Default::default() })),
    };
    let library = FunctionDefLibrary {
        function: vec![
            func("body", vec![node("inner", "nested", &[])], None),
            func("nested", vec![], None),
            func("lstm_cpu", vec![], Some("lstm")),
            func("lstm_gpu", vec![], Some("lstm")),
            func("orphan", vec![], None),
        ],
        ..Default::default()
    };
    let call = attr(node("call", "StatefulPartitionedCall", &[]), "f", fref("body"));
    let call = attr(call, "Tin", AttrValue { value: Some(Value::List(Box::default())) });
    let call = attr(call, "Tout", AttrValue { value: Some(Value::List(Box::default())) });
    let lstm = attr(node("lstm", "PartitionedCall", &[]), "f", fref("lstm_cpu"));
    let lstm = attr(lstm, "Tin", AttrValue { value: Some(Value::List(Box::default())) });
    let lstm = attr(lstm, "Tout", AttrValue { value: Some(Value::List(Box::default())) });
    let g = GraphDef { node: vec![call, lstm], library: Some(library), ..Default::default() };
    let (out, report) = strip_graph_def(g, &outputs(&["call", "lstm"])).unwrap();
    let kept: Vec<_> = out
        .library
        .unwrap()
        .function
        .iter()
        .map(|f| f.signature.as_ref().unwrap().name.clone())
        .collect();
    assert_eq!(kept, ["body", "nested", "lstm_cpu", "lstm_gpu"]);
    assert_eq!(report.functions_removed, ["orphan"]);
}

// --- pitfall: CheckNumerics is rewired, `:0` references are handled ------------------

#[test]
fn pitfall_check_numerics_is_rewired_not_dropped() {
    let g = graph(vec![
        placeholder("x", dt::FLOAT),
        attr(f32s(node("check", "CheckNumerics", &["x"])), "message", AttrValue::default()),
        f32s(node("relu", "Relu", &["check"])),
        f32s(node("add", "AddV2", &["check:0", "relu"])),
    ]);
    let (out, report) = run(g, &outputs(&["add"]));
    // remove_training_nodes would leave `relu` without inputs.
    assert_eq!(inputs(&out, "relu"), ["x"]);
    assert_eq!(inputs(&out, "add"), ["x", "relu"]);
    let a = report.action("check").unwrap();
    assert_eq!((a.kind, a.why), (ActionKind::Spliced, Why::DebugOp));

    let g = graph(vec![
        placeholder("x", dt::FLOAT),
        f32s(node("check", "CheckNumerics", &["x"])),
        f32s(node("relu", "Relu", &["check"])),
    ]);
    let (out, _) = run(g, &StripConfig { keep_asserts: true, ..outputs(&["relu"]) });
    assert_eq!(inputs(&out, "relu"), ["check"]);
}

#[test]
fn pitfall_explicit_colon_zero_references_are_spliced() {
    let g = graph(vec![
        placeholder("x", dt::FLOAT),
        f32s(node("a", "Identity", &["x:0"])),
        f32s(node("b", "Identity", &["a:0"])),
        f32s(node("y", "Mul", &["b:0", "a"])),
    ]);
    let (out, report) = run(g, &outputs(&["y:0"]));
    assert_eq!(names(&out), ["x", "y"]);
    assert_eq!(inputs(&out, "y"), ["x", "x"]);
    assert_eq!(report.count(ActionKind::Spliced), 2);
}

#[test]
fn asserts_and_prints_go_and_their_control_readers_wait_on_their_inputs() {
    let g = graph(vec![
        placeholder("x", dt::FLOAT),
        attr(node("rng", "RandomUniform", &["x"]), "dtype", ty(dt::FLOAT)),
        node("cond", "IsFinite", &["x"]),
        node("assert", "Assert", &["cond", "x", "^rng"]),
        f32s(node("print", "Print", &["x", "x", "^assert"])),
        f32s(node("y", "Neg", &["print"])),
    ]);
    let (out, report) = run(g, &outputs(&["y"]));
    // Print passes x through; its wait on the assert becomes a wait on what the assert waited
    // for; the stateful RandomUniform stays, the pure IsFinite goes with its control edge.
    assert_eq!(inputs(&out, "y"), ["x", "^rng"]);
    assert!(out.get("rng").is_some() && out.get("assert").is_none() && out.get("cond").is_none());
    assert_eq!(report.action("assert").unwrap().why, Why::DebugOp);
    assert_eq!(report.action("cond").unwrap().why, Why::OrderingOnly);

    let g = graph(vec![
        placeholder("x", dt::FLOAT),
        node("cond", "IsFinite", &["x"]),
        node("assert", "Assert", &["cond", "x"]),
        f32s(node("y", "Neg", &["x", "^assert"])),
    ]);
    let (out, _) = run(g, &StripConfig { keep_asserts: true, ..outputs(&["y"]) });
    assert_eq!(names(&out), ["x", "cond", "assert", "y"]);
}

// --- pass-throughs and control edges ------------------------------------------------------

#[test]
fn pass_throughs_are_spliced_and_carry_their_control_inputs() {
    let g = graph(vec![
        placeholder("x", dt::FLOAT),
        attr(node("rng", "RandomUniform", &["x"]), "dtype", ty(dt::FLOAT)),
        f32s(node("snap", "Snapshot", &["x", "^rng"])),
        f32s(node("stop", "StopGradient", &["snap"])),
        f32s(node("prevent", "PreventGradient", &["stop"])),
        f32s(node("y", "Neg", &["prevent"])),
        f32s(node("z", "Neg", &["x", "^stop"])),
    ]);
    let (out, _) = run(g, &outputs(&["y", "z"]));
    assert_eq!(names(&out), ["x", "rng", "y", "z"]);
    assert_eq!(inputs(&out, "y"), ["x", "^rng"]);
    // ^stop meant "after snap", i.e. after x and rng; x is already a data input.
    assert_eq!(inputs(&out, "z"), ["x", "^rng"]);
}

#[test]
fn identity_n_is_spliced_port_by_port() {
    let types = AttrValue {
        value: Some(Value::List(Box::new(ListValue {
            r#type: vec![dt::FLOAT, dt::INT32],
            ..Default::default()
        }))),
    };
    let g = graph(vec![
        placeholder("x", dt::FLOAT),
        placeholder("i", dt::INT32),
        attr(node("idn", "IdentityN", &["x", "i"]), "T", types),
        f32s(node("y", "Neg", &["idn"])),
        attr(node("j", "Neg", &["idn:1"]), "T", ty(dt::INT32)),
    ]);
    let (out, _) = run(g, &outputs(&["y", "j"]));
    assert_eq!(inputs(&out, "y"), ["x"]);
    assert_eq!(inputs(&out, "j"), ["i"]);
    let g2 = graph(vec![
        placeholder("x", dt::FLOAT),
        f32s(node("id", "Identity", &["x"])),
        f32s(node("y", "Neg", &["id"])),
    ]);
    let (out, _) = run(g2, &StripConfig { keep_identity: true, ..outputs(&["y"]) });
    assert_eq!(names(&out), ["x", "id", "y"]);
}

#[test]
fn outputs_are_never_spliced_or_renamed() {
    let g = graph(vec![
        placeholder("x", dt::FLOAT),
        f32s(node("out", "Identity", &["x"])),
        f32s(node("out2", "Identity", &["out"])),
    ]);
    let (out, _) = run(g, &outputs(&["out", "out2"]));
    assert_eq!(names(&out), ["x", "out", "out2"]);
}

/// A TF2 frozen graph: former ReadVariableOps (now Identities of Consts) are control inputs of
/// a NoOp on which the output waits.
fn tf2_frozen() -> Graph {
    graph(vec![
        placeholder("x", dt::FLOAT),
        constant("unknown", &[2.0]),
        f32s(node("model/dense/MatMul/ReadVariableOp", "Identity", &["unknown"])),
        f32s(node("model/dense/Mul", "Mul", &["x", "model/dense/MatMul/ReadVariableOp"])),
        node("NoOp", "NoOp", &["^model/dense/MatMul/ReadVariableOp"]),
        f32s(node("Identity", "Identity", &["model/dense/Mul", "^NoOp"])),
    ])
}

#[test]
fn pitfall_tf2_frozen_graph_control_noops_are_cleaned() {
    let (out, report) = run(tf2_frozen(), &outputs(&["Identity"]));
    assert_eq!(names(&out), ["x", "unknown", "model/dense/Mul", "Identity"]);
    assert_eq!(inputs(&out, "model/dense/Mul"), ["x", "unknown"]);
    assert_eq!(inputs(&out, "Identity"), ["model/dense/Mul"]);
    assert_eq!(report.action("NoOp").unwrap().why, Why::ControlOnly);
    assert!(report.control_edges_removed >= 1);

    // With --keep-control-deps the NoOp stays, the read Identity is still spliced.
    let (out, _) =
        run(tf2_frozen(), &StripConfig { keep_control_deps: true, ..outputs(&["Identity"]) });
    assert_eq!(inputs(&out, "NoOp"), ["^unknown"]);
    assert_eq!(inputs(&out, "Identity"), ["model/dense/Mul", "^NoOp"]);
}

#[test]
fn never_removes_a_stateful_op_an_output_depends_on() {
    let g = graph(vec![
        placeholder("x", dt::FLOAT),
        attr(node("counter", "VarHandleOp", &[]), "dtype", ty(dt::INT64)),
        attr(
            attr(node("one", "Const", &[]), "dtype", ty(dt::INT64)),
            "value",
            AttrValue {
                value: Some(Value::Tensor(Box::new(TensorProto {
                    dtype: dt::INT64,
                    int64_val: vec![1],
                    ..Default::default()
                }))),
            },
        ),
        attr(node("count", "AssignAddVariableOp", &["counter", "one"]), "dtype", ty(dt::INT64)),
        node("deps", "NoOp", &["^count"]),
        f32s(node("y", "Identity", &["x", "^deps"])),
        f32s(node("z", "Neg", &["y"])),
    ]);
    let (out, report) = run(g, &outputs(&["z"]));
    assert_eq!(names(&out), ["x", "counter", "one", "count", "z"]);
    // The NoOp and the Identity are spliced: z now waits on the assignment itself.
    assert_eq!(inputs(&out, "z"), ["x", "^count"]);
    assert_eq!(report.action("deps").unwrap().why, Why::ControlOnly);
    assert_eq!(
        report.warnings,
        ["kept training machinery the outputs depend on: 'count' (AssignAddVariableOp)"]
    );
}

#[test]
fn tf1_cond_pivots_keep_their_control_edges() {
    let bool_ph = placeholder("pred", dt::BOOL);
    let g = graph(vec![
        placeholder("x", dt::FLOAT),
        bool_ph,
        f32s(node("cond/Switch", "Switch", &["x", "pred"])),
        f32s(node("cond/switch_t", "Identity", &["cond/Switch:1"])),
        attr(constant("cond/c", &[1.0]), "_class", class(&["cond/switch_t"])),
        f32s(node("cond/Add", "AddV2", &["cond/Switch:1", "cond/c"])),
        f32s(node("cond/false", "Identity", &["cond/Switch"])),
        attr(
            f32s(node("cond/Merge", "Merge", &["cond/false", "cond/Add"])),
            "N",
            AttrValue { value: Some(Value::I(2)) },
        ),
        f32s(node("y", "Neg", &["cond/Merge"])),
    ]);
    let mut g = g;
    let c = g.id("cond/c").unwrap();
    g.add_control_input(c, "cond/switch_t");
    let (out, _) = run(g, &outputs(&["y"]));
    // The pivot stays (a control edge from a Switch would lose the branch); the Const keeps its
    // control edge into the branch; the data-only Identity of the false branch is spliced.
    assert_eq!(inputs(&out, "cond/c"), ["^cond/switch_t"]);
    assert!(out.get("cond/switch_t").is_some());
    assert_eq!(inputs(&out, "cond/Merge"), ["cond/Switch", "cond/Add"]);
}

#[test]
fn a_control_edge_never_moves_onto_a_switch() {
    // `a` is fed by the Switch and read by data only, so it could go; `b` is read through a
    // control edge. Splicing both would leave `^cond/Switch`: `a` must stay, `b` goes.
    let mut g = graph(vec![
        placeholder("x", dt::FLOAT),
        placeholder("pred", dt::BOOL),
        f32s(node("cond/Switch", "Switch", &["x", "pred"])),
        f32s(node("a", "Identity", &["cond/Switch:1"])),
        f32s(node("b", "Identity", &["a"])),
        constant("c", &[1.0]),
        f32s(node("add", "AddV2", &["b", "c"])),
        f32s(node("y", "Merge", &["cond/Switch", "add"])),
    ]);
    let c = g.id("c").unwrap();
    g.add_control_input(c, "b");
    let y = g.id("y").unwrap();
    g.node_mut(y).attr.insert("N".into(), AttrValue { value: Some(Value::I(2)) });
    let (out, _) = run(g, &outputs(&["y"]));
    assert_eq!(inputs(&out, "c"), ["^a"]);
    assert_eq!(inputs(&out, "add"), ["a", "c"]);
    assert!(out.get("b").is_none());
}

#[test]
fn tf1_while_loop_frames_are_left_intact() {
    let i32s = |n: NodeDef| attr(n, "T", ty(dt::INT32));
    let int_const = |name: &str, v: i32| {
        let t = TensorProto { dtype: dt::INT32, int_val: vec![v], ..Default::default() };
        attr(
            attr(node(name, "Const", &[]), "dtype", ty(dt::INT32)),
            "value",
            AttrValue { value: Some(Value::Tensor(Box::new(t))) },
        )
    };
    let frame = AttrValue { value: Some(Value::S(b"while/while_context".to_vec())) };
    let g = graph(vec![
        int_const("start", 0),
        placeholder("n", dt::INT32),
        attr(i32s(node("while/Enter", "Enter", &["start"])), "frame_name", frame.clone()),
        attr(i32s(node("while/n", "Enter", &["n"])), "frame_name", frame),
        attr(
            i32s(node("while/Merge", "Merge", &["while/Enter", "while/NextIteration"])),
            "N",
            AttrValue { value: Some(Value::I(2)) },
        ),
        i32s(node("while/Less", "Less", &["while/Merge", "while/n"])),
        node("while/LoopCond", "LoopCond", &["while/Less"]),
        i32s(node("while/Switch", "Switch", &["while/Merge", "while/LoopCond"])),
        i32s(node("while/Identity", "Identity", &["while/Switch:1"])),
        {
            let one = int_const("while/one", 1);
            NodeDef { input: vec!["^while/Identity".into()], ..one }
        },
        i32s(node("while/add", "AddV2", &["while/Identity", "while/one"])),
        i32s(node("while/NextIteration", "NextIteration", &["while/add"])),
        i32s(node("while/Exit", "Exit", &["while/Switch"])),
        i32s(node("y", "Identity", &["while/Exit"])),
    ]);
    let before = g.clone().into_graph_def();
    let (out, report) = run(g, &outputs(&["y"]));
    // Nothing changes: the loop's Identity is its frame pivot, its control edge puts the
    // Const into the frame, and the output is protected.
    assert_eq!(out.into_graph_def(), before);
    assert!(report.actions.is_empty());
}

// --- pitfall: no dangling `_class` ---------------------------------------------------

#[test]
fn pitfall_no_dangling_colocation() {
    let g = || {
        graph(vec![
            placeholder("x", dt::FLOAT),
            attr(constant("w", &[1.0]), "_class", class(&["w"])),
            f32s(node("w/read", "Identity", &["w"])),
            {
                let mut n = attr(
                    f32s(node("y", "Mul", &["x", "w/read"])),
                    "_class",
                    class(&["w/read", "x"]),
                );
                n.device = "/device:CPU:0".into();
                n
            },
        ])
    };
    // Default: devices and colocations are cleared.
    let (out, report) = run(g(), &outputs(&["y"]));
    assert!(out.nodes().all(|(_, n)| !n.attr.contains_key("_class") && n.device.is_empty()));
    assert_eq!((report.devices_cleared, report.colocations_removed), (1, 3));
    // --keep-devices: only the entry naming the spliced node goes.
    let (out, report) = run(g(), &StripConfig { keep_devices: true, ..outputs(&["y"]) });
    let y = out.get("y").unwrap();
    assert_eq!(y.device, "/device:CPU:0");
    assert_eq!(y.attr["_class"], class(&["x"]));
    assert_eq!(out.get("w").unwrap().attr["_class"], class(&["w"]));
    assert_eq!(report.colocations_removed, 1);
}

// --- --set ---------------------------------------------------------------------------------

#[test]
fn set_binds_a_placeholder_to_a_constant_of_its_dtype() {
    let g = graph(vec![
        placeholder("x", dt::FLOAT),
        attr(placeholder("is_training", dt::BOOL), "shape", shape(&[])),
        attr(placeholder("scale", dt::HALF), "shape", shape(&[2])),
        attr(node("k", "PlaceholderWithDefault", &["k/default"]), "dtype", ty(dt::INT64)),
        attr(
            attr(node("k/default", "Const", &[]), "dtype", ty(dt::INT64)),
            "value",
            AttrValue::default(),
        ),
        node("y", "Select", &["is_training", "x", "x"]),
        node("z", "Mul", &["scale", "k"]),
    ]);
    let cfg = StripConfig {
        set: vec![
            ("is_training".into(), "false".into()),
            ("scale".into(), "1.5".into()),
            ("k".into(), "-3".into()),
        ],
        ..outputs(&["y", "z"])
    };
    let (out, report) = run(g, &cfg);
    let value = |n: &str| match &out.get(n).unwrap().attr["value"].value {
        Some(Value::Tensor(t)) => (**t).clone(),
        _ => panic!("{n} has no value"),
    };
    assert_eq!(out.get("is_training").unwrap().op, "Const");
    assert_eq!(value("is_training").bool_val, [false]);
    assert_eq!(value("is_training").tensor_shape, Some(TensorShapeProto::default()));
    // A fully known shape is filled by one value (TF's fill rule); fp16 1.5 is 0x3E00.
    assert_eq!(value("scale").half_val, [0x3E00]);
    assert_eq!(value("scale").tensor_shape, Some(tf_tensor::shape_proto(&[2])));
    assert_eq!(value("k").int64_val, [-3]);
    assert_eq!(inputs(&out, "k"), Vec::<&str>::new());
    assert!(out.get("k/default").is_none());
    assert_eq!(report.action("k/default").unwrap().why, Why::AboveCut);
    assert_eq!(report.action("is_training").unwrap().why, Why::BoundBySet);
}

#[test]
fn set_errors_name_the_placeholder_and_the_value() {
    let g = || {
        graph(vec![
            placeholder("is_training", dt::BOOL),
            placeholder("n", dt::UINT8),
            attr(placeholder("v", dt::FLOAT), "shape", shape(&[-1, 3])),
            f32s(node("y", "Neg", &["is_training", "n", "v"])),
        ])
    };
    let err = |set: (&str, &str)| {
        let cfg = StripConfig { set: vec![(set.0.into(), set.1.into())], ..outputs(&["y"]) };
        strip(g(), &cfg).unwrap_err().to_string()
    };
    assert_eq!(
        err(("is_training", "0.5")),
        "--set is_training=0.5: 'is_training' is bool, and '0.5' is not a bool value"
    );
    assert_eq!(err(("n", "256")), "--set n=256: 'n' is uint8, and '256' is not a uint8 value");
    assert_eq!(err(("nope", "1")), "--set 'nope': no such node in the graph");
    assert_eq!(
        err(("y", "1")),
        "--set 'y': node is a Neg, not a Placeholder or PlaceholderWithDefault"
    );
    assert!(err(("v", "1")).contains("only partly known"));
}

// --- --inputs --------------------------------------------------------------------------------

#[test]
fn pitfall_cut_placeholders_keep_their_own_dtype() {
    let out_shapes = AttrValue {
        value: Some(Value::List(Box::new(ListValue {
            shape: vec![tf_tensor::shape_proto(&[-1, 4])],
            ..Default::default()
        }))),
    };
    let g = graph(vec![
        placeholder("x", dt::FLOAT),
        placeholder("ids", dt::INT64),
        attr(f32s(node("feat", "Relu", &["x"])), "_output_shapes", out_shapes),
        attr(attr(node("uniq", "Unique", &["ids"]), "T", ty(dt::INT64)), "out_idx", ty(dt::INT32)),
        attr(node("cast", "Cast", &["uniq:1"]), "DstT", ty(dt::FLOAT)),
        f32s(node("y", "Mul", &["feat", "cast"])),
        attr(node("u", "Neg", &["uniq"]), "T", ty(dt::INT64)),
    ]);
    let cfg = StripConfig {
        inputs: vec!["feat:0".into(), "uniq:1".into()],
        input_shapes: vec![("uniq:1".into(), vec![-1])],
        ..outputs(&["y", "u"])
    };
    let (out, report) = run(g, &cfg);
    // feat is replaced in place (users feed feat:0 as before): float, shape from _output_shapes.
    let feat = out.get("feat").unwrap();
    assert_eq!((feat.op.as_str(), &feat.attr["dtype"]), ("Placeholder", &ty(dt::FLOAT)));
    assert_eq!(feat.attr["shape"], shape(&[-1, 4]));
    // uniq:1 gets its own int32 placeholder (strip_unused would stamp one dtype on all); uniq
    // stays for u.
    let idx = out.get("uniq_1").unwrap();
    assert_eq!((idx.op.as_str(), &idx.attr["dtype"]), ("Placeholder", &ty(dt::INT32)));
    assert_eq!(idx.attr["shape"], shape(&[-1]));
    assert_eq!(inputs(&out, "cast"), ["uniq_1"]);
    assert_eq!(names(&out), ["ids", "feat", "uniq", "cast", "y", "u", "uniq_1"]);
    assert_eq!(report.action("x").unwrap().why, Why::AboveCut);
    assert_eq!(report.new_inputs.len(), 2);
    assert_eq!(report.new_inputs[1].placeholder, "uniq_1");
    assert_eq!(report.new_inputs[1].dtype, "int32");
}

#[test]
fn cut_shapes_come_from_the_graph_or_the_flag() {
    let g = || {
        graph(vec![
            attr(placeholder("x", dt::FLOAT), "shape", shape(&[-1, 8])),
            f32s(node("id", "Identity", &["x"])),
            f32s(node("relu", "Relu", &["id"])),
            f32s(node("y", "Neg", &["relu"])),
        ])
    };
    let (out, _) = run(g(), &StripConfig { inputs: vec!["id".into()], ..outputs(&["y"]) });
    assert_eq!(out.get("id").unwrap().attr["shape"], shape(&[-1, 8]));
    assert_eq!(inputs(&out, "relu"), ["id"]);
    assert!(out.get("x").is_none());
    let cfg = StripConfig {
        inputs: vec!["relu".into()],
        input_shapes: vec![("relu".into(), vec![1, 8]), ("x".into(), vec![2, 8])],
        ..outputs(&["y"])
    };
    let (out, _) = run(g(), &cfg);
    assert_eq!(out.get("relu").unwrap().attr["shape"], shape(&[1, 8]));
    // --input-shape on a placeholder that is not cut: x is gone (above the cut) so this only
    // checks that naming an existing placeholder is accepted.
    let cfg = StripConfig { input_shapes: vec![("x".into(), vec![2, 8])], ..outputs(&["y"]) };
    let (out, _) = run(g(), &cfg);
    assert_eq!(out.get("x").unwrap().attr["shape"], shape(&[2, 8]));
}

#[test]
fn bad_names_are_errors_that_name_them() {
    let g = || graph(vec![placeholder("x", dt::FLOAT), f32s(node("y", "Neg", &["x"]))]);
    let err = |cfg: StripConfig| strip(g(), &cfg).unwrap_err().to_string();
    assert_eq!(err(outputs(&["nope"])), "output 'nope': no such node in the graph");
    assert_eq!(err(outputs(&["y:3"])), "output 'y:3': node 'y' (Neg) has 1 output(s)");
    let cut = |t: &str| StripConfig { inputs: vec![t.into()], ..outputs(&["y"]) };
    assert_eq!(err(cut("missing:0")), "--inputs 'missing:0': no such node in the graph");
    assert_eq!(err(cut("x:1")), "--inputs 'x:1': node 'x' (Placeholder) has 1 output(s)");
    let shp = StripConfig { input_shapes: vec![("y".into(), vec![1])], ..outputs(&["y"]) };
    assert_eq!(
        err(shp),
        "--input-shape 'y': not an --inputs tensor nor a placeholder of the graph"
    );
    let keep = StripConfig { keep: vec!["z".into()], ..outputs(&["y"]) };
    assert_eq!(err(keep), "--keep 'z': no such node in the graph");
    let none = graph(vec![constant("c", &[1.0])]);
    assert!(matches!(strip(none, &StripConfig::default()), Err(StripError::NoOutputs)));
}

// --- tidy ------------------------------------------------------------------------------------

#[test]
fn default_attrs_and_output_shapes() {
    let conv = || {
        let n = f32s(node("conv", "Conv2D", &["x", "w"]));
        let n = attr(
            n,
            "strides",
            AttrValue {
                value: Some(Value::List(Box::new(ListValue {
                    i: vec![1, 1, 1, 1],
                    ..Default::default()
                }))),
            },
        );
        let n = attr(n, "padding", AttrValue { value: Some(Value::S(b"SAME".to_vec())) });
        attr(n, "_output_shapes", AttrValue { value: Some(Value::List(Box::default())) })
    };
    let g = || graph(vec![placeholder("x", dt::FLOAT), constant("w", &[1.0]), conv()]);
    let (out, report) =
        run(g(), &StripConfig { default_attrs: DefaultAttrs::Add, ..outputs(&["conv"]) });
    let attrs: Vec<_> = out.get("conv").unwrap().attr.keys().cloned().collect();
    assert_eq!(
        attrs,
        [
            "T",
            "_output_shapes",
            "data_format",
            "dilations",
            "explicit_paddings",
            "padding",
            "strides",
            "use_cudnn_on_gpu"
        ]
    );
    assert!(report.default_attrs_added >= 4);
    let added = out.into_graph_def();
    let (out, report) = strip_graph_def(
        added,
        &StripConfig {
            default_attrs: DefaultAttrs::Strip,
            clear_output_shapes: true,
            ..outputs(&["conv"])
        },
    )
    .unwrap();
    let conv = out.node.iter().find(|n| n.name == "conv").unwrap();
    assert_eq!(
        conv.attr.keys().collect::<Vec<_>>(),
        ["T", "_tf_tools_outputs", "padding", "strides"]
    );
    assert_eq!(report.output_shapes_cleared, 1);
}

// --- reports, idempotence, no copies -----------------------------------------------------------

#[test]
fn dry_run_text_lists_every_action_and_why() {
    let (_, report) = run(tf2_frozen(), &outputs(&["Identity"]));
    let text = report.render_text();
    assert!(text.starts_with("outputs (--outputs): Identity:0\n"), "{text}");
    assert!(text.contains(
        "splice   model/dense/MatMul/ReadVariableOp (Identity): pass-through (--keep-identity keeps it); consumers now read unknown:0"
    ), "{text}");
    assert!(text.contains("splice   NoOp (NoOp): NoOp grouping control edges"), "{text}");
    assert!(text.contains("nodes: 6 -> 4"), "{text}");
}

#[test]
fn stripping_twice_changes_nothing() {
    let (once, _) = strip(tf2_frozen(), &outputs(&["Identity"])).unwrap();
    let once = once.into_graph_def();
    let (twice, report) = strip_graph_def(once.clone(), &outputs(&["Identity"])).unwrap();
    assert_eq!(twice, once);
    assert!(report.actions.is_empty());
}

#[test]
fn const_payloads_are_not_copied() {
    let payload = bytes_of(4096);
    let mut w = constant("w", &[]);
    if let Some(Value::Tensor(t)) = &mut w.attr.get_mut("value").unwrap().value {
        t.float_val.clear();
        t.tensor_content = payload.clone();
    }
    let g = graph(vec![
        placeholder("x", dt::FLOAT),
        w,
        f32s(node("id", "Identity", &["w"])),
        f32s(node("y", "Mul", &["x", "id"])),
    ]);
    let (out, _) = run(g, &outputs(&["y"]));
    let Some(Value::Tensor(t)) = &out.get("w").unwrap().attr["value"].value else { panic!() };
    assert_eq!(t.tensor_content.as_ptr(), payload.as_ptr());
}

fn bytes_of(n: usize) -> bytes::Bytes {
    bytes::Bytes::from(vec![7u8; n])
}

#[test]
fn long_chains_strip_without_recursion() {
    // 20,000 Identities between the input and the output: all spliced out.
    let g = Graph::from_graph_def(tf_graph::synth::identity_chain(20_000)).unwrap();
    let (out, report) = run(g, &outputs(&["y"]));
    assert_eq!(out.len(), 2);
    assert_eq!(inputs(&out, "y"), ["x"]);
    assert_eq!(report.nodes_before, 20_002);
    // 20,000 NoOps chained by control edges in front of the output: ordering only, all go.
    let g = Graph::from_graph_def(tf_graph::synth::control_chain(20_000)).unwrap();
    let (out, _) = run(g, &outputs(&["y"]));
    assert_eq!(out.len(), 2);
    assert_eq!(inputs(&out, "y"), ["x"]);
}

/// The outputs one stage chose are the outputs of the next, even when one feeds another.
#[test]
fn marked_outputs_survive_the_next_stage() {
    let g = graph(vec![
        placeholder("x", dt::FLOAT),
        f32s(node("logits", "Identity", &["x"])),
        f32s(node("probs", "Softmax", &["logits"])),
    ]);
    let (first, _) = strip(g, &outputs(&["logits", "probs"])).unwrap();
    let (second, report) = strip(first, &StripConfig::default()).unwrap();
    assert_eq!(report.outputs_from, OutputsFrom::Marked);
    assert_eq!(report.outputs, ["logits:0", "probs:0"]);
    assert!(second.get("logits").is_some(), "an output read by another output is kept");
    // An explicit choice on a later stage wins and replaces the mark.
    let (third, report) = strip(second, &outputs(&["probs"])).unwrap();
    assert_eq!(report.outputs_from, OutputsFrom::Explicit);
    let marked: Vec<String> = third.marked_outputs().iter().map(ToString::to_string).collect();
    assert_eq!(marked, ["probs:0"]);
}
