//! Snapshots of what users see, for all ten tools, without TensorFlow: `--help`, the
//! `--report` JSON of a good run, and the error line of each class of bad input.
//!
//! Each snapshot is a file in `tests/snapshots/`; a difference fails the test with the first
//! lines that differ. After an intended change, re-bless every snapshot with
//!
//! ```sh
//! TF_TOOLS_BLESS=1 cargo test --test integration snapshot
//! ```
//!
//! and review the diff with `git diff tests/snapshots`. What varies from run to run is
//! redacted: wall times, the scratch directory (`[TMP]`), the version (`[VERSION]`) and gzip
//! sizes (they depend on the compressor's version).

use std::path::{Path, PathBuf};

use prost::Message;
use tf_proto::tensorflow::{GraphDef, NodeDef};

use crate::util::{command, root, run_command, Outcome, TOOLS};

const BLESS: &str = "TF_TOOLS_BLESS";

fn snapshot_dir() -> PathBuf {
    root().join("tests/snapshots")
}

/// Compares `actual` with the stored snapshot `name` (or stores it when blessing). Returns a
/// description of the mismatch, so that one test can report every stale snapshot at once.
fn check(name: &str, actual: &str) -> Option<String> {
    let path = snapshot_dir().join(format!("{name}.txt"));
    if std::env::var_os(BLESS).is_some_and(|v| !v.is_empty() && v != "0") {
        std::fs::create_dir_all(snapshot_dir()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return None;
    }
    let expected = match std::fs::read_to_string(&path) {
        Ok(e) => e,
        Err(_) => return Some(format!("{name}: no snapshot at {}", path.display())),
    };
    if expected == actual {
        return None;
    }
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let first = e.iter().zip(&a).position(|(x, y)| x != y).unwrap_or(e.len().min(a.len()));
    let from = first.saturating_sub(2);
    let mut msg = format!("{name}: differs from {} at line {}\n", path.display(), first + 1);
    for l in e.iter().skip(from).take(6) {
        msg.push_str(&format!("  - {l}\n"));
    }
    for l in a.iter().skip(from).take(6) {
        msg.push_str(&format!("  + {l}\n"));
    }
    Some(msg)
}

fn assert_snapshots(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} snapshot(s) differ; if the change is intended, re-bless with \
         `{BLESS}=1 cargo test --test integration snapshot` and review `git diff tests/snapshots`:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Replaces what varies between runs and machines.
fn redact(text: &str, tmp: &Path) -> String {
    let mut out = text.replace(tmp.to_str().unwrap(), "[TMP]");
    out = out.replace(root().to_str().unwrap(), "[ROOT]");
    out = out.replace(env!("CARGO_PKG_VERSION"), "[VERSION]");
    let mut lines = Vec::new();
    for line in out.lines() {
        let key = line.trim_start().split(':').next().unwrap_or("").trim_matches('"');
        let redacted = matches!(key, "wall_time_ms" | "gzip_bytes_before" | "gzip_bytes_after")
            || key.ends_with("_ms");
        if redacted && line.contains(':') {
            let (k, v) = line.split_once(':').unwrap();
            let comma = if v.trim_end().ends_with(',') { "," } else { "" };
            lines.push(format!("{k}: \"[REDACTED]\"{comma}"));
        } else {
            lines.push(line.to_string());
        }
    }
    lines.join("\n") + "\n"
}

/// Runs a tool from the repository root (so fixture paths are relative and stable).
fn run_tool(tool: &str, args: &[&str]) -> Outcome {
    let mut c = command(tool);
    c.current_dir(root()).args(args);
    run_command(c, None)
}

fn describe(out: &Outcome) -> String {
    let stdout = if out.stdout.is_empty() {
        "stdout: empty".to_string()
    } else {
        format!("stdout: {} bytes", out.stdout.len())
    };
    let status = match out.signal {
        Some(s) => format!("killed by signal {s}"),
        None => format!("exit {}", out.code),
    };
    format!("{status}, {stdout}\n{}", out.stderr)
}

/// The arguments that make a tool do its default job.
fn tool_args(tool: &str) -> &'static [&'static str] {
    match tool {
        "tf-quant" => &["int8"],
        "tf-prune" => &["--sparsity", "0.5"],
        "tf-transform" => &[
            "--transforms",
            "strip_unused_nodes fold_constants(ignore_errors=true) fold_batch_norms \
             fold_old_batch_norms quantize_weights",
        ],
        "tf-ckpt" => &["ls"],
        _ => &[],
    }
}

const FROZEN: &str = "tests/fixtures/keras_cnn_savedmodel/frozen.pb";
const SAVED_MODEL: &str = "tests/fixtures/keras_cnn_savedmodel/saved_model";
const CKPT: &str = "tests/fixtures/tf1_cnn_train/model.ckpt";

