//! A small harness: run a tool with a cleared environment, feed stdin, collect the outcome.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/fixtures`.
pub fn fixtures() -> PathBuf {
    root().join("tests/fixtures")
}

/// What a run produced.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    /// The signal that ended the process, if one did.
    pub signal: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Outcome {
    /// Asserts the error contract: exit 2, one line on stderr, nothing on stdout.
    pub fn assert_clean_error(&self, what: &str) {
        assert_eq!(self.code, 2, "{what}: exit code; stderr: {}", self.stderr);
        assert!(self.stdout.is_empty(), "{what}: stdout must be empty on error");
        assert_eq!(
            self.stderr.lines().count(),
            1,
            "{what}: one line on stderr, got {:?}",
            self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "{what}: {}", self.stderr);
    }
}

/// The ten tools, in the order the snapshots list them.
pub const TOOLS: [&str; 10] = [
    "tf-convert",
    "tf-inspect",
    "tf-freeze",
    "tf-strip",
    "tf-fold",
    "tf-quant",
    "tf-prune",
    "tf-xla-check",
    "tf-transform",
    "tf-ckpt",
];

/// The built binary of a tool of this package.
pub fn exe(tool: &str) -> &'static str {
    match tool {
        "tf-convert" => env!("CARGO_BIN_EXE_tf-convert"),
        "tf-inspect" => env!("CARGO_BIN_EXE_tf-inspect"),
        "tf-freeze" => env!("CARGO_BIN_EXE_tf-freeze"),
        "tf-strip" => env!("CARGO_BIN_EXE_tf-strip"),
        "tf-fold" => env!("CARGO_BIN_EXE_tf-fold"),
        "tf-quant" => env!("CARGO_BIN_EXE_tf-quant"),
        "tf-prune" => env!("CARGO_BIN_EXE_tf-prune"),
        "tf-xla-check" => env!("CARGO_BIN_EXE_tf-xla-check"),
        "tf-transform" => env!("CARGO_BIN_EXE_tf-transform"),
        "tf-ckpt" => env!("CARGO_BIN_EXE_tf-ckpt"),
        other => panic!("unknown tool {other}"),
    }
}

/// A command for a tool with a cleared environment.
pub fn command(tool: &str) -> Command {
    let mut c = Command::new(exe(tool));
    c.env_clear();
    c
}

/// Runs a tool of this package.
pub fn run(tool: &str, args: &[&str], stdin: Option<&[u8]>) -> Outcome {
    let mut c = command(tool);
    c.args(args);
    run_command(c, stdin)
}

/// Runs a prepared command, feeding `stdin` (closed when `None`).
pub fn run_command(mut c: Command, stdin: Option<&[u8]>) -> Outcome {
    let mut child = c
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tool");
    if let Some(data) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        let data = data.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        });
    }
    let out = child.wait_with_output().expect("wait for tool");
    use std::os::unix::process::ExitStatusExt;
    Outcome {
        code: out.status.code().unwrap_or(-1),
        signal: out.status.signal(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Every file under `dir`, recursively, sorted.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if e.file_name().to_string_lossy().starts_with('.') {
                continue; // scratch space of a running generator, not a fixture
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Fixture files that hold a GraphDef, MetaGraphDef or SavedModel in binary form.
pub fn protobuf_fixtures() -> Vec<PathBuf> {
    let files: Vec<PathBuf> = walk(&fixtures())
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            (name.ends_with(".pb") || name.ends_with(".meta")) && name != "fingerprint.pb"
        })
        .collect();
    assert!(!files.is_empty(), "no fixtures under {}: run `make fixtures`", fixtures().display());
    files
}

/// SavedModel directories among the fixtures.
pub fn saved_model_dirs() -> Vec<PathBuf> {
    walk(&fixtures())
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "saved_model.pb"))
        .map(|p| p.parent().unwrap().to_path_buf())
        .collect()
}
