//! tf-transform: the Graph Transform Tool's transform_graph, on tf-tools' passes.

use anyhow::Context;
use clap::Parser;
use tf_cli::{ExitStatus, InputArgs, OutputArgs, ReportArgs};
use tf_transform::TransformConfig;

const EXAMPLES: &str = "\
Examples:
  tf-transform --in_graph=frozen.pb --out_graph=opt.pb --inputs=input --outputs=softmax \\
      --transforms='strip_unused_nodes fold_constants(ignore_errors=true) fold_batch_norms
                    fold_old_batch_norms quantize_weights'
  tf-transform frozen.pb --transforms 'remove_nodes(op=Identity, op=CheckNumerics)' -o out.pb
  tf-transform frozen.pb --transforms 'rename_node(old_node_name=x, new_node_name=y)' --text
  tf-freeze model/ | tf-transform --transforms 'fold_constants round_weights(num_steps=64)'

Transforms: add_default_attributes backport_concatv2 backport_tensor_array_v3
  fake_quantize_training flatten_atrous_conv fold_batch_norms fold_constants
  fold_old_batch_norms freeze_requantization_ranges fuse_pad_and_conv fuse_resize_and_conv
  fuse_resize_pad_and_conv inline_partitionedcall insert_logging merge_duplicate_nodes
  obfuscate_names quantize_nodes quantize_weights remove_attribute
  remove_control_dependencies remove_device remove_nodes rename_attribute rename_node
  rename_op round_weights set_device sort_by_execution_order sparsify_gather
  strip_unused_nodes";

/// Runs Graph Transform Tool transforms on a TensorFlow graph: a drop-in for transform_graph
/// (same flags and transform string) that needs no TensorFlow. Transforms with a tf-tools
/// counterpart run it (strip_unused_nodes is tf-strip, the fold transforms are tf-fold,
/// quantize_weights and round_weights are tf-quant); any transform takes ignore_errors=true.
#[derive(Debug, Parser)]
#[command(name = "tf-transform", version, after_help = EXAMPLES)]
#[command(mut_arg("output", |a| a.visible_alias("out_graph")))]
#[command(mut_arg("text", |a| a.visible_alias("output_as_text")))]
struct Args {
    #[command(flatten)]
    input: InputArgs,
    /// The input graph (GTT's spelling of INPUT)
    #[arg(long = "in_graph", value_name = "FILE", conflicts_with = "input")]
    in_graph: Option<std::path::PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
    /// The transforms to run, in order: `name` or `name(param=value, ...)`, separated by
    /// spaces
    #[arg(long, value_name = "STRING", required_unless_present_any = ["completions", "man"])]
    transforms: Option<String>,
    /// Tensors the graph is fed at, comma-separated
    #[arg(long, value_name = "T1,T2", value_delimiter = ',')]
    inputs: Vec<String>,
    /// Tensors the graph must compute, comma-separated [default: the signature's, else
    /// detected]
    #[arg(long, value_name = "T1,T2", value_delimiter = ',')]
    outputs: Vec<String>,
    #[command(flatten)]
    report: ReportArgs,
}

tf_cli::tool_args!(Args);

impl TryFrom<&Args> for TransformConfig {
    type Error = anyhow::Error;

    fn try_from(a: &Args) -> anyhow::Result<TransformConfig> {
        let list = |v: &[String]| {
            v.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
        };
        let cfg = TransformConfig {
            inputs: list(&a.inputs),
            outputs: list(&a.outputs),
            ..TransformConfig::default()
        };
        Ok(cfg.with_transforms(a.transforms.as_deref().unwrap_or_default())?)
    }
}

fn main() -> std::process::ExitCode {
    tf_cli::main("tf-transform", |session, mut args: Args| {
        let mut cfg = TransformConfig::try_from(&args)?;
        if let Some(p) = args.in_graph.take() {
            args.input.input = p;
        }
        let loaded = session.load(&args.input)?;
        cfg.signature_outputs = loaded.signature_outputs();
        let (source, buffer) = (loaded.source_name.clone(), loaded.buffer.clone());
        let out = tf_transform::transform_graph_def(loaded.graph, &cfg).context(source)?;
        session.record("transform", &out.report.warnings, &out.report);
        let mut sources = vec![buffer.clone()];
        sources.extend(out.payloads);
        sources.extend(tf_fold::new_payloads(&out.graph, &buffer));
        session.write_graph(&args.output, &out.graph, &sources)?;
        Ok(ExitStatus::Success)
    })
}
