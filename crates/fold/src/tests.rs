//! Each pass on tiny hand-built graphs. These check our own logic; `tests/tf/test_fold.py` has
//! TensorFlow judge the results on real models.

use super::*;
use tf_proto::tensorflow::attr_value::Value;
use tf_proto::tensorflow::{TensorProto, TensorShapeProto};
use tf_tensor::dt;

fn node(name: &str, op: &str, inputs: &[&str]) -> NodeDef {
    NodeDef {
        name: name.into(),
        op: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn with(mut n: NodeDef, key: &str, v: AttrValue) -> NodeDef {
    n.attr.insert(key.into(), v);
    n
}

fn ty(t: i32) -> AttrValue {
    AttrValue { value: Some(Value::Type(t)) }
}

fn t(n: NodeDef) -> NodeDef {
    with(n, "T", ty(dt::FLOAT))
}

fn t_int(n: NodeDef) -> NodeDef {
    with(n, "T", ty(dt::INT32))
}

fn constant(name: &str, tensor: Tensor) -> NodeDef {
    const_node(name.into(), &tensor, &[], "")
}

fn f32c(name: &str, shape: &[i64], v: &[f32]) -> NodeDef {
    constant(name, Tensor::from_values(dt::FLOAT, shape, v).unwrap())
}

fn i32c(name: &str, shape: &[i64], v: &[i32]) -> NodeDef {
    constant(name, Tensor::from_values(dt::INT32, shape, v).unwrap())
}

fn placeholder(name: &str, dtype: i32, dims: &[i64]) -> NodeDef {
    let n = with(node(name, "Placeholder", &[]), "dtype", ty(dtype));
    with(n, "shape", AttrValue { value: Some(Value::Shape(tf_tensor::shape_proto(dims))) })
}

fn run(nodes: Vec<NodeDef>, outputs: &[&str], cfg: FoldConfig) -> (Graph, FoldReport) {
    let g = Graph::from_graph_def(GraphDef { node: nodes, ..Default::default() }).unwrap();
    let cfg = FoldConfig { outputs: outputs.iter().map(|s| s.to_string()).collect(), ..cfg };
    fold(g, &cfg).unwrap()
}

fn fold_all(nodes: Vec<NodeDef>, outputs: &[&str]) -> (Graph, FoldReport) {
    run(nodes, outputs, FoldConfig::default())
}

fn value(g: &Graph, name: &str) -> Tensor {
    const_value(g.get(name).unwrap_or_else(|| panic!("no node {name}")))
        .unwrap_or_else(|| panic!("{name} is a {}", g.get(name).unwrap().op))
}

fn op(g: &Graph, name: &str) -> String {
    g.get(name).map(|n| n.op.clone()).unwrap_or_default()
}

#[test]
fn constant_subgraph_becomes_one_const_of_the_same_name() {
    let (g, r) = fold_all(
        vec![
            f32c("a", &[2], &[1., 2.]),
            f32c("b", &[2], &[10., 20.]),
            t(node("sum", "AddV2", &["a", "b"])),
            t(node("out", "Neg", &["sum"])),
        ],
        &["out"],
    );
    assert_eq!(g.len(), 1, "only the folded output is left");
    assert_eq!(value(&g, "out").values::<f32>().unwrap(), vec![-11., -22.]);
    assert_eq!(r.passes["constant"]["folded"], 1);
    assert_eq!(r.folded[0].tensor, "out:0");
}

#[test]
fn frontier_only_and_readers_untouched() {
    let (g, _) = fold_all(
        vec![
            placeholder("x", dt::FLOAT, &[-1, 2]),
            f32c("a", &[2], &[1., 2.]),
            t(node("two_a", "Mul", &["a", "a"])),
            t(node("y", "AddV2", &["x", "two_a"])),
        ],
        &["y"],
    );
    assert_eq!(op(&g, "two_a"), "Const");
    assert_eq!(g.get("y").unwrap().input, vec!["x", "two_a"]);
    assert!(g.get("a").is_none(), "inputs of folded nodes are pruned");
}

#[test]
fn multi_output_nodes_get_one_const_per_used_output() {
    let (g, r) = fold_all(
        vec![
            placeholder("x", dt::FLOAT, &[]),
            f32c("v", &[3], &[1., 2., 3.]),
            with(
                with(t(node("u", "Unpack", &["v"])), "num", AttrValue { value: Some(Value::I(3)) }),
                "axis",
                AttrValue { value: Some(Value::I(0)) },
            ),
            t(node("y", "AddV2", &["x", "u:2"])),
        ],
        &["y"],
    );
    assert_eq!(g.get("y").unwrap().input[1], "u/folded_2");
    assert_eq!(value(&g, "u/folded_2").values::<f32>().unwrap(), vec![3.]);
    assert!(g.get("u").is_none());
    assert_eq!(r.folded[0].tensor, "u:2");
}

#[test]
fn static_shapes_fold_and_reshape_gets_minus_one() {
    let shape_of =
        |name: &str, input: &str| with(t(node(name, "Shape", &[input])), "out_type", ty(dt::INT32));
    let nodes = vec![
        placeholder("x", dt::FLOAT, &[-1, 4, 5]),
        shape_of("s", "x"),
        i32c("b", &[1], &[1]),
        i32c("e", &[1], &[3]),
        i32c("st", &[1], &[1]),
        with(t_int(node("ss", "StridedSlice", &["s", "b", "e", "st"])), "Index", ty(dt::INT32)),
        i32c("ax", &[], &[0]),
        with(t_int(node("prod", "Prod", &["ss", "ax"])), "Tidx", ty(dt::INT32)),
        // the batch, unknown
        i32c("b0", &[1], &[0]),
        i32c("e0", &[1], &[1]),
        with(
            with(
                t_int(node("batch", "StridedSlice", &["s", "b0", "e0", "st"])),
                "Index",
                ty(dt::INT32),
            ),
            "shrink_axis_mask",
            AttrValue { value: Some(Value::I(1)) },
        ),
        with(
            with(
                t_int(node("pack", "Pack", &["batch", "prod"])),
                "N",
                AttrValue { value: Some(Value::I(2)) },
            ),
            "axis",
            AttrValue { value: Some(Value::I(0)) },
        ),
        with(t(node("r", "Reshape", &["x", "pack"])), "Tshape", ty(dt::INT32)),
        t_int(node("y", "Identity", &["prod"])),
    ];
    let (g, r) = fold_all(nodes, &["r", "y"]);
    assert_eq!(value(&g, "y").values::<i32>().unwrap(), vec![20]);
    let shape = value(&g, &g.get("r").unwrap().input[1]);
    assert_eq!(shape.values::<i32>().unwrap(), vec![-1, 20]);
    assert_eq!(r.passes["constant"]["reshape_shape"], 1);
    assert!(g.get("s").is_none() && g.get("pack").is_none(), "the shape chain is gone");
}

#[test]
fn size_budget_is_respected() {
    let nodes = vec![
        placeholder("x", dt::FLOAT, &[]),
        i32c("dims", &[2], &[1024, 1024]),
        f32c("one", &[], &[1.]),
        with(t(node("big", "Fill", &["dims", "one"])), "index_type", ty(dt::INT32)),
        t(node("y", "Mul", &["big", "x"])),
    ];
    let small = FoldConfig { max_const_bytes: 1 << 20, ..FoldConfig::default() };
    let (g, r) = run(nodes.clone(), &["y"], small);
    assert_eq!(op(&g, "big"), "Fill");
    assert_eq!(r.skipped_large[0].node, "big");
    let (g, _) = fold_all(nodes, &["y"]);
    assert_eq!(op(&g, "big"), "Const");
    // a splat is stored as one typed value
    let p = g.get("big").unwrap().attr_opt_tensor("value").unwrap().clone();
    assert!(p.tensor_content.is_empty() && p.float_val == vec![1.0]);
}

#[test]
fn stateful_and_unknown_ops_are_never_folded() {
    let nodes = vec![
        i32c("shape", &[1], &[3]),
        with(
            with(node("rnd", "RandomUniform", &["shape"]), "dtype", ty(dt::FLOAT)),
            "T",
            ty(dt::INT32),
        ),
        t(node("r2", "Neg", &["rnd"])),
        f32c("c", &[1], &[1.]),
        t(node("mystery", "NoSuchOp", &["c"])),
        t(node("m2", "Neg", &["mystery"])),
    ];
    let (g, r) = fold_all(nodes, &["r2", "m2"]);
    assert_eq!(op(&g, "rnd"), "RandomUniform");
    assert_eq!(op(&g, "r2"), "Neg");
    assert_eq!(op(&g, "mystery"), "NoSuchOp");
    assert_eq!(r.unknown_ops, vec![NodeOp { node: "mystery".into(), op: "NoSuchOp".into() }]);
}

#[test]
fn bad_input_never_panics() {
    // content for 2 floats, shape says 3
    let bad = TensorProto {
        dtype: dt::FLOAT,
        tensor_shape: Some(tf_tensor::shape_proto(&[3])),
        tensor_content: bytes::Bytes::from(vec![0u8; 8]),
        ..Default::default()
    };
    let mut c = with(node("c", "Const", &[]), "dtype", ty(dt::FLOAT));
    c.attr.insert("value".into(), AttrValue { value: Some(Value::Tensor(Box::new(bad))) });
    let (g, r) = fold_all(vec![c, t(node("y", "Neg", &["c"]))], &["y"]);
    assert_eq!(op(&g, "y"), "Neg");
    assert!(r.warnings[0].contains("'c'"), "{:?}", r.warnings);
    // a cycle
    let g = Graph::from_graph_def(GraphDef {
        node: vec![t(node("a", "Neg", &["b"])), t(node("b", "Neg", &["a"]))],
        ..Default::default()
    })
    .unwrap();
    let err = fold(g, &FoldConfig::default()).unwrap_err();
    assert!(err.to_string().contains("cycle"), "{err}");
    // unknown outputs
    let g =
        Graph::from_graph_def(GraphDef { node: vec![f32c("a", &[], &[1.])], ..Default::default() })
            .unwrap();
    let cfg = FoldConfig { outputs: vec!["nope".into()], ..FoldConfig::default() };
    assert!(matches!(fold(g, &cfg), Err(FoldError::UnknownOutput(_))));
}

#[test]
fn untouched_constants_keep_their_proto() {
    let w = TensorProto {
        dtype: dt::FLOAT,
        tensor_shape: Some(TensorShapeProto { dim: vec![], unknown_rank: false }),
        float_val: vec![2.5],
        ..Default::default()
    };
    let mut c = with(node("w", "Const", &[]), "dtype", ty(dt::FLOAT));
    c.attr.insert("value".into(), AttrValue { value: Some(Value::Tensor(Box::new(w.clone()))) });
    let (g, _) = fold_all(
        vec![placeholder("x", dt::FLOAT, &[]), c, t(node("y", "Mul", &["x", "w"]))],
        &["y"],
    );
    assert_eq!(g.get("w").unwrap().attr_opt_tensor("value").unwrap(), &w);
}

#[test]
fn dead_switch_branch_goes_and_merge_becomes_the_live_tensor() {
    let bool_c = constant("pred", Tensor::from_values(dt::BOOL, &[], &[false]).unwrap());
    let nodes = vec![
        placeholder("x", dt::FLOAT, &[2]),
        bool_c,
        t(node("sw", "Switch", &["x", "pred"])),
        t(node("on_true", "Neg", &["sw:1"])),
        t(node("on_false", "Abs", &["sw:0"])),
        with(
            t(node("m", "Merge", &["on_false", "on_true"])),
            "N",
            AttrValue { value: Some(Value::I(2)) },
        ),
        t(node("y", "Identity", &["m"])),
    ];
    let (g, r) = fold_all(nodes, &["y"]);
    assert!(g.get("sw").is_none() && g.get("m").is_none() && g.get("on_true").is_none());
    assert_eq!(g.get("y").unwrap().input, vec!["on_false"]);
    assert_eq!(g.get("on_false").unwrap().input, vec!["x"]);
    assert!(r.passes["control"]["switch"] > 0);
}

fn conv_bn(bn_op: &str) -> Vec<NodeDef> {
    let w: Vec<f32> = (0..(2 * 2) * 2).map(|i| i as f32 + 1.0).collect();
    let mut bn = t(node("bn", bn_op, &["bias", "gamma", "beta", "mean", "var"]));
    bn.attr.insert("is_training".into(), AttrValue { value: Some(Value::B(false)) });
    bn.attr.insert("epsilon".into(), AttrValue { value: Some(Value::F(0.0)) });
    bn.attr.insert("U".into(), ty(dt::FLOAT));
    let mut conv = t(node("conv", "Conv2D", &["x", "w"]));
    conv.attr.insert("strides".into(), vec![1i64, 1, 1, 1].into());
    conv.attr.insert("padding".into(), "SAME".into());
    vec![
        placeholder("x", dt::FLOAT, &[-1, 3, 3, 1]),
        f32c("w", &[2, 2, 1, 2], &w),
        conv,
        f32c("b", &[2], &[1., -1.]),
        t(node("bias", "BiasAdd", &["conv", "b"])),
        f32c("gamma", &[2], &[2., 3.]),
        f32c("beta", &[2], &[0.5, -0.5]),
        f32c("mean", &[2], &[1., 2.]),
        f32c("var", &[2], &[4., 9.]),
        bn,
        t(node("y", "Relu", &["bn"])),
    ]
}

#[test]
fn fused_batch_norm_folds_into_conv_weights_and_one_bias_add() {
    for bn_op in ["FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"] {
        let (g, r) = fold_all(conv_bn(bn_op), &["y"]);
        assert_eq!(op(&g, "bn"), "BiasAdd", "{bn_op}");
        assert_eq!(g.get("bn").unwrap().input[0], "conv");
        // scale = gamma / sqrt(var) = [1, 1]; channel 0 x1, channel 1 x1
        let w = value(&g, "w").values::<f32>().unwrap();
        assert_eq!(w, (0..8).map(|i| i as f32 + 1.0).collect::<Vec<_>>());
        // offset = beta + (bias - mean) * scale = [0.5 + 0, -0.5 - 3]
        let off = value(&g, &g.get("bn").unwrap().input[1]).values::<f32>().unwrap();
        assert_eq!(off, vec![0.5, -3.5]);
        assert!(g.get("bias").is_none() && g.get("gamma").is_none());
        assert_eq!(r.passes["batchnorm"]["fused_batch_norm"], 1);
    }
    // in training mode nothing happens
    let mut nodes = conv_bn("FusedBatchNormV3");
    nodes[9].attr.insert("is_training".into(), AttrValue { value: Some(Value::B(true)) });
    let (g, _) = fold_all(nodes, &["y"]);
    assert_eq!(op(&g, "bn"), "FusedBatchNormV3");
}

#[test]
fn decomposed_batch_norm_after_matmul_with_transpose_b() {
    // y = (x @ W^T) * s + c, W [2 out, 3 in]
    let mut mm = t(node("mm", "MatMul", &["x", "w"]));
    mm.attr.insert("transpose_b".into(), AttrValue { value: Some(Value::B(true)) });
    let nodes = vec![
        placeholder("x", dt::FLOAT, &[-1, 3]),
        f32c("w", &[2, 3], &[1., 2., 3., 4., 5., 6.]),
        mm,
        f32c("s", &[2], &[10., 100.]),
        t(node("mul", "Mul", &["mm", "s"])),
        f32c("c", &[2], &[1., 2.]),
        t(node("add", "AddV2", &["mul", "c"])),
        t(node("y", "Identity", &["add"])),
    ];
    let (g, _) = fold_all(nodes, &["y"]);
    let w = value(&g, "w").values::<f32>().unwrap();
    assert_eq!(w, vec![10., 20., 30., 400., 500., 600.], "rows (output channels) scaled");
    assert_eq!(op(&g, "add"), "BiasAdd");
    assert_eq!(g.get("add").unwrap().input[0], "mm");
    assert!(g.get("mul").is_none());
}

#[test]
fn algebra_neutral_elements_transposes_reshapes_casts_chains() {
    let perm = |name: &str, p: &[i32]| i32c(name, &[p.len() as i64], p);
    let nodes = vec![
        placeholder("x", dt::FLOAT, &[2, 3]),
        f32c("one", &[], &[1.]),
        t(node("m1", "Mul", &["x", "one"])),
        perm("p", &[1, 0]),
        with(t(node("t1", "Transpose", &["m1", "p"])), "Tperm", ty(dt::INT32)),
        with(t(node("t2", "Transpose", &["t1", "p"])), "Tperm", ty(dt::INT32)),
        with(with(node("c", "Cast", &["t2"]), "SrcT", ty(dt::FLOAT)), "DstT", ty(dt::FLOAT)),
        i32c("s1", &[1], &[6]),
        i32c("s2", &[2], &[3, 2]),
        t(node("r1", "Reshape", &["c", "s1"])),
        t(node("r2", "Reshape", &["r1", "s2"])),
        f32c("a", &[], &[2.]),
        f32c("b", &[], &[5.]),
        t(node("k1", "Mul", &["r2", "a"])),
        t(node("k2", "Mul", &["k1", "b"])),
        t(node("y", "Identity", &["k2"])),
    ];
    let (g, r) = fold_all(nodes, &["y"]);
    assert_eq!(g.get("r2").unwrap().input[0], "x", "{:?}", r.passes);
    assert!(g.get("m1").is_none() && g.get("t1").is_none() && g.get("c").is_none());
    assert_eq!(g.get("k2").unwrap().input[0], "r2");
    let k = value(&g, &g.get("k2").unwrap().input[1]);
    assert_eq!(k.values::<f32>().unwrap(), vec![10.]);
    assert!(g.get("k1").is_none());
}

#[test]
fn protected_outputs_keep_their_names() {
    let (g, _) = fold_all(
        vec![
            placeholder("x", dt::FLOAT, &[2]),
            f32c("zero", &[], &[0.]),
            t(node("y", "AddV2", &["x", "zero"])),
        ],
        &["y"],
    );
    assert_eq!(op(&g, "y"), "Identity");
    assert_eq!(g.get("y").unwrap().input, vec!["x"]);
}

#[test]
fn duplicates_merge() {
    let (g, r) = fold_all(
        vec![
            placeholder("x", dt::FLOAT, &[2]),
            f32c("c1", &[2], &[1., 2.]),
            f32c("c2", &[2], &[1., 2.]),
            t(node("a", "Mul", &["x", "c1"])),
            t(node("b", "Mul", &["c2", "x"])),
            t(node("y", "AddV2", &["a", "b"])),
        ],
        &["y"],
    );
    assert_eq!(g.get("y").unwrap().input, vec!["a", "a"]);
    assert!(g.get("c2").is_none() && g.get("b").is_none());
    assert_eq!(r.passes["dedupe"]["merged"], 2);
}

#[test]
fn passes_can_be_selected() {
    let only_constant = FoldConfig { passes: vec![Pass::Constant], ..FoldConfig::default() };
    let (g, r) = run(conv_bn("FusedBatchNormV3"), &["y"], only_constant);
    assert_eq!(op(&g, "bn"), "FusedBatchNormV3");
    assert!(!r.passes.contains_key("batchnorm"));
    assert_eq!(Pass::parse("batchnorm"), Some(Pass::BatchNorm));
    assert_eq!(Pass::parse("nope"), None);
}

#[test]
fn fixed_point() {
    let (g, _) = fold_all(conv_bn("FusedBatchNormV3"), &["y"]);
    let once = g.clone().into_graph_def();
    let (g2, r2) =
        fold(g, &FoldConfig { outputs: vec!["y".into()], ..FoldConfig::default() }).unwrap();
    assert!(r2.passes.is_empty(), "{:?}", r2.passes);
    assert_eq!(g2.into_graph_def(), once);
}

#[test]
fn long_chains_fold_without_recursion_or_rescans() {
    // 1,000 Mul/Relu pairs, each Mul by its own copy of 1.5: the copies merge into the first.
    let g = Graph::from_graph_def(tf_graph::synth::mul_relu_chain(3_000)).unwrap();
    let (out, rep) = fold(g, &FoldConfig::default()).unwrap();
    assert_eq!((rep.nodes_before, rep.nodes_after), (3_002, 2_003));
    assert!(out.nodes().filter(|(_, n)| n.op == "Mul").all(|(_, n)| n.input[1] == "c_0"));
    assert_eq!(out.get("mul_999").unwrap().input[0], "relu_998");
    assert_eq!(out.get("y").unwrap().input, ["relu_999"]);
    // 20,000 Identities: all spliced out.
    let g = Graph::from_graph_def(tf_graph::synth::identity_chain(20_000)).unwrap();
    let (out, _) = fold(g, &FoldConfig::default()).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out.get("y").unwrap().input, ["x"]);
}

#[test]
fn a_broken_input_is_reported_before_any_pass() {
    let g = GraphDef {
        node: vec![placeholder("x", dt::FLOAT, &[]), t(node("y", "Neg", &["x", "nope"]))],
        ..Default::default()
    };
    let e = fold(Graph::from_graph_def(g).unwrap(), &FoldConfig::default()).unwrap_err();
    assert!(matches!(e, FoldError::InvalidInput(_)), "{e}");
    assert!(e.to_string().contains("node 'y' input 'nope'"), "{e}");
}

fn i64c(name: &str, shape: &[i64], v: &[i64]) -> NodeDef {
    constant(name, Tensor::from_values(dt::INT64, shape, v).unwrap())
}

/// A Const whose `value` is a splat: one typed value for `shape`.
fn splat_f32(name: &str, shape: &[i64], v: f32) -> NodeDef {
    let p = TensorProto {
        dtype: dt::FLOAT,
        tensor_shape: Some(tf_tensor::shape_proto(shape)),
        float_val: vec![v],
        ..Default::default()
    };
    let n = with(node(name, "Const", &[]), "dtype", ty(dt::FLOAT));
    with(n, "value", AttrValue { value: Some(Value::Tensor(Box::new(p))) })
}

#[test]
fn integer_overflow_in_shape_arithmetic_folds_like_tensorflow() {
    // FloorDiv of int64 (-2^63, -1) wraps to -2^63 in TensorFlow; it used to be a panic.
    let nodes = vec![
        i64c("a", &[], &[i64::MIN]),
        i64c("b", &[], &[-1]),
        with(node("d", "FloorDiv", &["a", "b"]), "T", ty(dt::INT64)),
        with(node("o", "Identity", &["d"]), "T", ty(dt::INT64)),
    ];
    let (g, _) = fold_all(nodes, &["o"]);
    let v = Tensor::from_proto(g.get("o").unwrap().attr_opt_tensor("value").unwrap()).unwrap();
    assert_eq!(v.values::<i64>().unwrap(), [i64::MIN]);
    // The same through shape inference (the divisor is not constant, only its value known).
    let nodes = vec![
        placeholder("x", dt::FLOAT, &[3]),
        with(with(node("s", "Shape", &["x"]), "T", ty(dt::FLOAT)), "out_type", ty(dt::INT64)),
        i64c("m", &[1], &[i64::MIN]),
        with(node("d", "FloorDiv", &["m", "s"]), "T", ty(dt::INT64)),
        with(node("p", "Prod", &["m", "two"]), "T", ty(dt::INT64)),
        i32c("two", &[], &[0]),
        with(node("o", "IdentityN", &["d", "p"]), "T", AttrValue::default()),
    ];
    let g = Graph::from_graph_def(GraphDef { node: nodes, ..Default::default() }).unwrap();
    let cfg = FoldConfig { outputs: vec!["o".into()], ..FoldConfig::default() };
    fold(g, &cfg).unwrap();
}

#[test]
fn slice_with_huge_begin_is_left_unfolded() {
    let nodes = vec![
        f32c("x", &[4], &[1., 2., 3., 4.]),
        i64c("b", &[1], &[i64::MAX]),
        i64c("s", &[1], &[1]),
        with(t(node("sl", "Slice", &["x", "b", "s"])), "Index", ty(dt::INT64)),
        i64c("b2", &[1], &[i64::MIN + 1]),
        i64c("s2", &[1], &[-1]),
        with(t(node("sl2", "Slice", &["x", "b2", "s2"])), "Index", ty(dt::INT64)),
    ];
    let (g, r) = fold_all(nodes, &["sl", "sl2"]);
    assert_eq!([op(&g, "sl"), op(&g, "sl2")], ["Slice", "Slice"]);
    assert!(r.eval_errors.iter().any(|e| e.contains("out of bounds")), "{:?}", r.eval_errors);
}

#[test]
fn string_outputs_count_their_bytes_before_allocating() {
    // A 10 KB string tiled 10,000 times: 100 MB of strings, refused from the shape alone.
    let s = Tensor::from_strings(&[1], vec![vec![b'a'; 10_000]]).unwrap();
    let nodes = vec![
        constant("x", s),
        i32c("m", &[1], &[10_000]),
        with(
            with(node("t", "Tile", &["x", "m"]), "T", ty(dt::STRING)),
            "Tmultiples",
            ty(dt::INT32),
        ),
    ];
    let cfg = FoldConfig { max_const_bytes: 1 << 10, ..FoldConfig::default() };
    let (g, r) = run(nodes, &["t"], cfg);
    assert_eq!(op(&g, "t"), "Tile");
    assert_eq!(
        r.skipped_budget,
        [BudgetSkip {
            node: "t".into(),
            op: "Tile".into(),
            budget: "max-const-bytes",
            needed: 10_000 * (10_000 + eval::STRING_OVERHEAD),
            limit: 1 << 10,
        }]
    );
}

#[test]
fn live_bytes_budget_bounds_many_small_constants() {
    // 50 Fills of 400 KB each feeding a Pack: each is under --max-const-bytes, together they
    // are over --max-live-bytes (2 MiB): some fold, the rest and the Pack are left as they are.
    let mut nodes = vec![i32c("d", &[1], &[100_000]), f32c("v", &[], &[1.])];
    let mut fills = Vec::new();
    for i in 0..50 {
        let name = format!("f{i}");
        nodes.push(with(t(node(&name, "Fill", &["d", "v"])), "index_type", ty(dt::INT32)));
        fills.push(name);
    }
    let refs: Vec<&str> = fills.iter().map(String::as_str).collect();
    let pack = with(t(node("p", "Pack", &refs)), "N", AttrValue { value: Some(Value::I(50)) });
    nodes.push(pack);
    let cfg = FoldConfig { max_live_bytes: 2 << 20, ..FoldConfig::default() };
    let (g, r) = run(nodes, &["p"], cfg);
    assert_eq!(op(&g, "p"), "Pack");
    let folded = fills.iter().filter(|f| op(&g, f) == "Const").count();
    assert!(folded > 0 && folded < 6, "{folded} fills folded");
    assert!(
        r.skipped_budget.iter().any(|b| b.budget == "max-live-bytes"),
        "{:?}",
        r.skipped_budget
    );
}

#[test]
fn work_budget_leaves_large_products_unfolded() {
    let nodes = vec![
        splat_f32("a", &[300, 300], 1.0),
        splat_f32("b", &[300, 300], 2.0),
        t(node("m", "MatMul", &["a", "b"])),
    ];
    let cfg = FoldConfig { max_work: 1 << 20, ..FoldConfig::default() };
    let (g, r) = run(nodes.clone(), &["m"], cfg);
    assert_eq!(op(&g, "m"), "MatMul");
    assert_eq!(r.skipped_budget[0].budget, "max-work");
    assert_eq!(r.skipped_budget[0].needed, 300 * 300 * 300);
    // Within the default budget the same product folds, with the same value as before.
    let (g, r) = fold_all(nodes, &["m"]);
    assert_eq!(op(&g, "m"), "Const");
    assert!(r.skipped_budget.is_empty());
    let v = Tensor::from_proto(g.get("m").unwrap().attr_opt_tensor("value").unwrap()).unwrap();
    assert!(v.values::<f32>().unwrap().iter().all(|&x| x == 600.0));
}

/// Shape inference on hostile facts (extreme and negative dimensions and values, ranks that do
/// not match): an answer or "unknown", never a panic. (Caught here only to name the case.)
#[test]
fn shape_inference_never_panics_on_hostile_facts() {
    // Every op with a shape rule in the op table, and one without.
    let ops: Vec<&str> = crate::ops::all()
        .iter()
        .filter(|e| e.shape.is_some() || e.outputs.is_some() || e.elements.is_some())
        .map(|e| e.name)
        .chain(["NoSuchOp"])
        .collect();
    assert!(ops.len() > 100, "{}", ops.len());
    let big = i64::MAX;
    let shapes: Vec<Option<Vec<i64>>> = vec![
        None,
        Some(vec![]),
        Some(vec![-1]),
        Some(vec![big, big]),
        Some(vec![0, big, 2, 3]),
        Some(vec![1, 4, 4, 2]),
        Some(vec![2, -1, big, 1]),
    ];
    let partials: Vec<Option<Vec<Option<i64>>>> = vec![
        None,
        Some(vec![Some(big)]),
        Some(vec![Some(i64::MIN)]),
        Some(vec![Some(-1), Some(big)]),
        Some(vec![Some(big), Some(big), Some(big), Some(big)]),
        Some(vec![None, Some(0)]),
        Some(vec![Some(i64::MIN), Some(-1), Some(0), Some(big)]),
    ];
    let mut facts = Vec::new();
    for s in &shapes {
        for p in &partials {
            facts.push(shape::Facts {
                dtype: Some(dt::INT64),
                shape: s.clone(),
                value: None,
                partial: p.clone(),
            });
        }
    }
    let list = |v: Vec<i64>| AttrValue {
        value: Some(Value::List(Box::new(tf_proto::tensorflow::attr_value::ListValue {
            i: v,
            ..Default::default()
        }))),
    };
    let attrs: Vec<Vec<(&str, AttrValue)>> = vec![
        vec![],
        vec![
            ("strides", list(vec![1, big, i64::MIN, 1])),
            ("dilations", list(vec![1, big, big, 1])),
            ("ksize", list(vec![1, big, -5, 1])),
            ("padding", AttrValue { value: Some(Value::S(b"EXPLICIT".to_vec())) }),
            ("explicit_paddings", list(vec![0, 0, big, big, i64::MIN, 1, 0, 0])),
            ("num_split", AttrValue { value: Some(Value::I(big)) }),
            ("axis", AttrValue { value: Some(Value::I(i64::MIN)) }),
            ("N", AttrValue { value: Some(Value::I(3)) }),
            ("equation", AttrValue { value: Some(Value::S(b"ab,bc->ac".to_vec())) }),
            ("squeeze_dims", list(vec![big, i64::MIN])),
            ("begin_mask", AttrValue { value: Some(Value::I(-1)) }),
        ],
    ];
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut panics = Vec::new();
    let mut runs = 0;
    for &op in &ops {
        for a in &attrs {
            let mut n = node("n", op, &[]);
            for (k, v) in a {
                n = with(n, k, v.clone());
            }
            for (i, x) in facts.iter().enumerate() {
                for (j, y) in facts.iter().enumerate().step_by(3) {
                    for k in [0, 20, 33] {
                        let ins = [x.clone(), y.clone(), facts[k].clone(), y.clone()];
                        let r = std::panic::catch_unwind(|| {
                            shape::infer(&n, &ins, &[dt::INT64, dt::INT64])
                        });
                        runs += 1;
                        if let Err(e) = r {
                            let msg = e
                                .downcast_ref::<String>()
                                .cloned()
                                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_default();
                            panics.push(format!("{op} facts {i},{j},{k}: {msg}"));
                        }
                    }
                }
            }
        }
    }
    std::panic::set_hook(hook);
    assert!(runs > 10_000, "{runs}");
    assert!(panics.is_empty(), "{} panics:\n{}", panics.len(), panics.join("\n"));
}
