//! tf-diff: run two TensorFlow graphs on the same inputs and compare their outputs.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use tf_cli::{ExitStatus, InputArgs, ReportArgs};
use tf_run::cli::{self, DiffOptions, InputOptions, LoadedGraph};
use tf_run::compare::{format_table, Tolerance};

const EXAMPLES: &str = "\
Examples:
  tf-diff original.pb optimized.pb                  table on stdout, exit 0/1/2
  tf-diff a.pb b.pb --inputs io.npz --atol 1e-4 --rtol 1e-3
  tf-diff a.pb b.pb --outputs logits=model/logits:0 --json
  tf-strip a.pb | tf-fold | tf-diff a.pb -          B from stdin";

/// Runs graphs A and B on the same inputs and compares their outputs.
///
/// Inputs come from --inputs/--input or are generated once (seeded) and fed to both graphs.
/// Outputs default to A's (its signature's, else the nodes nothing consumes), looked up by the
/// same names in B. Floating-point outputs pass when |a-b| <= atol + rtol*|a| everywhere
/// (defaults depend on the dtype: 1e-5/1e-4 for float32/64, 1e-3/1e-3 for float16, 1e-2/1e-2
/// for bfloat16); integer, bool and string outputs must match exactly. Exit status: 0 all
/// within tolerance, 1 some beyond, 2 error.
#[derive(Parser, Debug)]
#[command(name = "tf-diff", version, after_help = EXAMPLES)]
struct Args {
    /// Reference graph: binary or text GraphDef, MetaGraphDef (.meta), SavedModel directory or
    /// saved_model.pb (frozen); `-` reads stdin
    #[arg(value_name = "A", required_unless_present_any = ["completions", "man"])]
    a: Option<PathBuf>,
    /// Graph to check against A (same formats; at most one of A and B may be `-`)
    #[arg(value_name = "B", required_unless_present_any = ["completions", "man"])]
    b: Option<PathBuf>,
    /// SavedModel tag set to load, comma-separated [default: serve, or the only one]
    #[arg(long, value_name = "TAGS")]
    tag: Option<String>,
    /// SavedModel signature to use [default: serving_default]
    #[arg(long, value_name = "KEY")]
    signature: Option<String>,
    /// Write the table (or JSON) here instead of stdout (atomically)
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    feed: InputOptions,
    /// Outputs to compare, comma-separated: NAME (same in both) or A_NAME=B_NAME
    #[arg(long, value_name = "A[=B],...", value_delimiter = ',', value_parser = parse_output)]
    outputs: Vec<(String, String)>,
    /// Absolute tolerance [default: per dtype]
    #[arg(long)]
    atol: Option<f64>,
    /// Relative tolerance, relative to A's values [default: per dtype]
    #[arg(long)]
    rtol: Option<f64>,
    /// Print the comparison as JSON instead of the table
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    report: ReportArgs,
}

tf_cli::tool_args!(Args);

fn parse_output(s: &str) -> Result<(String, String), String> {
    cli::parse_output_pair(s).map_err(|e| e.to_string())
}

fn main() -> std::process::ExitCode {
    tf_cli::main("tf-diff", |session, a: Args| {
        let (path_a, path_b) = a.a.clone().zip(a.b.clone()).context("give graphs A and B")?;
        anyhow::ensure!(
            path_a.as_os_str() != "-" || path_b.as_os_str() != "-",
            "A and B cannot both be stdin (`-`)"
        );
        let input = |path: &PathBuf| InputArgs {
            input: path.clone(),
            tag: a.tag.clone(),
            signature: a.signature.clone(),
        };
        let ga = LoadedGraph::open(session, &input(&path_a), |s| format!("graph A ({s})"))?;
        // The report's input is A; B is named under changes.diff.
        let input_a = session.report.input.clone();
        let gb = LoadedGraph::open(session, &input(&path_b), |s| format!("graph B ({s})"))?;
        session.report.input.clone_from(&input_a);
        let opts = DiffOptions {
            input: a.feed,
            outputs: a.outputs,
            tolerance: Tolerance { atol: a.atol, rtol: a.rtol },
        };
        let report = cli::diff_graphs(session, a.report.quiet || a.json, &ga, &gb, &opts)?;
        let text = if a.json {
            let mut s = serde_json::to_string_pretty(&report.to_json())?;
            s.push('\n');
            s
        } else {
            format_table(&report.comparisons)
        };
        session.write_text(a.output.as_deref(), &text)?;
        Ok(if report.ok() { ExitStatus::Success } else { ExitStatus::Findings })
    })
}
