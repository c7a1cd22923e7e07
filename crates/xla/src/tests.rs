//! Unit tests on tiny graphs; agreement with real TensorFlow is tests/tf/test_xla_check.py.

use tf_graph::Graph;
use tf_proto::tensorflow::{attr_value::Value, AttrValue, DataType, GraphDef, NodeDef};

use crate::{annotate, check_graph, CheckConfig, Device, FindingKind, Table};

fn node(name: &str, op: &str, inputs: &[&str], attrs: &[(&str, Value)]) -> NodeDef {
    NodeDef {
        name: name.into(),
        op: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        attr: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), AttrValue { value: Some(v.clone()) }))
            .collect(),
        ..NodeDef::default()
    }
}

fn t(d: DataType) -> Value {
    Value::Type(d as i32)
}

fn graph(nodes: Vec<NodeDef>) -> Graph {
    Graph::from_graph_def(GraphDef { node: nodes, ..GraphDef::default() }).unwrap()
}

fn check(nodes: Vec<NodeDef>, outputs: &[&str]) -> crate::XlaReport {
    let cfg = CheckConfig {
        device: Device::Cpu,
        outputs: outputs.iter().map(|s| s.to_string()).collect(),
        ..CheckConfig::default()
    };
    check_graph(&graph(nodes), &cfg).unwrap()
}

fn ph(name: &str, d: DataType) -> NodeDef {
    node(name, "Placeholder", &[], &[("dtype", t(d))])
}

#[test]
fn table_is_tf_2_21() {
    let table = Table::global();
    assert_eq!(table.tensorflow, "2.21.0");
    assert_eq!(table.len(Device::Cpu), 489);
    assert_eq!(table.len(Device::Gpu), 489);
    assert!(table.kernels(Device::Cpu, "Conv2D").is_some());
    assert!(table.kernels(Device::Cpu, "AsString").is_none());
    assert_eq!(table.const_inputs("Reshape"), ["shape"]);
}

#[test]
fn dense_graph_compiles_and_forms_one_cluster() {
    let r = check(
        vec![
            ph("x", DataType::DtFloat),
            node("w", "Const", &[], &[("dtype", t(DataType::DtFloat))]),
            node("mm", "MatMul", &["x", "w"], &[("T", t(DataType::DtFloat))]),
            node("relu", "Relu", &["mm"], &[("T", t(DataType::DtFloat))]),
        ],
        &["relu:0"],
    );
    assert!(r.compilable, "{:?}", r.findings);
    assert_eq!(r.clusters.len(), 1);
    assert_eq!(r.clusters[0].size, 3);
}

#[test]
fn string_op_and_string_placeholder() {
    let r = check(
        vec![
            ph("x", DataType::DtFloat),
            node("s", "AsString", &["x"], &[("T", t(DataType::DtFloat))]),
            node("h", "StringToHashBucketFast", &["s"], &[("num_buckets", Value::I(10))]),
        ],
        &["h:0"],
    );
    assert!(!r.compilable);
    let kinds: Vec<_> = r.findings.iter().map(|f| (f.node.as_str(), f.kind)).collect();
    assert_eq!(kinds, [("s", FindingKind::StringValue), ("h", FindingKind::StringValue)]);
    assert!(r.findings[0].tf_error.starts_with(
        "AsString (No registered 'AsString' OpKernel for XLA_CPU_JIT devices compatible with node {{node s}})"
    ));
    let r =
        check(vec![ph("x", DataType::DtString), node("l", "StringLength", &["x"], &[])], &["l:0"]);
    assert_eq!(r.findings[0].op, "Placeholder");
    assert!(r.findings[0].tf_error.starts_with("_Arg (No registered '_Arg' OpKernel"));
    assert!(r.findings[0].tf_error.contains("Requested Attributes: T=DT_STRING"));
}

#[test]
fn dtype_constraints_per_device() {
    let conv = |dev| {
        let g = graph(vec![
            ph("x", DataType::DtInt32),
            ph("w", DataType::DtInt32),
            node("c", "Conv2D", &["x", "w"], &[("T", t(DataType::DtInt32))]),
        ]);
        let cfg = CheckConfig { device: dev, outputs: vec!["c".into()], ..CheckConfig::default() };
        check_graph(&g, &cfg).unwrap()
    };
    assert!(conv(Device::Cpu).compilable);
    let gpu = conv(Device::Gpu);
    assert_eq!(gpu.findings[0].kind, FindingKind::DtypeNotAllowed);
}

