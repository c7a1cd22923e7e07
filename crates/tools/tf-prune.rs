//! tf-prune: one-shot magnitude pruning of frozen graphs, and removal of dead channels.

use anyhow::Context;
use clap::Parser;
use tf_cli::{ExitStatus, InputArgs, OutputArgs, ReportArgs};
use tf_prune::PruneConfig;

const EXAMPLES: &str = "\
Examples:
  tf-prune frozen.pb --sparsity 0.5 -o pruned.pb        half of every weight tensor zeroed
  tf-prune frozen.pb --sparsity 0.8 --global            one threshold across all tensors
  tf-prune frozen.pb --sparsity 0.5 --block 1x4         whole 1x4 blocks, by average magnitude
  tf-prune frozen.pb --n-m 2:4                          2 of every 4 along the input dimension
  tf-prune frozen.pb --sparsity 0.5 --exclude 'dense_1|logits' --min-elements 1024
  tf-prune frozen.pb --channels --report r.json         drop all-zero channels and neurons
  tf-prune frozen.pb --channel-sparsity 0.25            drop the weakest quarter of channels
  tf-freeze model/ | tf-strip | tf-prune --sparsity 0.5 | tf-quant int8 > model.pb";

/// Zeroes the smallest-magnitude weights of the Consts feeding Conv2D, DepthwiseConv2dNative,
/// MatMul, BatchMatMul, Einsum and Conv2DBackpropInput (tfmot's rule k = max(round(N(1-S)), 1) kept,
/// ties broken by position), and with --channels removes all-zero output channels and neurons
/// together with the matching inputs of the next layer.
#[derive(Debug, Parser)]
#[command(name = "tf-prune", version, after_help = EXAMPLES)]
struct Args {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// Target sparsity in [0, 1): the fraction of each weight tensor set to zero
    #[arg(long, value_name = "S", allow_hyphen_values = true)]
    sparsity: Option<String>,
    /// One magnitude threshold across all selected tensors instead of one per tensor
    #[arg(long, requires = "sparsity")]
    global: bool,
    /// Prune whole RxC blocks by average magnitude (matrix view: last axis = columns)
    #[arg(long, value_name = "RxC", requires = "sparsity")]
    block: Option<String>,
    /// N:M sparsity along the input dimension, e.g. 2:4
    #[arg(long = "n-m", value_name = "N:M", conflicts_with_all = ["sparsity", "block", "global"])]
    n_m: Option<String>,
    /// Leave tensors with fewer elements alone
    #[arg(long, value_name = "N", default_value_t = 0)]
    min_elements: u64,
    /// Only tensors whose Const or consumer name matches this regex
    #[arg(long, value_name = "REGEX")]
    include: Option<String>,
    /// Not tensors whose Const or consumer name matches this regex
    #[arg(long, value_name = "REGEX")]
    exclude: Option<String>,
    /// Also prune embedding tables (params of Gather/GatherV2)
    #[arg(long)]
    embeddings: bool,
    /// Remove all-zero output channels (conv) and neurons (dense) and the matching inputs of
    /// the next layer, where that is exact
    #[arg(long)]
    channels: bool,
    /// Zero this fraction of each Conv2D/MatMul layer's output channels (lowest L1 norm
    /// first), then remove them as --channels does
    #[arg(long, value_name = "F", allow_hyphen_values = true)]
    channel_sparsity: Option<String>,
    /// Most bytes spent expanding one constant stored as a splat (one value for many
    /// elements); bigger ones are refused. Bytes, or with a K/M/G suffix
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = tf_tensor::parse_size)]
    max_splat_bytes: u64,
    #[command(flatten)]
    report: ReportArgs,
}

tf_cli::tool_args!(Args);

impl TryFrom<&Args> for PruneConfig {
    type Error = anyhow::Error;

    fn try_from(a: &Args) -> anyhow::Result<PruneConfig> {
        let cfg = PruneConfig {
            sparsity: a.sparsity.as_deref().map(tf_prune::parse_sparsity).transpose()?,
            global: a.global,
            block: a.block.as_deref().map(tf_prune::parse_block).transpose()?,
            n_m: a.n_m.as_deref().map(tf_prune::parse_n_m).transpose()?,
            min_elements: a.min_elements,
            include: a
                .include
                .as_deref()
                .map(|s| tf_prune::parse_regex("include", s))
                .transpose()?,
            exclude: a
                .exclude
                .as_deref()
                .map(|s| tf_prune::parse_regex("exclude", s))
                .transpose()?,
            embeddings: a.embeddings,
            channels: a.channels || a.channel_sparsity.is_some(),
            channel_sparsity: a
                .channel_sparsity
                .as_deref()
                .map(tf_prune::parse_channel_sparsity)
                .transpose()?,
        };
        if cfg.sparsity.is_none() && cfg.n_m.is_none() && !cfg.channels {
            anyhow::bail!(
                "nothing to do: give --sparsity S, --n-m N:M, --channels or --channel-sparsity F"
            );
        }
        Ok(cfg)
    }
}

fn main() -> std::process::ExitCode {
    tf_cli::main("tf-prune", |session, args: Args| {
        tf_tensor::set_max_splat_bytes(args.max_splat_bytes);
        let cfg = PruneConfig::try_from(&args)?;
        let loaded = session.load(&args.input)?;
        let (source, buffer) = (loaded.source_name.clone(), loaded.buffer.clone());
        let want_gzip = args.report.report.is_some();
        let gzip_before = want_gzip.then(|| tf_prune::gzip_size(&loaded.graph));
        let (graph, mut report) = tf_prune::prune_graph_def(loaded.graph, &cfg).context(source)?;
        report.gzip_bytes_before = gzip_before;
        report.gzip_bytes_after = want_gzip.then(|| tf_prune::gzip_size(&graph));
        session.record("prune", &report.warnings, &report);
        session.write_graph(&args.output, &graph, &[buffer])?;
        Ok(ExitStatus::Success)
    })
}
