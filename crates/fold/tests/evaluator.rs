//! The fallback-evaluator plug: an [`Evaluator`] the caller supplies is asked for ops the native
//! evaluator lacks (and only for those), and what it returns becomes the folded constant. No
//! TensorFlow here: crates/run tests the TensorFlow-backed evaluator itself.

use std::sync::{Arc, Mutex};

use tf_fold::eval::EvalError;
use tf_fold::{fold_graph_def, Evaluator, Fallback, FoldConfig};
use tf_proto::tensorflow::attr_value::{ListValue, Value};
use tf_proto::tensorflow::{AttrValue, GraphDef, NodeDef};
use tf_tensor::{dt, Tensor};

fn attr(v: Value) -> AttrValue {
    AttrValue { value: Some(v) }
}

fn constant(name: &str, shape: &[i64], v: &[f32]) -> NodeDef {
    let t = Tensor::from_values(dt::FLOAT, shape, v).unwrap();
    NodeDef {
        name: name.into(),
        op: "Const".into(),
        attr: [
            ("dtype".to_string(), attr(Value::Type(dt::FLOAT))),
            ("value".to_string(), attr(Value::Tensor(Box::new(t.to_proto())))),
        ]
        .into_iter()
        .collect(),
        ..Default::default()
    }
}

/// x [1,2,2,1] and w [1,1,1,1] constants; conv = Conv2D(x, w) (no native kernel); y = Relu(conv).
fn conv_graph() -> GraphDef {
    let conv = NodeDef {
        name: "conv".into(),
        op: "Conv2D".into(),
        input: vec!["x".into(), "w".into()],
        attr: [
            ("T".to_string(), attr(Value::Type(dt::FLOAT))),
            (
                "strides".to_string(),
                attr(Value::List(Box::new(ListValue { i: vec![1; 4], ..Default::default() }))),
            ),
            ("padding".to_string(), attr(Value::S(b"VALID".to_vec()))),
        ]
        .into_iter()
        .collect(),
        ..Default::default()
    };
    let relu = NodeDef {
        name: "y".into(),
        op: "Relu".into(),
        input: vec!["conv".into()],
        attr: [("T".to_string(), attr(Value::Type(dt::FLOAT)))].into_iter().collect(),
        ..Default::default()
    };
    GraphDef {
        node: vec![
            constant("x", &[1, 2, 2, 1], &[1.0, -2.0, 3.0, -4.0]),
            constant("w", &[1, 1, 1, 1], &[2.0]),
            conv,
            relu,
        ],
        ..Default::default()
    }
}

/// Records what it was asked; answers `x * w[0]` for Conv2D, or a fixed error.
#[derive(Default)]
struct Mock {
    calls: Mutex<Vec<(String, usize)>>,
    refuse: bool,
}

impl Evaluator for Mock {
    fn eval(&self, node: &NodeDef, inputs: &[Tensor]) -> Result<Vec<Tensor>, EvalError> {
        self.calls.lock().unwrap().push((node.op.clone(), inputs.len()));
        if self.refuse {
            return Err(EvalError::Unsupported("mock refuses".into()));
        }
        let x = inputs[0].values::<f32>().unwrap();
        let w = inputs[1].values::<f32>().unwrap()[0];
        let out: Vec<f32> = x.iter().map(|v| v * w).collect();
        Ok(vec![Tensor::from_values(dt::FLOAT, &inputs[0].shape, &out).unwrap()])
    }
}

fn cfg(fallback: Option<Fallback>) -> FoldConfig {
    FoldConfig { outputs: vec!["conv".into(), "y".into()], fallback, ..FoldConfig::default() }
}

fn node<'a>(g: &'a GraphDef, name: &str) -> &'a NodeDef {
    g.node.iter().find(|n| n.name == name).unwrap()
}

fn const_values(n: &NodeDef) -> Vec<f32> {
    assert_eq!(n.op, "Const", "{} is {}", n.name, n.op);
    match n.attr["value"].value.as_ref() {
        Some(Value::Tensor(t)) => Tensor::from_proto(t).unwrap().values::<f32>().unwrap(),
        other => panic!("no value: {other:?}"),
    }
}

#[test]
fn supplied_evaluator_folds_ops_without_native_kernel() {
    let mock = Arc::new(Mock::default());
    let (g, report) = fold_graph_def(conv_graph(), &cfg(Some(Fallback(mock.clone())))).unwrap();
    // Asked once, for the Conv2D only (Relu has a native kernel), with both inputs.
    assert_eq!(*mock.calls.lock().unwrap(), vec![("Conv2D".to_string(), 2)]);
    // Its value is the folded constant, and went through the native Relu: max(0, 2x).
    assert_eq!(const_values(node(&g, "conv")), vec![2.0, -4.0, 6.0, -8.0]);
    assert_eq!(const_values(node(&g, "y")), vec![2.0, 0.0, 6.0, 0.0]);
    let how: Vec<(&str, &str)> = report.folded.iter().map(|f| (f.op.as_str(), f.how)).collect();
    assert!(how.contains(&("Conv2D", "tf-eval")), "{how:?}");
    assert!(how.contains(&("Relu", "evaluated")), "{how:?}");
}

#[test]
fn without_an_evaluator_or_when_it_refuses_the_node_stays() {
    let (g, report) = fold_graph_def(conv_graph(), &cfg(None)).unwrap();
    assert_eq!(node(&g, "conv").op, "Conv2D");
    assert_eq!(node(&g, "y").op, "Relu");
    assert!(report.unsupported_ops.contains_key("Conv2D"), "{:?}", report.unsupported_ops);

    let mock = Arc::new(Mock { refuse: true, ..Mock::default() });
    let (g, _) = fold_graph_def(conv_graph(), &cfg(Some(Fallback(mock.clone())))).unwrap();
    assert_eq!(node(&g, "conv").op, "Conv2D");
    assert_eq!(node(&g, "y").op, "Relu");
    assert!(!mock.calls.lock().unwrap().is_empty());
}