#[test]
fn snapshot_help() {
    let mut failures = Vec::new();
    for tool in TOOLS {
        let out = run_tool(tool, &["--help"]);
        assert_eq!(out.code, 0, "{tool} --help: {}", out.stderr);
        let text = String::from_utf8(out.stdout).unwrap();
        failures.extend(check(&format!("{tool}-help"), &redact(&text, Path::new("/nonexistent"))));
    }
    assert_snapshots(failures);
}

#[test]
fn snapshot_report() {
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for tool in TOOLS {
        let report = tmp.path().join(format!("{tool}.json"));
        let output = tmp.path().join(format!("{tool}.out"));
        let input = match tool {
            "tf-freeze" => SAVED_MODEL,
            "tf-ckpt" => CKPT,
            _ => FROZEN,
        };
        let mut args: Vec<&str> =
            if tool == "tf-ckpt" { vec!["slim"] } else { tool_args(tool).to_vec() };
        args.extend([input, "-o", output.to_str().unwrap(), "--report", report.to_str().unwrap()]);
        let out = run_tool(tool, &args);
        assert!(out.code == 0 || out.code == 1, "{tool}: {}", describe(&out));
        let json = std::fs::read_to_string(&report).unwrap();
        let text = format!("$ {tool} {}\n{}\n{json}", args.join(" "), describe(&out));
        failures.extend(check(&format!("{tool}-report"), &redact(&text, tmp.path())));
    }
    assert_snapshots(failures);
}

/// A GraphDef whose node reads a tensor no node produces.
fn dangling_graph() -> Vec<u8> {
    let node = |name: &str, op: &str, input: &[&str]| NodeDef {
        name: name.into(),
        op: op.into(),
        input: input.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    GraphDef {
        node: vec![
            node("x", "Placeholder", &[]),
            node("y", "AddV2", &["x", "missing_node:0"]),
            node("z", "Identity", &["y"]),
        ],
        ..Default::default()
    }
    .encode_to_vec()
}

#[test]
fn snapshot_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let frozen = std::fs::read(root().join(FROZEN)).unwrap();
    let file = |name: &str, data: &[u8]| {
        let p = tmp.path().join(name);
        std::fs::write(&p, data).unwrap();
        p.to_str().unwrap().to_string()
    };
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let classes: Vec<(&str, String)> = vec![
        ("missing file", "tests/fixtures/no-such-model.pb".into()),
        ("empty input", file("empty.pb", b"")),
        ("garbage bytes", file("garbage.pb", &garbage)),
        ("truncated protobuf", file("truncated.pb", &frozen[..frozen.len() * 2 / 3])),
        ("dangling input", file("dangling.pb", &dangling_graph())),
        (
            "wrong format: a fingerprint",
            "tests/fixtures/keras_cnn_savedmodel/saved_model/fingerprint.pb".into(),
        ),
        ("wrong format: a GraphDef", FROZEN.into()),
    ];
    let mut failures = Vec::new();
    for tool in TOOLS {
        let mut text = String::new();
        for (class, input) in &classes {
            if class.ends_with("a GraphDef") && tool != "tf-freeze" {
                continue; // a GraphDef is wrong only for tf-freeze
            }
            let mut args: Vec<&str> = tool_args(tool).to_vec();
            args.push(input);
            let out = run_tool(tool, &args);
            assert!(out.signal.is_none(), "{tool} on {class}: {}", describe(&out));
            if out.code == 2 {
                out.assert_clean_error(&format!("{tool} on {class}"));
            }
            text.push_str(&format!(
                "## {class}\n$ {tool} {}\n{}\n",
                args.join(" "),
                describe(&out)
            ));
        }
        if tool == "tf-xla-check" {
            text.push_str(&xla_vacuous_errors(tmp.path()));
        }
        failures.extend(check(&format!("{tool}-errors"), &redact(&text, tmp.path())));
    }
    assert_snapshots(failures);
}

