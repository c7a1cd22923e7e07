//! tf-inspect: what is in a graph, for people (text) and programs (--json).

use clap::Parser;
use tf_cli::{ExitStatus, InputArgs, ReportArgs};

const EXAMPLES: &str = "\
Examples:
  tf-inspect frozen.pb                  inputs, outputs, op histogram, parameters
  tf-inspect saved_model/ --signature serving_default
  tf-inspect model.pb --json | jq .inputs
  tf-freeze model/ | tf-inspect         inspect the output of a pipeline";

/// Summarizes a TensorFlow graph: candidate inputs (placeholders with dtype and shape) and
/// outputs, op histogram (functions included), node and edge counts, parameters and bytes by
/// dtype, variables, functions, control flow, devices; for SavedModels the tag sets and
/// signatures.
#[derive(Debug, Parser)]
#[command(name = "tf-inspect", version, after_help = EXAMPLES)]
struct Args {
    #[command(flatten)]
    input: InputArgs,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
    /// How many ops to list in the text histogram (0 for all)
    #[arg(long, default_value_t = 15, value_name = "N")]
    top: usize,
    /// Write the summary to FILE instead of stdout
    #[arg(short, long, value_name = "FILE")]
    output: Option<std::path::PathBuf>,
    #[command(flatten)]
    report: ReportArgs,
}

impl tf_cli::ToolArgs for Args {
    fn report_args(&self) -> &ReportArgs {
        &self.report
    }
}

fn main() -> std::process::ExitCode {
    tf_cli::main("tf-inspect", |session, args: Args| {
        let loaded = session.load(&args.input)?;
        let summary = tf_inspect::summarize(&loaded);
        let text = if args.json {
            serde_json::to_string_pretty(&summary)? + "\n"
        } else {
            tf_inspect::render_text(&summary, args.top)
        };
        session.write_text(args.output.as_deref(), &text)?;
        Ok(ExitStatus::Success)
    })
}
