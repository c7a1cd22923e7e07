//! The output promises every tool shares (implemented once in tf-cli): nothing is committed
//! unless the whole run (report included) succeeded, temporary files do not outlive the
//! process, new files honour the umask, binary never reaches a terminal, streams are read as
//! streams, and messages stay one line whatever the input's names contain.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use prost::Message;
use tf_proto::tensorflow::{GraphDef, NodeDef};

use crate::util::{command, fixtures, run, run_command};

fn graph_path() -> PathBuf {
    fixtures().join("dtypes/graph.pb")
}

fn graph() -> Vec<u8> {
    std::fs::read(graph_path()).unwrap()
}

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tf-tmp-"))
        .collect()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn an_unusable_report_path_commits_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("out.pb");
    let o = out_file.to_str().unwrap();
    assert!(Path::new("/dev/full").exists(), "/dev/full is needed for this test");
    let reports = [
        "/nonexistent-dir/r.json".to_string(),
        "/dev/full".into(),
        dir.path().to_str().unwrap().to_string(), // a directory
    ];
    for report in &reports {
        let to_stdout = run("tf-convert", &["--report", report], Some(&graph()));
        to_stdout.assert_clean_error(&format!("--report {report} to stdout"));
        assert!(to_stdout.stderr.contains(report.as_str()), "{}", to_stdout.stderr);
        let to_file = run("tf-convert", &["--report", report, "-o", o], Some(&graph()));
        to_file.assert_clean_error(&format!("--report {report} -o"));
        assert!(names(dir.path()).is_empty(), "{report}: left {:?}", names(dir.path()));
    }
}

#[test]
fn a_failed_run_writes_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let out = dir.path().join("out.pb");
    let args = ["--report", report.to_str().unwrap(), "-o", out.to_str().unwrap()];
    run("tf-convert", &args, Some(b"\xff\xff\xff")).assert_clean_error("garbage");
    assert!(!out.exists());
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["exit_code"], 2);
    assert!(r["error"].as_str().unwrap().contains("<stdin>"), "{r}");
    assert!(r.get("output").is_none(), "{r}");
    assert_eq!(names(dir.path()), ["r.json"]);
    // A good run replaces it with exit code 0 and no error.
    let ok = run("tf-convert", &args, Some(&graph()));
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["exit_code"], 0);
    assert!(r.get("error").is_none());
    // A usage error ends before the run (clap exits by itself): the report is not touched.
    let usage = run("tf-convert", &["--report", report.to_str().unwrap(), "--bogus"], None);
    assert_eq!(usage.code, 2);
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["exit_code"], 0);
}

#[test]
fn an_unusable_output_path_fails_before_reading_input() {
    let dir = tempfile::tempdir().unwrap();
    // stdin stays open and empty: the run must fail on -o without waiting for it.
    let missing = dir.path().join("no/such/dir/out.pb");
    let out = run("tf-convert", &["-o", missing.to_str().unwrap()], None);
    out.assert_clean_error("missing dir");
    assert!(out.stderr.contains("no/such/dir/out.pb"), "{}", out.stderr);
    assert!(!out.stderr.contains(".tf-tmp-"), "no temporary name in messages: {}", out.stderr);
    let is_dir = run("tf-convert", &["-o", dir.path().to_str().unwrap()], Some(&graph()));
    is_dir.assert_clean_error("a directory");
    assert!(is_dir.stderr.contains("is a directory"), "{}", is_dir.stderr);
}

#[test]
fn a_dangling_output_symlink_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("link.pb");
    std::os::unix::fs::symlink(dir.path().join("missing/target.pb"), &link).unwrap();
    let out = run("tf-convert", &["-o", link.to_str().unwrap()], Some(&graph()));
    out.assert_clean_error("dangling link");
    assert!(out.stderr.contains(link.to_str().unwrap()), "{}", out.stderr);
    assert!(out.stderr.contains("dangling"), "{}", out.stderr);
}

