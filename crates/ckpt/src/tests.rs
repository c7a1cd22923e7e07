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

// ---- hostile indexes, written by hand -------------------------------------------------------

use prost::encoding::encode_varint;
use tf_proto::tensorflow::tensor_slice_proto::{extent::HasLengthHack, Extent};
use tf_proto::tensorflow::{tensor_shape_proto::Dim, TensorShapeProto, TensorSliceProto};

/// A block of `(shared, unshared key bytes, value)` entries, then its trailer; returns its
/// handle `(offset, size)` in `file`.
fn put_block(file: &mut Vec<u8>, kind: u8, contents: &[u8]) -> (u64, u64) {
    let at = file.len() as u64;
    file.extend_from_slice(contents);
    file.push(kind);
    file.extend_from_slice(&crc::masked_crc32c(&[contents, &[kind]]).to_le_bytes());
    (at, contents.len() as u64)
}

fn block_contents(entries: &[(usize, &[u8], &[u8])]) -> Vec<u8> {
    let mut b = Vec::new();
    for (shared, key, value) in entries {
        encode_varint(*shared as u64, &mut b);
        encode_varint(key.len() as u64, &mut b);
        encode_varint(value.len() as u64, &mut b);
        b.extend_from_slice(key);
        b.extend_from_slice(value);
    }
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    b
}

/// A complete index file whose index block points at `handles` (data blocks already in
/// `file`).
fn finish_index(mut file: Vec<u8>, handles: &[(u64, u64)]) -> Vec<u8> {
    let values: Vec<Vec<u8>> = handles
        .iter()
        .map(|(o, s)| {
            let mut v = Vec::new();
            encode_varint(*o, &mut v);
            encode_varint(*s, &mut v);
            v
        })
        .collect();
    let keys: Vec<Vec<u8>> = (0..handles.len()).map(|i| vec![0xff, i as u8]).collect();
    let entries: Vec<(usize, &[u8], &[u8])> =
        keys.iter().zip(&values).map(|(k, v)| (0, k.as_slice(), v.as_slice())).collect();
    let index = put_block(&mut file, 0, &block_contents(&entries));
    let mut footer = Vec::new();
    encode_varint(0, &mut footer);
    encode_varint(0, &mut footer);
    encode_varint(index.0, &mut footer);
    encode_varint(index.1, &mut footer);
    footer.resize(40, 0);
    footer.extend_from_slice(&0xdb47_7524_8b80_fb57u64.to_le_bytes());
    file.extend_from_slice(&footer);
    file
}

fn header(num_shards: i32) -> Vec<u8> {
    BundleHeaderProto { num_shards, ..Default::default() }.encode_to_vec()
}

fn shape(dims: &[i64]) -> Option<TensorShapeProto> {
    Some(TensorShapeProto {
        dim: dims.iter().map(|&size| Dim { size, ..Default::default() }).collect(),
        ..Default::default()
    })
}

fn f32_entry(dims: &[i64], offset: i64, data: &[u8]) -> BundleEntryProto {
    BundleEntryProto {
        dtype: dt::FLOAT,
        shape: shape(dims),
        offset,
        size: data.len() as i64,
        crc32c: crc::mask(crc32c::crc32c(data)),
        ..Default::default()
    }
}

/// Writes `prefix.index` (one data block of `rows`, sorted) and `prefix.data-00000-of-NNNNN`.
fn write_checkpoint(
    dir: &Path,
    num_shards: i32,
    rows: &[(Vec<u8>, Vec<u8>)],
    data: &[u8],
) -> PathBuf {
    let prefix = dir.join("model.ckpt");
    let entries: Vec<(usize, &[u8], &[u8])> =
        rows.iter().map(|(k, v)| (0, k.as_slice(), v.as_slice())).collect();
    let mut file = Vec::new();
    let h = put_block(&mut file, 0, &block_contents(&entries));
    std::fs::write(with_suffix(&prefix, ".index"), finish_index(file, &[h])).unwrap();
    let name = format!(".data-00000-of-{:05}", num_shards.max(1));
    std::fs::write(with_suffix(&prefix, &name), data).unwrap();
    prefix
}

#[test]
fn absurd_shard_count_costs_nothing() {
    // num_shards = 2^30 + 1 with valid CRCs: opening must not allocate per shard.
    let dir = tempfile::tempdir().unwrap();
    let data = 1.5f32.to_le_bytes();
    let far = BundleEntryProto { shard_id: 1 << 30, ..f32_entry(&[1], 0, &data) };
    let rows = vec![
        (Vec::new(), header((1 << 30) + 1)),
        (b"far".to_vec(), far.encode_to_vec()),
        (b"w".to_vec(), f32_entry(&[1], 0, &data).encode_to_vec()),
    ];
    let prefix = write_checkpoint(dir.path(), (1 << 30) + 1, &rows, &data);
    let c = Checkpoint::open(&prefix).unwrap();
    assert_eq!(c.read("w").unwrap().values::<f32>().unwrap(), [1.5]);
    let e = c.read("far").unwrap_err().to_string();
    assert!(e.contains("model.ckpt.data-1073741824-of-1073741825"), "{e}");
    let bad = BundleEntryProto { shard_id: (1 << 30) + 1, ..f32_entry(&[1], 0, &data) };
    let rows = vec![(Vec::new(), header((1 << 30) + 1)), (b"x".to_vec(), bad.encode_to_vec())];
    let prefix = write_checkpoint(dir.path(), (1 << 30) + 1, &rows, &data);
    let e = Checkpoint::open(&prefix).unwrap().read("x").unwrap_err().to_string();
    assert!(e.ends_with("entry refers to shard 1073741825 of 1073741825"), "{e}");
}

