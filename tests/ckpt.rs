//! tf-ckpt on the checkpoints TF 2.21 wrote for the fixtures: what it writes reads back with
//! the same values (the TF-reads-it tier is `tests/tf/test_ckpt.py`), outputs are all or
//! nothing, and damaged checkpoints are refused in one line.

use std::path::Path;

use tf_ckpt::Checkpoint;

use crate::util::{fixtures, run, Outcome};

fn ck(rel: &str) -> String {
    fixtures().join(rel).to_str().unwrap().to_string()
}

fn tf_ckpt(args: &[&str]) -> Outcome {
    run("tf-ckpt", args, None)
}

fn ok(out: &Outcome, what: &str) {
    assert_eq!(out.code, 0, "{what}: {}", out.stderr);
}

/// Files in `dir`, sorted by name.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn raw(c: &Checkpoint, key: &str) -> (i32, Vec<i64>, Vec<u8>) {
    let t = c.read(key).unwrap_or_else(|e| panic!("{e}"));
    let bytes = match &t.data {
        tf_tensor::Data::Raw(b) => b.to_vec(),
        tf_tensor::Data::Strings(s) => s.concat(),
        _ => panic!("{key}"),
    };
    (t.dtype, t.shape.clone(), bytes)
}

#[test]
fn slim_keeps_the_weights_bit_for_bit_and_drops_adam() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("slim/ck");
    let o = tf_ckpt(&["slim", &ck("tf1_cnn_train/"), "-o", out.to_str().unwrap()]);
    ok(&o, "slim");
    let a = Checkpoint::open(&fixtures().join("tf1_cnn_train/model.ckpt")).unwrap();
    let b = Checkpoint::open(&out).unwrap();
    let keys: Vec<String> = b.entries().into_iter().map(|e| e.key).collect();
    assert!(keys.iter().all(|k| !k.contains("Adam") && k != "global_step"), "{keys:?}");
    assert!(keys.contains(&"conv1/kernel".to_string()));
    for k in &keys {
        assert_eq!(raw(&a, k), raw(&b, k), "{k}");
    }
    let data_in =
        std::fs::metadata(fixtures().join("tf1_cnn_train/model.ckpt.data-00000-of-00001"))
            .unwrap()
            .len();
    let data_out = std::fs::metadata(tmp.path().join("slim/ck.data-00000-of-00001")).unwrap().len();
    assert!(data_out * 100 <= data_in * 34, "{data_out} of {data_in}");
    // Nothing but the checkpoint in the output directory (no temporary left).
    assert_eq!(listing(&tmp.path().join("slim")), ["ck.data-00000-of-00001", "ck.index"]);
}

#[test]
fn writes_are_deterministic_and_shardable() {
    let tmp = tempfile::tempdir().unwrap();
    let src = ck("tf1_partitioned/model.ckpt");
    let (x, y) = (tmp.path().join("x/ck"), tmp.path().join("y/ck"));
    for p in [&x, &y] {
        ok(&tf_ckpt(&["merge", &src, "-o", p.to_str().unwrap(), "--shards", "3"]), "merge");
    }
    let names = listing(&tmp.path().join("x"));
    assert_eq!(names.len(), 4, "{names:?}");
    for n in &names {
        let a = std::fs::read(tmp.path().join("x").join(n)).unwrap();
        let b = std::fs::read(tmp.path().join("y").join(n)).unwrap();
        assert_eq!(a, b, "{n}");
    }
    let (a, b) = (Checkpoint::open(Path::new(&src)).unwrap(), Checkpoint::open(&x).unwrap());
    assert_eq!(a.entries(), b.entries(), "partitioned variables keep their slices");
    for e in a.entries() {
        assert_eq!(raw(&a, &e.key), raw(&b, &e.key), "{}", e.key);
    }
    let d = tf_ckpt(&["diff", &src, x.to_str().unwrap()]);
    ok(&d, "diff of equal checkpoints");
}

