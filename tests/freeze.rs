//! tf-freeze on bad input: exit 2, one line naming the culprit, nothing on stdout.
//! (Correctness on good input is judged by TensorFlow in tests/tf/test_freeze.py.)

use std::path::{Path, PathBuf};

use prost::Message;
use tf_proto::tensorflow::{attr_value, MetaGraphDef};

use crate::util::{fixtures, run};

/// A scratch copy of the TF1 CNN checkpoint and its .meta.
/// A V1 checkpoint (tensor slices) written by TF freezes like a V2 one.
#[test]
fn v1_checkpoint_freezes() {
    let prefix = fixtures().join("tf1_v1_checkpoint/model.ckpt");
    let out = run("tf-freeze", &[prefix.to_str().unwrap(), "--outputs", "logits,probs"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let g = tf_proto::tensorflow::GraphDef::decode(out.stdout.as_slice()).unwrap();
    let ops: Vec<&str> = g.node.iter().map(|n| n.op.as_str()).collect();
    assert!(!ops.contains(&"VariableV2"), "{ops:?}");
    assert!(g.node.iter().any(|n| n.name == "dense/kernel" && n.op == "Const"));
}

fn tf1_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let src = fixtures().join("tf1_cnn_train");
    for f in ["model.ckpt.index", "model.ckpt.data-00000-of-00001", "model.ckpt.meta"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let prefix = dir.path().join("model.ckpt");
    (dir, prefix)
}

fn freeze(prefix: &Path, extra: &[&str]) -> crate::util::Outcome {
    let mut args = vec![prefix.to_str().unwrap(), "--outputs", "softmax"];
    args.extend_from_slice(extra);
    run("tf-freeze", &args, None)
}

fn expect_error(out: crate::util::Outcome, what: &str, needle: &str) {
    out.assert_clean_error(what);
    assert!(out.stderr.contains(needle), "{what}: expected '{needle}' in: {}", out.stderr);
}

#[test]
fn the_copy_itself_freezes() {
    let (_d, prefix) = tf1_copy();
    let out = freeze(&prefix, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stdout.is_empty());
}

#[test]
fn variable_missing_from_the_checkpoint() {
    let other = fixtures().join("control_flow/v1_model.ckpt");
    let graph = fixtures().join("tf1_cnn_train/graph.pb");
    let out = run(
        "tf-freeze",
        &[other.to_str().unwrap(), "--graph", graph.to_str().unwrap(), "--outputs", "softmax"],
        None,
    );
    expect_error(out, "missing variable", "is not in the checkpoint");
}

#[test]
fn corrupt_and_truncated_checkpoint_files() {
    let (_d, prefix) = tf1_copy();
    let data = prefix.with_file_name("model.ckpt.data-00000-of-00001");
    let mut bytes = std::fs::read(&data).unwrap();
    // A byte of a variable inference needs (a slot variable's would go unnoticed, as in TF).
    let ckpt = tf_ckpt::Checkpoint::open(&prefix).unwrap();
    let mid = ckpt.entry("conv1/kernel").unwrap().offset as usize + 5;
    drop(ckpt);
    bytes[mid] ^= 0xff;
    std::fs::write(&data, &bytes).unwrap();
    expect_error(freeze(&prefix, &[]), "crc", "checksum mismatch");

    bytes[mid] ^= 0xff;
    std::fs::write(&data, &bytes[..bytes.len() / 3]).unwrap();
    expect_error(freeze(&prefix, &[]), "truncated data", "past the end");

    std::fs::write(&data, &bytes).unwrap();
    let index = prefix.with_file_name("model.ckpt.index");
    let ib = std::fs::read(&index).unwrap();
    std::fs::write(&index, &ib[..ib.len() - 10]).unwrap();
    expect_error(freeze(&prefix, &[]), "truncated index", "model.ckpt.index");
}

#[test]
fn graph_and_checkpoint_disagree() {
    let (_d, prefix) = tf1_copy();
    let meta_path = prefix.with_file_name("model.ckpt.meta");
    let mut meta = MetaGraphDef::decode(std::fs::read(&meta_path).unwrap().as_slice()).unwrap();
    let g = meta.graph_def.as_mut().unwrap();
    let v = g.node.iter_mut().find(|n| n.name == "conv1/kernel").unwrap();
    if let Some(attr_value::Value::Shape(s)) =
        v.attr.get_mut("shape").and_then(|a| a.value.as_mut())
    {
        s.dim[0].size += 1;
    }
    std::fs::write(&meta_path, meta.encode_to_vec()).unwrap();
    expect_error(freeze(&prefix, &[]), "shape", "conv1/kernel");

    let mut meta = MetaGraphDef::decode(std::fs::read(&meta_path).unwrap().as_slice()).unwrap();
    let g = meta.graph_def.as_mut().unwrap();
    let v = g.node.iter_mut().find(|n| n.name == "conv1/kernel").unwrap();
    v.attr.get_mut("dtype").unwrap().value = Some(attr_value::Value::Type(2));
    std::fs::write(&meta_path, meta.encode_to_vec()).unwrap();
    expect_error(freeze(&prefix, &[]), "dtype", "float64");
}

#[test]
fn not_a_checkpoint_and_missing_things() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("model.ckpt");
    std::fs::write(&old, b"neither a V2 prefix nor a V1 table").unwrap();
    expect_error(freeze(&old, &[]), "garbage", "(expected a SavedModel, a checkpoint prefix");
    let frozen = fixtures().join("keras_cnn_savedmodel/frozen.pb");
    let out = run("tf-freeze", &[frozen.to_str().unwrap()], None);
    expect_error(
        out,
        "graphdef",
        "frozen.pb is a GraphDef; tf-freeze needs a SavedModel or a checkpoint",
    );
    // A V1 checkpoint is one LevelDB-format table: it ends with the table magic. A file that
    // only ends like one is read as a table and refused as not a checkpoint.
    let mut v1 = b"an old V1 checkpoint, at least as long as a table footer.".to_vec();
    v1.extend(0xdb4775248b80fb57u64.to_le_bytes());
    std::fs::write(&old, v1).unwrap();
    expect_error(freeze(&old, &[]), "v1", "not a checkpoint");

    let sm = fixtures().join("keras_cnn_savedmodel/saved_model");
    let out = run("tf-freeze", &[sm.to_str().unwrap(), "--tag", "train"], None);
    expect_error(out, "tag", "no MetaGraphDef with tags 'train'");
    let out = run("tf-freeze", &[sm.to_str().unwrap(), "--signature", "nope"], None);
    expect_error(out, "signature", "no signature 'nope'");
    let (_d, prefix) = tf1_copy();
    expect_error(freeze(&prefix, &["--outputs", "nope"]), "output", "'nope'");
    let out = run("tf-freeze", &[dir.path().join("nothing").to_str().unwrap()], None);
    expect_error(out, "nothing", "nothing");
}

/// The files and folders people hand to tf-freeze by mistake, each named in one line.
#[test]
fn wrong_inputs_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let path = |p: &str| d.join(p).to_str().unwrap().to_string();
    let sm = fixtures().join("keras_cnn_savedmodel/saved_model");
    // A SavedModel laid out as TF writes it, then taken apart.
    let whole = d.join("whole");
    std::fs::create_dir_all(whole.join("variables")).unwrap();
    std::fs::copy(sm.join("saved_model.pb"), whole.join("saved_model.pb")).unwrap();
    for f in ["variables.index", "variables.data-00000-of-00001"] {
        std::fs::copy(sm.join("variables").join(f), whole.join("variables").join(f)).unwrap();
    }
    let headless = d.join("headless");
    std::fs::create_dir_all(headless.join("variables")).unwrap();
    std::fs::copy(sm.join("variables/variables.index"), headless.join("variables/variables.index"))
        .unwrap();
    // A TFLite flatbuffer: root table offset, then the file identifier.
    let mut tflite = 16u32.to_le_bytes().to_vec();
    tflite.extend(b"TFL3");
    tflite.resize(64, 0);
    std::fs::write(d.join("model.tflite"), &tflite).unwrap();
    std::fs::write(d.join("keras_metadata.pb"), b"\x12\x05keras").unwrap();
    std::fs::write(d.join("fingerprint.pb"), b"\x08\x01\x10\x02").unwrap();
    std::fs::create_dir_all(d.join("train")).unwrap();
    std::fs::write(d.join("train/checkpoint"), "model_checkpoint_path: \"model.ckpt-7\"\n")
        .unwrap();
    let cases: &[(String, &str)] = &[
        (path("model.tflite"), "a TensorFlow Lite flatbuffer, not a TensorFlow graph"),
        (path("keras_metadata.pb"), "Keras metadata of a SavedModel, not a graph"),
        (path("fingerprint.pb"), "the fingerprint of a SavedModel, not a graph"),
        (path("headless"), "a SavedModel directory without saved_model.pb"),
        (path("headless/variables"), "the variables/ folder of a SavedModel"),
        (path("whole/variables"), "give the SavedModel directory"),
        (path("whole/variables/variables"), "the variables of a SavedModel; give the SavedModel"),
        (path("absent/model.ckpt"), "no such file or directory"),
        (path("train"), "train/checkpoint names checkpoint"),
        (path("train"), "model.ckpt-7', which does not exist"),
    ];
    for (arg, needle) in cases {
        expect_error(run("tf-freeze", &[arg], None), arg, needle);
    }
    // The shared reader says the same to every tool, stdin included.
    expect_error(
        run("tf-strip", &[], Some(&tflite)),
        "tf-strip stdin",
        "<stdin>: a TensorFlow Lite flatbuffer",
    );
    expect_error(
        run("tf-inspect", &[&path("keras_metadata.pb")], None),
        "tf-inspect",
        "Keras metadata",
    );
    // The intact SavedModel still freezes.
    let out = run("tf-freeze", &[whole.to_str().unwrap()], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn recursive_functions_are_an_error_naming_the_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = fixtures().join("tf1_cnn_train/model.ckpt");
    let cases = [
        ("direct", tf_graph::synth::recursive_call(false), "(f -> f)"),
        ("partitioned", tf_graph::synth::recursive_call(true), "(f -> f)"),
        ("mutual", tf_graph::synth::mutual_recursion(), "(f -> g -> f)"),
    ];
    for (what, def, cycle) in cases {
        let path = dir.path().join(format!("{what}.pb"));
        std::fs::write(&path, def.encode_to_vec()).unwrap();
        let out =
            run("tf-freeze", &[prefix.to_str().unwrap(), "--graph", path.to_str().unwrap()], None);
        expect_error(out, what, cycle);
    }
    // 2,000 nested calls (no recursion) inline into one Neg.
    let path = dir.path().join("nested.pb");
    std::fs::write(&path, tf_graph::synth::call_chain(2_000).encode_to_vec()).unwrap();
    let out =
        run("tf-freeze", &[prefix.to_str().unwrap(), "--graph", path.to_str().unwrap()], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // An output that is the call itself keeps its name once the call is inlined.
    let args = [prefix.to_str().unwrap(), "--graph", path.to_str().unwrap(), "--outputs", "call"];
    let out = run("tf-freeze", &args, None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let g = tf_proto::tensorflow::GraphDef::decode(out.stdout.as_slice()).unwrap();
    let ops: Vec<(&str, &str)> = g.node.iter().map(|n| (n.name.as_str(), n.op.as_str())).collect();
    assert_eq!(ops.len(), 3, "{ops:?}");
    let call = g.node.iter().find(|n| n.name == "call").expect("the output 'call' is kept");
    assert_eq!(call.op, "Identity");
    let neg = g.node.iter().find(|n| n.op == "Neg").unwrap();
    assert_eq!(call.input, std::slice::from_ref(&neg.name));
}

#[test]
fn initialisation_checks_are_refused_in_their_own_words() {
    use tf_proto::tensorflow::{AttrValue, GraphDef, NodeDef, TensorShapeProto};
    let attr = |v| AttrValue { value: Some(v) };
    let mut var =
        NodeDef { name: "global_step".into(), op: "VariableV2".into(), ..Default::default() };
    var.attr.insert("dtype".into(), attr(attr_value::Value::Type(9)));
    var.attr.insert("shape".into(), attr(attr_value::Value::Shape(TensorShapeProto::default())));
    let mut init = NodeDef {
        name: "ready".into(),
        op: "IsVariableInitialized".into(),
        input: vec!["global_step".into()],
        ..Default::default()
    };
    init.attr.insert("dtype".into(), attr(attr_value::Value::Type(9)));
    let g = GraphDef { node: vec![var, init], ..Default::default() };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.pb");
    std::fs::write(&path, g.encode_to_vec()).unwrap();
    let prefix = fixtures().join("tf1_cnn_train/model.ckpt");
    let args = [prefix.to_str().unwrap(), "--graph", path.to_str().unwrap(), "--outputs", "ready"];
    expect_error(
        run("tf-freeze", &args, None),
        "IsVariableInitialized",
        "variable 'global_step' is checked for initialisation at run time by node 'ready'",
    );
}