fn wait_for_temp_files(dir: &Path, n: usize) {
    for _ in 0..1000 {
        if temp_files(dir).len() >= n {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("the tool never created its temporary files in {}", dir.display());
}

#[test]
fn signals_remove_temporary_files() {
    for (sig, name) in [(libc::SIGINT, "INT"), (libc::SIGTERM, "TERM"), (libc::SIGHUP, "HUP")] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.pb");
        let report = dir.path().join("r.json");
        // stdin is a pipe kept open: the tool has opened -o and --report (temporary files)
        // and waits for its input when the signal comes.
        let mut c = command("tf-convert");
        c.args(["-o", out.to_str().unwrap(), "--report", report.to_str().unwrap()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // The test may run where these signals are ignored (a background job, nohup), and the
        // tools keep an ignored signal ignored: give the child the default dispositions.
        use std::os::unix::process::CommandExt;
        // SAFETY: only async-signal-safe calls (signal) between fork and exec.
        unsafe {
            c.pre_exec(|| {
                for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                    libc::signal(s, libc::SIG_DFL);
                }
                Ok(())
            });
        }
        let mut child = c.spawn().unwrap();
        wait_for_temp_files(dir.path(), 2);
        // SAFETY: kill on the pid of our own child.
        assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
        let mut status = None;
        for _ in 0..1000 {
            status = child.try_wait().unwrap();
            if status.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let Some(status) = status else {
            let _ = child.kill();
            panic!("SIG{name}: the tool did not end within 10 s");
        };
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(sig), "SIG{name}: the process ends by the signal");
        drop(child.stdin.take());
        assert!(names(dir.path()).is_empty(), "SIG{name} left {:?}", names(dir.path()));
    }
}

#[test]
fn stale_temporary_files_of_dead_processes_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    // A pid no process can have: above the kernel's limit.
    let pid_max: u64 =
        std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap().trim().parse().unwrap();
    let dead_pid = pid_max + 1;
    let stale = dir.path().join(format!(".tf-tmp-{dead_pid}-AbC123"));
    let live = dir.path().join(format!(".tf-tmp-{}-XyZ789", std::process::id()));
    let foreign = dir.path().join(".tf-tmp-notapid");
    for f in [&stale, &live, &foreign] {
        std::fs::write(f, b"partial").unwrap();
    }
    let out = dir.path().join("out.pb");
    let ok = run("tf-convert", &["-o", out.to_str().unwrap()], Some(&graph()));
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(!stale.exists(), "the dead process's file is removed");
    assert!(live.exists(), "a live process's file stays");
    assert!(foreign.exists(), "a name without a pid stays");
}

fn with_umask(umask: &str, tool_args: &[&str]) -> crate::util::Outcome {
    let mut c = std::process::Command::new("/bin/sh");
    c.env_clear().arg("-c").arg(format!("umask {umask} && exec \"$0\" \"$@\""));
    c.arg(crate::util::exe("tf-convert")).args(tool_args);
    run_command(c, Some(&graph()))
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn new_files_honour_the_umask_and_existing_files_keep_their_mode() {
    let dir = tempfile::tempdir().unwrap();
    for (umask, want) in [("077", 0o600), ("027", 0o640), ("022", 0o644), ("002", 0o664)] {
        let out = dir.path().join(format!("new-{umask}.pb"));
        let report = dir.path().join(format!("r-{umask}.json"));
        let r =
            with_umask(umask, &["-o", out.to_str().unwrap(), "--report", report.to_str().unwrap()]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(mode(&out), want, "umask {umask}: output");
        assert_eq!(mode(&report), want, "umask {umask}: report");
    }
    let existing = dir.path().join("existing.pb");
    std::fs::write(&existing, b"old").unwrap();
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o604)).unwrap();
    let r = with_umask("077", &["-o", existing.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(mode(&existing), 0o604, "a replaced file keeps its mode");
    assert_eq!(std::fs::read(&existing).unwrap(), graph());
}

/// A pseudo-terminal: (master, slave path).
fn pty() -> (std::fs::File, PathBuf) {
    use std::os::fd::FromRawFd;
    // SAFETY: standard pty allocation; every return value is checked.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(master >= 0, "posix_openpt");
        assert_eq!(libc::grantpt(master), 0);
        assert_eq!(libc::unlockpt(master), 0);
        let mut buf = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(master, buf.as_mut_ptr(), buf.len()), 0);
        let name = std::ffi::CStr::from_ptr(buf.as_ptr()).to_str().unwrap().to_string();
        (std::fs::File::from_raw_fd(master), PathBuf::from(name))
    }
}

#[test]
fn binary_output_to_a_terminal_behind_o_is_refused() {
    let (_master, slave) = pty();
    let s = slave.to_str().unwrap();
    let out = run("tf-convert", &["-o", s], Some(&graph()));
    out.assert_clean_error("-o pty");
    assert!(out.stderr.contains("terminal"), "{}", out.stderr);
    // -o /dev/stdout while stdout is the terminal.
    let tty = std::fs::OpenOptions::new().write(true).open(&slave).unwrap();
    let mut c = command("tf-convert");
    c.args(["-o", "/dev/stdout", graph_path().to_str().unwrap()]);
    let child = c.stdin(Stdio::null()).stdout(tty).stderr(Stdio::piped()).spawn().unwrap();
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("terminal"), "{stderr}");
}

