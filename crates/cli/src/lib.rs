//! The conventions every tf-* tool shares, in one place.
//!
//! - Input: `[INPUT]` (a file, a SavedModel directory, or `-`/nothing for stdin), any format
//!   `tf_io` detects; `--tag`/`--signature` pick from a SavedModel.
//! - Output: stdout by default, or `-o FILE` written atomically (temporary file in the same
//!   directory, renamed on success, nothing left behind on failure). Nothing reaches stdout
//!   unless the whole run succeeded, and binary output is never written to a terminal without
//!   `--force`. `--text` writes pbtxt.
//! - `--report FILE` writes a JSON report (tool, version, input and output sizes, what changed,
//!   warnings, wall time); `--report -` prints it on stderr.
//! - Exit codes ([`ExitStatus`]): 0 success, 1 check failed or findings, 2 error. A broken pipe
//!   on stdout ends the run quietly with 0, as ripgrep does.
//! - Errors are one line on stderr, `tool: error: ...`, naming the file, node or field; a panic
//!   becomes such a line too, never a backtrace.
//! - `--completions SHELL` and `--man` print shell completions and a man page generated from the
//!   same clap definitions as `--help`.

#![deny(missing_docs)]

mod output;
mod report;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
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

/// State of one run: the report being built and the warnings so far.
#[derive(Debug)]
pub struct Session {
    tool: &'static str,
    started: Instant,
    quiet: bool,
    /// The JSON report of this run.
    pub report: Report,
}

impl Session {
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
        self.report.set_input(&loaded);
        Ok(loaded)
    }

    /// Records an input read some other way (a tool that resolves its own paths).
    pub fn note_input(&mut self, loaded: &Loaded) {
        self.report.set_input(loaded);
    }

    /// Prints a warning on stderr (unless `--quiet`) and records it in the report.
    pub fn warn(&mut self, msg: impl Into<String>) {
        let msg = msg.into();
        if !self.quiet {
            eprintln!("{}: warning: {msg}", self.tool);
        }
        self.report.warnings.push(msg);
    }

    /// Encodes and writes a graph where the output arguments say; large payloads that are slices
    /// of `sources` (the input buffers) are written without copies.
    pub fn write_graph(
        &mut self,
        args: &OutputArgs,
        graph: &tf_proto::GraphDef,
        sources: &[bytes::Bytes],
    ) -> anyhow::Result<()> {
        let encoding = if args.text { tf_io::Encoding::Text } else { tf_io::Encoding::Binary };
        if encoding == tf_io::Encoding::Binary
            && args.output.as_ref().is_none_or(|p| p.as_os_str() == "-")
            && std::io::stdout().is_terminal()
            && !args.force
        {
            anyhow::bail!(
                "refusing to write a binary GraphDef to a terminal; use -o FILE, --text or --force"
            );
        }
        let encoded = tf_io::encode_graph(graph, encoding, sources).map_err(anyhow::Error::msg)?;
        output::write_atomically(args.output.as_deref(), &encoded)?;
        self.report.set_output(args.output.as_deref(), graph, encoded.len(), encoding);
        Ok(())
    }

    /// Writes text (a human report, JSON) to the output arguments' destination.
    pub fn write_text(
        &mut self,
        output: Option<&std::path::Path>,
        text: &str,
    ) -> anyhow::Result<()> {
        let encoded = tf_io::Encoded::from_bytes(bytes::Bytes::copy_from_slice(text.as_bytes()));
        output::write_atomically(output, &encoded)
    }

    /// Writes bytes (an npz, ...) to the output arguments' destination, atomically.
    pub fn write_bytes(
        &mut self,
        output: Option<&std::path::Path>,
        data: bytes::Bytes,
    ) -> anyhow::Result<()> {
        output::write_atomically(output, &tf_io::Encoded::from_bytes(data))
    }
}

/// Parses the arguments and runs a tool with the shared conventions; returns its exit code.
///
/// `run` does the work and returns how it ended; an error becomes one line on stderr and exit
/// code 2.
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
        eprintln!("{tool}: internal error: {msg}{at} (this is a bug; please report it)");
    }));
    let args = A::parse();
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
    let mut session = Session {
        tool,
        started: Instant::now(),
        quiet: report_args.quiet,
        report: Report::new(tool, env!("CARGO_PKG_VERSION")),
    };
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&mut session, args)));
    let status = match outcome {
        Err(_) => ExitStatus::Error,
        Ok(Ok(status)) => status,
        Ok(Err(e)) => finish_error(tool, &e),
    };
    if status != ExitStatus::Error {
        if let Some(path) = &report_args.report {
            session.report.finish(session.started.elapsed(), status);
            if let Err(e) = session.report.write(path) {
                return finish_error(tool, &e).into();
            }
        }
    }
    status.into()
}

/// Prints an error as one line (its causes joined by `: `), unless it is a broken pipe, which
/// ends the run quietly and successfully.
fn finish_error(tool: &str, e: &anyhow::Error) -> ExitStatus {
    let broken_pipe = e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return ExitStatus::Success;
    }
    let line: Vec<String> = e.chain().map(|c| c.to_string().replace('\n', " ")).collect();
    let mut joined = line[0].clone();
    for cause in &line[1..] {
        if !joined.contains(cause.as_str()) {
            joined.push_str(": ");
            joined.push_str(cause);
        }
    }
    eprintln!("{tool}: error: {joined}");
    ExitStatus::Error
}