#[test]
fn cast_rounds_like_tf_and_diff_sees_it() {
    let tmp = tempfile::tempdir().unwrap();
    let src = ck("tf1_cnn_train/model.ckpt");
    let out = tmp.path().join("h");
    ok(&tf_ckpt(&["cast", &src, "--dtype", "float16", "-o", out.to_str().unwrap()]), "cast");
    let (a, b) = (Checkpoint::open(Path::new(&src)).unwrap(), Checkpoint::open(&out).unwrap());
    let k = a.read("conv1/kernel").unwrap().values::<f32>().unwrap();
    let (dtype, _, bytes) = raw(&b, "conv1/kernel");
    assert_eq!(dtype, tf_tensor::dt::HALF);
    let want: Vec<u8> = k.iter().flat_map(|x| half_bits(*x).to_le_bytes()).collect();
    assert_eq!(bytes, want);
    assert_eq!(raw(&a, "global_step"), raw(&b, "global_step"), "int64 untouched");
    // Exit 1 for a dtype change; equal within a float16 step across dtypes.
    assert_eq!(tf_ckpt(&["diff", &src, out.to_str().unwrap()]).code, 1);
    let d = tf_ckpt(&[
        "diff",
        &src,
        out.to_str().unwrap(),
        "--across-dtypes",
        "--rtol",
        "1e-3",
        "--atol",
        "1e-4",
    ]);
    ok(&d, "diff --across-dtypes");
    let d = tf_ckpt(&["diff", &src, out.to_str().unwrap(), "--across-dtypes", "--json"]);
    assert_eq!(d.code, 1);
    let j: serde_json::Value = serde_json::from_slice(&d.stdout).unwrap();
    assert!(j["differ"].as_array().unwrap().iter().all(|r| r["status"] == "values"), "{j}");
}

/// f32 → f16 bits, round to nearest even (what tf.cast does), for normal values.
fn half_bits(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32 - 127 + 15;
    let man = b & 0x7f_ffff;
    if x == 0.0 {
        return sign;
    }
    if exp <= 0 {
        // Subnormal half.
        let m = (man | 0x80_0000) as u64;
        let shift = (14 - exp) as u32;
        let q = m >> shift;
        let rem = m & ((1 << shift) - 1);
        let half = 1u64 << (shift - 1);
        let q = if rem > half || (rem == half && q & 1 == 1) { q + 1 } else { q };
        return sign | q as u16;
    }
    let q = (exp as u32) << 10 | (man >> 13);
    let rem = man & 0x1fff;
    let q = if rem > 0x1000 || (rem == 0x1000 && q & 1 == 1) { q + 1 } else { q };
    sign | q as u16
}

#[test]
fn ls_lists_v1_v2_and_a_directory_without_state_file() {
    let o = tf_ckpt(&["ls", &ck("tf1_cnn_train"), "--json"]);
    ok(&o, "ls");
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["tensors"].as_array().unwrap().len(), 23);
    ok(&tf_ckpt(&["ls", &ck("tf1_v1_checkpoint/model.ckpt")]), "ls V1");
    // tf.train.Checkpoint.write leaves no `checkpoint` file: the one prefix is found.
    let tmp = tempfile::tempdir().unwrap();
    for f in ["model.ckpt.index", "model.ckpt.data-00000-of-00001"] {
        std::fs::copy(fixtures().join("tf1_cnn_train").join(f), tmp.path().join(f)).unwrap();
    }
    let o = tf_ckpt(&["ls", tmp.path().to_str().unwrap()]);
    ok(&o, "ls of a directory without a state file");
    // A V1 checkpoint is written out as V2.
    let out = tmp.path().join("v2/ck");
    ok(&tf_ckpt(&["slim", &ck("tf1_v1_checkpoint/model.ckpt"), "-o", out.to_str().unwrap()]), "v1");
    let v1 = Checkpoint::open(&fixtures().join("tf1_v1_checkpoint/model.ckpt")).unwrap();
    let v2 = Checkpoint::open(&out).unwrap();
    for e in v2.entries() {
        assert_eq!(raw(&v1, &e.key), raw(&v2, &e.key), "{}", e.key);
    }
}

#[test]
fn slim_keep_for_a_graph_keeps_what_it_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("k/ck");
    let src = ck("keras_cnn_savedmodel/saved_model/variables/variables");
    let o = tf_ckpt(&[
        "slim",
        &src,
        "-o",
        out.to_str().unwrap(),
        "--keep-for",
        &ck("keras_cnn_savedmodel/saved_model"),
        "--drop",
        "layer_with_weights-0/bias",
    ]);
    ok(&o, "slim --keep-for");
    let keys: Vec<String> =
        Checkpoint::open(&out).unwrap().entries().into_iter().map(|e| e.key).collect();
    assert!(keys.contains(&"layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE".into()));
    assert!(!keys.iter().any(|k| k.starts_with("layer_with_weights-0/bias")), "{keys:?}");
    let g = Checkpoint::open(&out).unwrap().object_graph().unwrap().unwrap();
    for n in &g.nodes {
        for a in &n.attributes {
            assert!(keys.contains(&a.checkpoint_key), "object graph names {}", a.checkpoint_key);
        }
    }
}

