//! The conventions every tf-* tool shares, in one place.
//!
//! - Input: `[INPUT]` (a file, a SavedModel directory, or `-`/nothing for stdin), any format
//!   `tf_io` detects; `--tag`/`--signature` pick from a SavedModel.
//! - Output: stdout by default, or `-o FILE` written atomically (temporary file in the same
//!   directory, renamed on success, nothing left behind on failure or on SIGINT/SIGTERM/SIGHUP,
//!   see `output` and `signals`). `-o` and `--report` are opened before the run; nothing is
//!   committed unless the whole run, its report included, succeeded. Binary output is never
//!   written to a terminal (stdout or behind `-o`) without `--force`. `--text` writes pbtxt.
//! - `--report FILE` writes a JSON report (tool, version, input and output sizes, what changed,
//!   warnings, wall time, exit code, the error of a failed run); `--report -` prints it on
//!   stderr.
//! - Exit codes ([`ExitStatus`]): 0 success, 1 check failed or findings, 2 error. A broken pipe
//!   on stdout ends the run quietly with 0, as ripgrep does.
//! - Errors are one line on stderr, `tool: error: ...`, naming the file, node or field, with
//!   control characters escaped ([`escape`]); a panic becomes such a line too, never a
//!   backtrace. Warnings are printed when the run succeeds.
//! - `--completions SHELL` and `--man` print shell completions and a man page generated from the
//!   same clap definitions as `--help`.

#![deny(missing_docs)]

mod output;
mod report;
mod signals;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use output::{Pending, Sink};
pub use report::Report;
use tf_io::{Loaded, ReadOptions};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: done.
    Success,
    /// 1: a check failed or findings were reported.
    Findings,
    /// 2: an error; nothing was written.
    Error,
}

impl From<ExitStatus> for ExitCode {
    fn from(s: ExitStatus) -> ExitCode {
        ExitCode::from(match s {
            ExitStatus::Success => 0,
            ExitStatus::Findings => 1,
            ExitStatus::Error => 2,
        })
    }
}

/// Arguments every graph-reading tool takes; flatten it into the tool's own `Args`.
#[derive(Debug, Clone, clap::Args)]
pub struct InputArgs {
    /// Input model: binary or text GraphDef, MetaGraphDef (.meta), SavedModel directory or
    /// saved_model.pb; `-` or nothing reads stdin. The format is detected.
    #[arg(value_name = "INPUT", default_value = "-")]
    pub input: PathBuf,
    /// SavedModel tag set to load, comma-separated [default: serve, or the only one]
    #[arg(long, value_name = "TAGS")]
    pub tag: Option<String>,
    /// SavedModel signature to use [default: serving_default]
    #[arg(long, value_name = "KEY")]
    pub signature: Option<String>,
}

impl InputArgs {
    /// The read options these arguments ask for.
    pub fn read_options(&self) -> ReadOptions {
        ReadOptions { tag: self.tag.clone(), signature: self.signature.clone() }
    }
}

/// Arguments of tools that write a graph.
#[derive(Debug, Clone, clap::Args)]
pub struct OutputArgs {
    /// Write the output here instead of stdout (atomically: all or nothing)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write protobuf text format (pbtxt) instead of binary
    #[arg(long)]
    pub text: bool,
    /// Write binary output even when stdout is a terminal
    #[arg(long)]
    pub force: bool,
}

/// Arguments shared by every tool.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// Write a JSON report of the run to FILE (`-` for stderr)
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Print no warnings
    #[arg(short, long)]
    pub quiet: bool,
    /// Print shell completions for SHELL (bash, zsh, fish, elvish, powershell) and exit
    #[arg(long, value_name = "SHELL", hide_short_help = true)]
    pub completions: Option<clap_complete::Shell>,
    /// Print a man page (roff) and exit
    #[arg(long, hide_short_help = true)]
    pub man: bool,
}

/// Implemented by each tool's `Args` so the shared runner finds the shared flags.
pub trait ToolArgs: Parser {
    /// The report, completion and man-page flags.
    fn report_args(&self) -> &ReportArgs;
}

/// Implements [`ToolArgs`] for a tool's `Args` that flattens [`ReportArgs`] into a field named
/// `report`: `tf_cli::tool_args!(Args);` is all a binary writes.
#[macro_export]
macro_rules! tool_args {
    ($args:ty) => {
        impl $crate::ToolArgs for $args {
            fn report_args(&self) -> &$crate::ReportArgs {
                &self.report
            }
        }
    };
}

