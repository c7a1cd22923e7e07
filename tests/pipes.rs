//! Stdin and stdout in every form a shell gives them: a pipe (spliced into memory), a regular
//! file (`tool < g.pb`, mapped), a socket (plain reads), and a chain of stages. Whatever the
//! path, the output bytes are those of the same tool reading the file by name.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use prost::Message;
use tf_proto::tensorflow::attr_value::Value;
use tf_proto::tensorflow::tensor_shape_proto::Dim;
use tf_proto::tensorflow::{AttrValue, GraphDef, NodeDef, TensorProto, TensorShapeProto};

use crate::util::{exe, run};

const DT_FLOAT: i32 = 1;

fn attr(v: Value) -> AttrValue {
    AttrValue { value: Some(v) }
}

/// A graph large enough to need many pipe buffers: a placeholder times a 1024×1024 float
/// weight (4 MiB of tensor_content, seeded values), an unused 2 MiB constant, and an output.
fn big_graph() -> Vec<u8> {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut weights = Vec::with_capacity(4 << 20);
    for _ in 0..(1 << 20) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let v = ((seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5;
        weights.extend_from_slice(&v.to_le_bytes());
    }
    let konst = |name: &str, dims: &[i64], content: Vec<u8>| NodeDef {
        name: name.into(),
        op: "Const".into(),
        attr: BTreeMap::from([
            ("dtype".into(), attr(Value::Type(DT_FLOAT))),
            (
                "value".into(),
                attr(Value::Tensor(Box::new(TensorProto {
                    dtype: DT_FLOAT,
                    tensor_shape: Some(TensorShapeProto {
                        dim: dims.iter().map(|&size| Dim { size, name: String::new() }).collect(),
                        unknown_rank: false,
                    }),
                    tensor_content: content.into(),
                    ..Default::default()
                }))),
            ),
        ]),
        ..Default::default()
    };
    let op = |name: &str, op: &str, inputs: &[&str]| NodeDef {
        name: name.into(),
        op: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        attr: BTreeMap::from([("T".into(), attr(Value::Type(DT_FLOAT)))]),
        ..Default::default()
    };
    let mut x = NodeDef {
        name: "x".into(),
        op: "Placeholder".into(),
        attr: BTreeMap::from([("dtype".into(), attr(Value::Type(DT_FLOAT)))]),
        ..Default::default()
    };
    x.attr.insert(
        "shape".into(),
        attr(Value::Shape(TensorShapeProto {
            dim: vec![
                Dim { size: -1, name: String::new() },
                Dim { size: 1024, name: String::new() },
            ],
            unknown_rank: false,
        })),
    );
    let g = GraphDef {
        node: vec![
            x,
            konst("w", &[1024, 1024], weights.clone()),
            konst("unused", &[512, 1024], weights[..2 << 20].to_vec()),
            op("y", "MatMul", &["x", "w"]),
            op("out", "Relu", &["y"]),
        ],
        ..Default::default()
    };
    g.encode_to_vec()
}

fn write_big_graph(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("big.pb");
    std::fs::write(&p, big_graph()).unwrap();
    p
}

/// `tool args... <path>` reading the file by name: the reference output.
fn by_name(tool: &str, args: &[&str], path: &Path) -> Vec<u8> {
    let mut all: Vec<&str> = args.to_vec();
    all.push(path.to_str().unwrap());
    let out = run(tool, &all, None);
    assert_eq!(out.code, 0, "{tool} {all:?}: {}", out.stderr);
    out.stdout
}

fn with_stdin(tool: &str, args: &[&str], stdin: Stdio) -> Vec<u8> {
    let out = Command::new(exe(tool))
        .env_clear()
        .args(args)
        .stdin(stdin)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success(), "{tool} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[test]
fn stdin_as_a_pipe_a_file_or_a_socket_gives_the_bytes_of_the_named_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_big_graph(dir.path());
    let bytes = std::fs::read(&path).unwrap();
    for (tool, args) in
        [("tf-convert", vec![]), ("tf-strip", vec!["--outputs", "out"]), ("tf-quant", vec!["int8"])]
    {
        let want = by_name(tool, &args, &path);
        // A regular file on stdin (mapped).
        let file = std::fs::File::open(&path).unwrap();
        assert_eq!(with_stdin(tool, &args, Stdio::from(file)), want, "{tool} < file");
        // A pipe (spliced into an in-memory file), fed by the harness in pieces.
        let out = run(tool, &args, Some(&bytes));
        assert_eq!(out.code, 0, "{tool} | : {}", out.stderr);
        assert_eq!(out.stdout, want, "{tool} from a pipe");
        // A socket: neither a file nor a pipe, read with plain reads.
        let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let data = bytes.clone();
        let feeder = std::thread::spawn(move || {
            use std::io::Write;
            a.write_all(&data).unwrap();
        });
        let got = with_stdin(tool, &args, Stdio::from(std::os::fd::OwnedFd::from(b)));
        feeder.join().unwrap();
        assert_eq!(got, want, "{tool} from a socket");
    }
    // tf-convert changes nothing: the input bytes, whatever stdin is.
    assert_eq!(by_name("tf-convert", &[], &path), bytes);
}

#[test]
fn a_shell_pipeline_of_three_stages_equals_the_stages_run_on_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_big_graph(dir.path());
    let strip = by_name("tf-strip", &["--outputs", "out"], &path);
    let stripped = dir.path().join("s.pb");
    std::fs::write(&stripped, &strip).unwrap();
    let fold = by_name("tf-fold", &[], &stripped);
    let folded = dir.path().join("f.pb");
    std::fs::write(&folded, &fold).unwrap();
    let want = by_name("tf-quant", &["int8"], &folded);
    let out = dir.path().join("out.pb");
    let script = format!(
        "'{}' --outputs out < '{}' | '{}' | '{}' int8 > '{}'",
        exe("tf-strip"),
        path.display(),
        exe("tf-fold"),
        exe("tf-quant"),
        out.display()
    );
    let status = Command::new("sh").arg("-c").arg(&script).env_clear().status().unwrap();
    assert!(status.success(), "{script}");
    let got = std::fs::read(&out).unwrap();
    assert!(got.len() > 1 << 20, "the quantized weight is in the output ({} bytes)", got.len());
    assert_eq!(got, want);
}

#[test]
fn an_empty_pipe_is_empty_input() {
    let out = run("tf-strip", &[], Some(b""));
    out.assert_clean_error("empty stdin");
    assert!(out.stderr.contains("<stdin>: empty input"), "{}", out.stderr);
}