/// Every truncation and a byte flip spread over the index and the data file: exit 0 or 2,
/// one line, and no output (nor temporary) unless the run succeeded.
#[test]
fn damaged_checkpoints_are_refused_cleanly() {
    let src = fixtures().join("tf1_cnn_train");
    let files = ["model.ckpt.index", "model.ckpt.data-00000-of-00001"];
    let mut refused = 0;
    for damaged in files {
        let bytes = std::fs::read(src.join(damaged)).unwrap();
        let n = bytes.len();
        let mut variants: Vec<Vec<u8>> = (0..12).map(|k| bytes[..n * k / 12].to_vec()).collect();
        for k in 0..12 {
            let mut v = bytes.clone();
            let at = (k * 7919 + 13) % n;
            v[at] = v[at].wrapping_add(97);
            variants.push(v);
        }
        for (i, v) in variants.iter().enumerate() {
            let tmp = tempfile::tempdir().unwrap();
            for f in files {
                if f == damaged {
                    std::fs::write(tmp.path().join(f), v).unwrap();
                } else {
                    std::fs::copy(src.join(f), tmp.path().join(f)).unwrap();
                }
            }
            let prefix = tmp.path().join("model.ckpt");
            let out_dir = tmp.path().join("out");
            let out = out_dir.join("ck");
            for args in [
                vec!["slim", prefix.to_str().unwrap(), "-o", out.to_str().unwrap()],
                vec![
                    "cast",
                    prefix.to_str().unwrap(),
                    "--dtype",
                    "bfloat16",
                    "-o",
                    out.to_str().unwrap(),
                ],
                vec!["diff", prefix.to_str().unwrap(), src.join("model.ckpt").to_str().unwrap()],
            ] {
                let _ = std::fs::remove_dir_all(&out_dir);
                let o = tf_ckpt(&args);
                let what = format!("{} on variant {i} of {damaged}", args[0]);
                assert!(o.signal.is_none() && matches!(o.code, 0..=2), "{what}: {o:?}");
                if o.code == 2 {
                    o.assert_clean_error(&what);
                    assert!(
                        o.stderr.contains(tmp.path().to_str().unwrap()),
                        "{what}: names the file: {}",
                        o.stderr
                    );
                    assert!(listing(&out_dir).is_empty(), "{what}: left {:?}", listing(&out_dir));
                    refused += 1;
                }
            }
        }
    }
    assert!(refused > 30, "{refused}");
}

#[test]
fn bad_arguments_are_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o");
    let src = ck("tf1_cnn_train/model.ckpt");
    for args in [
        vec!["cast", &src, "--dtype", "int8", "-o", out.to_str().unwrap()],
        vec!["slim", &src, "--keep", "(", "-o", out.to_str().unwrap()],
        vec!["merge", &src, &src, "-o", out.to_str().unwrap()],
        vec!["ls", "/nonexistent/ckpt"],
        vec![],
    ] {
        let o = tf_ckpt(&args);
        o.assert_clean_error(&format!("{args:?}"));
    }
    assert!(listing(tmp.path()).is_empty());
}

/// tf-freeze gives the same frozen graph from the slimmed checkpoint as from the full one.
#[test]
fn freezing_the_slim_checkpoint_gives_the_same_graph() {
    let tmp = tempfile::tempdir().unwrap();
    let src = fixtures().join("tf1_cnn_train");
    let slim = tmp.path().join("model.ckpt");
    ok(&tf_ckpt(&["slim", src.to_str().unwrap(), "-o", slim.to_str().unwrap()]), "slim");
    std::fs::copy(src.join("model.ckpt.meta"), tmp.path().join("model.ckpt.meta")).unwrap();
    let freeze = |p: &Path| {
        let o = run("tf-freeze", &[p.to_str().unwrap(), "--outputs", "softmax"], None);
        ok(&o, "tf-freeze");
        o.stdout
    };
    assert_eq!(freeze(&src.join("model.ckpt")), freeze(&slim));
}