/// State of one run: the report being built, the warnings so far, and the output waiting for
/// the end of the run.
#[derive(Debug)]
pub struct Session {
    tool: &'static str,
    started: Instant,
    quiet: bool,
    /// The JSON report of this run.
    pub report: Report,
    /// Destinations opened before the run (the `-o` path), taken by the first write there.
    prepared: Vec<(PathBuf, Sink)>,
    /// Output written but not yet committed.
    pending: Vec<Pending>,
    /// Messages for stderr, printed when the run succeeds (an error is one line alone).
    deferred: Vec<String>,
    /// The input, when it was a binary GraphDef: written again as it is when a tool's graph
    /// comes out unchanged.
    input_graph: Option<bytes::Bytes>,
}

impl Session {
    fn new(tool: &'static str, quiet: bool) -> Session {
        Session {
            tool,
            started: Instant::now(),
            quiet,
            report: Report::new(tool, env!("CARGO_PKG_VERSION")),
            prepared: Vec::new(),
            pending: Vec::new(),
            deferred: Vec::new(),
            input_graph: None,
        }
    }

    /// The tool's name, for messages.
    pub fn tool(&self) -> &'static str {
        self.tool
    }

    /// Reads the input the arguments name and records it in the report.
    pub fn load(&mut self, args: &InputArgs) -> anyhow::Result<Loaded> {
        let opts = args.read_options();
        if args.input.as_os_str() == "-" && std::io::stdin().is_terminal() {
            anyhow::bail!(
                "no input: give a model path, or pipe a GraphDef into stdin (see --help)"
            );
        }
        let loaded = tf_io::read_path(&args.input, &opts)?;
        self.note_input(&loaded);
        Ok(loaded)
    }

    /// Records an input read some other way (a tool that resolves its own paths).
    pub fn note_input(&mut self, loaded: &Loaded) {
        self.report.set_input(loaded);
        let graph_def = loaded.kind == tf_io::MessageKind::GraphDef
            && loaded.encoding == tf_io::Encoding::Binary;
        self.input_graph = graph_def.then(|| loaded.buffer.clone());
    }

    /// Records a warning in the report and prints it on stderr (unless `--quiet`) when the run
    /// succeeds; control characters are escaped.
    pub fn warn(&mut self, msg: impl Into<String>) {
        let msg = msg.into();
        if !self.quiet {
            self.deferred.push(format!("{}: warning: {}\n", self.tool, escape(&msg)));
        }
        self.report.warnings.push(msg);
    }

    /// Records what a library call did: each of its warnings ([`Session::warn`]), then its
    /// report under `changes.<key>` of the JSON report.
    pub fn record(&mut self, key: &str, warnings: &[String], report: impl serde::Serialize) {
        for w in warnings {
            self.warn(w.clone());
        }
        self.report.change(key, report);
    }

    /// Text for stderr (a tool's human report), printed when the run succeeds; control
    /// characters other than newlines and tabs are escaped.
    pub fn print_stderr(&mut self, text: impl Into<String>) {
        self.deferred.push(escape_text(&text.into()));
    }

    /// The destination for `path`: the one opened before the run, or a new one.
    fn sink(&mut self, path: Option<&Path>) -> anyhow::Result<Sink> {
        if let Some(p) = path {
            if let Some(i) = self.prepared.iter().position(|(q, _)| q == p) {
                return Ok(self.prepared.swap_remove(i).1);
            }
        }
        Sink::open(path)
    }

    /// Encodes a graph and writes it where the output arguments say; large payloads that are
    /// slices of `sources` (the input buffers) are written without copies. Nothing is visible
    /// before the run succeeds (see [`main`]).
    pub fn write_graph(
        &mut self,
        args: &OutputArgs,
        graph: &tf_proto::GraphDef,
        sources: &[bytes::Bytes],
    ) -> anyhow::Result<()> {
        let encoding = if args.text { tf_io::Encoding::Text } else { tf_io::Encoding::Binary };
        let sink = self.sink(args.output.as_deref())?;
        if encoding == tf_io::Encoding::Binary && sink.is_terminal() && !args.force {
            anyhow::bail!(
                "refusing to write a binary GraphDef to a terminal; use -o FILE, --text or --force"
            );
        }
        let encoded = match (&self.input_graph, encoding) {
            (Some(input), tf_io::Encoding::Binary) => {
                tf_io::encode_graph_from(graph, input, sources)
            }
            _ => tf_io::encode_graph(graph, encoding, sources),
        }
        .map_err(anyhow::Error::msg)?;
        let len = encoded.len();
        self.pending.push(sink.fill(encoded, false)?);
        self.report.set_output(args.output.as_deref(), graph, len, encoding);
        Ok(())
    }

    /// Writes text (a human report, JSON) to `output` (stdout for `None`), committed like a
    /// graph. Control characters other than newlines and tabs (from names in the input) are
    /// escaped, so the text cannot drive a terminal.
    pub fn write_text(&mut self, output: Option<&Path>, text: &str) -> anyhow::Result<()> {
        let text = escape_text(text);
        let encoded = tf_io::Encoded::from_bytes(bytes::Bytes::from(text.into_bytes()));
        let sink = self.sink(output)?;
        self.pending.push(sink.fill(encoded, false)?);
        Ok(())
    }

    /// Writes bytes (an npz, ...) to `output` (stdout for `None`), committed like a graph:
    /// binary data is refused when the destination is a terminal, unless `force`.
    pub fn write_bytes(
        &mut self,
        output: Option<&Path>,
        data: bytes::Bytes,
        force: bool,
    ) -> anyhow::Result<()> {
        let sink = self.sink(output)?;
        if sink.is_terminal() && !force {
            anyhow::bail!("refusing to write binary data to a terminal; use -o FILE or --force");
        }
        self.pending.push(sink.fill(tf_io::Encoded::from_bytes(data), false)?);
        Ok(())
    }
}

