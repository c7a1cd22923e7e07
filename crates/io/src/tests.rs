use super::*;
use bytes::Bytes;
use prost::Message;
use tf_proto::tensorflow::{
    meta_graph_def::MetaInfoDef, GraphDef, MetaGraphDef, NodeDef, SavedModel, TensorProto,
    VersionDef,
};

fn node(name: &str, op: &str) -> NodeDef {
    NodeDef { name: name.into(), op: op.into(), ..Default::default() }
}

fn graph() -> GraphDef {
    GraphDef {
        node: vec![node("x", "Placeholder"), node("y", "Identity")],
        versions: Some(VersionDef { producer: 2474, ..Default::default() }),
        ..Default::default()
    }
}

fn read(b: Vec<u8>) -> Result<Loaded, ReadError> {
    read_bytes(Bytes::from(b), "t", None, &ReadOptions::default())
}

#[test]
fn detects_each_message_kind() {
    let g = graph();
    assert_eq!(read(g.encode_to_vec()).unwrap().kind, MessageKind::GraphDef);
    let single = GraphDef { node: vec![node("x", "Placeholder")], ..Default::default() };
    assert_eq!(read(single.encode_to_vec()).unwrap().kind, MessageKind::GraphDef);
    let meta = MetaGraphDef {
        meta_info_def: Some(MetaInfoDef { tags: vec!["serve".into()], ..Default::default() }),
        graph_def: Some(g.clone()),
        ..Default::default()
    };
    let l = read(meta.encode_to_vec()).unwrap();
    assert_eq!((l.kind, l.graph.clone()), (MessageKind::MetaGraphDef, g.clone()));
    let sm = SavedModel { saved_model_schema_version: 1, meta_graphs: vec![meta] };
    let l = read(sm.encode_to_vec()).unwrap();
    assert_eq!(
        (l.kind, l.graph, l.tag_sets),
        (MessageKind::SavedModel, g, vec![vec!["serve".into()]])
    );
}

#[test]
fn text_round_trip() {
    let g = graph();
    let text = text::print(&g).unwrap();
    let l = read(text.into_bytes()).unwrap();
    assert_eq!((l.encoding, l.graph), (Encoding::Text, g));
}

#[test]
fn bad_inputs_name_the_problem() {
    let msg = |b: Vec<u8>| read(b).unwrap_err().to_string();
    assert_eq!(msg(vec![]), "t: empty input");
    let mut cut = graph().encode_to_vec();
    cut.truncate(cut.len() - 3);
    assert!(msg(cut).contains("truncated or corrupt"), "truncated");
    assert!(msg(vec![0xff; 64]).contains("not a valid protobuf"), "garbage");
    let tensor = TensorProto { dtype: 1, float_val: vec![1.0], ..Default::default() };
    let e = msg(tensor.encode_to_vec());
    assert!(e.contains("not a GraphDef") || e.contains("cannot decode"), "{e}");
    assert!(msg(b"hello { }".to_vec()).contains("first field 'hello'"));
}

#[test]
fn savedmodel_tags_and_signatures() {
    let meta = |tag: &str| MetaGraphDef {
        meta_info_def: Some(MetaInfoDef { tags: vec![tag.into()], ..Default::default() }),
        graph_def: Some(graph()),
        ..Default::default()
    };
    let sm = SavedModel {
        saved_model_schema_version: 1,
        meta_graphs: vec![meta("train"), meta("serve")],
    };
    let b = Bytes::from(sm.encode_to_vec());
    let opts = |tag: Option<&str>, sig: Option<&str>| ReadOptions {
        tag: tag.map(Into::into),
        signature: sig.map(Into::into),
    };
    let l = read_bytes(b.clone(), "sm", None, &opts(None, None)).unwrap();
    assert_eq!(l.meta_graph.unwrap().meta_info_def.unwrap().tags, vec!["serve"]);
    let e = read_bytes(b.clone(), "sm", None, &opts(Some("gpu"), None)).unwrap_err();
    assert_eq!(e.to_string(), "sm: no MetaGraphDef with tags 'gpu' (available: 'train', 'serve')");
    let e = read_bytes(b, "sm", None, &opts(None, Some("predict"))).unwrap_err();
    assert_eq!(e.to_string(), "sm: no signature 'predict' (available: none)");
}

