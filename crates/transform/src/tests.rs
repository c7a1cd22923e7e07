use tf_proto::tensorflow::{AttrValue, DataType, GraphDef, NodeDef};
use tf_tensor::{dt, Tensor};

use super::*;

fn node(name: &str, op: &str, inputs: &[&str]) -> NodeDef {
    let mut n = NodeDef {
        name: name.into(),
        op: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    if !matches!(op, "Const" | "Placeholder" | "NoOp") {
        n.attr.insert("T".into(), DataType::DtFloat.into());
    }
    n
}

fn konst(name: &str, shape: &[i64], v: &[f32]) -> NodeDef {
    let mut n = node(name, "Const", &[]);
    let t = Tensor::from_values(dt::FLOAT, shape, v).unwrap();
    n.attr.insert("dtype".into(), DataType::DtFloat.into());
    n.attr.insert("value".into(), t.to_proto().into());
    n
}

fn konst_i32(name: &str, shape: &[i64], v: &[i32]) -> NodeDef {
    let mut n = node(name, "Const", &[]);
    let t = Tensor::from_values(dt::INT32, shape, v).unwrap();
    n.attr.insert("dtype".into(), DataType::DtInt32.into());
    n.attr.insert("value".into(), t.to_proto().into());
    n
}

fn ph(name: &str) -> NodeDef {
    let mut n = node(name, "Placeholder", &[]);
    n.attr.insert("dtype".into(), DataType::DtFloat.into());
    n
}

fn gd(nodes: Vec<NodeDef>) -> GraphDef {
    GraphDef { node: nodes, ..Default::default() }
}

fn run_io(g: GraphDef, t: &str, inputs: &[&str], outputs: &[&str]) -> Result<Transformed, String> {
    let cfg = TransformConfig {
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        outputs: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
    .with_transforms(t)
    .map_err(|e| e.to_string())?;
    transform_graph_def(g, &cfg).map_err(|e| e.to_string())
}

fn run(g: GraphDef, t: &str, outputs: &[&str]) -> GraphDef {
    run_io(g, t, &[], outputs).unwrap().graph
}

fn find<'a>(g: &'a GraphDef, name: &str) -> &'a NodeDef {
    g.node.iter().find(|n| n.name == name).unwrap_or_else(|| panic!("no node {name}"))
}

fn names(g: &GraphDef) -> Vec<&str> {
    g.node.iter().map(|n| n.name.as_str()).collect()
}

fn matmul_graph() -> GraphDef {
    let w: Vec<f32> = (0..2048).map(|i| (i as f32 * 0.37).sin()).collect();
    gd(vec![ph("x"), konst("w", &[32, 64], &w), node("mm", "MatMul", &["x", "w"])])
}

#[test]
fn unknown_names_and_params_are_one_line() {
    let e = run_io(gd(vec![ph("x")]), "fold_constantz", &[], &[]).unwrap_err();
    assert!(e.contains("unknown transform 'fold_constantz'") && e.contains("strip_unused_nodes"));
    assert!(!e.contains('\n'));
    let e = run_io(gd(vec![ph("x")]), "round_weights(steps=3)", &[], &[]).unwrap_err();
    assert!(e.contains("round_weights has no parameter 'steps' (known: num_steps, ignore_errors)"));
    assert_eq!(TRANSFORMS.iter().filter(|s| s.name != "obsfucate_names").count(), 30);
}

#[test]
fn ignore_errors_passes_the_graph_through() {
    let g = gd(vec![ph("x"), node("y", "Relu", &["x"])]);
    let e = run_io(g.clone(), "rename_node(old_node_name=q, new_node_name=r)", &[], &[]);
    assert_eq!(e.unwrap_err(), "rename_node: no node named 'q'");
    let t = "rename_node(old_node_name=q, new_node_name=r, ignore_errors=true) remove_device";
    let out = run_io(g.clone(), t, &[], &[]).unwrap();
    assert_eq!(out.graph, g);
    assert!(out.report.steps[0].ignored_error.is_some());
    assert_eq!(out.report.warnings.len(), 1);
}

