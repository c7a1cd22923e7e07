//! Small hostile inputs that used to abort, overflow the stack, divide by zero or allocate
//! gigabytes: each tool now answers (exit 0) or refuses with one line (exit 2).

use prost::Message;
use tf_proto::tensorflow::attr_value::{ListValue, Value};
use tf_proto::tensorflow::tensor_shape_proto::Dim;
use tf_proto::tensorflow::{AttrValue, GraphDef, NodeDef, TensorProto, TensorShapeProto};

use crate::util::{run, Outcome};

const FLOAT: i32 = 1;
const INT32: i32 = 3;
const STRING: i32 = 7;
const INT64: i32 = 9;

fn attr(v: Value) -> AttrValue {
    AttrValue { value: Some(v) }
}

fn node(name: &str, op: &str, inputs: &[&str], attrs: Vec<(&str, Value)>) -> NodeDef {
    NodeDef {
        name: name.into(),
        op: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        attr: attrs.into_iter().map(|(k, v)| (k.to_string(), attr(v))).collect(),
        ..Default::default()
    }
}

fn shape(dims: &[i64]) -> TensorShapeProto {
    TensorShapeProto {
        dim: dims.iter().map(|&size| Dim { size, ..Default::default() }).collect(),
        ..Default::default()
    }
}

fn konst(name: &str, t: TensorProto) -> NodeDef {
    let dtype = t.dtype;
    node(
        name,
        "Const",
        &[],
        vec![("dtype", Value::Type(dtype)), ("value", Value::Tensor(Box::new(t)))],
    )
}

fn tensor(dtype: i32, dims: &[i64]) -> TensorProto {
    TensorProto { dtype, tensor_shape: Some(shape(dims)), ..Default::default() }
}

fn graph(nodes: Vec<NodeDef>) -> Vec<u8> {
    GraphDef { node: nodes, ..Default::default() }.encode_to_vec()
}

/// Exit 0 with output, or the error contract; never a crash.
fn assert_answers(out: &Outcome, what: &str) {
    assert!(out.code == 0 || out.code == 2, "{what}: exit {} {}", out.code, out.stderr);
    if out.code == 2 {
        out.assert_clean_error(what);
    }
    assert!(!out.stderr.contains("internal error"), "{what}: {}", out.stderr);
}

#[test]
fn absurd_output_counts_are_not_taken_at_face_value() {
    for (op, a) in [
        ("Split", "num_split"),
        ("Unpack", "num"),
        ("ShapeN", "N"),
        ("SplitV", "num_split"),
        ("DynamicPartition", "num_partitions"),
    ] {
        let g = graph(vec![node(
            "s",
            op,
            &[],
            vec![(a, Value::I(1 << 31)), ("T", Value::Type(FLOAT))],
        )]);
        for (tool, args) in [
            ("tf-xla-check", &[][..]),
            ("tf-fold", &[]),
            ("tf-inspect", &["--json"]),
            ("tf-strip", &["--outputs", "s"]),
        ] {
            let out = run(tool, args, Some(&g));
            assert_answers(&out, &format!("{tool} on {op}"));
        }
    }
}

#[test]
fn deeply_nested_text_is_refused_with_one_line() {
    let levels = 1500;
    let text = format!(
        "node {{ name: 'a' op: 'X' {}{} }}",
        "attr { key: 'k' value { func { name: 'f' ".repeat(levels),
        "} } } ".repeat(levels)
    );
    for tool in ["tf-convert", "tf-inspect", "tf-fold"] {
        let out = run(tool, &[], Some(text.as_bytes()));
        out.assert_clean_error(tool);
        assert!(out.stderr.contains("nested more than 100 levels"), "{tool}: {}", out.stderr);
    }
}