#[test]
fn binary_output_borrows_large_payloads() {
    let payload = vec![7u8; 1 << 16];
    let mut g = graph();
    let t = TensorProto {
        dtype: 1,
        tensor_content: Bytes::from(payload.clone()),
        ..Default::default()
    };
    g.node[0].attr.insert(
        "value".into(),
        tf_proto::tensorflow::AttrValue {
            value: Some(tf_proto::tensorflow::attr_value::Value::Tensor(Box::new(t))),
        },
    );
    let source = Bytes::from(g.encode_to_vec());
    let decoded = GraphDef::decode(source.clone()).unwrap();
    let out = encode_graph(&decoded, Encoding::Binary, std::slice::from_ref(&source)).unwrap();
    assert_eq!(out.to_vec(), source.to_vec());
    assert!(out.len() as usize == source.len());
}

#[test]
fn checksums_and_writes_of_mapped_files_go_through_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.bin");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2654435761) >> 7) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let mapped = map_file(&path).unwrap();
    let part = mapped.slice(1000..250_000);
    assert!(file_range(&part).is_some_and(|(_, off)| off == 1000));
    assert_eq!(crc32c(&part), ::crc32c::crc32c(&data[1000..250_000]));
    // A payload inside the mapping is written by the kernel, byte for byte.
    let g = GraphDef {
        node: vec![NodeDef {
            name: "c".into(),
            op: "Const".into(),
            attr: [(
                "value".to_string(),
                tf_proto::tensorflow::AttrValue::from(TensorProto {
                    dtype: 4,
                    tensor_content: part.clone(),
                    ..Default::default()
                }),
            )]
            .into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let out_path = dir.path().join("out.pb");
    let out = std::fs::File::create(&out_path).unwrap();
    use std::os::fd::AsFd;
    encode(&g, std::slice::from_ref(&mapped)).unwrap().write_to_fd(out.as_fd()).unwrap();
    assert_eq!(std::fs::read(&out_path).unwrap(), g.encode_to_vec());
}

#[test]
fn a_dropped_mapping_is_forgotten() {
    // Map A, drop it, map B: B usually lands at A's address. Output and checksums of B's
    // slices must come from B, never from A's file.
    let dir = tempfile::tempdir().unwrap();
    let len = 1 << 17;
    let (a_path, b_path) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::write(&a_path, vec![b'A'; len]).unwrap();
    std::fs::write(&b_path, vec![b'B'; len]).unwrap();
    let mut reused = false;
    for _ in 0..20 {
        let a = map_file(&a_path).unwrap();
        let a_base = a.as_ptr() as usize;
        assert!(file_range(&a).is_some());
        drop(a);
        let b = map_file(&b_path).unwrap();
        reused |= b.as_ptr() as usize == a_base;
        let slice = b.slice(100..len - 100);
        let out_path = dir.path().join("out");
        let out_file = std::fs::File::create(&out_path).unwrap();
        use std::os::fd::AsFd;
        Encoded::from_bytes(slice.clone()).write_to_fd(out_file.as_fd()).unwrap();
        let out = std::fs::read(&out_path).unwrap();
        assert_eq!(out.len(), len - 200);
        assert!(out.iter().all(|&c| c == b'B'), "B's slice written from another file");
        assert_eq!(crc32c(&slice), ::crc32c::crc32c(&vec![b'B'; len - 200]));
        let (file, offset) = file_range(&slice).unwrap();
        assert_eq!(offset, 100);
        use std::os::unix::fs::FileExt;
        let mut first = [0u8; 1];
        file.read_exact_at(&mut first, 0).unwrap();
        assert_eq!(first, [b'B']);
        drop((b, slice));
        if reused {
            break;
        }
    }
    assert!(reused, "the kernel never reused the address: the scenario was not exercised");
}

#[test]
fn write_to_fd_gives_the_same_bytes_into_a_file_a_pipe_and_a_socket() {
    use std::io::Read;
    use std::os::fd::AsFd;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.bin");
    let data: Vec<u8> =
        (0..3_000_000u32).map(|i| (i.wrapping_mul(2654435761) >> 9) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let mapped = map_file(&path).unwrap();
    // Owned bytes, a mapped range (kernel copy), owned again, then 300,000 small segments
    // (gathered into writes of up to 1 MiB, more than one of them) and a mapped range after
    // them: the order must hold.
    let mut whole = Encoded::from_bytes(Bytes::from_static(b"head"));
    whole.segments.push(mapped.slice(5..2_500_000));
    whole.segments.push(Bytes::from(vec![7u8; 10_000]));
    for i in 0..300_000u32 {
        whole.segments.push(Bytes::from(i.to_le_bytes().to_vec()));
    }
    whole.segments.push(mapped.slice(2_500_000..2_600_000));
    whole.segments.push(Bytes::from(vec![9u8; 70_000]));
    whole.len = whole.segments.iter().map(|s| s.len() as u64).sum();
    let want = whole.to_vec();

    let out_path = dir.path().join("out.bin");
    let f = std::fs::File::create(&out_path).unwrap();
    whole.write_to_fd(f.as_fd()).unwrap();
    assert_eq!(std::fs::read(&out_path).unwrap(), want, "into a file");

    let (mut rd, wr) = std::io::pipe().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        rd.read_to_end(&mut v).unwrap();
        v
    });
    whole.write_to_fd(wr.as_fd()).unwrap();
    drop(wr);
    assert_eq!(reader.join().unwrap(), want, "into a pipe");

    let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        a.read_to_end(&mut v).unwrap();
        v
    });
    whole.write_to_fd(b.as_fd()).unwrap();
    drop(b);
    assert_eq!(reader.join().unwrap(), want, "into a socket");
}

