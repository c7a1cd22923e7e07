//! Unit tests on hand-built nodes. The comparison against nodes built by TensorFlow itself is
//! in `tests/arity_cases.rs`.

use prost::Message;
use tf_proto::tensorflow::attr_value::{ListValue, Value};
use tf_proto::tensorflow::op_def::{ArgDef, AttrDef};
use tf_proto::tensorflow::{
    AttrValue, DataType, FunctionDef, FunctionDefLibrary, NodeDef, OpDef, OpList,
};

use super::*;

const F32: i32 = DataType::DtFloat as i32;
const I32: i32 = DataType::DtInt32 as i32;

fn ops() -> &'static Registry {
    Registry::global()
}

fn node(name: &str, op: &str) -> NodeDef {
    NodeDef { name: name.into(), op: op.into(), ..Default::default() }
}

fn with(mut node: NodeDef, attr: &str, value: Value) -> NodeDef {
    node.attr.insert(attr.into(), AttrValue { value: Some(value) });
    node
}

fn types(ts: &[i32]) -> Value {
    Value::List(Box::new(ListValue { r#type: ts.to_vec(), ..Default::default() }))
}

#[test]
fn embedded_registry_is_complete() {
    let ops = ops();
    assert!(ops.len() > 1000, "{} ops", ops.len());
    for op in ["Conv2D", "FusedBatchNormV3", "StatefulPartitionedCall", "_Arg", "_Retval", "_Recv"]
    {
        assert!(ops.contains(op), "{op} missing");
        assert_eq!(ops.get(op).unwrap().name, op);
    }
    assert!(ops.get("NoSuchOp").is_none());
    assert_eq!(ops.version(), "2.21.0");
}

#[test]
fn embedded_data_is_canonical_and_matches_version_file() {
    let bytes = include_bytes!("../data/ops.pb");
    let list = OpList::decode(&bytes[..]).unwrap();
    // The script writes the bytes prost would: re-encoding is the identity.
    assert!(list.encode_to_vec() == bytes, "ops.pb is not in canonical (prost) encoding");
    let names: Vec<&str> = list.op.iter().map(|o| o.name.as_str()).collect();
    assert!(names.windows(2).all(|w| w[0] < w[1]), "ops.pb is not sorted by name");
    assert_eq!(ops().iter().map(|o| o.name.as_str()).collect::<Vec<_>>(), names);
    let version = include_str!("../data/VERSION");
    assert!(version.lines().any(|l| l == format!("ops {}", ops().len())), "{version}");
    // Descriptions were stripped.
    for op in &list.op {
        assert!(op.summary.is_empty() && op.description.is_empty(), "{}", op.name);
        let args = op.input_arg.iter().chain(&op.output_arg);
        assert!(args.clone().all(|a| a.description.is_empty()), "{}", op.name);
        assert!(op.attr.iter().all(|a| a.description.is_empty()), "{}", op.name);
    }
}

#[test]
fn statefulness() {
    assert_eq!(ops().is_stateful("VariableV2"), Some(true));
    assert_eq!(ops().is_stateful("StatefulPartitionedCall"), Some(true));
    assert_eq!(ops().is_stateful("RandomUniform"), Some(true));
    assert_eq!(ops().is_stateful("Add"), Some(false));
    assert_eq!(ops().is_stateful("PartitionedCall"), Some(false));
    assert_eq!(ops().is_stateful("Nope"), None);
}

#[test]
fn concat_v2_arity() {
    let n = with(node("c", "ConcatV2"), "N", Value::I(3));
    assert_eq!(ops().output_arity(&n).unwrap(), 1);
    assert_eq!(ops().input_arity(&n).unwrap(), 4);
    assert_eq!(ops().input_port_range(&n, "values").unwrap(), 0..3);
    assert_eq!(ops().input_port_range(&n, "axis").unwrap(), 3..4);
}

#[test]
fn concat_v2_without_n_names_the_attr() {
    let err = ops().input_arity(&node("c", "ConcatV2")).unwrap_err();
    assert_eq!(err.to_string(), "node 'c' (ConcatV2): attribute 'N' missing");
    assert!(matches!(err, OpError::MissingAttr { ref attr, .. } if attr == "N"));
    // The output is a single tensor, whatever N is.
    assert_eq!(ops().output_arity(&node("c", "ConcatV2")).unwrap(), 1);
}

#[test]
fn unpack_and_split() {
    let n = with(with(node("u", "Unpack"), "num", Value::I(3)), "T", Value::Type(F32));
    assert_eq!(ops().output_arity(&n).unwrap(), 3);
    assert_eq!(ops().output_types(&n).unwrap(), vec![F32; 3]);
    // num_split has no default.
    let err = ops().output_arity(&node("s", "Split")).unwrap_err();
    assert_eq!(err.to_string(), "node 's' (Split): attribute 'num_split' missing");
    let n = with(node("s", "Split"), "num_split", Value::I(-1));
    let err = ops().output_arity(&n).unwrap_err();
    assert!(matches!(err, OpError::NegativeLength { value: -1, .. }), "{err}");
}

#[test]
fn fused_batch_norm_v3() {
    let n = node("bn", "FusedBatchNormV3");
    assert_eq!(ops().output_arity(&n).unwrap(), 6);
    assert_eq!(ops().input_arity(&n).unwrap(), 5);
    assert_eq!(ops().output_port_range(&n, "y").unwrap(), 0..1);
    assert_eq!(ops().output_port_range(&n, "reserve_space_3").unwrap(), 5..6);
    let err = ops().output_port_range(&n, "nope").unwrap_err();
    assert_eq!(err.to_string(), "node 'bn' (FusedBatchNormV3): op has no output argument 'nope'");
    // Types need T and U, which have no default.
    let err = ops().output_types(&n).unwrap_err();
    assert_eq!(err.to_string(), "node 'bn' (FusedBatchNormV3): attribute 'T' missing");
    let n = with(with(n, "T", Value::Type(DataType::DtHalf as i32)), "U", Value::Type(F32));
    let half = DataType::DtHalf as i32;
    assert_eq!(ops().output_types(&n).unwrap(), vec![half, F32, F32, F32, F32, F32]);
}

#[test]
fn identity_n_type_list() {
    let n = with(node("i", "IdentityN"), "T", types(&[F32, I32]));
    assert_eq!(ops().output_arity(&n).unwrap(), 2);
    assert_eq!(ops().input_arity(&n).unwrap(), 2);
    assert_eq!(ops().output_types(&n).unwrap(), vec![F32, I32]);
    assert_eq!(ops().input_types(&n).unwrap(), vec![F32, I32]);
    // Wrong kind of value.
    let n = with(
        node("i", "IdentityN"),
        "T",
        Value::List(Box::new(ListValue { i: vec![1], ..Default::default() })),
    );
    let err = ops().output_arity(&n).unwrap_err();
    assert_eq!(
        err.to_string(),
        "node 'i' (IdentityN): attribute 'T' should be list(type), found list(int)"
    );
    let n = with(node("i", "IdentityN"), "T", Value::Placeholder("T".into()));
    assert!(matches!(ops().output_arity(&n), Err(OpError::Placeholder { .. })));
    let mut n = node("i", "IdentityN");
    n.attr.insert("T".into(), AttrValue { value: None });
    let err = ops().output_arity(&n).unwrap_err();
    assert!(err.to_string().ends_with("should be list(type), found no value"), "{err}");
}

#[test]
fn ref_outputs() {
    let v = with(node("v", "VariableV2"), "dtype", Value::Type(F32));
    assert_eq!(ops().output_types(&v).unwrap(), vec![101]);
    assert_eq!(ops().output_types(&v).unwrap(), vec![DataType::DtFloatRef as i32]);
    let a = with(node("a", "Assign"), "T", Value::Type(F32));
    assert_eq!(ops().input_types(&a).unwrap(), vec![101, F32]);
    assert_eq!(ops().output_types(&a).unwrap(), vec![101]);
}

#[test]
fn number_attr_default() {
    // NIntsOutDefault (a test op in the wheel): N defaults to 3.
    let n = node("n", "NIntsOutDefault");
    assert_eq!(ops().output_arity(&n).unwrap(), 3);
    assert_eq!(ops().output_types(&n).unwrap(), vec![I32; 3]);
    // _FusedConv2D: num_host_args defaults to 0.
    let n = with(node("c", "_FusedConv2D"), "TArgs", types(&[F32]));
    assert_eq!(ops().input_arity(&n).unwrap(), 3);
    // ParseSingleSequenceExample: all its list lengths default to 0.
    let n = node("p", "ParseSingleSequenceExample");
    assert_eq!(ops().output_arity(&n).unwrap(), 0);
    assert_eq!(ops().input_arity(&n).unwrap(), 3);
}

#[test]
fn unknown_op() {
    let err = ops().output_arity(&node("x", "Foo")).unwrap_err();
    assert_eq!(err.to_string(), "node 'x' (Foo): op not in the TensorFlow 2.21 registry");
    let lib = FunctionDefLibrary::default();
    let err = ops().output_arity_with_library(&node("x", "Foo"), Some(&lib)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "node 'x' (Foo): op not in the TensorFlow 2.21 registry nor the graph's function library"
    );
    let custom = Registry::from_op_list(OpList::default());
    assert!(custom.is_empty());
    let err = custom.output_arity(&node("x", "Foo")).unwrap_err();
    assert_eq!(err.to_string(), "node 'x' (Foo): op not in the op registry");
}

#[test]
fn conv2d_defaults() {
    let mut n = with(node("c", "Conv2D"), "T", Value::Type(F32));
    let defaults: Vec<&str> = ops().default_attrs("Conv2D").map(|(k, _)| k).collect();
    assert_eq!(defaults, ["use_cudnn_on_gpu", "explicit_paddings", "data_format", "dilations"]);
    assert_eq!(ops().add_default_attrs(&mut n), 4);
    let mut keys: Vec<&str> = n.attr.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["T", "data_format", "dilations", "explicit_paddings", "use_cudnn_on_gpu"]);
    assert_eq!(n.attr["data_format"].value, Some(Value::S(b"NHWC".to_vec())));
    assert_eq!(n.attr["use_cudnn_on_gpu"].value, Some(Value::B(true)));
    assert_eq!(
        n.attr["dilations"].value,
        Some(Value::List(Box::new(ListValue { i: vec![1, 1, 1, 1], ..Default::default() })))
    );
    // `explicit_paddings` defaults to a present, empty list.
    assert_eq!(n.attr["explicit_paddings"].value, Some(Value::List(Box::default())));
    assert_eq!(ops().add_default_attrs(&mut n), 0);
    assert_eq!(ops().strip_default_attrs(&mut n), 4);
    assert_eq!(n.attr.keys().collect::<Vec<_>>(), ["T"]);
    assert_eq!(ops().default_attrs("NoSuchOp").count(), 0);
}

#[test]
fn strip_then_add_is_identity() {
    let mut n = with(node("c", "Conv2D"), "T", Value::Type(F32));
    n.attr.insert("data_format".into(), AttrValue { value: Some(Value::S(b"NCHW".to_vec())) });
    n.attr.insert("padding".into(), AttrValue { value: Some(Value::S(b"SAME".to_vec())) });
    ops().add_default_attrs(&mut n);
    let full = n.clone();
    assert_eq!(ops().strip_default_attrs(&mut n), 3); // data_format differs from NHWC
    assert_eq!(n.attr["data_format"].value, Some(Value::S(b"NCHW".to_vec())));
    assert_eq!(ops().add_default_attrs(&mut n), 3);
    assert_eq!(n, full);
    // Every registered op: strip then add restores a node carrying all defaults.
    for op in ops() {
        let mut n = node("n", &op.name);
        let added = ops().add_default_attrs(&mut n);
        let full = n.clone();
        assert_eq!(ops().strip_default_attrs(&mut n), added, "{}", op.name);
        assert!(n.attr.is_empty());
        ops().add_default_attrs(&mut n);
        assert_eq!(n, full, "{}", op.name);
    }
    // Unknown ops are left alone.
    let mut n = with(node("x", "Foo"), "a", Value::I(1));
    assert_eq!(ops().add_default_attrs(&mut n) + ops().strip_default_attrs(&mut n), 0);
}

#[test]
fn attr_comparison_is_bytewise() {
    let zero = AttrValue { value: Some(Value::F(0.0)) };
    let neg_zero = AttrValue { value: Some(Value::F(-0.0)) };
    let nan = AttrValue { value: Some(Value::F(f32::NAN)) };
    assert!(!signature::attr_values_equal(&zero, &neg_zero));
    assert!(signature::attr_values_equal(&nan, &nan.clone()));
}

/// A FunctionDef signature `f(x: float) -> (a: float, b: int32)`.
fn library() -> FunctionDefLibrary {
    let arg = |name: &str, t: i32| ArgDef { name: name.into(), r#type: t, ..Default::default() };
    let signature = OpDef {
        name: "two_outputs".into(),
        input_arg: vec![arg("x", F32)],
        output_arg: vec![arg("a", F32), arg("b", I32)],
        ..Default::default()
    };
    FunctionDefLibrary {
        function: vec![FunctionDef { signature: Some(signature), ..Default::default() }],
        ..Default::default()
    }
}

#[test]
fn function_calls_use_the_library() {
    let lib = library();
    let call = node("call", "two_outputs");
    assert!(matches!(ops().output_arity(&call), Err(OpError::UnknownOp { .. })));
    assert_eq!(ops().output_arity_with_library(&call, Some(&lib)).unwrap(), 2);
    assert_eq!(ops().input_arity_with_library(&call, Some(&lib)).unwrap(), 1);
    assert_eq!(ops().output_types_with_library(&call, Some(&lib)).unwrap(), vec![F32, I32]);
    assert_eq!(ops().output_port_range_with_library(&call, "b", Some(&lib)).unwrap(), 1..2);
    // Registered ops still resolve with a library.
    let bn = node("bn", "FusedBatchNormV3");
    assert_eq!(ops().output_arity_with_library(&bn, Some(&lib)).unwrap(), 6);

    let sigs = ops().with_library(Some(&lib));
    assert!(sigs.is_function("two_outputs") && !sigs.is_function("Conv2D"));
    assert_eq!(sigs.output_arity(&call).unwrap(), 2);
    assert_eq!(sigs.output_types(&call).unwrap(), vec![F32, I32]);
    assert_eq!(sigs.input_types(&call).unwrap(), vec![F32]);
    assert_eq!(sigs.output_port_range(&call, "a").unwrap(), 0..1);
    assert_eq!(sigs.input_port_range(&call, "x").unwrap(), 0..1);
    assert_eq!(sigs.input_arity(&bn).unwrap(), 5);
    assert_eq!(sigs.get("Conv2D").map(|d| d.name.as_str()), Some("Conv2D"));
    let err = sigs.output_arity(&node("x", "Foo")).unwrap_err();
    assert!(err.to_string().ends_with("nor the graph's function library"), "{err}");
    let no_lib = ops().with_library(None);
    assert!(no_lib.output_arity(&call).is_err());
}

#[test]
fn custom_registry_and_untyped_arg() {
    let op = OpDef {
        name: "Broken".into(),
        output_arg: vec![ArgDef { name: "y".into(), ..Default::default() }],
        attr: vec![AttrDef { name: "k".into(), r#type: "int".into(), ..Default::default() }],
        ..Default::default()
    };
    let reg = Registry::from_op_list(OpList { op: vec![op] }).with_version("9.9.1");
    assert_eq!(reg.version(), "9.9.1");
    assert_eq!(reg.len(), 1);
    let n = node("b", "Broken");
    assert_eq!(reg.output_arity(&n).unwrap(), 1);
    let err = reg.output_types(&n).unwrap_err();
    assert_eq!(err.to_string(), "node 'b' (Broken): argument 'y' of the op definition has no type");
    let err = reg.output_arity(&node("x", "Foo")).unwrap_err();
    assert_eq!(err.to_string(), "node 'x' (Foo): op not in the TensorFlow 9.9 registry");
}

#[test]
fn every_op_with_defaults_only() {
    // Sanity sweep: for every op, arity either resolves from defaults alone or names a
    // missing attribute (never a type error or a panic).
    let mut resolved = 0;
    for op in ops() {
        let n = node("n", &op.name);
        match ops().output_arity(&n) {
            Ok(_) => resolved += 1,
            Err(OpError::MissingAttr { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert!(resolved > 1000, "{resolved}");
}

#[test]
fn absurd_list_lengths_are_refused() {
    // A 43-byte node claiming 2^31 outputs must not be taken at face value.
    for (op, attr) in [
        ("Split", "num_split"),
        ("SplitV", "num_split"),
        ("Unpack", "num"),
        ("ShapeN", "N"),
        ("DynamicPartition", "num_partitions"),
    ] {
        let n = with(with(node("s", op), attr, Value::I(1 << 31)), "T", Value::Type(F32));
        let err = ops().output_arity(&n).unwrap_err();
        assert!(matches!(err, OpError::TooLong { value, .. } if value == 1 << 31), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "node 's' ({op}): attribute '{attr}' is 2147483648, more than the 1048576 \
                 tensors a list argument may have"
            )
        );
        assert!(ops().output_types(&n).is_err());
        // The limit itself is accepted.
        let n = with(n, attr, Value::I(signature::MAX_LIST_LEN as i64));
        assert_eq!(ops().output_arity(&n).unwrap(), signature::MAX_LIST_LEN);
        let n = with(n, attr, Value::I(signature::MAX_LIST_LEN as i64 + 1));
        assert!(ops().output_arity(&n).is_err());
    }
}

#[test]
fn every_number_attr_is_bounded() {
    // Every op whose arity comes from an int attribute: set it to i64::MAX and ask for every
    // query; each one must refuse (and none may allocate).
    let mut checked = 0;
    for op in ops() {
        let attrs: Vec<&str> = op
            .input_arg
            .iter()
            .chain(&op.output_arg)
            .filter(|a| !a.number_attr.is_empty())
            .map(|a| a.number_attr.as_str())
            .collect();
        for attr in attrs {
            let mut n = node("n", &op.name);
            for a in &op.attr {
                match a.r#type.as_str() {
                    "type" => n = with(n, &a.name, Value::Type(F32)),
                    "int" => n = with(n, &a.name, Value::I(1)),
                    "list(type)" => n = with(n, &a.name, types(&[])),
                    _ => {}
                }
            }
            let n = with(n, attr, Value::I(i64::MAX));
            let errs = [
                ops().output_arity(&n).err(),
                ops().input_arity(&n).err(),
                ops().output_types(&n).err(),
                ops().input_types(&n).err(),
            ];
            assert!(
                errs.iter().flatten().any(|e| matches!(e, OpError::TooLong { .. })),
                "{}: {errs:?}",
                op.name
            );
            checked += 1;
        }
    }
    assert!(checked > 50, "{checked}");
}

#[test]
fn owned_signatures_answer_like_borrowed_ones() {
    let mut lib = library();
    let owned = Signatures::owned(ops(), Some(&lib));
    // The library may change (or go) while the owned view is asked.
    lib.function.clear();
    let call = node("call", "two_outputs");
    assert!(owned.is_function("two_outputs"));
    assert_eq!(owned.output_arity(&call).unwrap(), 2);
    assert_eq!(owned.output_types(&call).unwrap(), vec![F32, I32]);
    assert_eq!(owned.get("Conv2D").map(|d| d.name.as_str()), Some("Conv2D"));
}

#[test]
fn stateful_flags_come_from_the_registry_and_the_library() {
    let mut lib = library();
    let sig = lib.function[0].signature.as_mut().unwrap();
    sig.is_stateful = true;
    let name = sig.name.clone();
    let sigs = ops().with_library(Some(&lib));
    assert_eq!(sigs.is_stateful(&name), Some(true));
    assert_eq!(sigs.is_stateful("VarHandleOp"), Some(true));
    assert_eq!(sigs.is_stateful("Add"), Some(false));
    assert_eq!(sigs.is_stateful("NoSuchOp"), None);
}

#[test]
fn pass_through_ops() {
    for op in ["Identity", "Snapshot", "StopGradient", "PreventGradient"] {
        assert!(crate::is_pass_through(op) && crate::is_pass_through_per_port(op), "{op}");
        // One input, one output, per the registry.
        let d = ops().get(op).unwrap();
        assert_eq!((d.input_arg.len(), d.output_arg.len()), (1, 1), "{op}");
    }
    // IdentityN passes through port by port only.
    assert!(!crate::is_pass_through("IdentityN"));
    assert!(crate::is_pass_through_per_port("IdentityN"));
    for op in ["CheckNumerics", "Cast", "Reshape", "NoOp"] {
        assert!(!crate::is_pass_through_per_port(op), "{op}");
    }
}