#[test]
fn dequantize_mode_and_folding() {
    let deq = |input: &str| {
        vec![
            ph("q", DataType::DtQuint8),
            node("c", "Const", &[], &[("dtype", t(DataType::DtQuint8))]),
            node("lo", "Const", &[], &[("dtype", t(DataType::DtFloat))]),
            node("hi", "Const", &[], &[("dtype", t(DataType::DtFloat))]),
            node(
                "d",
                "Dequantize",
                &[input, "lo", "hi"],
                &[("T", t(DataType::DtQuint8)), ("mode", Value::S(b"MIN_FIRST".to_vec()))],
            ),
        ]
    };
    let r = check(deq("q"), &["d:0"]);
    assert_eq!(r.findings[0].kind, FindingKind::AttrValueRejected);
    assert!(r.findings[0]
        .tf_error
        .starts_with("Mode string must be 'MIN_COMBINED' is 'MIN_FIRST'"));
    // Grappler folds a Dequantize of constants before XLA sees it.
    let r = check(deq("c"), &["d:0"]);
    assert!(r.compilable);
    assert_eq!(r.nodes_folded, 1);
}

#[test]
fn data_dependent_shape() {
    let reshape = |shape_src: NodeDef| {
        vec![
            ph("x", DataType::DtFloat),
            shape_src,
            node("r", "Reshape", &["x", "s"], &[("T", t(DataType::DtFloat))]),
        ]
    };
    // A placeholder is specialised on: fine.
    assert!(check(reshape(ph("s", DataType::DtInt32)), &["r"]).compilable);
    let rnd = node("s", "RandomUniformInt", &["x"], &[("Tout", t(DataType::DtInt32))]);
    let r = check(reshape(rnd), &["r"]);
    let f = r.findings.iter().find(|f| f.kind == FindingKind::NonConstantInput).unwrap();
    assert_eq!(f.tf_error, "Input 1 to node `r` with op Reshape must be a compile-time constant.");
}

#[test]
fn tf1_control_flow_and_host_ops() {
    let r = check(
        vec![
            ph("x", DataType::DtFloat),
            ph("p", DataType::DtBool),
            node("sw", "Switch", &["x", "p"], &[("T", t(DataType::DtFloat))]),
            node("v", "VariableV2", &[], &[("dtype", t(DataType::DtFloat))]),
            node("a", "Add", &["sw:1", "v"], &[("T", t(DataType::DtFloat))]),
        ],
        &["a"],
    );
    let kinds: Vec<_> = r.findings.iter().map(|f| f.kind).collect();
    assert!(kinds.contains(&FindingKind::Tf1ControlFlow));
    assert!(kinds.contains(&FindingKind::StatefulHostOp));
}

#[test]
fn cycle_is_an_error_and_unknown_output_too() {
    let g = graph(vec![
        node("a", "Identity", &["b"], &[("T", t(DataType::DtFloat))]),
        node("b", "Identity", &["a"], &[("T", t(DataType::DtFloat))]),
    ]);
    let e = check_graph(&g, &CheckConfig::default()).unwrap_err();
    assert!(e.to_string().contains("cycle"), "{e}");
    let g = graph(vec![ph("x", DataType::DtFloat)]);
    let cfg = CheckConfig { outputs: vec!["nope:0".into()], ..CheckConfig::default() };
    assert!(check_graph(&g, &cfg).is_err());
}

#[test]
fn annotate_marks_clusters() {
    let mut g = graph(vec![
        ph("x", DataType::DtFloat),
        node("a", "Relu", &["x"], &[("T", t(DataType::DtFloat))]),
        node("b", "Relu", &["a"], &[("T", t(DataType::DtFloat))]),
    ]);
    let r = check_graph(&g, &CheckConfig::default()).unwrap();
    assert_eq!(annotate(&mut g, &r, 2), 2);
    let b = g.get("b").unwrap();
    assert_eq!(b.attr["_XlaCompile"].value, Some(Value::B(true)));
    assert_eq!(b.attr["_XlaScope"].value, Some(Value::S(b"jit_scope_0".to_vec())));
}

/// The embedded table is what TF 2.21 registers. Needs TensorFlow in `.venv`, so it is ignored by
/// a plain `cargo test`; `make test` runs it with `--include-ignored`, where a missing `.venv`
/// is a failure.
#[test]
#[ignore = "needs TensorFlow 2.21 in .venv; make test runs it (cargo test -- --include-ignored)"]
fn table_is_fresh() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let py = root.join(".venv/bin/python");
    assert!(py.exists(), "{} is missing: run `make venv` first", py.display());
    let out = std::process::Command::new(py)
        .arg(root.join("scripts/gen_xla_table.py"))
        .arg("--check")
        .env("TF_CPP_MIN_LOG_LEVEL", "3")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn function(name: &str, nodes: Vec<NodeDef>) -> tf_proto::tensorflow::FunctionDef {
    use tf_proto::tensorflow::{op_def::ArgDef, FunctionDef, OpDef};
    FunctionDef {
        signature: Some(OpDef {
            name: name.into(),
            input_arg: vec![ArgDef {
                name: "x".into(),
                r#type: DataType::DtFloat as i32,
                ..ArgDef::default()
            }],
            ..OpDef::default()
        }),
        node_def: nodes,
        ..FunctionDef::default()
    }
}

