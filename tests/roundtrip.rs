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
