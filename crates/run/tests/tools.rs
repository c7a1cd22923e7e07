//! Process tests of the tf-run and tf-diff binaries.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use tf_run::npy::{read_npz, write_npy, write_npz};
use tf_run::{Data, HostTensor};

const TF_RUN: &str = env!("CARGO_BIN_EXE_tf-run");
const TF_DIFF: &str = env!("CARGO_BIN_EXE_tf-diff");

fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin).args(args).env("TF_CPP_MIN_LOG_LEVEL", "3").output().expect("spawn")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Our own stderr lines (TensorFlow prints a few start-up lines we cannot silence).
fn our_lines(o: &Output, tool: &str) -> Vec<String> {
    stderr(o)
        .lines()
        .filter(|l| l.starts_with(tool) || l.starts_with("input ") || l.starts_with("output "))
        .map(str::to_string)
        .collect()
}

fn write_graph(dir: &Path, name: &str, g: &tf_proto::tensorflow::GraphDef) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes(g)).unwrap();
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn tf_run_writes_outputs_npz() {
    let dir = tempfile::tempdir().unwrap();
    let g = write_graph(dir.path(), "g.pb", &matmul_graph(&W));
    let x = dir.path().join("x.npy");
    // float64 input: converted to the placeholder's float32.
    write_npy(&x, &HostTensor::new(vec![1, 3], Data::F64(vec![1.0, 1.0, 1.0])).unwrap()).unwrap();
    let out = dir.path().join("out.npz");
    let o = run(TF_RUN, &[s(&g), "--input", &format!("x={}", s(&x)), "-o", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let arrays = read_npz(&out).unwrap();
    assert_eq!(
        arrays.get("y:0"),
        Some(&HostTensor::new(vec![1, 2], Data::F32(vec![9.0, 12.0])).unwrap())
    );
    let lines = our_lines(&o, "tf-run");
    assert!(lines.iter().any(|l| l.starts_with("output y:0: float32 [1,2]")), "{lines:?}");
}

#[test]
fn tf_run_generates_seeded_inputs_and_batch() {
    let dir = tempfile::tempdir().unwrap();
    let g = write_graph(dir.path(), "g.pb", &matmul_graph(&W));
    let out1 = dir.path().join("a.npz");
    let out2 = dir.path().join("b.npz");
    let out3 = dir.path().join("c.npz");
    for (out, seed) in [(&out1, "5"), (&out2, "5"), (&out3, "6")] {
        let o = run(
            TF_RUN,
            &[
                s(&g),
                "--seed",
                seed,
                "--batch",
                "4",
                "--outputs",
                "mm",
                "-o",
                s(out),
                "--save-inputs",
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let a = read_npz(&out1).unwrap();
    let b = read_npz(&out2).unwrap();
    let c = read_npz(&out3).unwrap();
    assert_eq!(a["mm:0"].shape, vec![4, 2]);
    assert_eq!(a["x:0"].shape, vec![4, 3]);
    assert_eq!(a, b);
    assert_ne!(a["mm:0"], c["mm:0"]);
}

#[test]
fn tf_run_errors_are_one_line_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let g = write_graph(dir.path(), "g.pb", &matmul_graph(&W));
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![s(&g).into(), "--outputs".into(), "nope:0".into()], "nope:0"),
        (vec![dir.path().join("missing.pb").to_str().unwrap().into()], "missing.pb"),
        (vec![s(&g).into(), "--input".into(), "x=/nonexistent.npy".into()], "nonexistent.npy"),
        (vec![s(&g).into(), "--input".into(), "zz=/nonexistent.npy".into()], "zz"),
        (vec![s(&g).into(), "--shape".into(), "x=2,2".into()], "x"),
    ];
    for (args, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = run(TF_RUN, &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let lines = our_lines(&o, "tf-run");
        assert_eq!(lines.len(), 1, "{args:?}: {}", stderr(&o));
        assert!(lines[0].starts_with("tf-run: error: "), "{lines:?}");
        assert!(lines[0].contains(needle), "{lines:?}");
    }
    // Not a GraphDef.
    let junk = dir.path().join("junk.pb");
    std::fs::write(&junk, b"\xff\xfe this is not a protobuf").unwrap();
    let o = run(TF_RUN, &[s(&junk)]);
    assert_eq!(o.status.code(), Some(2));
    let lines = our_lines(&o, "tf-run");
    assert_eq!(lines.len(), 1, "{}", stderr(&o));
    assert!(lines[0].contains("junk.pb"), "{lines:?}");
    // Bad usage is exit 2 as well (clap).
    let o = run(TF_RUN, &["--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn tf_diff_same_graph_is_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let g = write_graph(dir.path(), "g.pb", &matmul_graph(&W));
    let o = run(TF_DIFF, &[s(&g), s(&g), "--batch", "3"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let table = stdout(&o);
    assert!(table.contains("y:0"), "{table}");
    assert!(table.contains(" ok"), "{table}");

    let o = run(TF_DIFF, &[s(&g), s(&g), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json report");
    assert_eq!(v["ok"], true);
    assert_eq!(v["outputs"][0]["a"], "y:0");
    assert_eq!(v["outputs"][0]["max_abs_error"], 0.0);
    assert_eq!(v["outputs"][0]["outliers"], 0);
    assert_eq!(v["outputs"][0]["cosine_similarity"], 1.0);
}

#[test]
fn tf_diff_perturbed_const_is_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_graph(dir.path(), "a.pb", &matmul_graph(&W));
    let mut w2 = W;
    w2[3] += 0.01;
    let b = write_graph(dir.path(), "b.pb", &matmul_graph(&w2));
    // Inputs from an npz (keys `x:0` and an unrelated array that must be ignored).
    let io = dir.path().join("io.npz");
    write_npz(
        &io,
        &[
            ("x:0".into(), HostTensor::new(vec![1, 3], Data::F32(vec![0.0, 1.0, 0.0])).unwrap()),
            ("expected".into(), HostTensor::new(vec![1], Data::F32(vec![0.0])).unwrap()),
        ],
    )
    .unwrap();
    let o = run(TF_DIFF, &[s(&a), s(&b), "--inputs", s(&io), "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json report");
    assert_eq!(v["ok"], false);
    let out = &v["outputs"][0];
    assert_eq!(out["outliers"], 1);
    assert_eq!(out["first_outlier"]["index"], serde_json::json!([0, 1]));
    let max_abs = out["max_abs_error"].as_f64().unwrap();
    assert!((max_abs - 0.01).abs() < 1e-5, "{max_abs}");

    // Table form, and a loose tolerance makes it pass.
    let o = run(TF_DIFF, &[s(&a), s(&b), "--inputs", s(&io)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("FAIL"), "{}", stdout(&o));
    assert!(stdout(&o).contains("first outlier at [0, 1]"), "{}", stdout(&o));
    let o = run(TF_DIFF, &[s(&a), s(&b), "--inputs", s(&io), "--atol", "0.02"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn tf_diff_output_pairs_and_missing_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_graph(dir.path(), "a.pb", &matmul_graph(&W));
    let b = write_graph(dir.path(), "b.pb", &matmul_graph(&W));
    let o = run(TF_DIFF, &[s(&a), s(&b), "--outputs", "y=mm:0"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("y:0 = mm:0"), "{}", stdout(&o));

    let o = run(TF_DIFF, &[s(&a), s(&b), "--outputs", "y=missing"]);
    assert_eq!(o.status.code(), Some(2));
    let lines = our_lines(&o, "tf-diff");
    assert_eq!(lines.len(), 1, "{}", stderr(&o));
    assert!(lines[0].contains("'missing'") && lines[0].contains("graph B"), "{lines:?}");
}

#[test]
fn tf_run_reads_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let g = write_graph(dir.path(), "g.pb", &matmul_graph(&W));
    let out = dir.path().join("out.npz");
    let o = Command::new(TF_RUN)
        .args(["-", "-o", s(&out), "--outputs", "y"])
        .env("TF_CPP_MIN_LOG_LEVEL", "3")
        .stdin(std::fs::File::open(&g).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read_npz(&out).unwrap()["y:0"].shape, vec![1, 2]);
}

#[test]
fn tf_run_shares_the_tools_report_completions_and_man() {
    let dir = tempfile::tempdir().unwrap();
    let g = write_graph(dir.path(), "g.pb", &matmul_graph(&W));
    let report = dir.path().join("r.json");
    let o = run(TF_RUN, &[s(&g), "--report", s(&report), "--seed", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).expect("json report");
    assert_eq!(v["tool"], "tf-run");
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["input"]["path"], s(&g));
    assert_eq!(v["input"]["nodes"], 4);
    let run_entry = &v["changes"]["run"];
    assert_eq!(run_entry["outputs"][0]["name"], "y:0");
    assert_eq!(run_entry["outputs"][0]["dtype"], "float32");
    assert_eq!(run_entry["outputs"][0]["shape"], serde_json::json!([1, 2]));
    assert_eq!(run_entry["inputs"][0]["name"], "x");
    assert_eq!(run_entry["inputs"][0]["source"], "random (seed 2)");
    // --quiet: no summary lines; nothing on stdout without -o.
    let o = run(TF_RUN, &[s(&g), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(our_lines(&o, "tf-run").is_empty(), "{}", stderr(&o));
    assert!(o.stdout.is_empty());

    for bin in [TF_RUN, TF_DIFF] {
        let name = Path::new(bin).file_name().unwrap().to_str().unwrap();
        let o = run(bin, &["--completions", "bash"]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains(&format!("_{}", name.replace('-', "__"))), "{}", stdout(&o));
        let o = run(bin, &["--man"]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).starts_with(".ie") || stdout(&o).contains(".TH"), "{}", stdout(&o));
        let o = run(bin, &["--help"]);
        assert!(stdout(&o).contains("--report") && stdout(&o).contains("Examples:"));
    }
}

#[test]
fn tf_run_npz_on_stdout_and_atomic_output() {
    let dir = tempfile::tempdir().unwrap();
    let g = write_graph(dir.path(), "g.pb", &matmul_graph(&W));
    let o = run(TF_RUN, &[s(&g), "-o", "-", "--outputs", "y,mm:0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let arrays = tf_run::npy::read_npz_from(std::io::Cursor::new(o.stdout)).unwrap();
    assert_eq!(arrays.keys().collect::<Vec<_>>(), ["mm:0", "y:0"]);
    // A failed run leaves no output file behind.
    let out = dir.path().join("out.npz");
    let o = run(TF_RUN, &[s(&g), "-o", s(&out), "--outputs", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!out.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "only g.pb is left");
}

#[test]
fn tf_diff_report_and_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_graph(dir.path(), "a.pb", &matmul_graph(&W));
    let mut w2 = W;
    w2[0] += 0.5;
    let b = write_graph(dir.path(), "b.pb", &matmul_graph(&w2));
    let table = dir.path().join("table.txt");
    let report = dir.path().join("r.json");
    let o = run(TF_DIFF, &[s(&a), s(&b), "-o", s(&table), "--report", s(&report)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    assert!(std::fs::read_to_string(&table).unwrap().contains("FAIL"));
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).expect("json report");
    assert_eq!(v["tool"], "tf-diff");
    assert_eq!(v["exit_code"], 1);
    assert_eq!(v["input"]["path"], s(&a));
    assert_eq!(v["changes"]["diff"]["ok"], false);
    assert_eq!(v["changes"]["diff"]["b"], s(&b));
    assert_eq!(v["changes"]["diff"]["outputs"][0]["a"], "y:0");
    // Both graphs from stdin is an error, one line, exit 2.
    let o = run(TF_DIFF, &["-", "-"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(our_lines(&o, "tf-diff").len(), 1, "{}", stderr(&o));
}

#[test]
fn tf_run_calibrate_records_ranges_and_flags_a_smoke_run() {
    let dir = tempfile::tempdir().unwrap();
    let g = write_graph(dir.path(), "g.pb", &matmul_graph(&W));
    // 40 samples: two runs (32 + 8 rows).
    let v: Vec<f32> = (0..120).map(|i| i as f32 / 10.0 - 2.0).collect();
    let npz = dir.path().join("samples.npz");
    write_npz(&npz, &[("x".to_string(), HostTensor::new(vec![40, 3], Data::F32(v)).unwrap())])
        .unwrap();
    let out = dir.path().join("ranges.json");
    let o = run(TF_RUN, &[s(&g), "--calibrate", s(&npz), "-o", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = tf_quant::ranges::RangesFile::parse(&std::fs::read(&out).unwrap()).unwrap();
    assert!(!r.smoke_run_only && r.note.is_none());
    assert_eq!(r.samples, 40);
    assert_eq!(r.tensors.keys().collect::<Vec<_>>(), ["mm:0", "x:0"]);
    let x = &r.tensors["x:0"];
    assert_eq!((x.min, x.count), (-2.0, 120));
    assert!((x.max - 9.9).abs() < 1e-5, "{}", x.max);
    assert_eq!(x.histogram.iter().sum::<u64>(), 120);
    // The shapes seen: the batch dimension differed between the two runs.
    assert_eq!(x.shape, Some(vec![-1, 3]));
    assert_eq!(r.tensors["mm:0"].shape.as_ref().map(Vec::len), Some(2));

    let o = run(TF_RUN, &[s(&g), "--calibrate", "-o", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("smoke run only"), "{}", stderr(&o));
    let r = tf_quant::ranges::RangesFile::parse(&std::fs::read(&out).unwrap()).unwrap();
    assert!(r.smoke_run_only && r.note.unwrap().contains("smoke run only"));

    // Samples that do not name the placeholder: one line, exit 2, nothing written.
    let bad = dir.path().join("bad.npz");
    write_npz(&bad, &[("z".to_string(), HostTensor::new(vec![1], Data::F32(vec![0.0])).unwrap())])
        .unwrap();
    let out2 = dir.path().join("none.json");
    let o = run(TF_RUN, &[s(&g), "--calibrate", s(&bad), "-o", s(&out2)]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        our_lines(&o, "tf-run"),
        ["tf-run: error: ".to_string() + s(&bad) + ": no array for placeholder 'x'"]
    );
    assert!(!out2.exists());
}
