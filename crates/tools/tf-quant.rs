//! tf-quant: store a graph's weights in int8, uint8, float16, bfloat16 or rounded floats, in a
//! GraphDef stock TensorFlow still runs.

use anyhow::Context;
use clap::Parser;
use tf_cli::{ExitStatus, InputArgs, OutputArgs, ReportArgs};
use tf_quant::activations::{Activations, Form};
use tf_quant::ranges::RangesFile;
use tf_quant::{compile_patterns, Mode, QuantConfig};

const EXAMPLES: &str = "\
Examples:
  tf-quant int8 frozen.pb -o model.pb               per-channel int8 (Const → Cast → Mul)
  tf-quant int8 --per-tensor frozen.pb -o model.pb  one scale per tensor
  tf-quant int8 --encoding dequantize frozen.pb     Dequantize(SCALED) nodes (CPU only)
  tf-quant uint8 frozen.pb -o model.pb              GTT quantize_weights (quint8, MIN_FIRST)
  tf-quant float16 frozen.pb -o model.pb            half-precision weights
  tf-quant round:256 frozen.pb | gzip > model.pb.gz GTT round_weights: float, compresses well
  tf-quant int8 frozen.pb --exclude '^logits/' --report quant.json
  tf-freeze model/ | tf-strip | tf-fold | tf-quant int8 > model.pb
  tf-run frozen.pb --calibrate samples.npz -o ranges.json
  tf-quant int8 --activations ranges.json frozen.pb -o int8.pb   int8 kernels (oneDNN, x86 CPU)
  tf-quant int8 --activations ranges.json --legacy-gtt frozen.pb -o gtt.pb
                                    GTT quantize_nodes' graph (quint8 MIN_FIRST; slower than float)";

/// Stores the weights of a TensorFlow graph in fewer bits, in a GraphDef stock TensorFlow
/// still loads and runs: int8 (per-channel symmetric, as TFLite), uint8 (as the Graph
/// Transform Tool's quantize_weights), float16, bfloat16, or round:N (rounded floats).
/// Weights are the float constants read as convolution filters, matrix-product operands or
/// embedding tables; biases and batch-norm parameters stay float. Each weight keeps its node
/// name, so consumers and outputs are unchanged.
#[derive(Debug, Parser)]
#[command(name = "tf-quant", version, after_help = EXAMPLES)]
struct Args {
    /// int8 (default), uint8, float16, bfloat16, round or round:N
    #[arg(value_name = "MODE")]
    mode: Option<String>,
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// int8: one scale per tensor instead of one per output channel
    #[arg(long)]
    per_tensor: bool,
    /// int8: cast-mul (Const int8 → Cast → Mul; CPU, GPU, XLA) or dequantize (Dequantize
    /// SCALED; CPU only)
    #[arg(long, value_name = "ENC", default_value = "cast-mul")]
    encoding: String,
    /// Leave tensors with fewer elements float
    #[arg(long, value_name = "N", default_value_t = 1024)]
    min_elements: u64,
    /// Quantize only weights whose node name matches REGEX (repeatable; unanchored)
    #[arg(long, value_name = "REGEX")]
    include: Vec<String>,
    /// Leave weights whose node name matches REGEX float (repeatable; unanchored)
    #[arg(long, value_name = "REGEX")]
    exclude: Vec<String>,
    /// Most bytes spent expanding one constant stored as a splat (one value for many
    /// elements); bigger ones are refused. Bytes, or with a K/M/G suffix
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = tf_tensor::parse_size)]
    max_splat_bytes: u64,
    /// int8: also quantize activations, rewriting Conv2D/MatMul(+BiasAdd)(+Relu) into int8
    /// kernels, with the ranges `tf-run --calibrate` recorded in FILE
    #[arg(long, value_name = "FILE")]
    activations: Option<std::path::PathBuf>,
    /// With --activations: minmax, percentile:P (clip |x| at the P-th percentile) or entropy
    /// (the clip whose 8-bit histogram is closest to the recorded one, least KL divergence)
    #[arg(long, value_name = "RULE", default_value = "minmax")]
    calibration: String,
    /// With --activations: a MatMul whose weight has fewer elements (K×N) stays float; the
    /// int8 kernel's fixed cost makes small products slower than float (0 = every MatMul)
    #[arg(long, value_name = "N", default_value_t = tf_quant::activations::DEFAULT_MIN_MATMUL_WEIGHTS)]
    min_matmul_weights: u64,
    /// With --activations: emit the graph of the Graph Transform Tool's quantize_nodes
    /// (QuantizedConv2D, QuantizedMatMul, QuantizedBiasAdd, QuantizedRelu ... on quint8
    /// MIN_FIRST, Requantize) for stacks that expect it; slower than float. Requantize ranges:
    /// frozen (default, from FILE) or dynamic (RequantizationRange)
    #[arg(
        long,
        value_name = "RANGES",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "frozen"
    )]
    legacy_gtt: Option<String>,
    #[command(flatten)]
    report: ReportArgs,
}