#[test]
fn recurses_into_function_bodies() {
    use tf_proto::tensorflow::{FunctionDefLibrary, NameAttrList};
    let bad = function("bad", vec![node("s", "AsString", &["x"], &[("T", t(DataType::DtFloat))])]);
    let good = function("good", vec![node("r", "Relu", &["x"], &[("T", t(DataType::DtFloat))])]);
    let call = |f: &str| {
        node(
            "call",
            "PartitionedCall",
            &["x"],
            &[("f", Value::Func(NameAttrList { name: f.into(), ..NameAttrList::default() }))],
        )
    };
    for (f, ok) in [("good", true), ("bad", false)] {
        let g = Graph::from_graph_def(GraphDef {
            node: vec![ph("x", DataType::DtFloat), call(f)],
            library: Some(FunctionDefLibrary {
                function: vec![bad.clone(), good.clone()],
                ..FunctionDefLibrary::default()
            }),
            ..GraphDef::default()
        })
        .unwrap();
        let cfg = CheckConfig { outputs: vec!["call:0".into()], ..CheckConfig::default() };
        let r = check_graph(&g, &cfg).unwrap();
        assert_eq!(r.compilable, ok, "{f}: {:?}", r.findings);
        assert_eq!(r.functions_checked, 1);
        if !ok {
            assert_eq!(r.findings[0].function.as_deref(), Some("bad"));
            assert!(r.findings[0].tf_error.contains("{{function_node bad}}{{node s}}"));
        }
    }
}

#[test]
fn captured_variables_are_arguments_in_saved_models() {
    let nodes = || {
        vec![
            node("v", "VarHandleOp", &[], &[("dtype", t(DataType::DtFloat))]),
            node("r", "ReadVariableOp", &["v"], &[("dtype", t(DataType::DtFloat))]),
        ]
    };
    let g = graph(nodes());
    let cfg = CheckConfig { outputs: vec!["r".into()], ..CheckConfig::default() };
    let r = check_graph(&g, &cfg).unwrap();
    assert_eq!(r.findings[0].kind, FindingKind::StatefulHostOp);
    let cfg = CheckConfig { variables_as_args: true, ..cfg };
    assert!(check_graph(&g, &cfg).unwrap().compilable);
}

#[test]
fn loop_variables_are_not_constants() {
    use tf_proto::tensorflow::{FunctionDefLibrary, NameAttrList};
    // body(x): Fill(dims = x, value = 1.0): fine when called by If with a placeholder (the
    // value is specialised on), not as a While body (x is a loop variable).
    let body = function(
        "body",
        vec![
            node("one", "Const", &[], &[("dtype", t(DataType::DtFloat))]),
            node("fill", "Fill", &["x", "one:output:0"], &[("T", t(DataType::DtFloat))]),
        ],
    );
    let func = |name: &str| Value::Func(NameAttrList { name: name.into(), ..Default::default() });
    for (op, ok) in [("StatelessIf", true), ("StatelessWhile", false)] {
        let attrs: Vec<(&str, Value)> = if op == "StatelessIf" {
            vec![("then_branch", func("body")), ("else_branch", func("body"))]
        } else {
            vec![("body", func("body")), ("cond", func("body"))]
        };
        let inputs: &[&str] = if op == "StatelessIf" { &["p", "x"] } else { &["x"] };
        let g = Graph::from_graph_def(GraphDef {
            node: vec![
                ph("p", DataType::DtBool),
                ph("x", DataType::DtInt32),
                node("c", op, inputs, &attrs),
            ],
            library: Some(FunctionDefLibrary {
                function: vec![body.clone()],
                ..FunctionDefLibrary::default()
            }),
            ..GraphDef::default()
        })
        .unwrap();
        let cfg = CheckConfig { outputs: vec!["c:0".into()], ..CheckConfig::default() };
        let r = check_graph(&g, &cfg).unwrap();
        assert_eq!(r.compilable, ok, "{op}: {:?}", r.findings);
        if !ok {
            assert_eq!(r.findings[0].kind, FindingKind::NonConstantInput);
            assert_eq!(
                r.findings[0].tf_error,
                "Input 0 to node `fill` with op Fill must be a compile-time constant."
            );
        }
    }
}

