use super::*;

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(rel)
}

/// Every tensor of every checkpoint TF wrote for the fixtures reads back with a matching
/// checksum (TF computed it over the bytes, so a wrong offset, size or string layout fails).
#[test]
fn every_fixture_tensor_reads_with_its_checksum() {
    let prefixes = [
        "tf1_cnn_train/model.ckpt",
        "tf1_partitioned/model.ckpt",
        "control_flow/v1_model.ckpt",
        "keras_cnn_savedmodel/saved_model/variables/variables",
        "keras_seq_savedmodel/saved_model/variables/variables",
        "keras_mha_savedmodel/saved_model/variables/variables",
        "control_flow/saved_model/variables/variables",
    ];
    for p in prefixes {
        let c = Checkpoint::open(&fixture(p)).unwrap_or_else(|e| panic!("{e}"));
        let entries = c.entries();
        assert!(!entries.is_empty(), "{p}");
        for e in entries {
            let t = c.read(&e.key).unwrap_or_else(|err| panic!("{p}: {err}"));
            assert_eq!((t.dtype, &t.shape), (e.dtype, &e.shape), "{p}: {}", e.key);
        }
    }
}

#[test]
fn object_graph_of_a_tf2_checkpoint() {
    let c =
        Checkpoint::open(&fixture("keras_cnn_savedmodel/saved_model/variables/variables")).unwrap();
    let g = c.object_graph().unwrap().expect("TF2 checkpoints carry their object graph");
    let keys: Vec<&str> = g
        .nodes
        .iter()
        .flat_map(|n| n.attributes.iter().map(|a| a.checkpoint_key.as_str()))
        .collect();
    assert!(keys.contains(&"layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE"), "{keys:?}");
    assert!(keys.iter().all(|k| c.contains(k)));
}

#[test]
fn partitioned_variable_is_reassembled_from_its_slices() {
    let c = Checkpoint::open(&fixture("tf1_partitioned/model.ckpt")).unwrap();
    let full = c.read("emb").unwrap();
    assert_eq!(full.shape, [6, 2]);
    let values = full.values::<f32>().unwrap();
    // Each part read through read_part is the matching rows of the whole.
    let top = c.read_part("emb", &[0, 0], &[3, 2]).unwrap().values::<f32>().unwrap();
    let bottom = c.read_part("emb", &[3, 0], &[3, 2]).unwrap().values::<f32>().unwrap();
    assert_eq!([top, bottom].concat(), values);
}

#[test]
fn resolves_prefix_index_and_directory() {
    let dir = fixture("tf1_cnn_train");
    let want = dir.join("model.ckpt");
    assert_eq!(resolve_prefix(&dir).unwrap(), want);
    assert_eq!(resolve_prefix(&dir.join("model.ckpt.index")).unwrap(), want);
    assert_eq!(resolve_prefix(&dir.join("model.ckpt.data-00000-of-00001")).unwrap(), want);
}

#[test]
fn missing_key_and_missing_checkpoint_are_errors() {
    let c = Checkpoint::open(&fixture("tf1_cnn_train/model.ckpt")).unwrap();
    let e = c.read("nope").unwrap_err().to_string();
    assert!(e.ends_with("no tensor 'nope' in the checkpoint"), "{e}");
    let e = Checkpoint::open(&fixture("tf1_cnn_train/none")).unwrap_err();
    assert!(matches!(e, CkptError::NotFound(_)), "{e}");
}

