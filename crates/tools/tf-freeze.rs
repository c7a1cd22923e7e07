//! tf-freeze: a checkpoint or SavedModel to a frozen GraphDef, without TensorFlow.

use std::path::PathBuf;

use clap::Parser;
use tf_cli::{ExitStatus, OutputArgs, ReportArgs};
use tf_freeze::{FreezeOptions, Source};

const EXAMPLES: &str = "\
Examples:
  tf-freeze saved_model/ > frozen.pb                     TF2 or TF1 SavedModel (serve, serving_default)
  tf-freeze saved_model/ --signature predict -o f.pb     another signature
  tf-freeze model.ckpt --outputs softmax > frozen.pb     TF1 checkpoint prefix with model.ckpt.meta
  tf-freeze train_dir/ --outputs softmax > frozen.pb     the latest checkpoint of a directory
  tf-freeze model.ckpt --graph graph.pbtxt --outputs y   a checkpoint and a separate GraphDef
  tf-freeze saved_model/ --keep-variables 'lstm/state'   leave run-time-assigned variables alone
  tf-freeze saved_model/ | tf-strip | tf-fold > model.pb";

/// Freezes a model: replaces its variables by constants read from its checkpoint, inlines its
/// function calls into one flat graph, and keeps only what the outputs need.
#[derive(Debug, Parser)]
#[command(name = "tf-freeze", version, after_help = EXAMPLES)]
struct Args {
    /// SavedModel directory, checkpoint prefix (with PREFIX.meta), .meta file, or checkpoint
    /// directory (its `checkpoint` file names the latest)
    #[arg(value_name = "PATH")]
    path: PathBuf,
    /// The graph to freeze, when it is not beside the checkpoint (binary or text GraphDef,
    /// MetaGraphDef; `-` for stdin)
    #[arg(long, value_name = "FILE")]
    graph: Option<PathBuf>,
    /// Output tensors, comma-separated [default: the signature's outputs, else detected]
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    outputs: Vec<String>,
    /// Leave variables whose node name matches REGEX as variables (e.g. RNN state assigned at
    /// run time)
    #[arg(long, value_name = "REGEX")]
    keep_variables: Option<String>,
    /// SavedModel tag set, comma-separated [default: serve]
    #[arg(long, value_name = "TAGS")]
    tag: Option<String>,
    /// SavedModel signature [default: serving_default]
    #[arg(long, value_name = "KEY")]
    signature: Option<String>,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    report: ReportArgs,
}

tf_cli::tool_args!(Args);

fn main() -> std::process::ExitCode {
    tf_cli::main("tf-freeze", |session, args: Args| {
        let keep_variables = match &args.keep_variables {
            Some(re) => Some(regex::Regex::new(re).map_err(|e| {
                anyhow::anyhow!(
                    "--keep-variables: not a valid regex: {}",
                    e.to_string().replace('\n', " ")
                )
            })?),
            None => None,
        };
        let read = tf_io::ReadOptions { tag: args.tag.clone(), signature: args.signature.clone() };
        let source = Source::open(&args.path, args.graph.as_deref(), &read)?;
        session.note_input(&source.loaded);
        let opts = FreezeOptions { outputs: args.outputs.clone(), keep_variables };
        let frozen = tf_freeze::freeze(source, &opts)?;
        session.record("freeze", &frozen.report.warnings, &frozen.report);
        session.write_graph(&args.output, &frozen.graph, &frozen.buffers)?;
        Ok(ExitStatus::Success)
    })
}
