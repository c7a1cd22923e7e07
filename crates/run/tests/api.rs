//! Library-level tests that run graphs through the real TensorFlow runtime.

mod common;

use common::*;
use half::{bf16, f16};
use tf_run::compare::{compare, Tolerance};
use tf_run::graph::{candidate_outputs, placeholders};
use tf_run::npy::{read_npz_from, write_npz_to};
use tf_run::random::{random_tensor, Rng};
use tf_run::{DType, Data, Error, HostTensor, Model};

#[test]
fn matmul_graph_computes_numbers() {
    let g = matmul_graph(&W);
    let model = Model::load(&bytes(&g), "test graph").expect("load");
    let x = HostTensor::new(vec![2, 3], Data::F32(vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0])).unwrap();
    let out = model.run(&[("x", &x)], &["y:0", "mm"]).expect("run");
    // w = [[1,2],[3,4],[5,6]]
    let expect = Data::F32(vec![1.0, 2.0, 9.0, 12.0]);
    assert_eq!(out[0].shape, vec![2, 2]);
    assert_eq!(out[0].data, expect);
    assert_eq!(out[1].data, expect);
}

#[test]
fn placeholders_and_candidate_outputs() {
    let g = matmul_graph(&W);
    let ph = placeholders(&g);
    assert_eq!(ph.len(), 1);
    assert_eq!(ph[0].name, "x");
    assert_eq!(ph[0].dtype().unwrap(), DType::F32);
    assert_eq!(ph[0].shape, Some(vec![-1, 3]));
    assert_eq!(ph[0].concrete_shape(4).unwrap(), vec![4, 3]);
    let model = Model::load(&bytes(&g), "g").unwrap();
    assert_eq!(candidate_outputs(&g, model.graph()).unwrap(), vec!["y:0".to_string()]);
}

#[test]
fn every_dtype_round_trips_through_identity() {
    let cases: Vec<(i32, Data)> = vec![
        (1, Data::F32(vec![1.5, -2.25, 3.0, 0.0])),
        (2, Data::F64(vec![1.5, -2.25, 1e300, 0.0])),
        (3, Data::I32(vec![1, -2, i32::MAX, i32::MIN])),
        (4, Data::U8(vec![0, 1, 200, 255])),
        (5, Data::I16(vec![1, -2, 300, -300])),
        (6, Data::I8(vec![1, -2, 127, -128])),
        (9, Data::I64(vec![1, -2, i64::MAX, i64::MIN])),
        (10, Data::Bool(vec![true, false, false, true])),
        (14, Data::BF16([1.0f32, -2.0, 0.5, 3.0].iter().map(|&x| bf16::from_f32(x)).collect())),
        (17, Data::U16(vec![0, 1, 65535, 7])),
        (19, Data::F16([1.0f32, -2.0, 0.5, 65504.0].iter().map(|&x| f16::from_f32(x)).collect())),
        (22, Data::U32(vec![0, 1, u32::MAX, 7])),
        (23, Data::U64(vec![0, 1, u64::MAX, 7])),
        (8, Data::C64(vec![[1.0, 2.0], [-1.0, 0.5], [0.0, 0.0], [3.0, -4.0]])),
        (18, Data::C128(vec![[1.0, 2.0], [-1.0, 0.5], [0.0, 0.0], [3.0, -4.0]])),
        (
            7,
            Data::Str(vec![
                b"".to_vec(),
                b"short".to_vec(),
                b"a string that is longer than the small-string buffer".to_vec(),
                vec![0, 1, 2, 255],
            ]),
        ),
    ];
    for (code, data) in cases {
        let g = identity_graph(code, &[2, 2]);
        let model = Model::load(&bytes(&g), "identity").unwrap();
        let t = HostTensor::new(vec![2, 2], data).unwrap();
        let out = model.run(&[("p:0", &t)], &["out:0"]);
        let out = out.unwrap_or_else(|e| panic!("dtype {code}: {e}"));
        assert_eq!(out[0], t, "dtype {code}");
    }
}