#[test]
fn fake_quantize_training_wraps_matmul_inputs() {
    let mut m = node("m", "MatMul", &["r", "w"]);
    m.attr.insert("T".into(), DataType::DtFloat.into());
    let mut m2 = node("m2", "MatMul", &["r", "t"]);
    m2.attr.insert("T".into(), DataType::DtFloat.into());
    let g = gd(vec![
        ph("x"),
        node("r", "Relu6", &["x"]),
        node("t", "Tanh", &["x"]),
        konst("w", &[1, 1], &[0.5]),
        m,
        m2,
    ]);
    let g = run(g, "fake_quantize_training", &[]);
    // One fake quantization per tensor: r (read twice), w, t.
    let q: Vec<_> = g.node.iter().filter(|n| n.op.contains("Quant")).collect();
    assert_eq!(q.len(), 3, "{q:?}");
    assert_eq!(find(&g, "m").input, ["r/FakeQuantWithMinMaxVars", "w/QuantizeAndDequantizeV2"]);
    assert_eq!(find(&g, "m2").input, ["r/FakeQuantWithMinMaxVars", "t/FakeQuantWithMinMaxVars"]);
    let w = find(&g, "w/QuantizeAndDequantizeV2");
    assert_eq!(w.attr.get("range_given").and_then(|a| a.as_bool()), Some(false));
    assert_eq!(w.attr.get("signed_input").and_then(|a| a.as_bool()), Some(true));
}

#[test]
fn quantize_nodes_needs_ranges() {
    let g = gd(vec![ph("x"), node("y", "Relu", &["x"])]);
    let e = run_io(g.clone(), "quantize_nodes", &[], &[]).unwrap_err();
    assert!(
        e.starts_with("quantize_nodes: needs activation ranges: calibrate with tf-run --calibrate"),
        "{e}"
    );
    assert!(e.contains("quantize_nodes(ranges=ranges.json)") && !e.contains('\n'), "{e}");
    let e = run_io(g.clone(), "quantize_nodes(fallback_min=-1)", &[], &[]).unwrap_err();
    assert_eq!(e, "quantize_nodes: fallback_min and fallback_max must be given together");
    let e = run_io(g.clone(), "quantize_nodes(fallback_min=1, fallback_max=-1)", &[], &[]);
    assert!(e.unwrap_err().contains("greater than"));
    let e = run_io(g.clone(), "quantize_nodes(ranges=/nonexistent/r.json)", &[], &[]);
    assert!(e.unwrap_err().starts_with("quantize_nodes: ranges=/nonexistent/r.json: "));
    let e = run_io(
        g.clone(),
        "quantize_nodes(fallback_min=-1, fallback_max=1, legacy_gtt=x)",
        &[],
        &[],
    );
    assert_eq!(e.unwrap_err(), "quantize_nodes: legacy_gtt='x': expected frozen or dynamic");
    // Nothing to quantize: the graph passes through.
    let out = run_io(g.clone(), "quantize_nodes(fallback_min=-6, fallback_max=6)", &[], &[]);
    assert_eq!(out.unwrap().graph.node.len(), 2);
}

#[test]
fn add_default_attributes_fills_op_defaults() {
    let g = run(gd(vec![ph("x"), node("r", "MaxPool", &["x"])]), "add_default_attributes", &[]);
    let n = find(&g, "r");
    assert_eq!(n.attr_opt_str("data_format"), Some("NHWC"));
}