#[test]
fn zero_stride_convolution_does_not_divide_by_zero() {
    let mut w = tensor(FLOAT, &[1, 1, 1, 1]);
    w.float_val = vec![1.0];
    let strides = Value::List(Box::new(ListValue { i: vec![1, 0, 0, 1], ..Default::default() }));
    let g = graph(vec![
        node(
            "x",
            "Placeholder",
            &[],
            vec![("dtype", Value::Type(FLOAT)), ("shape", Value::Shape(shape(&[1, 4, 4, 1])))],
        ),
        konst("w", w),
        node(
            "c",
            "Conv2D",
            &["x", "w"],
            vec![
                ("T", Value::Type(FLOAT)),
                ("strides", strides),
                ("padding", Value::S(b"SAME".to_vec())),
            ],
        ),
    ]);
    let out = run("tf-prune", &["--sparsity", "0.5"], Some(&g));
    assert_answers(&out, "tf-prune");
}

#[test]
fn folding_overflows_leave_nodes_unfolded_or_fold_as_tensorflow() {
    let mut a = tensor(INT64, &[]);
    a.int64_val = vec![i64::MIN];
    let mut b = tensor(INT64, &[]);
    b.int64_val = vec![-1];
    let mut x = tensor(FLOAT, &[4]);
    x.float_val = vec![1.0, 2.0, 3.0, 4.0];
    let mut begin = tensor(INT64, &[1]);
    begin.int64_val = vec![i64::MAX];
    let mut size = tensor(INT64, &[1]);
    size.int64_val = vec![1];
    let g = graph(vec![
        konst("a", a),
        konst("b", b),
        node("d", "FloorDiv", &["a", "b"], vec![("T", Value::Type(INT64))]),
        konst("x", x),
        konst("begin", begin),
        konst("size", size),
        node(
            "sl",
            "Slice",
            &["x", "begin", "size"],
            vec![("T", Value::Type(FLOAT)), ("Index", Value::Type(INT64))],
        ),
    ]);
    let out = run("tf-fold", &["--outputs", "d,sl"], Some(&g));
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn fold_budgets_are_checked_before_allocating() {
    // A 100 KB string tiled 100,000 times (10 GB) and a product of two splat [3000, 3000]
    // matrices (27e9 multiply-adds): left unfolded, listed in the report with the reason.
    let mut s = tensor(STRING, &[1]);
    s.string_val = vec![vec![b'a'; 100_000]];
    let mut m = tensor(INT32, &[1]);
    m.int_val = vec![100_000];
    let mut a = tensor(FLOAT, &[3000, 3000]);
    a.float_val = vec![1.0];
    let g = graph(vec![
        konst("s", s),
        konst("m", m),
        node(
            "t",
            "Tile",
            &["s", "m"],
            vec![("T", Value::Type(STRING)), ("Tmultiples", Value::Type(INT32))],
        ),
        konst("a", a),
        node("mm", "MatMul", &["a", "a"], vec![("T", Value::Type(FLOAT))]),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let out = run(
        "tf-fold",
        &["--outputs", "t,mm", "--max-const-bytes", "1K", "--report", report.to_str().unwrap()],
        Some(&g),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let text = r.to_string();
    assert!(
        text.contains(r#""budget":"max-const-bytes","limit":1024,"needed":10002400000,"node":"t""#),
        "{text}"
    );
    assert!(
        text.contains(r#""budget":"max-work","limit":268435456,"needed":27000000000,"node":"mm""#),
        "{text}"
    );
}

#[test]
fn huge_splat_weights_are_refused_by_prune_and_quant() {
    let mut w = tensor(FLOAT, &[20000, 20000]);
    w.float_val = vec![0.5];
    let g = graph(vec![
        node(
            "x",
            "Placeholder",
            &[],
            vec![("dtype", Value::Type(FLOAT)), ("shape", Value::Shape(shape(&[1, 20000])))],
        ),
        konst("w", w),
        node("m", "MatMul", &["x", "w"], vec![("T", Value::Type(FLOAT))]),
    ]);
    for (tool, args) in [("tf-prune", &["--sparsity", "0.5"][..]), ("tf-quant", &["int8"])] {
        let out = run(tool, args, Some(&g));
        out.assert_clean_error(tool);
        assert!(out.stderr.contains("limit for splat constants"), "{tool}: {}", out.stderr);
    }
}