tf_cli::tool_args!(Args);

impl TryFrom<&Args> for QuantConfig {
    type Error = anyhow::Error;

    fn try_from(a: &Args) -> anyhow::Result<QuantConfig> {
        if a.activations.is_none() && a.calibration != "minmax" {
            anyhow::bail!("--calibration applies with --activations only");
        }
        if a.activations.is_none() && a.legacy_gtt.is_some() {
            anyhow::bail!("--legacy-gtt applies with --activations only");
        }
        let form = match &a.legacy_gtt {
            None => Form::OneDnn,
            Some(r) => {
                Form::LegacyGtt(r.parse().map_err(|e: String| anyhow::anyhow!("--legacy-gtt={e}"))?)
            }
        };
        let cfg = QuantConfig {
            mode: a.mode.as_deref().unwrap_or("int8").parse()?,
            per_tensor: a.per_tensor,
            encoding: a.encoding.parse()?,
            min_elements: a.min_elements,
            include: compile_patterns("--include", &a.include)?,
            exclude: compile_patterns("--exclude", &a.exclude)?,
            activations: a
                .activations
                .as_deref()
                .map(|p| read_ranges(p, &a.calibration, form, a.min_matmul_weights))
                .transpose()?,
            ..QuantConfig::default()
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Reads and checks an `--activations` file; errors name the file.
fn read_ranges(
    path: &std::path::Path,
    rule: &str,
    form: Form,
    min_matmul_weights: u64,
) -> anyhow::Result<Activations> {
    let file = path.display().to_string();
    let calibration = rule.parse().map_err(anyhow::Error::msg)?;
    let text = std::fs::read(path).with_context(|| format!("--activations {file}"))?;
    let ranges = RangesFile::parse(&text).map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
    Ok(Activations { ranges, file, calibration, form, min_matmul_weights })
}

fn main() -> std::process::ExitCode {
    tf_cli::main("tf-quant", |session, mut args: Args| {
        tf_tensor::set_max_splat_bytes(args.max_splat_bytes);
        // `tf-quant model.pb`: a first argument that is no mode but an existing path is the
        // input, and the mode is int8.
        if let Some(m) = &args.mode {
            let input_given = args.input.input.as_os_str() != "-";
            if !input_given && !Mode::is_mode_name(m) && std::path::Path::new(m).exists() {
                let input = tf_cli::InputArgs { input: m.into(), ..args.input };
                args = Args { input, mode: None, ..args };
            }
        }
        let cfg = QuantConfig::try_from(&args)?;
        let loaded = session.load(&args.input)?;
        let (source, buffer) = (loaded.source_name.clone(), loaded.buffer.clone());
        let q = tf_quant::quantize_graph_def(loaded.graph, &cfg).context(source)?;
        session.record("quant", &q.report.warnings, &q.report);
        session.write_graph(&args.output, &q.graph, &[buffer, q.payload])?;
        Ok(ExitStatus::Success)
    })
}
