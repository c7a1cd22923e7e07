//! tf-inspect: what is in a graph, for people (text) and programs (--json).

use clap::Parser;
use tf_cli::{ExitStatus, InputArgs, ReportArgs};

const EXAMPLES: &str = "\
Examples:
  tf-inspect frozen.pb                  inputs, outputs, op histogram, parameters
  tf-inspect saved_model/ --signature serving_default
  tf-inspect model.pb --json | jq .inputs
  tf-inspect model.pb --gtt             summarize_graph's output, for scripts that parse it
  tf-inspect model.ckpt                 the tensors of a checkpoint (prefix, .index or directory)
  tf-freeze model/ | tf-inspect         inspect the output of a pipeline";

/// Summarizes a TensorFlow graph: candidate inputs (placeholders with dtype and shape) and
/// outputs, op histogram (functions included), node and edge counts, parameters and bytes by
/// dtype, variables, functions, control flow, devices; for SavedModels the tag sets and
/// signatures. Given a checkpoint, lists its tensors (key, dtype, shape, bytes).
#[derive(Debug, Parser)]
#[command(name = "tf-inspect", version, after_help = EXAMPLES)]
struct Args {
    #[command(flatten)]
    input: InputArgs,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
    /// Print what the Graph Transform Tool's summarize_graph printed (same lines, same order)
    #[arg(long, conflicts_with = "json")]
    gtt: bool,
    /// How many ops to list in the text histogram (0 for all)
    #[arg(long, default_value_t = 15, value_name = "N")]
    top: usize,
    /// Write the summary to FILE instead of stdout
    #[arg(short, long, value_name = "FILE")]
    output: Option<std::path::PathBuf>,
    #[command(flatten)]
    report: ReportArgs,
}

tf_cli::tool_args!(Args);

fn main() -> std::process::ExitCode {
    tf_cli::main("tf-inspect", |session, args: Args| {
        if let Some(ckpt) = checkpoint_at(&args.input.input) {
            let summary = tf_inspect::summarize_checkpoint(&tf_ckpt::Checkpoint::open(&ckpt)?);
            let text = if args.json {
                serde_json::to_string_pretty(&summary)? + "\n"
            } else {
                tf_inspect::render_checkpoint(&summary)
            };
            session.write_text(args.output.as_deref(), &text)?;
            return Ok(ExitStatus::Success);
        }
        let loaded = session.load(&args.input)?;
        if args.gtt {
            let path = args.input.input.to_string_lossy();
            let text = tf_inspect::render_gtt(&loaded.graph, &path).map_err(anyhow::Error::msg)?;
            session.write_text(args.output.as_deref(), &text)?;
            return Ok(ExitStatus::Success);
        }
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

/// The checkpoint a path names, if it names one rather than a graph: a `.index` file, a prefix
/// with a `.index` beside it, a V1 checkpoint file, or a directory with a `checkpoint` file and
/// no SavedModel.
fn checkpoint_at(path: &std::path::Path) -> Option<std::path::PathBuf> {
    let s = path.to_string_lossy();
    if s.ends_with(".index")
        || std::path::Path::new(&format!("{s}.index")).is_file()
        || tf_ckpt::is_v1_table(path)
    {
        return Some(path.to_path_buf());
    }
    let saved_model =
        path.join("saved_model.pb").is_file() || path.join("saved_model.pbtxt").is_file();
    (path.is_dir() && path.join("checkpoint").is_file() && !saved_model).then(|| path.to_path_buf())
}