#[test]
fn tflite_is_named_and_a_graph_spelling_tfl3_is_not_taken_for_one() {
    let mut tflite = 24u32.to_le_bytes().to_vec();
    tflite.extend(b"TFL3");
    tflite.resize(96, 0);
    let e = read(tflite).unwrap_err();
    assert!(matches!(e.kind, ReadErrorKind::NotAGraph(_)), "{e}");
    assert!(e.to_string().contains("TensorFlow Lite flatbuffer"), "{e}");
    // A node named "TFL3..." puts those bytes at offset 4 of a GraphDef.
    let g = GraphDef { node: vec![node("TFL3_input", "Placeholder")], ..Default::default() };
    let b = g.encode_to_vec();
    assert_eq!(&b[4..8], b"TFL3");
    assert_eq!(read(b).unwrap().graph.node[0].name, "TFL3_input");
}

#[test]
fn varints_are_read_by_prost_and_bad_ones_are_none() {
    let b = [0x96, 0x01, 0x05];
    let mut pos = 0;
    assert_eq!(crate::varint_at(&b, &mut pos), Some(150));
    assert_eq!(pos, 2);
    assert_eq!(crate::varint_at(&b, &mut pos), Some(5));
    // At the end, past the end, truncated, overlong, overflowing: None, `pos` unchanged.
    for (bytes, at) in [
        (&b[..], 3),
        (&b[..], 9),
        (&[0x80, 0x80][..], 0),
        (&[0xff; 11][..], 0),
        (&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02][..], 0),
    ] {
        let mut pos = at;
        assert_eq!(crate::varint_at(bytes, &mut pos), None, "{bytes:?} at {at}");
        assert_eq!(pos, at);
    }
    let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    assert_eq!(crate::varint_at(&max, &mut 0), Some(u64::MAX));
}

#[test]
fn one_node_graph_whose_versions_hold_only_bad_consumers_is_a_graph() {
    // Packed bad_consumers is length-delimited, like a collection map entry: without producer
    // or min_consumer it must not make the graph look like a MetaGraphDef.
    let g = GraphDef {
        node: vec![node("x", "MaxPool")],
        library: Some(Default::default()),
        versions: Some(VersionDef { bad_consumers: vec![7, 3], ..Default::default() }),
        ..Default::default()
    };
    let loaded = read(g.encode_to_vec()).unwrap();
    assert_eq!(loaded.kind, MessageKind::GraphDef);
    assert_eq!(loaded.graph, g);
}

#[test]
fn one_node_graph_of_an_op_with_a_stray_character_is_a_graph() {
    // A single node reads like a MetaInfoDef unless its op is told apart from an OpList.
    for op in ["Placehol#erWithDefault", "My.Op", "a b"] {
        let g = GraphDef { node: vec![node("fz_fz57_1", op)], ..Default::default() };
        let loaded = read(g.encode_to_vec()).unwrap();
        assert_eq!(loaded.kind, MessageKind::GraphDef, "{op}");
        assert_eq!(loaded.graph, g);
    }
    // A MetaGraphDef holding only a MetaInfoDef with a stripped op list stays one.
    let meta = tf_proto::tensorflow::MetaGraphDef {
        meta_info_def: Some(tf_proto::tensorflow::meta_graph_def::MetaInfoDef {
            stripped_op_list: Some(tf_proto::tensorflow::OpList {
                op: vec![tf_proto::tensorflow::OpDef { name: "Relu".into(), ..Default::default() }],
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(crate::detect::binary_kind(&meta.encode_to_vec()), Some(MessageKind::MetaGraphDef));
}
