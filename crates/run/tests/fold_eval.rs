//! tf-fold's `--tf-eval` evaluator ([`tf_run::fold_eval`]) on the real TensorFlow runtime: an op
//! without a native kernel (Conv2D) folds to the value TensorFlow computes, through
//! `tf_fold::fold_graph_def` as the tf-fold binary calls it.

mod common;

use common::*;
use tf_fold::eval::EvalError;
use tf_fold::{fold_graph_def, Evaluator, FoldConfig};
use tf_proto::tensorflow::attr_value::{ListValue, Value};
use tf_proto::tensorflow::{AttrValue, NodeDef};
use tf_run::fold_eval::{evaluator, TfEvaluator};
use tf_tensor::{dt, Tensor};

fn attr(v: Value) -> AttrValue {
    AttrValue { value: Some(v) }
}

/// Conv2D, VALID, stride 1: x [1,3,3,1] = 1..9, w [2,2,1,1] = [1,0,0,-1] → x[i][j] - x[i+1][j+1].
fn conv2d() -> NodeDef {
    let mut n = with_t(node("conv", "Conv2D", &["x", "w"]), DT_FLOAT);
    let strides = ListValue { i: vec![1; 4], ..Default::default() };
    n.attr.insert("strides".into(), attr(Value::List(Box::new(strides))));
    n.attr.insert("padding".into(), attr(Value::S(b"VALID".to_vec())));
    n
}

fn f32_tensor(shape: &[i64], v: &[f32]) -> Tensor {
    Tensor::from_values(dt::FLOAT, shape, v).unwrap()
}

#[test]
fn evaluates_one_node_with_tensorflow() {
    let x = f32_tensor(&[1, 3, 3, 1], &[1., 2., 3., 4., 5., 6., 7., 8., 9.]);
    let w = f32_tensor(&[2, 2, 1, 1], &[1., 0., 0., -1.]);
    let out = TfEvaluator.eval(&conv2d(), &[x, w]).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].dtype, dt::FLOAT);
    assert_eq!(out[0].shape, vec![1, 2, 2, 1]);
    assert_eq!(out[0].values::<f32>().unwrap(), vec![-4.0; 4]);

    // Every output is returned: Unique has two.
    let mut unique = with_t(node("u", "Unique", &["v"]), DT_FLOAT);
    unique.attr.insert("out_idx".into(), attr(Value::Type(dt::INT32)));
    let out = TfEvaluator.eval(&unique, &[f32_tensor(&[4], &[3., 1., 3., 2.])]).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].values::<f32>().unwrap(), vec![3., 1., 2.]);
    assert_eq!(out[1].values::<i32>().unwrap(), vec![0, 1, 0, 2]);
}

#[test]
fn tensorflow_errors_are_eval_errors_not_panics() {
    // Shapes TensorFlow rejects (channel mismatch): the import fails.
    let x = f32_tensor(&[1, 3, 3, 2], &[0.; 18]);
    let w = f32_tensor(&[2, 2, 1, 1], &[1., 0., 0., -1.]);
    let err = TfEvaluator.eval(&conv2d(), &[x, w]).unwrap_err();
    assert!(err.to_string().contains("TensorFlow"), "{err}");
    // An op TensorFlow does not know.
    let err = TfEvaluator.eval(&node("z", "NoSuchOpAnywhere", &[]), &[]).unwrap_err();
    assert!(matches!(err, EvalError::Unsupported(_)), "{err}");
}

#[test]
fn tf_fold_folds_conv2d_through_the_evaluator() {
    let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    let mut g = matmul_graph(&W);
    g.node = vec![
        const_f32("x", &[1, 3, 3, 1], &x),
        const_f32("w", &[2, 2, 1, 1], &[1., 0., 0., -1.]),
        conv2d(),
        with_t(node("y", "Relu", &["conv"]), DT_FLOAT),
    ];
    let cfg =
        |fallback| FoldConfig { outputs: vec!["y".into()], fallback, ..FoldConfig::default() };
    // Without the evaluator the Conv2D stays (no native kernel).
    let (plain, _) = fold_graph_def(g.clone(), &cfg(None)).unwrap();
    assert!(plain.node.iter().any(|n| n.op == "Conv2D"));
    // With it, everything folds: y = Relu(-4) = 0 everywhere.
    let (folded, report) = fold_graph_def(g, &cfg(Some(evaluator()))).unwrap();
    assert_eq!(folded.node.len(), 1, "{:?}", folded.node);
    let y = &folded.node[0];
    assert_eq!((y.name.as_str(), y.op.as_str()), ("y", "Const"));
    let Some(Value::Tensor(t)) = y.attr["value"].value.as_ref() else { panic!("no value") };
    let t = Tensor::from_proto(t).unwrap();
    assert_eq!(t.shape, vec![1, 2, 2, 1]);
    assert_eq!(t.values::<f32>().unwrap(), vec![0.0; 4]);
    assert!(report.unsupported_ops.is_empty(), "{:?}", report.unsupported_ops);
}