/// Escapes control characters (newlines, NUL, escape sequences...) so that a message with a
/// name from the input stays one harmless line: `\n`, `\t`, `\r`, `\u{1b}`.
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return s.into();
    }
    s.chars()
        .map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() })
        .collect::<String>()
        .into()
}

/// [`escape`] for multi-line text: newlines and tabs are kept.
fn escape_text(text: &str) -> String {
    if !text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return text.to_string();
    }
    text.chars()
        .map(|c| match c {
            '\n' | '\t' => c.to_string(),
            c if c.is_control() => c.escape_default().to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// Where the report goes.
enum ReportTo {
    Nowhere,
    Stderr,
    Sink(Sink),
}

/// Parses the arguments and runs a tool with the shared conventions; returns its exit code.
///
/// The destinations (`-o` and `--report`) are opened first, so that an unusable path fails the
/// run before any work. `run` does the work and returns how it ended; the output it wrote is
/// committed only afterwards: first the report is written (to its temporary file, or in place
/// for a device), then the output is committed (temporary file renamed, or stdout written), then
/// the report. An error at any point is one line on stderr and exit code 2, with nothing on
/// stdout and no output file; the report, when its path is usable, records the error and
/// exit code 2.
pub fn main<A: ToolArgs>(
    tool: &'static str,
    run: impl FnOnce(&mut Session, A) -> anyhow::Result<ExitStatus>,
) -> ExitCode {
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let at =
            info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!("{tool}: internal error: {}{at} (this is a bug; please report it)", escape(&msg));
    }));
    let mut matches = <A as clap::CommandFactory>::command().get_matches();
    let output_path = matches.try_get_one::<PathBuf>("output").ok().flatten().cloned();
    let args = A::from_arg_matches_mut(&mut matches)
        .unwrap_or_else(|e| e.format(&mut <A as clap::CommandFactory>::command()).exit());
    let report_args = args.report_args().clone();
    if report_args.completions.is_some() || report_args.man {
        let mut cmd = <A as clap::CommandFactory>::command();
        let mut text = Vec::new();
        let rendered = match report_args.completions {
            Some(shell) => {
                clap_complete::generate(shell, &mut cmd, tool, &mut text);
                Ok(())
            }
            None => clap_mangen::Man::new(cmd).render(&mut text),
        };
        let written = rendered.and_then(|()| {
            let mut out = std::io::stdout().lock();
            std::io::Write::write_all(&mut out, &text)
                .and_then(|()| std::io::Write::flush(&mut out))
        });
        return match written {
            Ok(()) => ExitStatus::Success.into(),
            Err(e) => finish_error(tool, &anyhow::Error::from(e)).into(),
        };
    }
    let mut session = Session::new(tool, report_args.quiet);
    let report_on_stderr = report_args.report.as_ref().is_some_and(|p| p.as_os_str() == "-");
    let report_to = match &report_args.report {
        None => ReportTo::Nowhere,
        Some(p) if p.as_os_str() == "-" => ReportTo::Stderr,
        Some(p) => match Sink::open(Some(p)) {
            Ok(sink) => ReportTo::Sink(sink),
            Err(e) => return finish_error(tool, &e.context("--report")).into(),
        },
    };
    if let Some(p) = output_path {
        match Sink::open(Some(&p)) {
            Ok(sink) => session.prepared.push((p, sink)),
            Err(e) => return fail(session, report_to, &e),
        }
    }
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&mut session, args)));
    let status = match outcome {
        Err(_) => {
            session.report.error = Some("internal error (see stderr)".into());
            return fail_reported(session, report_to);
        }
        Ok(Err(e)) => return fail(session, report_to, &e),
        Ok(Ok(status)) => status,
    };
    session.prepared.clear();
    session.report.finish(session.started.elapsed(), status);
    // 1. The report, not yet visible (a device is written now: that is where it fails).
    let mut report_pending = match report_to {
        ReportTo::Sink(sink) => match session.report.encode().and_then(|r| sink.fill(r, true)) {
            Ok(p) => Some(p),
            Err(e) => return fail(session, ReportTo::Nowhere, &e.context("--report")),
        },
        _ => None,
    };
    // 2. The output.
    let mut status = status;
    for p in std::mem::take(&mut session.pending) {
        if let Err(e) = p.commit() {
            if is_broken_pipe(&e) {
                break; // the reader has had enough: a quiet success
            }
            finish_error(tool, &e);
            session.report.error = Some(error_line(&e));
            session.report.finish(session.started.elapsed(), ExitStatus::Error);
            status = ExitStatus::Error;
            if let Some(p) = report_pending.as_mut() {
                let _ = session.report.encode().and_then(|r| p.refill(r));
            }
            break;
        }
    }
    if status != ExitStatus::Error {
        let mut err = std::io::stderr().lock();
        for m in &session.deferred {
            let _ = std::io::Write::write_all(&mut err, m.as_bytes());
        }
    }
    // 3. The report.
    match report_pending {
        Some(p) => {
            if let Err(e) = p.commit() {
                if status != ExitStatus::Error {
                    return finish_error(tool, &e.context("--report")).into();
                }
            }
        }
        None if report_on_stderr => session.report.print_stderr(),
        None => {}
    }
    status.into()
}

