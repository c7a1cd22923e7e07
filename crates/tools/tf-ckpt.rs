//! tf-ckpt: list, compare, slim, cast and merge checkpoints, without TensorFlow.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use tf_ckpt::tool::{self, CastOptions, CastTo, DiffOptions, SlimOptions, WriteReport};
use tf_ckpt::write::WriteOptions;
use tf_ckpt::Checkpoint;
use tf_cli::{ExitStatus, ReportArgs};

const EXAMPLES: &str = "\
Examples:
  tf-ckpt ls train/                             tensors of the latest checkpoint: dtype, shape, bytes, kind
  tf-ckpt ls model.ckpt --json | jq '.tensors[].key'
  tf-ckpt diff run1/ckpt-10 run2/ckpt-10 --atol 1e-6
  tf-ckpt slim train/ -o slim/ckpt               weights only: no optimizer slots, no counters
  tf-ckpt slim train/ -o slim/ckpt --keep-for saved_model/
  tf-ckpt slim model.ckpt -o w.ckpt --drop 'Adam|global_step' --keep 'ema/'
  tf-ckpt cast slim/ckpt --dtype float16 -o half/ckpt --exclude 'batch_norm'
  tf-ckpt merge part-a part-b -o merged/ckpt --shards 2

CKPT is a checkpoint prefix, its .index file, or a directory (its 'checkpoint' file names the
latest; a directory written by tf.train.Checkpoint.write holds one). Outputs are V2 checkpoints
(PREFIX.index, PREFIX.data-*) that TensorFlow restores, written all or nothing.";

/// Works on TensorFlow checkpoints (V2 tensor bundles; V1 read too) without TensorFlow: lists
/// and compares their tensors, and writes slimmed (weights only), cast (float16/bfloat16) and
/// merged checkpoints that tf.train.load_checkpoint, tf.train.Checkpoint.restore and the TF1
/// Saver read. Unchanged tensors are copied by the kernel with their checksums.
#[derive(Debug, Parser)]
#[command(
    name = "tf-ckpt",
    version,
    after_help = EXAMPLES,
    subcommand_required = false,
    mut_arg("report", |a| a.global(true)),
    mut_arg("quiet", |a| a.global(true)),
)]
struct Args {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    report: ReportArgs,
}