#[test]
fn deeply_nested_calls_are_checked_without_recursion() {
    // 5,000 functions each calling the next: every body is checked, the graph compiles.
    let g = Graph::from_graph_def(tf_graph::synth::call_chain(5_000)).unwrap();
    let cfg =
        CheckConfig { device: Device::Cpu, outputs: vec!["y".into()], ..CheckConfig::default() };
    let r = check_graph(&g, &cfg).unwrap();
    assert!(r.findings.is_empty(), "{:?}", r.findings.first());
    assert!(r.compilable);
    assert_eq!(r.functions_checked, 5_000);
    // A function calling itself is checked once and terminates.
    let g = Graph::from_graph_def(tf_graph::synth::recursive_call(true)).unwrap();
    let r = check_graph(&g, &cfg).unwrap();
    assert!(r.findings.is_empty(), "{:?}", r.findings.first());
}

#[test]
fn broken_references_and_empty_checks_are_errors_not_verdicts() {
    use tf_proto::tensorflow::{FunctionDefLibrary, NameAttrList};
    let call = |f: &str| {
        node(
            "call",
            "PartitionedCall",
            &["x"],
            &[("f", Value::Func(NameAttrList { name: f.into(), ..NameAttrList::default() }))],
        )
    };
    let lib = |fs: Vec<tf_proto::tensorflow::FunctionDef>| {
        Some(FunctionDefLibrary { function: fs, ..FunctionDefLibrary::default() })
    };
    let cfg = CheckConfig { outputs: vec!["call:0".into()], ..CheckConfig::default() };
    let run = |nodes: Vec<NodeDef>, library| {
        let g = Graph::from_graph_def(GraphDef { node: nodes, library, ..GraphDef::default() })
            .unwrap();
        check_graph(&g, &cfg).map(|r| r.compilable).map_err(|e| e.to_string())
    };
    // A call of a function the library lacks, at the top level and inside a body.
    assert_eq!(
        run(vec![ph("x", DataType::DtFloat), call("nope")], None),
        Err("node 'call' (PartitionedCall) calls function 'nope', which is not in the graph's library".into())
    );
    let outer = function(
        "outer",
        vec![node(
            "inner",
            "PartitionedCall",
            &["x"],
            &[("f", Value::Func(NameAttrList { name: "gone".into(), ..NameAttrList::default() }))],
        )],
    );
    assert_eq!(
        run(vec![ph("x", DataType::DtFloat), call("outer")], lib(vec![outer])),
        Err("function 'outer': node 'inner' (PartitionedCall) calls function 'gone', which is not in the graph's library".into())
    );
    // Even when every input is a constant (a call Grappler would otherwise fold).
    let c = node("c", "Const", &[], &[("dtype", t(DataType::DtFloat))]);
    let mut n = call("nope");
    n.input = vec!["c".into()];
    assert!(run(vec![c, n], None).unwrap_err().contains("'nope'"));
    // A body input naming nothing.
    let dangling =
        function("f", vec![node("r", "Relu", &["ghost:y:0"], &[("T", t(DataType::DtFloat))])]);
    assert_eq!(
        run(vec![ph("x", DataType::DtFloat), call("f")], lib(vec![dangling])),
        Err("function 'f': node 'r' input 'ghost:y:0' refers to no node or argument of the function".into())
    );
    // Nothing to check: the only node is a placeholder nothing reads.
    let g = graph(vec![ph("x", DataType::DtFloat)]);
    let e = check_graph(&g, &CheckConfig::default()).unwrap_err().to_string();
    assert_eq!(e, "nothing to check: the outputs (none found) need no node of the graph");
}

#[test]
fn inputs_cut_the_graph_like_tf_strip() {
    // A string placeholder parsed into floats: the whole graph does not compile, the part from
    // the parsed tensor on does.
    let nodes = vec![
        ph("s", DataType::DtString),
        node("num", "StringToNumber", &["s"], &[("out_type", t(DataType::DtFloat))]),
        node("x", "Identity", &["num"], &[("T", t(DataType::DtFloat))]),
        node("y", "Relu", &["x"], &[("T", t(DataType::DtFloat))]),
    ];
    let g = graph(nodes);
    let cfg = CheckConfig { outputs: vec!["y:0".into()], ..CheckConfig::default() };
    assert!(!check_graph(&g, &cfg).unwrap().compilable);
    let cut = CheckConfig { inputs: vec!["x:0".into()], ..cfg.clone() };
    let r = check_graph(&g, &cut).unwrap();
    assert!(r.compilable, "{:?}", r.findings);
    assert_eq!(r.nodes_checked, 2, "the placeholder x and y");
    assert_eq!(g.get("x").unwrap().op, "Identity", "the graph itself is not cut");
    // tf-strip's words for a bad input.
    let bad = CheckConfig { inputs: vec!["nope:0".into()], ..cfg };
    assert!(check_graph(&g, &bad).unwrap_err().to_string().contains("nope"));
}
