//! Kernel by kernel on small tensors: TensorFlow's semantics as documented (integer division,
//! rounding, masks, broadcasting). `tests/tf/test_fold.py` compares every kernel with TF itself.

#![allow(clippy::cloned_ref_to_slice_refs)] // inputs are built inline, cloned for readability

use super::*;
use tf_proto::tensorflow::{attr_value::Value, AttrValue};

fn node(op: &str, attrs: &[(&str, AttrValue)]) -> NodeDef {
    let mut n = NodeDef { name: "n".into(), op: op.into(), ..Default::default() };
    for (k, v) in attrs {
        n.attr.insert(k.to_string(), v.clone());
    }
    n
}

fn ty(t: i32) -> AttrValue {
    AttrValue { value: Some(Value::Type(t)) }
}

fn int(i: i64) -> AttrValue {
    AttrValue { value: Some(Value::I(i)) }
}

fn boolean(b: bool) -> AttrValue {
    AttrValue { value: Some(Value::B(b)) }
}

fn f32s(shape: &[i64], v: &[f32]) -> Tensor {
    Tensor::from_values(dt::FLOAT, shape, v).unwrap()
}

fn i32s(shape: &[i64], v: &[i32]) -> Tensor {
    Tensor::from_values(dt::INT32, shape, v).unwrap()
}

fn run(op: &str, attrs: &[(&str, AttrValue)], inputs: &[Tensor]) -> Result<Vec<Tensor>, EvalError> {
    evaluate(&node(op, attrs), inputs)
}

fn one(op: &str, attrs: &[(&str, AttrValue)], inputs: &[Tensor]) -> Tensor {
    run(op, attrs, inputs).unwrap().remove(0)
}

fn vf(t: &Tensor) -> Vec<f32> {
    t.values::<f32>().unwrap()
}

fn vi(t: &Tensor) -> Vec<i32> {
    t.values::<i32>().unwrap()
}

