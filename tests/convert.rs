//! tf-convert's contract on bad input and its output handling.

use crate::util::{fixtures, protobuf_fixtures, run, saved_model_dirs};

fn sample_graph() -> Vec<u8> {
    let path = protobuf_fixtures()
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "pb") && !p.ends_with("saved_model.pb"))
        .expect("a GraphDef fixture");
    std::fs::read(path).unwrap()
}

#[test]
fn malformed_inputs_exit_2_with_one_line() {
    let good = sample_graph();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("truncated", good[..good.len() * 2 / 3].to_vec()),
        ("garbage", (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect()),
        ("text garbage", b"this is { not a graph".to_vec()),
    ];
    for (what, data) in cases {
        run("tf-convert", &[], Some(&data)).assert_clean_error(what);
    }
    // A different message type: a checkpoint index (an SSTable) and a fingerprint.
    for f in crate::util::walk(&fixtures()) {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".index") || name == "fingerprint.pb" {
            run("tf-convert", &[f.to_str().unwrap()], None).assert_clean_error(&name);
        }
    }
}

#[test]
fn savedmodel_directory_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = run("tf-convert", &[dir.path().to_str().unwrap()], None);
    out.assert_clean_error("empty dir");
    assert!(out.stderr.contains("not a SavedModel directory"), "{}", out.stderr);
    let sm = saved_model_dirs().into_iter().next().expect("a SavedModel fixture");
    let bad_tag = run("tf-convert", &[sm.to_str().unwrap(), "--tag", "nope"], None);
    bad_tag.assert_clean_error("bad tag");
    assert!(bad_tag.stderr.contains("no MetaGraphDef with tags 'nope'"), "{}", bad_tag.stderr);
    let bad_sig = run("tf-convert", &[sm.to_str().unwrap(), "--signature", "nope"], None);
    bad_sig.assert_clean_error("bad signature");
}

#[test]
fn failed_runs_leave_no_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.pb");
    let out = run("tf-convert", &["-o", target.to_str().unwrap()], Some(b"\xff\xff\xff"));
    out.assert_clean_error("garbage to -o");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing may be left behind");
    let ok = run("tf-convert", &["-o", target.to_str().unwrap()], Some(&sample_graph()));
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(ok.stdout.is_empty());
    assert_eq!(std::fs::read(&target).unwrap(), sample_graph());
}

#[test]
fn report_json_describes_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let graph = sample_graph();
    let out = run("tf-convert", &["--report", report.to_str().unwrap()], Some(&graph));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["tool"], "tf-convert");
    assert_eq!(r["input"]["bytes"], graph.len() as u64);
    assert_eq!(r["output"]["bytes"], graph.len() as u64);
    assert_eq!(r["input"]["nodes"], r["output"]["nodes"]);
    assert!(r["wall_time_ms"].as_f64().unwrap() > 0.0);
}

#[test]
fn help_completions_and_man() {
    let help = run("tf-convert", &["--help"], None);
    assert_eq!(help.code, 0);
    assert!(String::from_utf8_lossy(&help.stdout).contains("Examples:"));
    let bash = run("tf-convert", &["--completions", "bash"], None);
    assert!(String::from_utf8_lossy(&bash.stdout).contains("tf-convert"));
    let man = run("tf-convert", &["--man"], None);
    assert!(String::from_utf8_lossy(&man.stdout).contains(".TH"));
    let bad = run("tf-convert", &["--no-such-flag"], None);
    assert_eq!(bad.code, 2);
}

#[test]
fn output_to_a_device_or_a_symlink_keeps_it() {
    let graph = sample_graph();
    let out = run("tf-convert", &["-o", "/dev/null"], Some(&graph));
    assert_eq!(out.code, 0, "{}", out.stderr);
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.pb");
    std::fs::write(&real, b"old").unwrap();
    let link = dir.path().join("link.pb");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let out = run("tf-convert", &["-o", link.to_str().unwrap()], Some(&graph));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(link.is_symlink(), "the link stays a link");
    assert_eq!(std::fs::read(&real).unwrap(), graph);
    // The mode of new files (the umask) is checked in output.rs.
}
