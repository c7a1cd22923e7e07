//! tf-fold: constant folding, batch-norm folding and algebraic simplification, without TF.

use anyhow::Context;
use clap::Parser;
use tf_cli::{ExitStatus, InputArgs, OutputArgs, ReportArgs};
use tf_fold::{FoldConfig, Pass};

const EXAMPLES: &str = "\
Examples:
  tf-freeze model/ | tf-strip | tf-fold > model.pb    the pipeline
  tf-fold frozen.pb -o folded.pb --report fold.json  counts per pass in the report
  tf-fold frozen.pb --outputs logits                 keep these tensors (default: signature/sinks)
  tf-fold frozen.pb --passes constant,algebra        run only these passes
  tf-fold frozen.pb --no-batchnorm                   everything but batch-norm folding
  tf-fold frozen.pb --max-const-bytes 1MiB           never create a constant above 1 MiB
  tf-fold big.pb --max-live-bytes 2G --max-work 4G    fold more on a machine with room
  tf-fold frozen.pb --dry-run                        what would change, instead of the graph";

/// Folds what can be computed ahead of time into a TensorFlow graph: constant subgraphs
/// (native evaluator, no TensorFlow), shapes known statically, dead branches of constant
/// predicates, batch norms into convolution and matmul weights, algebraic identities and
/// duplicate nodes; repeated until nothing changes. Outputs and placeholders keep their names.
#[derive(Debug, Parser)]
#[command(name = "tf-fold", version, after_help = EXAMPLES)]
struct Args {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// Output tensors to preserve, comma-separated [default: the signature's, else every node
    /// nothing reads]
    #[arg(long, value_name = "T1,T2", value_delimiter = ',')]
    outputs: Vec<String>,
    /// Nodes never to fold, rewrite or remove, comma-separated
    #[arg(long, value_name = "N1,N2", value_delimiter = ',')]
    keep: Vec<String>,
    /// Run only these passes: constant, control, batchnorm, algebra, dedupe [default: all]
    #[arg(long, value_name = "P1,P2", value_delimiter = ',')]
    passes: Vec<String>,
    /// Skip constant folding
    #[arg(long)]
    no_constant: bool,
    /// Skip dead-branch removal and pure control-edge removal
    #[arg(long)]
    no_control: bool,
    /// Skip batch-norm folding
    #[arg(long)]
    no_batchnorm: bool,
    /// Skip algebraic simplification
    #[arg(long)]
    no_algebra: bool,
    /// Skip merging of duplicate nodes
    #[arg(long)]
    no_dedupe: bool,
    /// Never create a constant larger than this (when larger than its inputs): bytes, or with
    /// a K/M/G (KiB/MiB/GiB) suffix
    #[arg(long, value_name = "SIZE", default_value = "10MiB", value_parser = tf_tensor::parse_size)]
    max_const_bytes: u64,
    /// Budget for the tensors folding holds at once: constants decoded from typed fields and
    /// splats, computed values, and the constants folding creates (slices of the input file
    /// cost nothing); nodes over it are left unfolded and listed in the report
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = tf_tensor::parse_size)]
    max_live_bytes: u64,
    /// Most work spent evaluating one node: elements read or written, times the reduction
    /// length of a matrix product; nodes over it are left unfolded and listed in the report
    #[arg(long, value_name = "N", default_value = "256M", value_parser = tf_tensor::parse_size)]
    max_work: u64,
    /// Upper bound on fixed-point iterations
    #[arg(long, value_name = "N", default_value_t = 20, hide_short_help = true)]
    max_iterations: usize,
    /// Evaluate constant ops the native evaluator lacks with TensorFlow's runtime (only in a
    /// build with `--features tf-eval`, which links TensorFlow)
    #[arg(long)]
    tf_eval: bool,
    /// Print a summary of what would change instead of the graph
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    report: ReportArgs,
}

tf_cli::tool_args!(Args);

impl TryFrom<&Args> for FoldConfig {
    type Error = anyhow::Error;

    fn try_from(a: &Args) -> anyhow::Result<FoldConfig> {
        let list = |v: &[String]| {
            v.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
        };
        let mut passes: Vec<Pass> = Vec::new();
        for p in a.passes.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            passes.push(Pass::parse(p).with_context(|| {
                format!(
                    "--passes: unknown pass '{p}' (constant, control, batchnorm, algebra, dedupe)"
                )
            })?);
        }
        if passes.is_empty() {
            passes = Pass::ALL.to_vec();
        }
        let off = [
            (a.no_constant, Pass::Constant),
            (a.no_control, Pass::Control),
            (a.no_batchnorm, Pass::BatchNorm),
            (a.no_algebra, Pass::Algebra),
            (a.no_dedupe, Pass::Dedupe),
        ];
        passes.retain(|p| !off.iter().any(|(no, q)| *no && q == p));
        let fallback = match a.tf_eval {
            false => None,
            true => Some(tf_evaluator().context(
                "--tf-eval: this tf-fold was built without TensorFlow; build it with \
                 `cargo build --release --features tf-eval` (needs build/tflib, see tf-run)",
            )?),
        };
        Ok(FoldConfig {
            outputs: list(&a.outputs),
            keep: list(&a.keep),
            passes,
            max_const_bytes: a.max_const_bytes,
            max_live_bytes: a.max_live_bytes,
            max_work: a.max_work,
            max_iterations: a.max_iterations,
            fallback,
            ..FoldConfig::default()
        })
    }
}

/// TensorFlow's runtime as the fallback evaluator, in a build with `--features tf-eval`.
#[cfg(feature = "tf-eval")]
fn tf_evaluator() -> Option<tf_fold::Fallback> {
    Some(tf_run::fold_eval::evaluator())
}

#[cfg(not(feature = "tf-eval"))]
fn tf_evaluator() -> Option<tf_fold::Fallback> {
    None
}

fn main() -> std::process::ExitCode {
    tf_cli::main("tf-fold", |session, args: Args| {
        let mut cfg = FoldConfig::try_from(&args)?;
        let loaded = session.load(&args.input)?;
        cfg.signature_outputs = loaded.signature_outputs();
        let (source, buffer) = (loaded.source_name.clone(), loaded.buffer.clone());
        let (graph, report) = tf_fold::fold_graph_def(loaded.graph, &cfg).context(source)?;
        session.record("fold", &report.warnings, &report);
        if args.dry_run {
            session.write_text(args.output.output.as_deref(), &report.render_text())?;
        } else {
            // Weights folding rewrote are new buffers: referenced too, not copied again.
            let mut sources = vec![buffer.clone()];
            sources.extend(tf_fold::new_payloads(&graph, &buffer));
            session.write_graph(&args.output, &graph, &sources)?;
        }
        Ok(ExitStatus::Success)
    })
}
