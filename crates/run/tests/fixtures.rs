//! Run the GraphDefs of the fixture cases (`tests/fixtures/*/case.json`, generated with real
//! TensorFlow by scripts/gen_fixtures.py) and check them against the outputs stored in `io.npz`
//! (and `expected.npz`).
//!
//! For every model of `"format": "graphdef"` in a case.json: each listed input is extracted from
//! io.npz (by its `key`) to an .npy file and fed with `--input`, each listed output is fetched
//! with `--outputs`, and the results are compared with io.npz. `tf-diff` of the graph against
//! itself must then exit 0. A fixture directory with a `frozen.pb` but no case.json is just run
//! (inputs from io.npz when present). Finding no fixture is a failure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tf_run::compare::{compare, Tolerance};
use tf_run::npy::{read_npz, write_npy};
use tf_run::HostTensor;

const TF_RUN: &str = env!("CARGO_BIN_EXE_tf-run");
const TF_DIFF: &str = env!("CARGO_BIN_EXE_tf-diff");

/// `tests/fixtures` of the workspace, or `$TF_RUN_FIXTURES` when set.
fn fixtures_dir() -> PathBuf {
    match std::env::var_os("TF_RUN_FIXTURES") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures"),
    }
}

fn case_dirs() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

fn tool(bin: &str) -> Command {
    let mut c = Command::new(bin);
    c.env("TF_CPP_MIN_LOG_LEVEL", "3");
    c
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn canonical(name: &str) -> String {
    tf_run::tf::canonical_tensor_name(name)
}

/// Check one graphdef model of a case; returns the number of outputs compared.
fn check_model(dir: &Path, model: &Value, io: &BTreeMap<String, HostTensor>) -> usize {
    let file = dir.join(model["file"].as_str().expect("model file"));
    let tmp = tempfile::tempdir().unwrap();
    let mut input_args: Vec<String> = Vec::new();
    if let Some(inputs) = model["inputs"].as_object() {
        for (i, (name, spec)) in inputs.iter().enumerate() {
            let key = spec["key"].as_str().expect("input key");
            let value =
                io.get(key).unwrap_or_else(|| panic!("{}: io.npz lacks {key}", dir.display()));
            let npy = tmp.path().join(format!("in{i}.npy"));
            write_npy(&npy, value).unwrap();
            input_args.push("--input".into());
            input_args.push(format!("{name}={}", npy.display()));
        }
    }
    let outputs: Vec<(String, String)> = model["outputs"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(n, s)| (n.clone(), s["key"].as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let out = tmp.path().join("out.npz");
    let mut cmd = tool(TF_RUN);
    cmd.arg(&file).args(&input_args).arg("-o").arg(&out);
    for (name, _) in &outputs {
        cmd.arg("--outputs").arg(name);
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "tf-run {}: {}", file.display(), text(&o));
    let got = read_npz(&out).unwrap();
    let mut checked = 0;
    for (name, key) in &outputs {
        let Some(want) = io.get(key) else { continue };
        let have = &got[&canonical(name)];
        let tol = Tolerance { atol: Some(1e-4), rtol: Some(1e-3) };
        let c = compare(name, key, have, want, tol);
        assert!(c.ok(), "{}: {name} vs io.npz[{key}]: {c:?}", file.display());
        checked += 1;
    }
    // The graph against itself, on the same inputs: exit 0.
    let o = tool(TF_DIFF)
        .arg(&file)
        .arg(&file)
        .args(&input_args)
        .args(outputs.iter().flat_map(|(n, _)| ["--outputs".to_string(), n.clone()]))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "tf-diff {0} {0}: {1}", file.display(), text(&o));
    checked
}

#[test]
fn fixture_graphdefs_run_and_match_stored_outputs() {
    let mut models = 0;
    let mut outputs = 0;
    for dir in case_dirs() {
        let io_path = dir.join("io.npz");
        // Stored arrays: io.npz, plus expected.npz where a case keeps decoded constants.
        let mut io = BTreeMap::new();
        for f in ["expected.npz", "io.npz"] {
            let p = dir.join(f);
            if p.is_file() {
                io.extend(read_npz(&p).unwrap());
            }
        }
        let case_json = dir.join("case.json");
        if let Ok(text) = std::fs::read_to_string(&case_json) {
            let case: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", case_json.display()));
            for model in case["models"].as_array().into_iter().flatten() {
                if model["format"] == "graphdef" {
                    outputs += check_model(&dir, model, &io);
                    models += 1;
                }
            }
        } else if dir.join("frozen.pb").is_file() {
            let mut cmd = tool(TF_RUN);
            cmd.arg(dir.join("frozen.pb"));
            if io_path.is_file() {
                cmd.arg("--inputs").arg(&io_path);
            }
            let o = cmd.output().unwrap();
            assert!(o.status.success(), "tf-run {}: {}", dir.display(), text(&o));
            models += 1;
        }
    }
    eprintln!("{models} fixture graph(s) run, {outputs} output(s) checked against io.npz");
    // The fixtures are committed: finding none means the test looked in the wrong place.
    assert!(models > 0 && outputs > 0, "no fixture found under {}", fixtures_dir().display());
}
