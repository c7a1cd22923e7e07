//! tf-run: run a TensorFlow GraphDef with the real TensorFlow runtime.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tf_run::cli::{self, InputOptions, RunOptions};

/// Run a GraphDef through TensorFlow and report (and optionally save) its outputs.
///
/// Inputs default to every Placeholder: values come from --input/--inputs, otherwise they are
/// generated from the placeholder's dtype and shape with a seeded generator (floats uniform in
/// [-1,1), integers in [0,10), random bools). Outputs default to the graph's candidate outputs
/// (nodes nobody consumes, except NoOp/Const/Placeholder/Assert/save machinery). A summary line
/// per input and output goes to stderr. Exit status: 0 success, 2 error.
#[derive(Parser, Debug)]
#[command(name = "tf-run", version, max_term_width = 100)]
struct Args {
    /// Graph: GraphDef (binary or text), .meta or SavedModel (`-`: standard input). Variables
    /// are not restored: run frozen graphs.
    graph: PathBuf,
    /// Feed a tensor from an .npy file: NAME=FILE.npy (NAME is `node` or `node:port`).
    #[arg(long = "input", short = 'i', value_name = "NAME=FILE", value_parser = parse_input)]
    input: Vec<(String, PathBuf)>,
    /// Feed the arrays of an .npz file whose keys name placeholders (`x` or `x:0`).
    #[arg(long = "inputs", value_name = "FILE.npz")]
    inputs: Option<PathBuf>,
    /// Fetch this tensor (`node` or `node:port`); repeatable. Default: candidate outputs.
    #[arg(long = "output", short = 'O', value_name = "TENSOR")]
    output: Vec<String>,
    /// Write the outputs to an .npz file (keys are tensor names; `-` for standard output).
    #[arg(short = 'o', long = "out", value_name = "FILE.npz")]
    out: Option<PathBuf>,
    /// Also store the fed inputs in the -o file.
    #[arg(long)]
    save_inputs: bool,
    /// Seed for generated inputs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Size of unknown leading dimensions of generated inputs (other unknown dims become 1).
    #[arg(long, default_value_t = 1)]
    batch: u64,
    /// Shape of a generated input: NAME=D0,D1,... (`NAME=scalar` for rank 0).
    #[arg(long = "shape", value_name = "NAME=DIMS", value_parser = parse_shape)]
    shape: Vec<(String, Vec<u64>)>,
}

fn parse_input(s: &str) -> Result<(String, PathBuf), String> {
    cli::parse_input_arg(s).map_err(|e| e.to_string())
}

fn parse_shape(s: &str) -> Result<(String, Vec<u64>), String> {
    cli::parse_shape_arg(s).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let a = Args::parse();
    cli::tf_run_main(RunOptions {
        graph: a.graph,
        input: InputOptions {
            inputs: a.input,
            inputs_npz: a.inputs,
            shapes: a.shape,
            seed: a.seed,
            batch: a.batch,
        },
        outputs: a.output,
        out: a.out,
        save_inputs: a.save_inputs,
    })
}
