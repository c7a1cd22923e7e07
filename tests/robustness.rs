//! Damaged inputs never crash a tool: every truncation and byte flip of every fixture, given to
//! each of the ten tools (tf-ckpt gets it as a file to list) as a process, ends with exit 0, 1
//! or 2 (never a signal, a panic or an abort); on exit 2 stdout is empty and stderr is one line.

use std::path::{Path, PathBuf};

use crate::util::{command, fixtures, protobuf_fixtures, run_command, Outcome, TOOLS};

/// Truncations at k/12 of the length and single-byte changes spread over the file.
fn variants(bytes: &[u8]) -> Vec<Vec<u8>> {
    let n = bytes.len();
    let mut out: Vec<Vec<u8>> = (1..12).map(|k| bytes[..n * k / 12].to_vec()).collect();
    for k in 0..12 {
        let mut v = bytes.to_vec();
        let at = (k * 7919 + 13) % n;
        v[at] = v[at].wrapping_add(97);
        out.push(v);
    }
    out
}

/// How tf-freeze gets a damaged file: in a scratch copy of the model it belongs to (the other
/// files linked), or as `--graph -` beside a good checkpoint.
fn freeze_setup(fixture: &Path, dir: &Path) -> (Vec<String>, bool) {
    let name = fixture.file_name().unwrap().to_string_lossy().into_owned();
    let parent = fixture.parent().unwrap();
    let link_all_but = |skip: &str| {
        for e in std::fs::read_dir(parent).unwrap().flatten() {
            if e.file_name() != *skip {
                std::os::unix::fs::symlink(e.path(), dir.join(e.file_name())).unwrap();
            }
        }
    };
    if name == "saved_model.pb" || name.ends_with(".meta") {
        link_all_but(&name);
        let path = if name == "saved_model.pb" {
            dir.to_path_buf()
        } else {
            dir.join(name.trim_end_matches(".meta"))
        };
        (vec![path.to_str().unwrap().to_string()], false)
    } else {
        let prefix: PathBuf = fixtures().join("tf1_cnn_train/model.ckpt");
        (vec![prefix.to_str().unwrap().into(), "--graph".into(), "-".into()], true)
    }
}

fn check(tool: &str, fixture: &Path, v: usize, out: &Outcome) {
    let what = format!("{tool} on variant {v} of {}", fixture.display());
    assert!(out.signal.is_none(), "{what}: killed by signal {:?}: {}", out.signal, out.stderr);
    assert!(matches!(out.code, 0..=2), "{what}: exit {}: {}", out.code, out.stderr);
    assert!(!out.stderr.contains("internal error"), "{what}: {}", out.stderr);
    if out.code == 2 {
        assert!(out.stdout.is_empty(), "{what}: stdout must be empty on exit 2");
        assert_eq!(out.stderr.lines().count(), 1, "{what}: one line on stderr: {}", out.stderr);
    }
}

/// What tf-transform runs on hostile bytes: the pass-backed transforms and the rewrites.
const HOSTILE_TRANSFORMS: &str = "strip_unused_nodes fold_constants(ignore_errors=true) \
    fold_batch_norms quantize_weights(minimum_size=16) remove_nodes(op=Identity) \
    fuse_resize_pad_and_conv flatten_atrous_conv backport_concatv2 backport_tensor_array_v3 \
    insert_logging(op=Relu) sparsify_gather add_default_attributes sort_by_execution_order \
    obfuscate_names";

/// Runs every tool on every variant of one fixture; returns the count of each exit code.
fn run_fixture(path: &Path) -> [usize; 3] {
    let mut by_code = [0usize; 3];
    let bytes = std::fs::read(path).unwrap();
    for (i, v) in variants(&bytes).iter().enumerate() {
        for tool in TOOLS {
            let scratch = tempfile::tempdir().unwrap();
            let mut c = command(tool);
            let args: &[&str] = match tool {
                "tf-inspect" => &["-", "--json"],
                "tf-quant" => &["int8", "-"],
                "tf-prune" => &["--sparsity", "0.5", "-"],
                "tf-transform" => &["--transforms", HOSTILE_TRANSFORMS, "-"],
                _ => &["-"],
            };
            let stdin = if tool == "tf-ckpt" {
                // tf-ckpt reads checkpoints, not stdin: the damaged file is the checkpoint.
                let f = scratch.path().join(path.file_name().unwrap());
                std::fs::write(&f, v).unwrap();
                c.args(["ls", f.to_str().unwrap()]);
                None
            } else if tool == "tf-freeze" {
                let (args, via_stdin) = freeze_setup(path, scratch.path());
                if !via_stdin {
                    std::fs::write(scratch.path().join(path.file_name().unwrap()), v).unwrap();
                }
                c.args(args);
                via_stdin.then_some(v.as_slice())
            } else {
                c.args(args);
                Some(v.as_slice())
            };
            let out = run_command(c, stdin);
            check(tool, path, i, &out);
            by_code[out.code as usize] += 1;
        }
    }
    by_code
}

#[test]
fn damaged_fixtures_never_crash_any_tool() {
    let fixtures = protobuf_fixtures();
    // The runs wait on processes: a few threads keep both cores busy.
    let threads = 4;
    let totals: Vec<[usize; 3]> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let mine: Vec<&PathBuf> = fixtures.iter().skip(t).step_by(threads).collect();
                s.spawn(move || mine.into_iter().map(|p| run_fixture(p)).collect::<Vec<_>>())
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let by_code = totals.iter().fold([0; 3], |a, b| [a[0] + b[0], a[1] + b[1], a[2] + b[2]]);
    let runs: usize = by_code.iter().sum();
    assert_eq!(runs, fixtures.len() * 23 * TOOLS.len());
    // Both outcomes occur: the variants are neither all refused nor all accepted.
    assert!(by_code[2] > 0 && by_code[0] > 0, "exit codes 0/1/2: {by_code:?}");
}
