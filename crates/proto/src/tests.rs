//! Round-trip, determinism, zero-copy and text-format tests for the generated types.

use crate::tensorflow::attr_value::{ListValue, Value};
use crate::tensorflow::*;
use bytes::Bytes;
use prost::Message;

fn func(name: &str) -> NameAttrList {
    let mut f = NameAttrList { name: name.into(), ..Default::default() };
    f.attr.insert("T".into(), DataType::DtFloat.into());
    f
}

fn sample_graph() -> GraphDef {
    let mut call = NodeDef {
        name: "call".into(),
        op: "StatefulPartitionedCall".into(),
        input: vec!["x".into(), "y:1".into(), "^init".into()],
        device: "/device:CPU:0".into(),
        experimental_debug_info: Some(node_def::ExperimentalDebugInfo {
            original_node_names: vec!["a".into(), "b".into()],
            original_func_names: vec!["f".into()],
        }),
        experimental_type: Some(FullTypeDef {
            type_id: FullTypeId::TftProduct as i32,
            args: vec![FullTypeDef {
                type_id: FullTypeId::TftTensor as i32,
                args: vec![FullTypeDef {
                    type_id: FullTypeId::TftFloat as i32,
                    ..Default::default()
                }],
                attr: Some(full_type_def::Attr::S("t".into())),
            }],
            attr: None,
        }),
        ..Default::default()
    };
    call.set_attr("f", func("body"));
    call.set_attr(
        "branches",
        ListValue { func: vec![func("then"), func("else")], ..Default::default() },
    );
    call.set_attr("explicit_paddings", ListValue::default());
    call.set_attr("s", "");
    call.set_attr("i", 0i64);
    call.set_attr("placeholder", AttrValue { value: Some(Value::Placeholder("T".into())) });

    let tensor = TensorProto {
        dtype: DataType::DtVariant as i32,
        tensor_shape: Some(TensorShapeProto {
            dim: vec![tensor_shape_proto::Dim { size: 2, name: "batch".into() }],
            unknown_rank: false,
        }),
        uint32_val: vec![1, u32::MAX],
        uint64_val: vec![u64::MAX],
        float8_val: vec![0x38, 0xff],
        variant_val: vec![VariantTensorDataProto {
            type_name: "tensorflow::TensorList".into(),
            metadata: vec![1, 2, 3],
            tensors: vec![TensorProto {
                dtype: DataType::DtFloat as i32,
                tensor_content: Bytes::from_static(&[0, 0, 128, 63]),
                ..Default::default()
            }],
        }],
        ..Default::default()
    };
    let mut konst = NodeDef { name: "c".into(), op: "Const".into(), ..Default::default() };
    konst.set_attr("value", tensor);
    konst.set_attr("dtype", AttrValue { value: Some(Value::Type(DataType::DtVariant as i32)) });

    let mut fdef = FunctionDef {
        signature: Some(OpDef {
            name: "body".into(),
            control_output: vec!["side_effect".into()],
            ..Default::default()
        }),
        ..Default::default()
    };
    fdef.ret.insert("out".into(), "MatMul:product:0".into());
    fdef.control_ret.insert("side_effect".into(), "assign".into());
    let mut arg = function_def::ArgAttrs::default();
    arg.attr.insert("_user_specified_name".into(), "x".into());
    fdef.arg_attr.insert(0, arg);
    fdef.resource_arg_unique_id.insert(0, 7);

    let mut debug = GraphDebugInfo { files: vec!["model.py".into()], ..Default::default() };
    debug.frames_by_id.insert(
        42,
        graph_debug_info::FileLineCol { file_index: Some(0), line: Some(10), ..Default::default() },
    );
    debug.name_to_trace_id.insert("call".into(), 5);
    debug
        .traces_by_id
        .insert(5, graph_debug_info::StackTrace { frame_id: vec![42], ..Default::default() });

    GraphDef {
        node: vec![call, konst],
        library: Some(FunctionDefLibrary { function: vec![fdef], ..Default::default() }),
        versions: Some(VersionDef { producer: 2474, min_consumer: 12, bad_consumers: vec![] }),
        debug_info: Some(debug),
        ..Default::default()
    }
}

#[test]
fn graph_round_trip_keeps_everything() {
    let g = sample_graph();
    let bytes = g.encode_to_vec();
    let back = GraphDef::decode(bytes.as_slice()).unwrap();
    assert_eq!(back, g);
    assert_eq!(back.encode_to_vec(), bytes, "re-encoding is byte-stable");

    let call = &back.node[0];
    assert_eq!(call.attr_func("f").unwrap().name, "body");
    let names: Vec<_> =
        call.attr_list_func("branches").unwrap().iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["then", "else"]);
    // Present-but-default oneof values survive.
    assert_eq!(call.attr_list_i64("explicit_paddings").unwrap(), &[] as &[i64]);
    assert_eq!(call.attr_str("s").unwrap(), "");
    assert_eq!(call.attr_i64("i").unwrap(), 0);
    assert_eq!(call.experimental_type.as_ref().unwrap().type_id(), FullTypeId::TftProduct);
    let t = back.node[1].attr_tensor("value").unwrap();
    assert_eq!(t.uint32_val, [1, u32::MAX]);
    assert_eq!(t.float8_val, [0x38, 0xff]);
    assert_eq!(t.variant_val[0].tensors[0].tensor_content.as_ref(), &[0, 0, 128, 63]);
}