/// tf-xla-check never says "compiles" about nothing: graphs where nothing can be checked, calls
/// of missing functions, dangling inputs inside functions, a SavedModel without
/// `serving_default`, a bad `--inputs`.
fn xla_vacuous_errors(tmp: &Path) -> String {
    use tf_proto::tensorflow::{
        attr_value::Value, op_def::ArgDef, AttrValue, FunctionDef, FunctionDefLibrary,
        NameAttrList, OpDef, SavedModel,
    };
    let node = |name: &str, op: &str, input: &[&str], f: Option<&str>| NodeDef {
        name: name.into(),
        op: op.into(),
        input: input.iter().map(|s| s.to_string()).collect(),
        attr: f
            .map(|f| {
                let v = Value::Func(NameAttrList { name: f.into(), ..Default::default() });
                ("f".to_string(), AttrValue { value: Some(v) })
            })
            .into_iter()
            .collect(),
        ..Default::default()
    };
    let file = |name: &str, data: Vec<u8>| {
        let p = tmp.join(name);
        std::fs::write(&p, data).unwrap();
        p.to_str().unwrap().to_string()
    };
    let lone = GraphDef { node: vec![node("x", "Placeholder", &[], None)], ..Default::default() };
    let call = |f: &str, library: Option<FunctionDefLibrary>| GraphDef {
        node: vec![
            node("x", "Placeholder", &[], None),
            node("call", "PartitionedCall", &["x"], Some(f)),
        ],
        library,
        ..Default::default()
    };
    let body = FunctionDef {
        signature: Some(OpDef {
            name: "body".into(),
            input_arg: vec![ArgDef { name: "a".into(), ..Default::default() }],
            ..Default::default()
        }),
        node_def: vec![node("r", "Relu", &["ghost:y:0"], None)],
        ..Default::default()
    };
    let library = FunctionDefLibrary { function: vec![body], ..Default::default() };
    // A SavedModel whose only signature is not serving_default.
    let sm_path = root().join("tests/fixtures/keras_cnn_savedmodel/saved_model/saved_model.pb");
    let mut sm = SavedModel::decode(std::fs::read(sm_path).unwrap().as_slice()).unwrap();
    for mg in &mut sm.meta_graphs {
        if let Some(sig) = mg.signature_def.remove("serving_default") {
            mg.signature_def.insert("predict".into(), sig);
        }
    }
    let sm_dir = tmp.join("no_default");
    std::fs::create_dir_all(&sm_dir).unwrap();
    std::fs::write(sm_dir.join("saved_model.pb"), sm.encode_to_vec()).unwrap();
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("nothing to check", vec![file("lone.pb", lone.encode_to_vec())]),
        ("call of a missing function", vec![file("call.pb", call("nope", None).encode_to_vec())]),
        (
            "dangling input in a function",
            vec![file("body.pb", call("body", Some(library)).encode_to_vec())],
        ),
        ("SavedModel without serving_default", vec![sm_dir.to_str().unwrap().to_string()]),
        ("unknown --inputs tensor", vec![FROZEN.into(), "--inputs".into(), "nope:0".into()]),
    ];
    let mut text = String::new();
    for (class, args) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_tool("tf-xla-check", &args);
        assert!(out.signal.is_none(), "tf-xla-check on {class}: {}", describe(&out));
        assert_eq!(out.code, 2, "tf-xla-check on {class}: {}", describe(&out));
        out.assert_clean_error(&format!("tf-xla-check on {class}"));
        text.push_str(&format!(
            "## {class}\n$ tf-xla-check {}\n{}\n",
            args.join(" "),
            describe(&out)
        ));
    }
    text
}

/// tf-transform's own errors: the transform string, unknown names and parameters, a failing
/// transform, and one passed over with `ignore_errors=true`.
#[test]
fn snapshot_transform_errors() {
    let cases: &[(&str, &str)] = &[
        ("unknown transform", "strip_unused_nodes fold_constantz"),
        ("unknown parameter", "round_weights(steps=16)"),
        ("bad parameter value", "round_weights(num_steps=many)"),
        ("unterminated quote", "insert_logging(message=\"hi)"),
        ("missing parenthesis", "remove_nodes(op=Identity"),
        ("required parameter", "rename_op(old_op_name=Relu)"),
        ("quantize_nodes without ranges", "fold_constants quantize_nodes"),
        ("failing transform", "rename_node(old_node_name=nope, new_node_name=x)"),
        ("ignore_errors", "rename_node(old_node_name=nope, new_node_name=x, ignore_errors=true)"),
    ];
    let mut text = String::new();
    for (class, transforms) in cases {
        let args = ["--transforms", transforms, FROZEN];
        let out = run_tool("tf-transform", &args);
        assert!(out.signal.is_none(), "{class}: {}", describe(&out));
        if out.code == 2 {
            out.assert_clean_error(class);
        }
        let shown = if out.code == 0 { "(graph)".to_string() } else { describe(&out) };
        let shown = if out.code == 0 { format!("exit 0, {shown}\n{}", out.stderr) } else { shown };
        text.push_str(&format!("## {class}\n$ tf-transform {}\n{shown}\n", args.join(" ")));
    }
    let name = "tf-transform-usage-errors";
    assert_snapshots(check(name, &redact(&text, Path::new("/nonexistent"))).into_iter().collect());
}

/// `tf-inspect --gtt`: summarize_graph's lines, which scripts parse.
#[test]
fn snapshot_inspect_gtt() {
    let mut text = String::new();
    for input in [FROZEN, "tests/fixtures/tf1_cnn_train/graph.pb"] {
        let out = run_tool("tf-inspect", &["--gtt", input]);
        assert_eq!(out.code, 0, "{input}: {}", describe(&out));
        text.push_str(&format!(
            "$ tf-inspect --gtt {input}\n{}\n",
            String::from_utf8(out.stdout).unwrap()
        ));
    }
    let name = "tf-inspect-gtt";
    assert_snapshots(check(name, &redact(&text, Path::new("/nonexistent"))).into_iter().collect());
}
