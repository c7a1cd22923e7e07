//! tf-convert: a GraphDef from any supported form, as binary or text.

use clap::Parser;
use tf_cli::{ExitStatus, InputArgs, OutputArgs, ReportArgs};

const EXAMPLES: &str = "\
Examples:
  tf-convert model.pbtxt -o model.pb          text GraphDef to binary
  tf-convert model.pb --text > model.pbtxt    binary GraphDef to text
  tf-convert saved_model/ -o graph.pb         the GraphDef inside a SavedModel (tag serve)
  tf-convert model.ckpt.meta -o graph.pb      the GraphDef inside a MetaGraphDef
  cat model.pb | tf-convert | tf-inspect      pass-through in a pipeline";

/// Converts a TensorFlow graph between binary and text GraphDef, and extracts the GraphDef of a
/// SavedModel or MetaGraphDef. Every field is kept: the binary output of a binary GraphDef is
/// byte-identical to TensorFlow's deterministic serialization of it.
#[derive(Debug, Parser)]
#[command(name = "tf-convert", version, after_help = EXAMPLES)]
struct Args {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    report: ReportArgs,
}

tf_cli::tool_args!(Args);

fn main() -> std::process::ExitCode {
    tf_cli::main("tf-convert", |session, args: Args| {
        let loaded = session.load(&args.input)?;
        session.write_graph(&args.output, &loaded.graph, std::slice::from_ref(&loaded.buffer))?;
        Ok(ExitStatus::Success)
    })
}
