//! Our decoding of every dtype, in both encodings, against what TensorFlow's C++ runtime
//! decoded from the same Consts (tests/fixtures/dtypes: each Const was run in a Session and
//! its value recorded in expected.json as bit patterns, values or hex).

use prost::Message;
use serde_json::Value;
use tf_proto::tensorflow::{attr_value, GraphDef};
use tf_tensor::{dt, dtype, Data, Tensor};

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/dtypes")
        .join(name)
}

/// Raw element bytes as unsigned integers of the element width.
fn words(raw: &[u8], width: usize) -> Vec<u64> {
    raw.chunks_exact(width)
        .map(|c| c.iter().rev().fold(0u64, |acc, b| acc << 8 | u64::from(*b)))
        .collect()
}

#[test]
fn every_dtype_decodes_as_tensorflow_does() {
    let graph = GraphDef::decode(std::fs::read(fixture("graph.pb")).unwrap().as_slice()).unwrap();
    let expected: Value =
        serde_json::from_slice(&std::fs::read(fixture("expected.json")).unwrap()).unwrap();
    let consts = expected["consts"].as_object().unwrap();
    let mut checked = 0;
    for (name, want) in consts {
        let node = graph.node.iter().find(|n| &n.name == name).unwrap_or_else(|| panic!("{name}"));
        let Some(attr_value::Value::Tensor(p)) = node.attr["value"].value.as_ref() else {
            panic!("{name}: no value")
        };
        let t = Tensor::from_proto(p).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(dtype::enum_name(t.dtype), want["dtype"].as_str().unwrap(), "{name}");
        let shape: Vec<i64> =
            want["shape"].as_array().unwrap().iter().map(|d| d.as_i64().unwrap()).collect();
        assert_eq!(t.shape, shape, "{name}");
        match &t.data {
            Data::Strings(s) => {
                let hex: Vec<String> =
                    s.iter().map(|b| b.iter().map(|x| format!("{x:02x}")).collect()).collect();
                let want: Vec<&str> =
                    want["hex"].as_array().unwrap().iter().map(|h| h.as_str().unwrap()).collect();
                assert_eq!(hex, want, "{name}");
            }
            Data::Raw(raw) if want.get("bits").is_some() => {
                let width = match dtype::base(t.dtype) {
                    dt::COMPLEX64 => 4,
                    dt::COMPLEX128 => 8,
                    d => dtype::element_size(d).unwrap(),
                };
                let bits: Vec<u64> =
                    want["bits"].as_array().unwrap().iter().map(|b| b.as_u64().unwrap()).collect();
                assert_eq!(words(raw, width), bits, "{name}: bit patterns");
            }
            Data::Raw(_) => {
                let vals = want["values"].as_array().unwrap();
                let got: Vec<String> = match dtype::base(t.dtype) {
                    dt::BOOL => t.values::<bool>().unwrap().iter().map(|v| v.to_string()).collect(),
                    dt::INT64 => t.values::<i64>().unwrap().iter().map(|v| v.to_string()).collect(),
                    dt::UINT64 => {
                        t.values::<u64>().unwrap().iter().map(|v| v.to_string()).collect()
                    }
                    dt::UINT32 => {
                        t.values::<u32>().unwrap().iter().map(|v| v.to_string()).collect()
                    }
                    dt::INT32 | dt::QINT32 => {
                        t.values::<i32>().unwrap().iter().map(|v| v.to_string()).collect()
                    }
                    dt::INT16 | dt::QINT16 => {
                        t.values::<i16>().unwrap().iter().map(|v| v.to_string()).collect()
                    }
                    dt::UINT16 | dt::QUINT16 => {
                        t.values::<u16>().unwrap().iter().map(|v| v.to_string()).collect()
                    }
                    dt::INT8 | dt::QINT8 | dt::INT4 | dt::INT2 => {
                        t.values::<i8>().unwrap().iter().map(|v| v.to_string()).collect()
                    }
                    _ => t.values::<u8>().unwrap().iter().map(|v| v.to_string()).collect(),
                };
                let want: Vec<String> = vals.iter().map(|v| v.to_string()).collect();
                assert_eq!(got, want, "{name}: values");
            }
            other => panic!("{name}: unexpected {other:?}"),
        }
        // Both our encodings decode back to the same tensor.
        assert_eq!(Tensor::from_proto(&t.to_proto()).unwrap(), t, "{name}: content form");
        assert_eq!(Tensor::from_proto(&t.to_proto_typed()).unwrap(), t, "{name}: typed form");
        checked += 1;
    }
    assert!(checked >= 90, "only {checked} consts checked");
}
