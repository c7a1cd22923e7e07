//! tf-diff: run two TensorFlow GraphDefs on the same inputs and compare their outputs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tf_run::cli::{self, DiffOptions, InputOptions};
use tf_run::compare::Tolerance;

/// Run graphs A and B on the same inputs and compare their outputs.
///
/// Inputs come from --inputs/--input or are generated once (seeded) and fed to both graphs.
/// Outputs default to A's candidate outputs, looked up by the same names in B. Floating-point
/// outputs pass when |a-b| <= atol + rtol*|a| everywhere (defaults depend on the dtype: 1e-5/1e-4
/// for float32/64, 1e-3/1e-3 for float16, 1e-2/1e-2 for bfloat16); integer, bool and string
/// outputs must match exactly. Exit status: 0 all within tolerance, 1 some beyond, 2 error.
#[derive(Parser, Debug)]
#[command(name = "tf-diff", version, max_term_width = 100)]
struct Args {
    /// Reference graph (GraphDef binary or text, .meta, SavedModel; frozen).
    a: PathBuf,
    /// Graph to check against A (same formats).
    b: PathBuf,
    /// Feed the arrays of an .npz file whose keys name placeholders (`x` or `x:0`).
    #[arg(long = "inputs", value_name = "FILE.npz")]
    inputs: Option<PathBuf>,
    /// Feed a tensor from an .npy file: NAME=FILE.npy.
    #[arg(long = "input", short = 'i', value_name = "NAME=FILE", value_parser = parse_input)]
    input: Vec<(String, PathBuf)>,
    /// Compare this output: NAME (same in both) or A_NAME=B_NAME; repeatable.
    #[arg(long = "output", short = 'O', value_name = "A[=B]", value_parser = parse_output)]
    output: Vec<(String, String)>,
    /// Absolute tolerance (default: per dtype).
    #[arg(long)]
    atol: Option<f64>,
    /// Relative tolerance, relative to A's values (default: per dtype).
    #[arg(long)]
    rtol: Option<f64>,
    /// Seed for generated inputs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Size of unknown leading dimensions of generated inputs (other unknown dims become 1).
    #[arg(long, default_value_t = 1)]
    batch: u64,
    /// Shape of a generated input: NAME=D0,D1,... (`NAME=scalar` for rank 0).
    #[arg(long = "shape", value_name = "NAME=DIMS", value_parser = parse_shape)]
    shape: Vec<(String, Vec<u64>)>,
    /// Print a JSON report instead of the table.
    #[arg(long)]
    json: bool,
}

fn parse_input(s: &str) -> Result<(String, PathBuf), String> {
    cli::parse_input_arg(s).map_err(|e| e.to_string())
}

fn parse_output(s: &str) -> Result<(String, String), String> {
    cli::parse_output_pair(s).map_err(|e| e.to_string())
}

fn parse_shape(s: &str) -> Result<(String, Vec<u64>), String> {
    cli::parse_shape_arg(s).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let a = Args::parse();
    cli::tf_diff_main(DiffOptions {
        a: a.a,
        b: a.b,
        input: InputOptions {
            inputs: a.input,
            inputs_npz: a.inputs,
            shapes: a.shape,
            seed: a.seed,
            batch: a.batch,
        },
        outputs: a.output,
        tolerance: Tolerance { atol: a.atol, rtol: a.rtol },
        json: a.json,
    })
}