/// A V1 checkpoint written by TF 2.21's `Saver(write_version=V1)`: every variable reads back as
/// TF's own reader read it (case.json `checkpoint_values`), the partitioned one assembled from
/// its two slices.
#[test]
fn v1_checkpoint_reads_as_tf_reads_it() {
    let case: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("tf1_v1_checkpoint/case.json")).unwrap(),
    )
    .unwrap();
    let want = case["checkpoint_values"].as_object().expect("checkpoint_values");
    for path in ["tf1_v1_checkpoint/model.ckpt", "tf1_v1_checkpoint"] {
        let c = Checkpoint::open(&fixture(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(c.is_v1());
        let keys: Vec<String> = c.entries().into_iter().map(|e| e.key).collect();
        let mut expected: Vec<String> = want.keys().cloned().collect();
        expected.sort();
        assert_eq!(keys, expected);
        for (key, spec) in want {
            let t = c.read(key).unwrap_or_else(|e| panic!("{key}: {e}"));
            let shape: Vec<i64> =
                spec["shape"].as_array().unwrap().iter().map(|d| d.as_i64().unwrap()).collect();
            assert_eq!(t.shape, shape, "{key}");
            let flat = |v: &serde_json::Value| -> Vec<serde_json::Value> {
                let mut out = Vec::new();
                let mut stack = vec![v.clone()];
                while let Some(x) = stack.pop() {
                    match x {
                        serde_json::Value::Array(a) => stack.extend(a.into_iter().rev()),
                        x => out.push(x),
                    }
                }
                out
            };
            let values = flat(&spec["value"]);
            match spec["dtype"].as_str().unwrap() {
                "float32" => {
                    let got: Vec<f32> = t.values().unwrap();
                    let exp: Vec<f32> = values.iter().map(|v| v.as_f64().unwrap() as f32).collect();
                    assert_eq!(got, exp, "{key}");
                }
                "float64" => {
                    let got: Vec<f64> = t.values().unwrap();
                    let exp: Vec<f64> = values.iter().map(|v| v.as_f64().unwrap()).collect();
                    assert_eq!(got, exp, "{key}");
                }
                "int32" => {
                    let got: Vec<i32> = t.values().unwrap();
                    let exp: Vec<i32> = values.iter().map(|v| v.as_i64().unwrap() as i32).collect();
                    assert_eq!(got, exp, "{key}");
                }
                "int64" => {
                    let got: Vec<i64> = t.values().unwrap();
                    let exp: Vec<i64> = values.iter().map(|v| v.as_i64().unwrap()).collect();
                    assert_eq!(got, exp, "{key}");
                }
                "bool" => {
                    let got: Vec<bool> = t.values().unwrap();
                    let exp: Vec<bool> = values.iter().map(|v| v.as_bool().unwrap()).collect();
                    assert_eq!(got, exp, "{key}");
                }
                "string" => {
                    let Data::Strings(got) = &t.data else { panic!("{key}: not strings") };
                    let exp: Vec<Vec<u8>> = values
                        .iter()
                        .map(|v| {
                            let h = v.as_str().unwrap();
                            (0..h.len() / 2)
                                .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
                                .collect()
                        })
                        .collect();
                    assert_eq!(got, &exp, "{key}");
                }
                d => panic!("{key}: unexpected dtype {d}"),
            }
        }
    }
}

/// A GraphDef or garbage where a checkpoint is expected: one line saying what it is.
#[test]
fn a_file_that_is_not_a_checkpoint_is_named() {
    let e = Checkpoint::open(&fixture("keras_cnn_savedmodel/frozen.pb")).unwrap_err().to_string();
    assert!(e.contains("not a checkpoint (a GraphDef)"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let tfl = dir.path().join("m.tflite");
    std::fs::write(&tfl, b"\x1c\x00\x00\x00TFL3\x00\x00\x00\x00\x00\x00\x00\x00").unwrap();
    let e = Checkpoint::open(&tfl).unwrap_err().to_string();
    assert!(e.contains("TensorFlow Lite"), "{e}");
    assert!(!e.contains('\n'), "{e}");
}

/// A `checkpoint` state file naming a prefix that is gone: both are named.
#[test]
fn stale_checkpoint_state_names_both_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("checkpoint"), "model_checkpoint_path: \"model.ckpt-9\"\n")
        .unwrap();
    let e = Checkpoint::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("checkpoint names checkpoint"), "{e}");
    assert!(e.contains("model.ckpt-9"), "{e}");
}