#[test]
fn storage_typed_dtypes_round_trip_through_identity() {
    // Types without a Rust counterpart, held in their storage type.
    let cases: Vec<(DType, Data)> = vec![
        (DType::QInt8, Data::I8(vec![1, -2, 127, -128])),
        (DType::QUInt8, Data::U8(vec![0, 1, 200, 255])),
        (DType::QInt32, Data::I32(vec![1, -2, i32::MAX, i32::MIN])),
        (DType::Float8E5M2, Data::U8(vec![0, 60, 190, 52])),
        (DType::Float8E4M3FN, Data::U8(vec![0, 56, 188, 40])),
        (DType::Int4, Data::I8(vec![0, 1, -1, -8])),
        (DType::UInt4, Data::U8(vec![0, 1, 15, 8])),
    ];
    for (dtype, data) in cases {
        let g = identity_graph(dtype.code(), &[2, 2]);
        let model = Model::load(&bytes(&g), "identity").unwrap();
        let t = HostTensor::with_dtype(dtype, vec![2, 2], data).unwrap();
        let out = model.run(&[("p", &t)], &["out"]);
        let out = out.unwrap_or_else(|e| panic!("{dtype}: {e}"));
        assert_eq!(out[0], t, "{dtype}");
    }
    // float8 decoding: e4m3fn 56 = 1.0, 188 = -1.5; e5m2 60 = 1.0.
    let t = HostTensor::with_dtype(DType::Float8E4M3FN, vec![2], Data::U8(vec![56, 188])).unwrap();
    assert_eq!(t.to_f64().unwrap(), vec![1.0, -1.5]);
    let mf = DType::Float8E5M2.minifloat().unwrap();
    assert_eq!(mf.decode(60), 1.0);
    assert_eq!(mf.encode_nearest(1.0), 60);
    assert!(HostTensor::with_dtype(DType::Int4, vec![1], Data::I8(vec![9])).is_err());
}

#[test]
fn empty_and_scalar_tensors() {
    let g = identity_graph(1, &[0, 3]);
    let model = Model::load(&bytes(&g), "g").unwrap();
    let t = HostTensor::new(vec![0, 3], Data::F32(vec![])).unwrap();
    let out = model.run(&[("p", &t)], &["out"]).unwrap();
    assert_eq!(out[0].shape, vec![0, 3]);
    assert!(out[0].is_empty());

    let g = identity_graph(7, &[]);
    let model = Model::load(&bytes(&g), "g").unwrap();
    let t = HostTensor::new(vec![], Data::Str(vec![b"hello".to_vec()])).unwrap();
    let out = model.run(&[("p", &t)], &["out"]).unwrap();
    assert_eq!(out[0], t);
}

#[test]
fn tf_errors_carry_tensorflow_messages() {
    let g = matmul_graph(&W);
    let model = Model::load(&bytes(&g), "graph A").unwrap();
    // Wrong inner dimension: TF reports it at run time.
    let x = HostTensor::new(vec![1, 2], Data::F32(vec![1.0, 2.0])).unwrap();
    let err = model.run(&[("x", &x)], &["y"]).unwrap_err();
    match &err {
        Error::Tf { code, message, .. } => {
            assert_eq!(*code, "INVALID_ARGUMENT", "{err}");
            assert!(!message.is_empty());
            assert!(!message.contains('\n'));
        }
        other => panic!("expected a TF error, got {other}"),
    }
    assert!(err.to_string().contains("graph A"), "{err}");

    // Missing placeholder value.
    let err = model.run(&[], &["y"]).unwrap_err();
    assert!(err.to_string().to_lowercase().contains("placeholder"), "{err}");

    // Unknown tensors.
    let err = model.run(&[("x", &x)], &["nope:0"]).unwrap_err();
    assert!(matches!(err, Error::TensorNotFound { .. }), "{err}");
    assert_eq!(err.to_string(), "tensor 'nope:0' not found in graph A");
    let err = model.run(&[("x", &x)], &["y:3"]).unwrap_err();
    assert!(err.to_string().contains("has 1 output"), "{err}");
}

#[test]
fn bad_graphs_are_errors() {
    // A node with an unknown op: import fails with TF's message.
    let mut g = matmul_graph(&W);
    g.node.push(node("z", "NoSuchOpAnywhere", &["y"]));
    let err = Model::load(&bytes(&g), "bad").err().expect("import must fail");
    assert!(err.to_string().contains("NoSuchOpAnywhere"), "{err}");
    // An input that does not exist.
    let mut g = matmul_graph(&W);
    g.node.push(with_t(node("z", "Identity", &["missing"]), DT_FLOAT));
    assert!(Model::load(&bytes(&g), "bad").is_err());
    // Garbage bytes.
    assert!(Model::load(b"\xff\xff\xff\xff garbage", "bad").is_err());
}