#[test]
fn backport_concatv2_moves_axis_first() {
    let mut c = node("c", "ConcatV2", &["a", "b", "axis", "^a"]);
    c.attr.insert("N".into(), 2i64.into());
    c.attr.insert("Tidx".into(), DataType::DtInt32.into());
    let g = gd(vec![ph("a"), ph("b"), konst_i32("axis", &[], &[0]), c]);
    let g = run(g, "backport_concatv2", &[]);
    let c = find(&g, "c");
    assert_eq!(c.op, "Concat");
    assert_eq!(c.input, ["axis", "a", "b", "^a"]);
    assert!(!c.attr.contains_key("Tidx"));
}

#[test]
fn backport_tensor_array_v3_replaces_flow() {
    let mut ta = node("ta", "TensorArrayV3", &["n"]);
    ta.attr.insert("dtype".into(), DataType::DtFloat.into());
    ta.attr.insert("identical_element_shapes".into(), true.into());
    let mut sz = node("sz", "TensorArraySizeV3", &["ta", "ta:1"]);
    sz.attr.clear();
    let g = gd(vec![konst_i32("n", &[], &[3]), ta, sz]);
    let g = run(g, "backport_tensor_array_v3", &[]);
    assert_eq!(find(&g, "ta").op, "TensorArrayV2");
    assert!(!find(&g, "ta").attr.contains_key("identical_element_shapes"));
    assert_eq!(find(&g, "sz").op, "TensorArraySizeV2");
    assert_eq!(find(&g, "sz").input, ["ta", "ta/replacement_flow_node"]);
    assert_eq!(find(&g, "ta/replacement_flow_node").op, "Const");
}

#[test]
fn attribute_device_and_name_edits() {
    let mut r = node("r", "Relu", &["x", "^c"]);
    r.device = "/cpu:0".into();
    r.attr.insert("_x".into(), 1i64.into());
    let g = gd(vec![ph("x"), ph("c"), r, node("s", "Relu", &["r"])]);
    let g2 = run(g.clone(), "remove_attribute(attribute_name=_x)", &[]);
    assert!(!find(&g2, "r").attr.contains_key("_x"));
    let g2 = run(g.clone(), "remove_attribute(attribute_name=_x, op_name=Sigmoid)", &[]);
    assert!(find(&g2, "r").attr.contains_key("_x"));
    let g2 = run(g.clone(), "rename_attribute(old_attribute_name=_x, new_attribute_name=_y)", &[]);
    assert!(find(&g2, "r").attr.contains_key("_y"));
    let g2 = run(g.clone(), "rename_op(old_op_name=Relu, new_op_name=Relu6)", &[]);
    assert_eq!(find(&g2, "s").op, "Relu6");
    let g2 = run(g.clone(), "rename_node(old_node_name=r, new_node_name=q)", &[]);
    assert_eq!(find(&g2, "s").input, ["q"]);
    let g2 = run(g.clone(), "remove_device", &[]);
    assert_eq!(find(&g2, "r").device, "");
    let g2 = run(g.clone(), "set_device(device=/gpu:0, if_default=true)", &[]);
    assert_eq!(
        (find(&g2, "r").device.as_str(), find(&g2, "s").device.as_str()),
        ("/cpu:0", "/gpu:0")
    );
    let g2 = run(g.clone(), "remove_control_dependencies", &[]);
    assert_eq!(find(&g2, "r").input, ["x"]);
    let e = run_io(g, "rename_node(old_node_name=r, new_node_name=s)", &[], &[]).unwrap_err();
    assert!(e.contains("name taken"));
}

#[test]
fn obfuscate_names_keeps_inputs_and_outputs() {
    let mut r = node("relu", "Relu", &["x"]);
    r.attr.insert("_class".into(), vec!["loc:@x", "loc:@mid"].into());
    let g =
        gd(vec![ph("x"), node("mid", "Relu", &["x"]), r, node("out", "AddV2", &["mid", "relu"])]);
    let g = run_io(g, "obfuscate_names", &["x"], &["out"]).unwrap().graph;
    assert_eq!(names(&g), ["x", "0", "1", "out"]);
    assert_eq!(find(&g, "out").input, ["0", "1"]);
    let class = find(&g, "1").attr["_class"].as_list_str().unwrap();
    assert_eq!(class, ["loc:@x", "loc:@0"]);
    assert_eq!(edit::base62(61), "Z");
    assert_eq!(edit::base62(62), "10");
}