/// Ends a failed run: the error line, no output, and the report of the failure.
fn fail(mut session: Session, report_to: ReportTo, e: &anyhow::Error) -> ExitCode {
    let status = finish_error(session.tool, e);
    if status != ExitStatus::Error {
        return status.into(); // a broken pipe
    }
    session.report.error = Some(error_line(e));
    fail_reported(session, report_to)
}

/// Ends a failed run whose error was printed already.
fn fail_reported(mut session: Session, report_to: ReportTo) -> ExitCode {
    session.pending.clear();
    session.prepared.clear();
    session.report.finish(session.started.elapsed(), ExitStatus::Error);
    match report_to {
        ReportTo::Nowhere => {}
        ReportTo::Stderr => session.report.print_stderr(),
        // Best effort: the error has been reported on stderr already, in its one line.
        ReportTo::Sink(sink) => {
            let _ = session.report.encode().and_then(|r| sink.fill(r, true)?.commit());
        }
    }
    ExitStatus::Error.into()
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// An error and its causes in one line, joined by `: ` (a cause already quoted is not
/// repeated), control characters escaped.
fn error_line(e: &anyhow::Error) -> String {
    let line: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    let mut joined = line[0].clone();
    for cause in &line[1..] {
        if !joined.contains(cause.as_str()) {
            joined.push_str(": ");
            joined.push_str(cause);
        }
    }
    escape(&joined).into_owned()
}

/// Prints an error as one line, unless it is a broken pipe, which ends the run quietly and
/// successfully.
fn finish_error(tool: &str, e: &anyhow::Error) -> ExitStatus {
    if is_broken_pipe(e) {
        return ExitStatus::Success;
    }
    eprintln!("{tool}: error: {}", error_line(e));
    ExitStatus::Error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_makes_one_harmless_line() {
        assert_eq!(escape("plain 'name' \\ é"), "plain 'name' \\ é");
        assert_eq!(escape("a\nb\0c\x1b[31m\r\t"), "a\\nb\\u{0}c\\u{1b}[31m\\r\\t");
        assert_eq!(escape_text("x\ty\x07\nz\r"), "x\ty\\u{7}\nz\\r");
    }

    #[test]
    fn error_lines_join_causes_once() {
        let e = anyhow::anyhow!("inner\nline").context("outer");
        assert_eq!(error_line(&e), "outer: inner\\nline");
        let e = anyhow::anyhow!("x").context("f: x");
        assert_eq!(error_line(&e), "f: x");
    }
}
