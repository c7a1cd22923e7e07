//! Synthetic graphs of a given size and shape, for scale tests and benchmarks: long chains,
//! wide fan-out, deep control-edge chains, deeply nested and recursive function calls. They
//! need no TensorFlow: every node is a float op of the registry, so every tool accepts them.

use tf_proto::tensorflow::{
    attr_value, AttrValue, DataType, FunctionDef, FunctionDefLibrary, GraphDef, NameAttrList,
    NodeDef, OpDef, TensorProto, TensorShapeProto, VersionDef,
};

/// The shapes [`generate`] knows, by name.
pub const SHAPES: &[&str] = &[
    "identity-chain",
    "mul-relu-chain",
    "fan-out",
    "control-chain",
    "call-chain",
    "recursive-call",
    "recursive-partitioned-call",
    "mutual-recursion",
];

fn float_attr() -> AttrValue {
    AttrValue { value: Some(attr_value::Value::Type(DataType::DtFloat as i32)) }
}

/// A float node `name = op(inputs)` with `T: float`.
pub fn op(name: &str, op: &str, inputs: &[&str]) -> NodeDef {
    let mut n = NodeDef {
        name: name.into(),
        op: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    if !matches!(op, "NoOp") {
        n.attr.insert("T".into(), float_attr());
    }
    n
}

/// A float placeholder of shape `[-1, 4]`.
pub fn placeholder(name: &str) -> NodeDef {
    let mut n = NodeDef { name: name.into(), op: "Placeholder".into(), ..Default::default() };
    n.attr.insert("dtype".into(), float_attr());
    let shape = TensorShapeProto {
        dim: [-1, 4]
            .iter()
            .map(|&size| tf_proto::tensorflow::tensor_shape_proto::Dim {
                size,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    n.attr.insert("shape".into(), AttrValue { value: Some(attr_value::Value::Shape(shape)) });
    n
}

/// A scalar float constant.
pub fn scalar(name: &str, v: f32) -> NodeDef {
    let mut n = NodeDef { name: name.into(), op: "Const".into(), ..Default::default() };
    n.attr.insert("dtype".into(), float_attr());
    let t = TensorProto {
        dtype: DataType::DtFloat as i32,
        tensor_shape: Some(TensorShapeProto::default()),
        float_val: vec![v],
        ..Default::default()
    };
    n.attr
        .insert("value".into(), AttrValue { value: Some(attr_value::Value::Tensor(Box::new(t))) });
    n
}

fn graph(node: Vec<NodeDef>, library: Option<FunctionDefLibrary>) -> GraphDef {
    GraphDef {
        node,
        library,
        versions: Some(VersionDef { producer: 2474, min_consumer: 12, ..Default::default() }),
        ..Default::default()
    }
}

/// `x -> Identity -> ... -> Identity (n times) -> y`.
pub fn identity_chain(n: usize) -> GraphDef {
    let mut nodes = vec![placeholder("x")];
    let mut prev = "x".to_string();
    for i in 0..n {
        let name = format!("id_{i}");
        nodes.push(op(&name, "Identity", &[&prev]));
        prev = name;
    }
    nodes.push(op("y", "Neg", &[&prev]));
    graph(nodes, None)
}

/// `x -> Mul(·, c_i) -> Relu -> ...`: about `n` nodes (`n / 3` Mul/Relu pairs, each Mul by
/// its own constant).
pub fn mul_relu_chain(n: usize) -> GraphDef {
    let mut nodes = vec![placeholder("x")];
    let mut prev = "x".to_string();
    for i in 0..n / 3 {
        let (c, m, r) = (format!("c_{i}"), format!("mul_{i}"), format!("relu_{i}"));
        nodes.push(scalar(&c, 1.5));
        nodes.push(op(&m, "Mul", &[&prev, &c]));
        nodes.push(op(&r, "Relu", &[&m]));
        prev = r;
    }
    nodes.push(op("y", "Identity", &[&prev]));
    graph(nodes, None)
}

/// `x` read by `n` nodes `Relu(x)`, each an output (`n` leaves), and `y = Identity(x)`.
pub fn fan_out(n: usize) -> GraphDef {
    let mut nodes = vec![placeholder("x")];
    for i in 0..n {
        nodes.push(op(&format!("r_{i}"), "Relu", &["x"]));
    }
    nodes.push(op("y", "Identity", &["x"]));
    graph(nodes, None)
}

/// `n` NoOps each waiting on the previous by a control edge, and `y = Identity(x, ^last)`.
pub fn control_chain(n: usize) -> GraphDef {
    let mut nodes = vec![placeholder("x")];
    let mut prev: Option<String> = None;
    for i in 0..n {
        let name = format!("c_{i}");
        let dep = prev.as_ref().map(|p| format!("^{p}"));
        nodes.push(op(&name, "NoOp", &dep.iter().map(String::as_str).collect::<Vec<_>>()));
        prev = Some(name);
    }
    let dep = prev.map(|p| format!("^{p}"));
    let mut ins = vec!["x"];
    ins.extend(dep.as_deref());
    nodes.push(op("y", "Identity", &ins));
    graph(nodes, None)
}

fn signature(name: &str) -> OpDef {
    let arg = |n: &str| tf_proto::tensorflow::op_def::ArgDef {
        name: n.into(),
        r#type: DataType::DtFloat as i32,
        ..Default::default()
    };
    OpDef {
        name: name.into(),
        input_arg: vec![arg("a")],
        output_arg: vec![arg("r")],
        ..Default::default()
    }
}

/// A function `name(a) -> r` whose body is `body` and returns `ret`.
fn function(name: &str, body: Vec<NodeDef>, ret: &str) -> FunctionDef {
    FunctionDef {
        signature: Some(signature(name)),
        node_def: body,
        ret: [("r".to_string(), ret.to_string())].into(),
        ..Default::default()
    }
}

/// A call of `f` on `input` in a function body or graph: a node whose op is `f`, or with
/// `partitioned` a `PartitionedCall` with `f` as attr.
fn call(name: &str, f: &str, input: &str, partitioned: bool) -> NodeDef {
    if !partitioned {
        return NodeDef {
            name: name.into(),
            op: f.into(),
            input: vec![input.into()],
            ..Default::default()
        };
    }
    let mut n = NodeDef {
        name: name.into(),
        op: "PartitionedCall".into(),
        input: vec![input.into()],
        ..Default::default()
    };
    let types = AttrValue {
        value: Some(attr_value::Value::List(Box::new(attr_value::ListValue {
            r#type: vec![DataType::DtFloat as i32],
            ..Default::default()
        }))),
    };
    n.attr.insert("Tin".into(), types.clone());
    n.attr.insert("Tout".into(), types);
    let func = NameAttrList { name: f.into(), ..Default::default() };
    n.attr.insert("f".into(), AttrValue { value: Some(attr_value::Value::Func(func)) });
    n
}

/// The output reference of a call node inside a function body.
fn call_out(node: &str, partitioned: bool) -> String {
    if partitioned {
        format!("{node}:output:0")
    } else {
        format!("{node}:r:0")
    }
}

/// `n` functions `f_0 .. f_{n-1}`, each calling the next (the last negates), and the graph
/// `y = Identity(f_0(x))`.
pub fn call_chain(n: usize) -> GraphDef {
    let mut fs = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("f_{i}");
        if i + 1 < n {
            let body = vec![call("c", &format!("f_{}", i + 1), "a", false)];
            fs.push(function(&name, body, &call_out("c", false)));
        } else {
            fs.push(function(&name, vec![op("neg", "Neg", &["a"])], "neg:y:0"));
        }
    }
    let mut nodes = vec![placeholder("x")];
    if n > 0 {
        nodes.push(call("call", "f_0", "x", false));
        nodes.push(op("y", "Identity", &["call"]));
    }
    graph(nodes, Some(FunctionDefLibrary { function: fs, ..Default::default() }))
}

/// A function that calls itself (`partitioned`: through `PartitionedCall`), called once.
pub fn recursive_call(partitioned: bool) -> GraphDef {
    let f = function("f", vec![call("c", "f", "a", partitioned)], &call_out("c", partitioned));
    let nodes =
        vec![placeholder("x"), call("call", "f", "x", partitioned), op("y", "Identity", &["call"])];
    graph(nodes, Some(FunctionDefLibrary { function: vec![f], ..Default::default() }))
}

/// Two functions calling each other, `f` called once.
pub fn mutual_recursion() -> GraphDef {
    let f = function("f", vec![call("c", "g", "a", false)], &call_out("c", false));
    let g = function("g", vec![call("c", "f", "a", false)], &call_out("c", false));
    let nodes =
        vec![placeholder("x"), call("call", "f", "x", false), op("y", "Identity", &["call"])];
    graph(nodes, Some(FunctionDefLibrary { function: vec![f, g], ..Default::default() }))
}

/// The graph of one of [`SHAPES`] with size `n` (ignored by the recursive ones).
pub fn generate(shape: &str, n: usize) -> Option<GraphDef> {
    Some(match shape {
        "identity-chain" => identity_chain(n),
        "mul-relu-chain" => mul_relu_chain(n),
        "fan-out" => fan_out(n),
        "control-chain" => control_chain(n),
        "call-chain" => call_chain(n),
        "recursive-call" => recursive_call(false),
        "recursive-partitioned-call" => recursive_call(true),
        "mutual-recursion" => mutual_recursion(),
        _ => return None,
    })
}