#[test]
fn sort_by_execution_order_puts_inputs_first() {
    let g = gd(vec![node("b", "Relu", &["a"]), node("a", "Relu", &["x"]), ph("x")]);
    let g = run(g, "sort_by_execution_order", &[]);
    assert_eq!(names(&g), ["x", "a", "b"]);
}

#[test]
fn remove_nodes_splices_identity() {
    let g = gd(vec![
        ph("x"),
        ph("c"),
        node("id", "Identity", &["x:0", "^c"]),
        node("r", "Relu", &["id"]),
        node("s", "Relu", &["x", "^id"]),
        node("out", "Identity", &["r"]),
    ]);
    let g = run(g, "remove_nodes(op=Identity, op=CheckNumerics)", &["out"]);
    assert_eq!(names(&g), ["x", "c", "r", "s", "out"]);
    assert_eq!(find(&g, "r").input, ["x", "^c"]);
    assert_eq!(find(&g, "s").input, ["x", "^x"]);
}

#[test]
fn insert_logging_adds_print_nodes() {
    let g = gd(vec![ph("x"), node("r", "Relu", &["x"]), node("s", "Relu", &["r"])]);
    let g = run(g, "insert_logging(op=Relu, show_name=true, message=\"hi there\")", &[]);
    let p = find(&g, "r__print__");
    assert_eq!(p.op, "Print");
    assert_eq!(p.input, ["r", "r"]);
    assert_eq!(p.attr_opt_str("message"), Some(";r__print__;hi there"));
    assert_eq!(find(&g, "s").input, ["r__print__"]);
    assert!(g.node.iter().all(|n| n.name != "s__print__"));
}

fn conv(name: &str, x: &str, w: &str, padding: &str) -> NodeDef {
    let mut c = node(name, "Conv2D", &[x, w]);
    c.attr.insert("strides".into(), vec![1i64, 1, 1, 1].into());
    c.attr.insert("padding".into(), padding.into());
    c.attr.insert("data_format".into(), "NHWC".into());
    c
}

#[test]
fn fuse_pad_resize_and_conv() {
    let mut pad = node("pad", "MirrorPad", &["x", "p"]);
    pad.attr.insert("mode".into(), "SYMMETRIC".into());
    let mut rs = node("rs", "ResizeBilinear", &["x", "size"]);
    rs.attr.insert("align_corners".into(), false.into());
    let base = vec![
        ph("x"),
        konst_i32("p", &[4, 2], &[0, 0, 1, 1, 1, 1, 0, 0]),
        konst_i32("size", &[2], &[8, 8]),
        konst("w", &[1, 1, 1, 1], &[2.0]),
    ];
    let mut g1 = base.clone();
    g1.extend([pad.clone(), conv("c", "pad", "w", "VALID")]);
    let g = run(gd(g1), "fuse_pad_and_conv", &["c"]);
    let c = find(&g, "c");
    assert_eq!(
        (c.op.as_str(), c.input.clone()),
        ("FusedPadConv2D", vec!["x".into(), "p".into(), "w".into()])
    );
    assert_eq!(c.attr_opt_str("mode"), Some("SYMMETRIC"));
    assert!(!names(&g).contains(&"pad"));

    let mut g2 = base.clone();
    g2.extend([rs.clone(), conv("c", "rs", "w", "SAME")]);
    let g = run(gd(g2), "fuse_resize_and_conv", &["c"]);
    let c = find(&g, "c");
    assert_eq!(c.op, "FusedResizeAndPadConv2D");
    assert_eq!(c.input, ["x", "size", "c/zero_paddings", "w"]);

    let pad2 = NodeDef {
        input: std::iter::once("rs".to_string()).chain(pad.input.iter().skip(1).cloned()).collect(),
        ..pad.clone()
    };
    let mut g3 = base;
    g3.extend([rs, pad2, conv("c", "pad", "w", "VALID"), node("other", "Relu", &["pad"])]);
    let g = run(gd(g3.clone()), "fuse_resize_pad_and_conv", &["c", "other"]);
    assert_eq!(find(&g, "c").op, "Conv2D", "the pad is read elsewhere");
    g3.pop();
    let g = run(gd(g3), "fuse_resize_pad_and_conv", &["c"]);
    assert_eq!(find(&g, "c").input, ["x", "size", "p", "w"]);
}

