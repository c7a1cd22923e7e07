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
  tf-xla-check model.pb --exit-zero --annotate -o marked.pb   mark compilable clusters";

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
    /// Output tensors to check from, comma-separated [default: detected]
    #[arg(long, value_name = "T1,T2", value_delimiter = ',')]
    outputs: Vec<String>,
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

impl tf_cli::ToolArgs for Args {
    fn report_args(&self) -> &ReportArgs {
        &self.report
    }
}

fn main() -> std::process::ExitCode {
    tf_cli::main("tf-xla-check", |session, args: Args| {
        let device: Device = args.device.parse().map_err(anyhow::Error::msg)?;
        let mut outputs: Vec<String> =
            args.outputs.iter().filter(|s| !s.trim().is_empty()).cloned().collect();
        let loaded = session.load(&args.input)?;
        let saved_model = loaded.kind == tf_io::MessageKind::SavedModel;
        if outputs.is_empty() {
            outputs = loaded.signature_outputs();
        }
        let cfg = CheckConfig { device, outputs, variables_as_args: saved_model };
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