#[test]
fn prefix_compression_bomb_is_refused() {
    // One 1 MiB key, then 200 entries that each repeat it whole (shared = its length): a
    // ~1 MiB file that would rebuild 200 MiB of keys.
    let dir = tempfile::tempdir().unwrap();
    let long = vec![b'k'; 1 << 20];
    let mut entries: Vec<(usize, &[u8], &[u8])> = vec![(0, &long, b"")];
    let suffixes: Vec<[u8; 2]> = (0..200u16).map(|i| i.to_be_bytes()).collect();
    for s in &suffixes {
        entries.push((long.len(), s, b""));
    }
    let mut file = Vec::new();
    let h = put_block(&mut file, 0, &block_contents(&entries));
    let prefix = dir.path().join("model.ckpt");
    std::fs::write(with_suffix(&prefix, ".index"), finish_index(file, &[h])).unwrap();
    let e = Checkpoint::open(&prefix).unwrap_err().to_string();
    assert!(e.contains("prefix compression bomb"), "{e}");
}

#[test]
fn overlapping_data_blocks_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rows = block_contents(&[(0, b"", &header(1))]);
    let mut file = Vec::new();
    let h = put_block(&mut file, 0, &rows);
    let prefix = dir.path().join("model.ckpt");
    std::fs::write(with_suffix(&prefix, ".index"), finish_index(file, &[h, h])).unwrap();
    let e = Checkpoint::open(&prefix).unwrap_err().to_string();
    assert!(e.ends_with("data block at offset 0 overlaps the previous one (ends at 18)"), "{e}");
}

#[test]
fn snappy_block_claiming_gigabytes_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut contents = Vec::new();
    encode_varint(1 << 31, &mut contents);
    contents.extend_from_slice(&[0, 0, 0]);
    let mut file = Vec::new();
    let h = put_block(&mut file, 1, &contents);
    let prefix = dir.path().join("model.ckpt");
    std::fs::write(with_suffix(&prefix, ".index"), finish_index(file, &[h])).unwrap();
    let e = Checkpoint::open(&prefix).unwrap_err().to_string();
    assert!(e.contains("claim to expand to 2147483648 bytes"), "{e}");
}

fn slice_rows(rows: &[i64]) -> Vec<TensorSliceProto> {
    rows.iter()
        .map(|&r| TensorSliceProto {
            extent: vec![
                Extent { start: r, has_length_hack: Some(HasLengthHack::Length(1)) },
                Extent::default(),
            ],
        })
        .collect()
}

#[test]
fn partitioned_slices_must_be_distinct_bytes() {
    // Two row slices of a [2, 2] tensor whose entries point at the same 8 stored bytes: the
    // reassembled tensor would be larger than what the file holds.
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let full = BundleEntryProto {
        dtype: dt::FLOAT,
        shape: shape(&[2, 2]),
        slices: slice_rows(&[0, 1]),
        ..Default::default()
    };
    let mut rows = vec![(Vec::new(), header(1)), (b"emb".to_vec(), full.encode_to_vec())];
    for r in 0..2 {
        let key = slice_key::encode("emb", &[(r, 1), (0, -1)]);
        rows.push((key, f32_entry(&[1, 2], 0, &data).encode_to_vec()));
    }
    rows.sort();
    let prefix = write_checkpoint(dir.path(), 1, &rows, &data);
    let e = Checkpoint::open(&prefix).unwrap().read("emb").unwrap_err().to_string();
    assert!(e.ends_with("two slices share the same stored bytes"), "{e}");

    // The same with distinct bytes reads back.
    let data2: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut rows = vec![(Vec::new(), header(1)), (b"emb".to_vec(), full.encode_to_vec())];
    for r in 0..2 {
        let key = slice_key::encode("emb", &[(r, 1), (0, -1)]);
        let part = &data2[r as usize * 8..r as usize * 8 + 8];
        rows.push((key, f32_entry(&[1, 2], r * 8, part).encode_to_vec()));
    }
    rows.sort();
    let prefix = write_checkpoint(dir.path(), 1, &rows, &data2);
    let c = Checkpoint::open(&prefix).unwrap();
    assert_eq!(c.read("emb").unwrap().values::<f32>().unwrap(), [1.0, 2.0, 3.0, 4.0]);
    // A part outside the tensor is refused before anything is allocated.
    for (offset, shape) in [([0, 0], [i64::MAX, 2]), ([-1, 0], [1, 2]), ([1, 1], [1, 2])] {
        let e = c.read_part("emb", &offset, &shape).unwrap_err().to_string();
        assert!(e.contains("lie outside [2,2]"), "{e}");
    }
}
