//! tf-run: run a TensorFlow graph with the real TensorFlow runtime.

use std::path::PathBuf;

use clap::Parser;
use tf_cli::{ExitStatus, InputArgs, ReportArgs};
use tf_run::calibrate;
use tf_run::cli::{self, InputOptions, LoadedGraph, RunOptions};

const EXAMPLES: &str = "\
Examples:
  tf-run model.pb                                  random inputs (seed 0), detected outputs
  tf-run model.pb --inputs io.npz -o out.npz       inputs from an npz, outputs saved
  tf-run model.pb -i x=x.npy --outputs logits,probs:0
  tf-run model.pb --batch 8 --seed 3               unknown batch dimension = 8
  tf-run model.pb --shape tokens=4,128             explicit shape for a generated input
  tf-freeze model/ | tf-fold | tf-run -o - > out.npz
  tf-run model.pb --calibrate samples.npz -o ranges.json   activation ranges for tf-quant
  tf-run model.pb --calibrate -o ranges.json               generated inputs: smoke run only";

/// Runs a TensorFlow graph through TensorFlow's C runtime and reports (and optionally saves)
/// its outputs.
///
/// Inputs default to every Placeholder: values come from --input/--inputs, otherwise they are
/// generated from the placeholder's dtype and shape with a seeded generator (floats uniform in
/// [-1,1), integers in [0,10), random bools). Outputs default to the SavedModel signature's,
/// else to the nodes nothing consumes (as the other tools detect them). A summary line per
/// input and output goes to stderr. Variables are not restored: run frozen graphs.
#[derive(Parser, Debug)]
#[command(name = "tf-run", version, after_help = EXAMPLES)]
struct Args {
    #[command(flatten)]
    input: InputArgs,
    /// Write the outputs to an .npz file (keys are tensor names; `-` for stdout), atomically
    #[arg(short, long, value_name = "FILE.npz")]
    output: Option<PathBuf>,
    /// Write the npz to stdout even when it is a terminal
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    feed: InputOptions,
    /// Tensors to fetch (`node` or `node:port`), comma-separated [default: the signature's,
    /// else every node nothing reads]
    #[arg(long, value_name = "T1,T2", value_delimiter = ',')]
    outputs: Vec<String>,
    /// Also store the fed inputs in the -o file
    #[arg(long)]
    save_inputs: bool,
    /// Record the activation ranges `tf-quant int8 --activations` needs, running the samples
    /// of an npz (arrays named after the placeholders, samples along axis 0); -o then writes
    /// the ranges JSON. Without a file, generated inputs: a smoke run only
    #[arg(long, value_name = "SAMPLES.npz", num_args = 0..=1, default_missing_value = "")]
    calibrate: Option<String>,
    #[command(flatten)]
    report: ReportArgs,
}

tf_cli::tool_args!(Args);

fn main() -> std::process::ExitCode {
    tf_cli::main("tf-run", |session, a: Args| {
        if let Some(samples) = &a.calibrate {
            let g = LoadedGraph::open(session, &a.input, |source| source.to_string())?;
            let samples = (!samples.is_empty()).then(|| PathBuf::from(samples));
            let ranges =
                calibrate::calibrate(session, a.report.quiet, &g, samples.as_deref(), &a.feed)?;
            let mut json = serde_json::to_vec_pretty(&ranges)?;
            json.push(b'\n');
            session.write_bytes(a.output.as_deref(), json.into(), true)?;
            return Ok(ExitStatus::Success);
        }
        if a.output.is_some() {
            cli::check_binary_destination(a.output.as_deref(), a.force)?;
        }
        let opts = RunOptions {
            input: a.feed,
            outputs: a.outputs.into_iter().filter(|s| !s.trim().is_empty()).collect(),
            save_inputs: a.save_inputs,
        };
        let g = LoadedGraph::open(session, &a.input, |source| source.to_string())?;
        let result = cli::run_graph(session, a.report.quiet, &g, &opts)?;
        if let Some(out) = &a.output {
            session.write_bytes(Some(out), result.to_npz()?.into(), a.force)?;
        }
        Ok(ExitStatus::Success)
    })
}
