//! Checks the vendored `proto/` schema against the installed TensorFlow's compiled descriptors
//! with `scripts/check_proto_schema.py`. Needs TensorFlow in the repository's `.venv`, so it is
//! ignored by a plain `cargo test`; `make test` runs it with `--include-ignored`, where a missing
//! `.venv` or TensorFlow is a failure.

use std::path::PathBuf;
use std::process::Command;

#[test]
#[ignore = "needs TensorFlow 2.21 in .venv; make test runs it (cargo test -- --include-ignored)"]
fn schema_matches_tensorflow() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: run `make venv` first", python.display());
    let dir = std::env::temp_dir().join(format!("tf-proto-schema-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fds = dir.join("descriptors.bin");
    std::fs::write(&fds, tf_proto::FILE_DESCRIPTOR_SET).unwrap();
    let out = Command::new(&python)
        .arg(root.join("scripts/check_proto_schema.py"))
        .arg(&fds)
        .env("TF_CPP_MIN_LOG_LEVEL", "3")
        .output()
        .expect("running scripts/check_proto_schema.py");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprint!("{stdout}");
    assert!(out.status.success(), "schema differs from TensorFlow's:\n{stdout}{stderr}");
    assert!(stdout.contains(" 0 differences"), "{stdout}");
}