#[test]
fn fifos_and_process_substitution_are_read_as_streams() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("in.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a fresh path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::write(fifo, graph()).unwrap())
    };
    let out = run("tf-convert", &[fifo.to_str().unwrap()], None);
    writer.join().unwrap();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, graph());
    // `<(cat g.pb)`: a /dev/fd/N path of a pipe.
    let mut sh = std::process::Command::new("bash");
    sh.env_clear().arg("-c").arg(format!(
        "exec '{}' <(cat '{}')",
        crate::util::exe("tf-convert"),
        graph_path().display()
    ));
    let out = run_command(sh, None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, graph());
}

#[test]
fn names_with_control_characters_are_escaped_in_messages() {
    let evil = "evil\nname\0with\x1b[31mescape\r";
    let g = GraphDef {
        node: vec![
            NodeDef { name: "x".into(), op: "NoOp".into(), ..Default::default() },
            NodeDef { name: evil.into(), op: String::new(), ..Default::default() },
        ],
        ..Default::default()
    };
    let out = run("tf-convert", &[], Some(&g.encode_to_vec()));
    out.assert_clean_error("evil name");
    assert!(out.stderr.contains(r"evil\nname\u{0}with\u{1b}[31mescape\r"), "{:?}", out.stderr);
    assert!(!out.stderr.contains('\0') && !out.stderr.contains('\x1b'), "{:?}", out.stderr);
    // The same through a tool that names the node in its own error.
    let g = GraphDef {
        node: vec![NodeDef {
            name: "a".into(),
            op: "Identity".into(),
            input: vec![evil.into()],
            ..Default::default()
        }],
        ..Default::default()
    };
    let out = run("tf-strip", &["--outputs", "a"], Some(&g.encode_to_vec()));
    out.assert_clean_error("dangling evil input");
    assert!(!out.stderr.contains('\0') && !out.stderr.contains('\x1b'), "{:?}", out.stderr);
    // Text a tool prints for people (tf-inspect's summary names the placeholder).
    let mut placeholder =
        NodeDef { name: evil.into(), op: "Placeholder".into(), ..Default::default() };
    placeholder.attr.insert(
        "dtype".into(),
        tf_proto::tensorflow::AttrValue {
            value: Some(tf_proto::tensorflow::attr_value::Value::Type(1)),
        },
    );
    let g = GraphDef {
        node: vec![
            placeholder,
            NodeDef {
                name: "y".into(),
                op: "Identity".into(),
                input: vec![evil.into()],
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let out = run("tf-inspect", &[], Some(&g.encode_to_vec()));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = String::from_utf8(out.stdout).unwrap();
    // Newlines stay in multi-line text; everything else that could drive a terminal is escaped.
    assert!(text.contains(r"name\u{0}with\u{1b}[31mescape\r"), "{text}");
    assert!(!text.contains('\0') && !text.contains('\x1b') && !text.contains('\r'), "{text:?}");
}

#[test]
fn an_ignored_signal_stays_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.pb");
    let mut c = command("tf-convert");
    c.args(["-o", out.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe calls (signal) between fork and exec.
    unsafe {
        c.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut child = c.spawn().unwrap();
    wait_for_temp_files(dir.path(), 1);
    // SAFETY: kill on the pid of our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGHUP) }, 0);
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(child.try_wait().unwrap().is_none(), "nohup: SIGHUP must not end the run");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&graph()).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(&out).unwrap(), graph());
    assert!(temp_files(dir.path()).is_empty());
}

#[test]
fn a_failed_commit_of_stdout_is_recorded_in_the_report() {
    assert!(Path::new("/dev/full").exists(), "/dev/full is needed for this test");
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let mut c = command("tf-convert");
    c.args([graph_path().to_str().unwrap(), "--report", report.to_str().unwrap()]);
    let o = c.stdin(Stdio::null()).stdout(full).stderr(Stdio::piped()).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["exit_code"], 2, "{r}");
    assert!(r["error"].as_str().unwrap().contains("stdout"), "{r}");
    assert_eq!(names(dir.path()), ["r.json"]);
}