#[test]
fn npz_round_trip_all_types() {
    let arrays: Vec<(String, HostTensor)> = vec![
        (
            "a/f32:0".into(),
            HostTensor::new(vec![2, 2], Data::F32(vec![1.0, 2.0, 3.0, 4.0])).unwrap(),
        ),
        ("i64".into(), HostTensor::new(vec![3], Data::I64(vec![1, -2, 3])).unwrap()),
        ("b".into(), HostTensor::new(vec![], Data::Bool(vec![true])).unwrap()),
        ("h".into(), HostTensor::new(vec![1], Data::F16(vec![f16::from_f32(0.5)])).unwrap()),
        ("c".into(), HostTensor::new(vec![1], Data::C64(vec![[1.0, -1.0]])).unwrap()),
        (
            "s".into(),
            HostTensor::new(vec![2], Data::Str(vec![b"ab".to_vec(), b"xyz".to_vec()])).unwrap(),
        ),
    ];
    let mut buf = std::io::Cursor::new(Vec::new());
    write_npz_to(&mut buf, &arrays).unwrap();
    buf.set_position(0);
    let back = read_npz_from(buf).unwrap();
    assert_eq!(back.len(), arrays.len());
    for (k, t) in &arrays {
        assert_eq!(back.get(k), Some(t), "{k}");
    }
}

#[test]
fn random_inputs_are_seeded_and_in_range() {
    let a = random_tensor(DType::F32, vec![100], &mut Rng::for_name(7, "x")).unwrap();
    let b = random_tensor(DType::F32, vec![100], &mut Rng::for_name(7, "x")).unwrap();
    let c = random_tensor(DType::F32, vec![100], &mut Rng::for_name(8, "x")).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    let v = a.data.to_f64().unwrap();
    assert!(v.iter().all(|&x| (-1.0..1.0).contains(&x)));
    let i = random_tensor(DType::I32, vec![100], &mut Rng::new(1)).unwrap();
    assert!(i.data.to_i128().unwrap().iter().all(|&x| (0..10).contains(&x)));
}

#[test]
fn compare_metrics() {
    let a = HostTensor::new(vec![4], Data::F32(vec![1.0, 2.0, 3.0, f32::NAN])).unwrap();
    let same = compare("y", "y", &a, &a, Tolerance::default());
    assert!(same.ok());
    assert_eq!(same.max_abs, Some(0.0));
    assert_eq!(same.outliers, 0);
    let b = HostTensor::new(vec![4], Data::F32(vec![1.0, 2.5, 3.0, f32::NAN])).unwrap();
    let d = compare("y", "y", &a, &b, Tolerance::default());
    assert!(!d.ok());
    assert_eq!(d.outliers, 1);
    assert_eq!(d.max_abs, Some(0.5));
    assert_eq!(d.first_outlier.as_ref().unwrap().index, vec![1]);
    let loose = compare("y", "y", &a, &b, Tolerance { atol: Some(0.6), rtol: Some(0.0) });
    assert!(loose.ok());
    let ints = HostTensor::new(vec![2], Data::I32(vec![1, 2])).unwrap();
    let ints2 = HostTensor::new(vec![2], Data::I32(vec![1, 3])).unwrap();
    let c = compare("i", "i", &ints, &ints2, Tolerance { atol: Some(10.0), rtol: None });
    assert!(!c.ok(), "integers compare exactly whatever the tolerance");
    let shape = HostTensor::new(vec![1, 2], Data::I32(vec![1, 2])).unwrap();
    assert!(!compare("i", "i", &ints, &shape, Tolerance::default()).ok());
}

#[test]
fn npz_key_conventions() {
    use tf_run::cli::npz_key_tensor_names;
    assert_eq!(npz_key_tensor_names("x"), vec!["x:0"]);
    assert_eq!(npz_key_tensor_names("x:1"), vec!["x:1"]);
    assert_eq!(
        npz_key_tensor_names("dense/Softmax__0"),
        vec!["dense/Softmax__0:0", "dense/Softmax:0"]
    );
    assert!(npz_key_tensor_names("input:img").contains(&"img:0".to_string()));
}

#[test]
fn placeholder_with_default_is_optional() {
    use tf_run::graph::feedable_inputs;
    let mut g = matmul_graph(&W);
    let mut d = node("flag", "PlaceholderWithDefault", &["w"]);
    d = with_t(d, DT_FLOAT);
    d.attr.insert(
        "dtype".into(),
        tf_proto::tensorflow::AttrValue {
            value: Some(tf_proto::tensorflow::attr_value::Value::Type(DT_FLOAT)),
        },
    );
    g.node.push(d);
    assert_eq!(placeholders(&g).len(), 1);
    let all = feedable_inputs(&g);
    assert_eq!(all.len(), 2);
    assert!(all[1].optional);
}