#[test]
fn flatten_atrous_conv_dilates_the_filter() {
    let g = gd(vec![
        ph("x"),
        konst_i32("block", &[2], &[2, 2]),
        konst_i32("pads", &[2, 2], &[2, 2, 2, 2]),
        konst_i32("crops", &[2, 2], &[0, 0, 0, 0]),
        node("s2b", "SpaceToBatchND", &["x", "block", "pads"]),
        konst("w", &[3, 3, 1, 1], &[1., 2., 3., 4., 5., 6., 7., 8., 9.]),
        conv("conv", "s2b", "w", "VALID"),
        node("b2s", "BatchToSpaceND", &["conv", "block", "crops"]),
    ]);
    let g = run(g, "flatten_atrous_conv", &["b2s"]);
    let b = find(&g, "b2s");
    assert_eq!((b.op.as_str(), b.input.clone()), ("Conv2D", vec!["x".into(), "w".into()]));
    assert_eq!(b.attr_opt_str("padding"), Some("SAME"));
    let w = Tensor::from_proto(find(&g, "w").attr_opt_tensor("value").unwrap()).unwrap();
    assert_eq!(w.shape, [5, 5, 1, 1]);
    let v = w.values::<f32>().unwrap();
    assert_eq!((v[0], v[1], v[2], v[4], v[10], v[24]), (1., 0., 2., 3., 4., 9.));
}

#[test]
fn fold_constants_and_merge_duplicates() {
    let g = gd(vec![
        konst("a", &[2], &[1., 2.]),
        konst("b", &[2], &[3., 4.]),
        konst("b2", &[2], &[3., 4.]),
        node("sum", "AddV2", &["a", "b"]),
        ph("x"),
        node("m1", "Mul", &["x", "b"]),
        node("m2", "Mul", &["x", "b2"]),
        node("out", "AddV2", &["m1", "m2"]),
        node("out2", "AddV2", &["sum", "x"]),
    ]);
    let t = "fold_constants(exclude_op=Mul)";
    let out = run_io(g.clone(), t, &[], &["out", "out2"]).unwrap();
    let ops: Vec<&str> = out.graph.node.iter().map(|n| n.op.as_str()).collect();
    assert!(
        !names(&out.graph).contains(&"sum") || find(&out.graph, "sum").op == "Const",
        "{ops:?}"
    );
    let e = run_io(g.clone(), "fold_constants(exclude_node=nope)", &[], &["out"]).unwrap_err();
    assert!(e.contains("exclude_node 'nope'"));
    let g = run(g, "merge_duplicate_nodes", &["out", "out2"]);
    assert_eq!(find(&g, "out").input.len(), 2);
    assert!(g.node.len() < 9);
}

#[test]
fn quantize_and_round_weights() {
    let out = run_io(matmul_graph(), "quantize_weights", &[], &["mm"]).unwrap();
    let w = find(&out.graph, "w");
    assert_eq!(w.op, "Dequantize");
    assert_eq!(find(&out.graph, "w_quantized_const").op, "Const");
    let out = run_io(matmul_graph(), "quantize_weights(minimum_size=4096)", &[], &["mm"]).unwrap();
    assert_eq!(find(&out.graph, "w").op, "Const");
    let g = run(matmul_graph(), "round_weights(num_steps=4)", &["mm"]);
    let t = Tensor::from_proto(find(&g, "w").attr_opt_tensor("value").unwrap()).unwrap();
    let mut v = t.values::<f32>().unwrap();
    v.sort_by(f32::total_cmp);
    v.dedup();
    assert!(v.len() <= 5, "{}", v.len());
}

