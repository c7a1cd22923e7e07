//! tf-xla-check: will this graph compile with XLA? A gate that passes the graph through.

use anyhow::Context;
use clap::Parser;
use tf_cli::{ExitStatus, InputArgs, OutputArgs, ReportArgs};
use tf_xla_check::{CheckConfig, Device};

const EXAMPLES: &str = "\
Examples:
  tf-xla-check frozen.pb > /dev/null                    report on stderr, exit 1 if it won't compile
  tf-xla-check model.pb --device gpu --report xla.json  JSON: verdict, findings, clusters
  tf-freeze model/ | tf-strip | tf-xla-check | tf-fold > model.pb    a gate in a pipeline
  tf-xla-check model.pb --exit-zero --annotate -o marked.pb   mark compilable clusters
  tf-xla-check export/ --signature regress_x_to_y > /dev/null  judge a signature from its inputs on
  tf-xla-check graph.pb --inputs features:0 --outputs logits   the part between two tensors";

/// Checks offline whether a TensorFlow graph compiles with XLA (jit_compile=True), from TF
/// 2.21's own table of XLA kernels. The graph passes through unchanged on stdout; the report
/// goes to stderr (and --report JSON). Exit 1 if anything will not compile.
#[derive(Debug, Parser)]
#[command(name = "tf-xla-check", version, after_help = EXAMPLES)]
struct Args {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// XLA JIT device: cpu (XLA_CPU_JIT) or gpu (XLA_GPU_JIT)
    #[arg(long, value_name = "DEVICE", default_value = "cpu")]
    device: String,
    /// Output tensors to check from, comma-separated [default: the signature's, else detected]
    #[arg(long, value_name = "T1,T2", value_delimiter = ',')]
    outputs: Vec<String>,
    /// Tensors that are the compiled function's arguments, comma-separated: the check cuts the
    /// graph there as tf-strip --inputs does [default: the signature's inputs]
    #[arg(long, value_name = "T1,T2", value_delimiter = ',')]
    inputs: Vec<String>,
    /// Exit 0 even when something will not compile
    #[arg(long)]
    exit_zero: bool,
    /// Mark compilable clusters with _XlaCompile/_XlaScope (the output graph changes)
    #[arg(long)]
    annotate: bool,
    /// Smallest cluster --annotate marks
    #[arg(long, value_name = "N", default_value_t = 2)]
    min_cluster: usize,
    #[command(flatten)]
    report: ReportArgs,
}

tf_cli::tool_args!(Args);

fn main() -> std::process::ExitCode {
    tf_cli::main("tf-xla-check", |session, args: Args| {
        let device: Device = args.device.parse().map_err(anyhow::Error::msg)?;
        let mut outputs: Vec<String> =
            args.outputs.iter().filter(|s| !s.trim().is_empty()).cloned().collect();
        let mut inputs: Vec<String> =
            args.inputs.iter().filter(|s| !s.trim().is_empty()).cloned().collect();
        let loaded = session.load(&args.input)?;
        let saved_model = loaded.kind == tf_io::MessageKind::SavedModel;
        if saved_model && loaded.signature.is_none() && outputs.is_empty() {
            // Without a signature the SavedModel's graph holds only the functions' callers and
            // the saver: a verdict on it would say nothing about the model.
            let keys: Vec<String> = loaded
                .meta_graph
                .iter()
                .flat_map(|m| m.signature_def.keys())
                .filter(|k| !k.starts_with("__")) // __saved_model_init_op: not a signature
                .map(|k| format!("'{k}'"))
                .collect();
            let available = if keys.is_empty() { "none".to_string() } else { keys.join(", ") };
            anyhow::bail!(
                "{}: no signature '{}' (available: {available}); choose one with --signature, or name --outputs",
                loaded.source_name,
                tf_io::DEFAULT_SIGNATURE
            );
        }
        if outputs.is_empty() {
            outputs = loaded.signature_outputs();
        }
        if inputs.is_empty() {
            inputs = loaded
                .signature
                .as_ref()
                .map(|(_, sig)| tf_xla_check::signature_inputs(sig))
                .unwrap_or_default();
        }
        let cfg = CheckConfig { device, outputs, inputs, variables_as_args: saved_model };
        let (source, buffer) = (loaded.source_name.clone(), loaded.buffer.clone());
        let annotate = args.annotate.then_some(args.min_cluster);
        let (graph, report, marked) =
            tf_xla_check::check_graph_def(loaded.graph, &cfg, annotate).context(source)?;
        if !args.report.quiet || !report.compilable {
            session.print_stderr(report.render_text());
        }
        session.report.change("xla", &report);
        if args.annotate {
            session.report.change("annotated_nodes", marked);
        }
        // Unless annotated, the nodes come back as they were read: the same bytes go out.
        session.write_graph(&args.output, &graph, &[buffer])?;
        Ok(if report.compilable || args.exit_zero {
            ExitStatus::Success
        } else {
            ExitStatus::Findings
        })
    })
}