#[derive(Debug, clap::Args)]
struct WriteArgs {
    /// Output checkpoint prefix (writes PREFIX.index and PREFIX.data-*)
    #[arg(short, long, value_name = "PREFIX")]
    output: PathBuf,
    /// Number of data shards to write
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    shards: u32,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// List the tensors: key, dtype, shape, bytes, kind (weight, optimizer, counter)
    Ls {
        /// The checkpoint
        #[arg(value_name = "CKPT")]
        ckpt: PathBuf,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Compare two checkpoints tensor by tensor; exit 1 when they differ
    Diff {
        /// First checkpoint
        #[arg(value_name = "A")]
        a: PathBuf,
        /// Second checkpoint
        #[arg(value_name = "B")]
        b: PathBuf,
        /// Absolute tolerance
        #[arg(long, value_name = "X", default_value_t = 0.0)]
        atol: f64,
        /// Relative tolerance (of B's value)
        #[arg(long, value_name = "X", default_value_t = 0.0)]
        rtol: f64,
        /// Compare float tensors of different float dtypes by value (float32 vs float16 ...)
        #[arg(long)]
        across_dtypes: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Keep what inference needs: weights, without optimizer slots and counters
    Slim {
        /// The checkpoint
        #[arg(value_name = "CKPT")]
        ckpt: PathBuf,
        #[command(flatten)]
        write: WriteArgs,
        /// Also keep keys matching REGEX
        #[arg(long, value_name = "REGEX")]
        keep: Option<String>,
        /// Drop keys matching REGEX (wins over --keep)
        #[arg(long, value_name = "REGEX")]
        drop: Option<String>,
        /// Keep exactly the variables MODEL reads: a SavedModel (its signature), or a
        /// checkpoint prefix with its .meta and --outputs
        #[arg(long, value_name = "MODEL")]
        keep_for: Option<PathBuf>,
        /// Output tensors of the --keep-for graph, comma-separated [default: its signature's]
        #[arg(long, value_name = "NAMES", value_delimiter = ',', requires = "keep_for")]
        outputs: Vec<String>,
        /// SavedModel signature of --keep-for [default: serving_default]
        #[arg(long, value_name = "KEY", requires = "keep_for")]
        signature: Option<String>,
    },
    /// Store float32 tensors as float16 or bfloat16 (rounded as tf.cast does)
    Cast {
        /// The checkpoint
        #[arg(value_name = "CKPT")]
        ckpt: PathBuf,
        #[command(flatten)]
        write: WriteArgs,
        /// The new dtype: float16 or bfloat16
        #[arg(long, value_name = "DTYPE")]
        dtype: String,
        /// Leave float32 tensors whose key matches REGEX alone
        #[arg(long, value_name = "REGEX")]
        exclude: Option<String>,
    },
    /// Write the tensors of one or more checkpoints as one (into --shards shards)
    Merge {
        /// The checkpoints (their keys must not overlap)
        #[arg(value_name = "CKPT", required = true)]
        inputs: Vec<PathBuf>,
        #[command(flatten)]
        write: WriteArgs,
    },
}

tf_cli::tool_args!(Args);

fn regex(flag: &str, re: Option<&String>) -> anyhow::Result<Option<regex::Regex>> {
    re.map(|r| {
        regex::Regex::new(r).map_err(|e| {
            anyhow::anyhow!("{flag}: not a valid regex: {}", e.to_string().replace('\n', " "))
        })
    })
    .transpose()
}

fn open(p: &Path) -> anyhow::Result<Checkpoint> {
    Ok(Checkpoint::open(p)?)
}

/// The checkpoint keys the model at `path` reads (what tf-freeze reads from its variables).
fn keys_read_by(
    path: &Path,
    outputs: &[String],
    signature: Option<String>,
) -> anyhow::Result<std::collections::BTreeSet<String>> {
    let read = tf_io::ReadOptions { tag: None, signature };
    let source = tf_freeze::Source::open(path, None, &read)?;
    let opts = tf_freeze::FreezeOptions { outputs: outputs.to_vec(), keep_variables: None };
    let frozen = tf_freeze::freeze(source, &opts)?;
    Ok(frozen.report.variables.into_iter().map(|v| v.key).collect())
}

fn summarize(session: &mut tf_cli::Session, what: &str, r: &WriteReport) {
    session.record(what, &r.warnings, r);
    let w = &r.written;
    session.print_stderr(format!(
        "tf-ckpt: {what}: {} tensors kept ({} dropped, {} cast); {} data bytes of {} ({:.1}%), {} shard(s)\n",
        r.kept.len(),
        r.dropped.len(),
        r.cast.len(),
        w.data_bytes,
        r.input_bytes,
        if r.input_bytes == 0 { 100.0 } else { 100.0 * w.data_bytes as f64 / r.input_bytes as f64 },
        w.files.len().saturating_sub(1)
    ));
}

fn main() -> std::process::ExitCode {
    tf_cli::main("tf-ckpt", |session, args: Args| {
        let Some(cmd) = args.cmd else {
            anyhow::bail!("no subcommand: use ls, diff, slim, cast or merge (see --help)");
        };
        match cmd {
            Cmd::Ls { ckpt, json } => {
                let r = tool::ls(&open(&ckpt)?)?;
                let text = if json {
                    serde_json::to_string_pretty(&r)? + "\n"
                } else {
                    tool::render_ls(&r)
                };
                session.write_text(None, &text)?;
                Ok(ExitStatus::Success)
            }
            Cmd::Diff { a, b, atol, rtol, across_dtypes, json } => {
                if !(atol >= 0.0 && rtol >= 0.0) {
                    anyhow::bail!("--atol and --rtol must be numbers >= 0");
                }
                let o = DiffOptions { atol, rtol, across_dtypes };
                let r = tool::diff(&open(&a)?, &open(&b)?, &o)?;
                session.report.change("diff", &r);
                let text = if json {
                    serde_json::to_string_pretty(&r)? + "\n"
                } else {
                    tool::render_diff(&r)
                };
                session.write_text(None, &text)?;
                Ok(if r.differ.is_empty() { ExitStatus::Success } else { ExitStatus::Findings })
            }
            Cmd::Slim { ckpt, write, keep, drop, keep_for, outputs, signature } => {
                let keep = regex("--keep", keep.as_ref())?;
                let drop = regex("--drop", drop.as_ref())?;
                let c = open(&ckpt)?;
                let keep_only = match &keep_for {
                    Some(m) => Some(keys_read_by(m, &outputs, signature)?),
                    None => None,
                };
                let o = SlimOptions { keep, drop, keep_only };
                let w = WriteOptions { shards: write.shards as usize };
                let r = tool::slim(&c, &o, &write.output, &w)?;
                summarize(session, "slim", &r);
                Ok(ExitStatus::Success)
            }
            Cmd::Cast { ckpt, write, dtype, exclude } => {
                let to = match dtype.as_str() {
                    "float16" | "half" | "f16" => CastTo::Float16,
                    "bfloat16" | "bf16" => CastTo::Bfloat16,
                    d => anyhow::bail!("--dtype: '{d}' is not float16 or bfloat16"),
                };
                let exclude = regex("--exclude", exclude.as_ref())?;
                let c = open(&ckpt)?;
                let w = WriteOptions { shards: write.shards as usize };
                let r = tool::cast(&c, &CastOptions { to, exclude }, &write.output, &w)?;
                summarize(session, "cast", &r);
                Ok(ExitStatus::Success)
            }
            Cmd::Merge { inputs, write } => {
                let cs = inputs.iter().map(|p| open(p)).collect::<anyhow::Result<Vec<_>>>()?;
                let w = WriteOptions { shards: write.shards as usize };
                let r = tool::merge(&cs, &write.output, &w)?;
                summarize(session, "merge", &r);
                Ok(ExitStatus::Success)
            }
        }
    })
}
