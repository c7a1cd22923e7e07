//! decode → encode is byte-identical on every fixture (all of them are TensorFlow's
//! deterministic serialization), in the library and through tf-convert.

use bytes::Bytes;
use prost::Message;
use tf_io::{MessageKind, ReadOptions};
use tf_proto::tensorflow::{GraphDef, MetaGraphDef, SavedModel};

use crate::util::{protobuf_fixtures, run};

fn reencode(kind: MessageKind, b: Bytes) -> Vec<u8> {
    let src = [b.clone()];
    match kind {
        MessageKind::GraphDef => tf_io::encode(&GraphDef::decode(b).unwrap(), &src),
        MessageKind::MetaGraphDef => tf_io::encode(&MetaGraphDef::decode(b).unwrap(), &src),
        MessageKind::SavedModel => tf_io::encode(&SavedModel::decode(b).unwrap(), &src),
    }
    .unwrap()
    .to_vec()
}

#[test]
fn every_fixture_message_reencodes_byte_identically() {
    for path in protobuf_fixtures() {
        let bytes = Bytes::from(std::fs::read(&path).unwrap());
        let name = path.display().to_string();
        let loaded = tf_io::read_bytes(bytes.clone(), &name, None, &ReadOptions::default())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            reencode(loaded.kind, bytes.clone()) == bytes.as_ref(),
            "{name}: re-encoding differs"
        );
    }
}

#[test]
fn tf_convert_passes_graphdefs_through_byte_identically() {
    let mut checked = 0;
    for path in protobuf_fixtures() {
        let bytes = std::fs::read(&path).unwrap();
        let loaded =
            tf_io::read_bytes(bytes.clone().into(), "f", None, &ReadOptions::default()).unwrap();
        let out = run("tf-convert", &[path.to_str().unwrap()], None);
        assert_eq!(out.code, 0, "{}: {}", path.display(), out.stderr);
        let want = if loaded.kind == MessageKind::GraphDef {
            bytes
        } else {
            tf_io::encode(&loaded.graph, &[]).unwrap().to_vec()
        };
        assert!(out.stdout == want, "{}: output differs", path.display());
        // Through stdin too, and back from text.
        let piped = run("tf-convert", &["-"], Some(&want));
        assert!(piped.stdout == want, "{}: stdin pass-through differs", path.display());
        let text = run("tf-convert", &["--text"], Some(&want));
        assert_eq!(text.code, 0, "{}", text.stderr);
        let back = run("tf-convert", &[], Some(&text.stdout));
        assert!(back.stdout == want, "{}: text round trip differs", path.display());
        checked += 1;
    }
    assert!(checked > 0);
}

/// A GraphDef whose attribute maps are not in our order (as another serializer may write
/// them): each node's attribute entries are written in reverse key order.
fn unsorted_graph() -> Vec<u8> {
    use tf_proto::tensorflow::{attr_value, AttrValue, NodeDef, TensorShapeProto};
    let attr = |v| AttrValue { value: Some(v) };
    let dim = tf_proto::tensorflow::tensor_shape_proto::Dim { size: 4, ..Default::default() };
    let shape = TensorShapeProto { dim: vec![dim], ..Default::default() };
    let nodes = [
        (
            "x",
            "Placeholder",
            vec![],
            [
                ("dtype", attr(attr_value::Value::Type(1))),
                ("shape", attr(attr_value::Value::Shape(shape))),
            ],
        ),
        (
            "y",
            "Neg",
            vec!["x".to_string()],
            [
                ("T", attr(attr_value::Value::Type(1))),
                ("_note", attr(attr_value::Value::S(b"n".to_vec()))),
            ],
        ),
    ];
    let mut out = Vec::new();
    for (name, op, input, attrs) in nodes {
        let base = NodeDef { name: name.into(), op: op.into(), input, ..Default::default() };
        let mut body = base.encode_to_vec();
        // A NodeDef holding one attribute encodes as just that map entry.
        for (k, v) in attrs.into_iter().rev() {
            let one = NodeDef { attr: [(k.to_string(), v)].into(), ..Default::default() };
            body.extend(one.encode_to_vec());
        }
        prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, &mut out);
        prost::encoding::encode_varint(body.len() as u64, &mut out);
        out.extend(body);
    }
    out
}

#[test]
fn tools_that_change_nothing_write_their_input_bytes() {
    let input = unsorted_graph();
    let g = GraphDef::decode(input.as_slice()).unwrap();
    assert_eq!(g.node.len(), 2);
    let ours = tf_io::encode(&g, &[]).unwrap().to_vec();
    assert!(ours != input && ours.len() == input.len(), "the fixture is not in another order");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.pb");
    std::fs::write(&path, &input).unwrap();
    let p = path.to_str().unwrap();
    let runs: [(&str, Vec<&str>); 6] = [
        ("tf-convert", vec![p]),
        ("tf-strip", vec![p]),
        ("tf-fold", vec![p]),
        ("tf-xla-check", vec![p, "--exit-zero", "-q"]),
        ("tf-prune", vec![p, "--sparsity", "0.5"]),
        ("tf-quant", vec!["int8", p, "-q"]),
    ];
    for (tool, args) in runs {
        let out = run(tool, &args, None);
        assert_eq!(out.code, 0, "{tool}: {}", out.stderr);
        assert!(out.stdout == input, "{tool}: the unchanged graph was re-encoded");
        let stdin_args: Vec<&str> = args.iter().copied().filter(|a| *a != p).collect();
        let piped = run(tool, &stdin_args, Some(&input));
        assert_eq!(piped.code, 0, "{tool} from stdin: {}", piped.stderr);
        assert!(piped.stdout == input, "{tool} from stdin: the unchanged graph was re-encoded");
    }
    // A graph that did change is encoded anew (our order).
    let out = run("tf-strip", &[p, "--outputs", "x"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout != input);
}
