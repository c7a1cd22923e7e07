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