#[test]
fn unknown_enum_values_survive() {
    let t = TensorProto { dtype: 999, ..Default::default() };
    let back = TensorProto::decode(t.encode_to_vec().as_slice()).unwrap();
    assert_eq!(back.dtype, 999);
    assert_eq!(back.dtype(), DataType::DtInvalid); // prost's typed getter falls back
}

/// Field 5 (attr) entries of an encoded NodeDef, in wire order.
fn attr_keys_on_wire(mut buf: &[u8]) -> Vec<String> {
    use prost::encoding::{decode_key, decode_varint, WireType};
    let mut keys = Vec::new();
    while !buf.is_empty() {
        let (tag, wt) = decode_key(&mut buf).unwrap();
        assert_eq!(wt, WireType::LengthDelimited);
        let len = decode_varint(&mut buf).unwrap() as usize;
        let (field, rest) = buf.split_at(len);
        buf = rest;
        if tag == 5 {
            // map entry: key = field 1 (string)
            let mut e = field;
            let (k, _) = decode_key(&mut e).unwrap();
            assert_eq!(k, 1);
            let klen = decode_varint(&mut e).unwrap() as usize;
            keys.push(String::from_utf8(e[..klen].to_vec()).unwrap());
        }
    }
    keys
}

#[test]
fn maps_encode_sorted_by_key() {
    // Hand-build a NodeDef whose attrs are on the wire in unsorted order.
    let entry = |k: &str, v: i64| {
        let mut e = Vec::new();
        prost::encoding::string::encode(1, &k.to_string(), &mut e);
        prost::encoding::message::encode(2, &AttrValue::from(v), &mut e);
        e
    };
    let mut wire = Vec::new();
    prost::encoding::string::encode(1, &"n".to_string(), &mut wire);
    for (k, v) in [("zeta", 1), ("T", 2), ("_class", 3), ("alpha", 4)] {
        prost::encoding::bytes::encode(5, &entry(k, v), &mut wire);
    }
    assert_eq!(attr_keys_on_wire(&wire), ["zeta", "T", "_class", "alpha"]);
    let n = NodeDef::decode(wire.as_slice()).unwrap();
    assert_eq!(attr_keys_on_wire(&n.encode_to_vec()), ["T", "_class", "alpha", "zeta"]);
}

#[test]
fn tensor_content_is_zero_copy_from_bytes() {
    let content: Vec<u8> = (0..4096u32).map(|i| i as u8).collect();
    let mut node = NodeDef { name: "w".into(), op: "Const".into(), ..Default::default() };
    node.set_attr(
        "value",
        TensorProto {
            dtype: DataType::DtFloat as i32,
            tensor_content: Bytes::from(content.clone()),
            ..Default::default()
        },
    );
    let buf = Bytes::from(GraphDef { node: vec![node], ..Default::default() }.encode_to_vec());
    let g = GraphDef::decode(buf.clone()).unwrap();
    let tc = &g.node[0].attr_tensor("value").unwrap().tensor_content;
    assert_eq!(tc.as_ref(), content.as_slice());
    let range = buf.as_ptr_range();
    let tr = tc.as_ptr_range();
    assert!(
        range.start <= tr.start && tr.end <= range.end,
        "tensor_content was copied instead of sliced"
    );
}

#[test]
fn text_format_round_trip() {
    let text = r#"node { name: "x" op: "Placeholder" attr { key: "dtype" value { type: DT_FLOAT } } }
                  versions { producer: 2474 }"#;
    let g: GraphDef = crate::parse_text_format(text).unwrap();
    assert_eq!(g.node[0].name, "x");
    assert_eq!(g.node[0].attr_type("dtype").unwrap(), DataType::DtFloat);
    let out = crate::to_text_format(&g).unwrap();
    assert!(out.contains("type: DT_FLOAT"), "{out}");
    assert!(out.contains("key: \"dtype\""), "{out}");
    let back: GraphDef = crate::parse_text_format(&out).unwrap();
    assert_eq!(back, g);

    // The full sample (funcs, maps with integer keys, proto2 fields, variants) too.
    let sample = sample_graph();
    let out = crate::to_text_format(&sample).unwrap();
    assert_eq!(crate::parse_text_format::<GraphDef>(&out).unwrap(), sample);
}

#[test]
fn descriptor_pool_has_all_messages() {
    let pool = crate::descriptor_pool();
    for name in [
        "tensorflow.GraphDef",
        "tensorflow.GraphDebugInfo.FileLineCol",
        "tensorflow.SavedModel",
        "tensorflow.MetaGraphDef.MetaInfoDef",
        "tensorflow.TrackableObjectGraph.TrackableObject.SerializedTensor",
        "tensorflow.BundleEntryProto",
        "tensorflow.FingerprintDef",
        "tensorflow.CheckpointState",
        "tensorflow.TypeSpecProto",
        "google.protobuf.Any",
    ] {
        assert!(pool.get_message_by_name(name).is_some(), "{name}");
    }
    assert!(pool.get_enum_by_name("tensorflow.DataType").unwrap().get_value(133).is_some());
    assert_eq!(<MetaGraphDef as prost::Name>::full_name(), "tensorflow.MetaGraphDef".to_string());
}