#[test]
fn broadcasting_binary_float_and_int() {
    let a = f32s(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
    let row = f32s(&[3], &[10., 20., 30.]);
    let out = one("AddV2", &[], &[a.clone(), row]);
    assert_eq!(out.shape, vec![2, 3]);
    assert_eq!(vf(&out), vec![11., 22., 33., 14., 25., 36.]);
    let col = f32s(&[2, 1], &[2., 4.]);
    assert_eq!(vf(&one("RealDiv", &[], &[a, col])), vec![0.5, 1., 1.5, 1., 1.25, 1.5]);
    let x = i32s(&[4], &[7, -7, 7, -7]);
    let y = i32s(&[4], &[2, 2, -2, -2]);
    assert_eq!(vi(&one("Div", &[], &[x.clone(), y.clone()])), vec![3, -3, -3, 3]);
    assert_eq!(vi(&one("FloorDiv", &[], &[x.clone(), y.clone()])), vec![3, -4, -4, 3]);
    assert_eq!(vi(&one("FloorMod", &[], &[x.clone(), y.clone()])), vec![1, 1, -1, -1]);
    assert_eq!(vi(&one("TruncateMod", &[], &[x.clone(), y])), vec![1, -1, 1, -1]);
    let zero = i32s(&[], &[0]);
    assert!(matches!(run("FloorDiv", &[], &[x, zero]), Err(EvalError::Invalid(_))));
}

#[test]
fn integers_wrap_like_their_type() {
    let a = Tensor::from_values(dt::INT8, &[2], &[120i8, -128]).unwrap();
    let b = Tensor::from_values(dt::INT8, &[2], &[10i8, 1]).unwrap();
    let s = one("AddV2", &[], &[a.clone(), b.clone()]);
    assert_eq!(s.values::<i8>().unwrap(), vec![-126, -127]);
    let d = one("Sub", &[], &[b, a]);
    assert_eq!(d.values::<i8>().unwrap(), vec![-110, -127]);
    let u = Tensor::from_values(dt::UINT8, &[1], &[3u8]).unwrap();
    let v = Tensor::from_values(dt::UINT8, &[1], &[5u8]).unwrap();
    assert_eq!(one("Sub", &[], &[u, v]).values::<u8>().unwrap(), vec![254]);
    let p = one("Pow", &[], &[i32s(&[], &[3]), i32s(&[], &[4])]);
    assert_eq!(vi(&p), vec![81]);
    assert!(run("Pow", &[], &[i32s(&[], &[3]), i32s(&[], &[-1])]).is_err());
}

#[test]
fn unary_rounding_and_activations() {
    let x = f32s(&[6], &[0.5, 1.5, 2.5, -0.5, -7.0, 8.0]);
    assert_eq!(vf(&one("Round", &[], &[x.clone()])), vec![0., 2., 2., -0., -7., 8.]);
    assert_eq!(vf(&one("Relu6", &[], &[x.clone()])), vec![0.5, 1.5, 2.5, 0., 0., 6.]);
    assert_eq!(vf(&one("Sign", &[], &[x.clone()])), vec![1., 1., 1., -1., -1., 1.]);
    let r = vf(&one("Rsqrt", &[], &[f32s(&[1], &[4.0])]));
    assert_eq!(r, vec![0.5]);
    let h = Tensor::from_values(dt::HALF, &[1], &[half::f16::from_f32(2.0)]).unwrap();
    let sq = one("Square", &[], &[h]);
    assert_eq!(sq.values::<half::f16>().unwrap(), vec![half::f16::from_f32(4.0)]);
}

#[test]
fn casts() {
    let x = f32s(&[4], &[1.9, -1.9, 0.0, 3.0]);
    let c = one("Cast", &[("SrcT", ty(dt::FLOAT)), ("DstT", ty(dt::INT32))], &[x.clone()]);
    assert_eq!(vi(&c), vec![1, -1, 0, 3]);
    let b = one("Cast", &[("SrcT", ty(dt::FLOAT)), ("DstT", ty(dt::BOOL))], &[x]);
    assert_eq!(b.values::<bool>().unwrap(), vec![true, true, false, true]);
    let big = f32s(&[1], &[3e10]);
    let r = run("Cast", &[("SrcT", ty(dt::FLOAT)), ("DstT", ty(dt::INT32))], &[big]);
    assert!(matches!(r, Err(EvalError::Unsupported(_))));
    let s = Tensor::from_strings(&[1], vec![b"a".to_vec()]).unwrap();
    assert!(run("Cast", &[("SrcT", ty(dt::STRING)), ("DstT", ty(dt::INT32))], &[s]).is_err());
}

#[test]
fn shapes_and_reshapes() {
    let x = f32s(&[2, 3], &[0., 1., 2., 3., 4., 5.]);
    assert_eq!(vi(&one("Shape", &[], &[x.clone()])), vec![2, 3]);
    let s64 = one("Shape", &[("out_type", ty(dt::INT64))], &[x.clone()]);
    assert_eq!(s64.values::<i64>().unwrap(), vec![2, 3]);
    assert_eq!(vi(&one("Size", &[], &[x.clone()])), vec![6]);
    assert_eq!(vi(&one("Rank", &[], &[x.clone()])), vec![2]);
    assert_eq!(one("Reshape", &[], &[x.clone(), i32s(&[2], &[-1, 2])]).shape, vec![3, 2]);
    assert!(run("Reshape", &[], &[x.clone(), i32s(&[2], &[4, -1])]).is_err());
    assert_eq!(one("ExpandDims", &[], &[x.clone(), i32s(&[], &[-1])]).shape, vec![2, 3, 1]);
    let sq = one("Squeeze", &[], &[one("Reshape", &[], &[x.clone(), i32s(&[4], &[1, 2, 1, 3])])]);
    assert_eq!(sq.shape, vec![2, 3]);
    let t = one("Transpose", &[], &[x.clone(), i32s(&[2], &[1, 0])]);
    assert_eq!((t.shape.clone(), vf(&t)), (vec![3, 2], vec![0., 3., 1., 4., 2., 5.]));
    let p = one("Pack", &[("axis", int(1))], &[f32s(&[2], &[1., 2.]), f32s(&[2], &[3., 4.])]);
    assert_eq!((p.shape.clone(), vf(&p)), (vec![2, 2], vec![1., 3., 2., 4.]));
    let u = run("Unpack", &[("num", int(3)), ("axis", int(1))], &[x.clone()]).unwrap();
    assert_eq!(
        u.iter().map(vf).collect::<Vec<_>>(),
        vec![vec![0., 3.], vec![1., 4.], vec![2., 5.]]
    );
    let c = one("ConcatV2", &[], &[x.clone(), x, i32s(&[], &[1])]);
    assert_eq!(c.shape, vec![2, 6]);
}

#[test]
fn strings_move_like_any_other_dtype() {
    let s = Tensor::from_strings(&[2], vec![b"ab".to_vec(), b"".to_vec()]).unwrap();
    let c = one("ConcatV2", &[], &[s.clone(), s.clone(), i32s(&[], &[0])]);
    let Data::Strings(v) = &c.data else { panic!("strings") };
    assert_eq!(v, &vec![b"ab".to_vec(), vec![], b"ab".to_vec(), vec![]]);
    let e =
        one("Equal", &[], &[s.clone(), Tensor::from_strings(&[], vec![b"ab".to_vec()]).unwrap()]);
    assert_eq!(e.values::<bool>().unwrap(), vec![true, false]);
    let f = one(
        "Fill",
        &[],
        &[i32s(&[1], &[3]), Tensor::from_strings(&[], vec![b"z".to_vec()]).unwrap()],
    );
    assert_eq!(f.len(), 3);
}

#[test]
fn strided_slice_masks() {
    let x = i32s(&[3, 4], &(0..12).collect::<Vec<_>>());
    let ss = |b: &[i32], e: &[i32], s: &[i32], m: &[(&str, i64)]| {
        let attrs: Vec<(&str, AttrValue)> = m.iter().map(|(k, v)| (*k, int(*v))).collect();
        let n = b.len() as i64;
        one("StridedSlice", &attrs, &[x.clone(), i32s(&[n], b), i32s(&[n], e), i32s(&[n], s)])
    };
    // x[1] (shrink)
    let r = ss(&[1], &[2], &[1], &[("shrink_axis_mask", 1)]);
    assert_eq!((r.shape.clone(), vi(&r)), (vec![4], vec![4, 5, 6, 7]));
    // x[::-1, 1:3]
    let r = ss(&[0, 1], &[0, 3], &[-1, 1], &[("begin_mask", 1), ("end_mask", 1)]);
    assert_eq!((r.shape.clone(), vi(&r)), (vec![3, 2], vec![9, 10, 5, 6, 1, 2]));
    // x[..., -1]
    let r = ss(&[0, -1], &[0, 0], &[1, 1], &[("ellipsis_mask", 1), ("shrink_axis_mask", 2)]);
    assert_eq!(vi(&r), vec![3, 7, 11]);
    // x[:, tf.newaxis, 0]
    let r = ss(
        &[0, 0, 0],
        &[0, 0, 1],
        &[1, 1, 1],
        &[("begin_mask", 1), ("end_mask", 1), ("new_axis_mask", 2), ("shrink_axis_mask", 4)],
    );
    assert_eq!((r.shape.clone(), vi(&r)), (vec![3, 1], vec![0, 4, 8]));
    // out of bounds shrink
    let n = node("StridedSlice", &[("shrink_axis_mask", int(1))]);
    let bad = evaluate(&n, &[x.clone(), i32s(&[1], &[5]), i32s(&[1], &[6]), i32s(&[1], &[1])]);
    assert!(matches!(bad, Err(EvalError::Invalid(_))));
}

#[test]
fn slices_gathers_tiles_pads() {
    let x = i32s(&[2, 3], &[0, 1, 2, 3, 4, 5]);
    let s = one("Slice", &[], &[x.clone(), i32s(&[2], &[0, 1]), i32s(&[2], &[-1, 2])]);
    assert_eq!((s.shape.clone(), vi(&s)), (vec![2, 2], vec![1, 2, 4, 5]));
    let g = one("GatherV2", &[], &[x.clone(), i32s(&[2], &[2, 0]), i32s(&[], &[1])]);
    assert_eq!((g.shape.clone(), vi(&g)), (vec![2, 2], vec![2, 0, 5, 3]));
    assert!(run("GatherV2", &[], &[x.clone(), i32s(&[1], &[3]), i32s(&[], &[1])]).is_err());
    let t = one("Tile", &[], &[x.clone(), i32s(&[2], &[1, 2])]);
    assert_eq!(vi(&t), vec![0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5]);
    let p = one("PadV2", &[], &[x.clone(), i32s(&[2, 2], &[1, 0, 0, 1]), i32s(&[], &[9])]);
    assert_eq!((p.shape.clone(), vi(&p)), (vec![3, 4], vec![9, 9, 9, 9, 0, 1, 2, 9, 3, 4, 5, 9]));
    let b = one("BroadcastTo", &[], &[i32s(&[3], &[1, 2, 3]), i32s(&[2], &[2, 3])]);
    assert_eq!(vi(&b), vec![1, 2, 3, 1, 2, 3]);
    let a = one("BroadcastArgs", &[], &[i32s(&[2], &[2, 1]), i32s(&[1], &[5])]);
    assert_eq!(vi(&a), vec![2, 5]);
    let r = one("ReverseV2", &[], &[x.clone(), i32s(&[1], &[1])]);
    assert_eq!(vi(&r), vec![2, 1, 0, 5, 4, 3]);
    let sp = run("SplitV", &[("num_split", int(2))], &[x, i32s(&[2], &[-1, 1]), i32s(&[], &[1])])
        .unwrap();
    assert_eq!((vi(&sp[0]), vi(&sp[1])), (vec![0, 1, 3, 4], vec![2, 5]));
}

#[test]
fn select_and_logic() {
    let c = Tensor::from_values(dt::BOOL, &[2], &[true, false]).unwrap();
    let t = i32s(&[2, 2], &[1, 2, 3, 4]);
    let e = i32s(&[2, 2], &[5, 6, 7, 8]);
    assert_eq!(vi(&one("Select", &[], &[c.clone(), t.clone(), e.clone()])), vec![1, 2, 7, 8]);
    // SelectV2 broadcasts the condition against the last axis.
    assert_eq!(vi(&one("SelectV2", &[], &[c.clone(), t, e])), vec![1, 6, 3, 8]);
    let n = one("LogicalNot", &[], &[c.clone()]);
    assert_eq!(one("LogicalOr", &[], &[c, n]).values::<bool>().unwrap(), vec![true, true]);
}

#[test]
fn reductions() {
    let x = i32s(&[2, 3], &[1, 2, 3, 4, 5, 7]);
    let s = one("Sum", &[("keep_dims", boolean(true))], &[x.clone(), i32s(&[1], &[1])]);
    assert_eq!((s.shape.clone(), vi(&s)), (vec![2, 1], vec![6, 16]));
    assert_eq!(vi(&one("Mean", &[], &[x.clone(), i32s(&[1], &[0])])), vec![2, 3, 5]);
    assert_eq!(vi(&one("Prod", &[], &[x.clone(), i32s(&[2], &[0, -1])])), vec![840]);
    assert_eq!(vi(&one("Max", &[], &[x.clone(), i32s(&[0], &[])])), vec![1, 2, 3, 4, 5, 7]);
    let f = f32s(&[3], &[1., 2., 4.]);
    assert_eq!(vf(&one("Mean", &[], &[f.clone(), i32s(&[], &[0])])), vec![7.0 / 3.0]);
    let am = one("ArgMax", &[], &[x, i32s(&[], &[1])]);
    assert_eq!(am.values::<i64>().unwrap(), vec![2, 2]);
}

#[test]
fn matrix_products() {
    let a = f32s(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
    let b = f32s(&[3, 2], &[1., 0., 0., 1., 1., 1.]);
    assert_eq!(vf(&one("MatMul", &[], &[a.clone(), b.clone()])), vec![4., 5., 10., 11.]);
    let bt = one("Transpose", &[], &[b, i32s(&[2], &[1, 0])]);
    let m = one("MatMul", &[("transpose_b", boolean(true))], &[a.clone(), bt]);
    assert_eq!(vf(&m), vec![4., 5., 10., 11.]);
    let batch = one("Reshape", &[], &[a, i32s(&[3], &[1, 2, 3])]);
    let eye = f32s(&[3, 3], &[1., 0., 0., 0., 1., 0., 0., 0., 1.]);
    let bm = one("BatchMatMulV2", &[], &[batch, eye]);
    assert_eq!((bm.shape.clone(), vf(&bm)), (vec![1, 2, 3], vec![1., 2., 3., 4., 5., 6.]));
}

#[test]
fn ranges() {
    let r = one("Range", &[], &[i32s(&[], &[10]), i32s(&[], &[0]), i32s(&[], &[-3])]);
    assert_eq!(vi(&r), vec![10, 7, 4, 1]);
    let f = one("Range", &[], &[f32s(&[], &[0.5]), f32s(&[], &[2.0]), f32s(&[], &[0.5])]);
    assert_eq!(vf(&f), vec![0.5, 1.0, 1.5]);
    assert!(run("Range", &[], &[i32s(&[], &[0]), i32s(&[], &[5]), i32s(&[], &[-1])]).is_err());
}

#[test]
fn unknown_ops_are_unsupported_never_fatal() {
    let r = run("Conv2D", &[], &[f32s(&[1], &[1.])]);
    assert!(matches!(r, Err(EvalError::Unsupported(_))));
    let r = run("Neg", &[], &[Tensor::from_strings(&[1], vec![b"x".to_vec()]).unwrap()]);
    assert!(matches!(r, Err(EvalError::Unsupported(_))));
    assert!(run("Neg", &[], &[]).is_err());
    assert!(supported_ops().contains(&"StridedSlice"));
}

/// Every kernel on hostile inputs (extreme integers, empty and mismatched shapes, strings,
/// absurd attributes): an error or a value, never a panic, and nothing allocated over the
/// output limit. (The panic is caught here, in the test, only to name the case.)
#[test]
fn no_kernel_panics_on_hostile_inputs() {
    let i64s = |shape: &[i64], v: &[i64]| Tensor::from_values(dt::INT64, shape, v).unwrap();
    let pool = vec![
        f32s(&[], &[1.5]),
        f32s(&[2, 3], &[1., -2., 3., f32::NAN, f32::INFINITY, 0.]),
        i32s(&[], &[-1]),
        i32s(&[2], &[2, -3]),
        i32s(&[4], &[1, 1 << 30, 1 << 30, 1]),
        i32s(&[0], &[]),
        i32s(&[], &[i32::MIN]),
        i64s(&[], &[i64::MAX]),
        i64s(&[], &[i64::MIN]),
        i64s(&[2], &[i64::MAX, i64::MIN]),
        i64s(&[1], &[1 << 62]),
        Tensor::from_strings(&[2], vec![b"ab".to_vec(), Vec::new()]).unwrap(),
        Tensor::from_values(dt::BOOL, &[2], &[true, false]).unwrap(),
        f32s(&[0, 1 << 40], &[]),
    ];
    let attr_sets: Vec<Vec<(&str, AttrValue)>> = vec![
        vec![],
        vec![
            ("N", int(2)),
            ("num", int(2)),
            ("num_split", int(2)),
            ("axis", int(-1)),
            ("keep_dims", boolean(true)),
            ("transpose_a", boolean(true)),
            ("adj_y", boolean(true)),
            ("begin_mask", int(1)),
            ("shrink_axis_mask", int(1)),
            ("DstT", ty(dt::INT32)),
            ("out_type", ty(dt::INT64)),
        ],
        vec![
            ("N", int(-1)),
            ("num", int(1 << 40)),
            ("num_split", int(i64::MAX)),
            ("axis", int(i64::MIN)),
            ("batch_dims", int(i64::MAX)),
            ("ellipsis_mask", int(-1)),
            ("new_axis_mask", int(i64::MAX)),
            ("shrink_axis_mask", int(-1)),
            ("DstT", ty(dt::STRING)),
            ("alpha", AttrValue { value: Some(Value::F(f32::NAN)) }),
        ],
    ];
    let mut cases = Vec::new();
    for a in 0..pool.len() {
        cases.push(vec![a]);
        for b in 0..pool.len() {
            cases.push(vec![a, b]);
            for c in [0, 3, 4, 7, 9, 10, 13] {
                cases.push(vec![a, b, c]);
            }
        }
    }
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut panics = Vec::new();
    let mut runs = 0;
    for op in supported_ops() {
        for (k, attrs) in attr_sets.iter().enumerate() {
            for case in &cases {
                let inputs: Vec<Tensor> = case.iter().map(|&i| pool[i].clone()).collect();
                let n = node(op, attrs);
                let r = std::panic::catch_unwind(|| {
                    with_output_limit(1 << 20, || evaluate(&n, &inputs))
                });
                runs += 1;
                if let Err(e) = r {
                    let msg = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    panics.push(format!("{op} {case:?} attrs#{k}: {msg}"));
                }
            }
        }
    }
    // StridedSlice takes four inputs: integer begin/end/strides of every kind, every mask.
    let ints_at = [2, 3, 4, 5, 6, 7, 8, 9, 10];
    for x in [1, 5, 13] {
        for &b in &ints_at {
            for &e in &ints_at {
                for &st in &ints_at {
                    for mask in [0, 1, -1, i64::MAX] {
                        let attrs: Vec<(&str, AttrValue)> = [
                            "begin_mask",
                            "end_mask",
                            "ellipsis_mask",
                            "new_axis_mask",
                            "shrink_axis_mask",
                        ]
                        .iter()
                        .map(|&k| (k, int(if k == "ellipsis_mask" { mask & 1 } else { mask })))
                        .collect();
                        let n = node("StridedSlice", &attrs);
                        let inputs = [&pool[x], &pool[b], &pool[e], &pool[st]].map(Clone::clone);
                        let r = std::panic::catch_unwind(|| {
                            with_output_limit(1 << 20, || evaluate(&n, &inputs))
                        });
                        runs += 1;
                        if let Err(p) = r {
                            let msg = p
                                .downcast_ref::<String>()
                                .cloned()
                                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_default();
                            panics
                                .push(format!("StridedSlice {x} {b} {e} {st} mask {mask}: {msg}"));
                        }
                    }
                }
            }
        }
    }
    std::panic::set_hook(hook);
    assert!(runs > 10_000, "{runs}");
    assert!(panics.is_empty(), "{} panics, e.g.:\n{}", panics.len(), panics.join("\n"));
}