#[test]
fn strip_unused_nodes_cuts_at_inputs() {
    let g = gd(vec![
        ph("x"),
        node("a", "Relu", &["x"]),
        node("b", "Relu", &["a"]),
        node("dead", "Relu", &["x"]),
    ]);
    let out = run_io(g, "strip_unused_nodes(shape=\"1,2\")", &["a"], &["b"]).unwrap().graph;
    assert_eq!(names(&out).len(), 2);
    assert_eq!(find(&out, "a").op, "Placeholder");
    let e = run_io(gd(vec![ph("x")]), "strip_unused_nodes(type=flaot)", &[], &[]).unwrap_err();
    assert!(e.contains("'flaot' is not a TensorFlow dtype"), "{e}");
}

#[test]
fn freeze_requantization_ranges_from_a_log() {
    let dir = std::env::temp_dir().join(format!("tf-transform-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("log.txt");
    let mut text = String::new();
    for i in 0..20 {
        text += &format!(";rr__print__;__requant_min_max:[{}][{}]\n", -(i as f32), i as f32 * 2.0);
    }
    std::fs::write(&log, text).unwrap();
    let mut rr = node("rr", "RequantizationRange", &["x", "lo", "hi"]);
    rr.attr.clear();
    rr.attr.insert("Tinput".into(), AttrValue::from(DataType::DtQint32));
    let g = gd(vec![
        ph("x"),
        konst("lo", &[], &[0.0]),
        konst("hi", &[], &[1.0]),
        rr,
        node("use", "AddV2", &["rr", "rr:1"]),
    ]);
    let t = format!("freeze_requantization_ranges(min_max_log_file=\"{}\")", log.display());
    let g = run(g, &t, &["use"]);
    assert!(!names(&g).contains(&"rr"));
    let lo = find(&g, "rr/requant_range_min").attr_opt_tensor("value").unwrap();
    let v = Tensor::from_proto(lo).unwrap().values::<f32>().unwrap();
    assert_eq!(v, [-18.0]);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn sparsify_gather_makes_a_table() {
    let mut w = vec![0f32; 10];
    w[3] = 0.5;
    w[7] = -2.0;
    let mut ids = node("ids", "Placeholder", &[]);
    ids.attr.insert("dtype".into(), DataType::DtInt32.into());
    let mut gather = node("emb", "GatherV2", &["w_read", "ids", "axis"]);
    gather.attr.insert("Tparams".into(), DataType::DtFloat.into());
    gather.attr.insert("Tindices".into(), DataType::DtInt32.into());
    gather.attr.insert("Taxis".into(), DataType::DtInt32.into());
    let g = gd(vec![
        konst("w", &[10, 1], &w),
        node("w_read", "Identity", &["w"]),
        ids,
        konst_i32("axis", &[], &[0]),
        gather,
        node("out", "Relu", &["emb"]),
    ]);
    let g = run(g, "sparsify_gather", &["out"]);
    assert_eq!(find(&g, "emb").op, "ExpandDims");
    assert!(!names(&g).contains(&"w") && !names(&g).contains(&"w_read"));
    let idx = Tensor::from_proto(find(&g, "w/indices").attr_opt_tensor("value").unwrap()).unwrap();
    assert_eq!(idx.values::<i64>().unwrap(), [3, 7]);
    assert_eq!(find(&g, "group_deps").input, ["^w/InitializeTable"]);
    assert_eq!(find(&g, "emb/LookupTableFind").input[1], "emb/ids_int64");
}
