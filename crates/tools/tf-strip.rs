//! tf-strip: remove everything inference does not need, without breaking the graph.

use anyhow::Context;
use clap::Parser;
use tf_cli::{ExitStatus, InputArgs, OutputArgs, ReportArgs};
use tf_strip::{DefaultAttrs, StripConfig};

const EXAMPLES: &str = "\
Examples:
  tf-strip frozen.pb -o stripped.pb                 outputs detected, everything else removed
  tf-strip graph.pb --outputs softmax,logits        keep what these tensors need
  tf-strip graph.pb --outputs softmax --set is_training=false | tf-fold > model.pb
  tf-strip graph.pb --outputs logits --inputs conv1/Relu:0 --input-shape conv1/Relu:0=1,8,8,8
  tf-strip saved_model/ --dry-run                   list what would go, and why
  tf-freeze model/ | tf-strip | tf-fold > model.pb   in a pipeline";

/// Removes everything inference does not need from a TensorFlow graph: what the outputs do not
/// depend on (training, saving, summaries, initializers), debug ops, Identity-like
/// pass-throughs, control edges that only order pure computations, devices and colocations.
/// Consumers are rewired, never dropped; stateful ops the outputs need are never removed;
/// versions, debug_info and the used part of the library are kept.
#[derive(Debug, Parser)]
#[command(name = "tf-strip", version, after_help = EXAMPLES)]
struct Args {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// Output tensors to keep, comma-separated [default: the signature's, else detected]
    #[arg(long, value_name = "T1,T2", value_delimiter = ',')]
    outputs: Vec<String>,
    /// Cut the graph at these tensors: each becomes a Placeholder of its own dtype and shape
    #[arg(long, value_name = "T1,T2", value_delimiter = ',')]
    inputs: Vec<String>,
    /// Shape of an --inputs tensor or placeholder, e.g. image=1,224,224,3 (-1 or ? unknown)
    #[arg(long = "input-shape", value_name = "NAME=DIMS")]
    input_shape: Vec<String>,
    /// Bind a placeholder to a constant, e.g. is_training=false (repeatable)
    #[arg(long, value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// Nodes to keep even if the outputs do not need them, comma-separated
    #[arg(long, value_name = "N1,N2", value_delimiter = ',')]
    keep: Vec<String>,
    /// Keep CheckNumerics, Assert, Print and PrintV2
    #[arg(long)]
    keep_asserts: bool,
    /// Keep Identity, Snapshot, StopGradient, PreventGradient and IdentityN pass-throughs
    #[arg(long)]
    keep_identity: bool,
    /// Keep control edges (and NoOps) that only order pure computations
    #[arg(long)]
    keep_control_deps: bool,
    /// Keep device placements and _class colocations (entries naming removed nodes still go)
    #[arg(long)]
    keep_devices: bool,
    /// Remove _output_shapes attributes
    #[arg(long)]
    clear_output_shapes: bool,
    /// Remove attributes equal to their op's default (for older TensorFlow versions)
    #[arg(long, conflicts_with = "add_default_attrs")]
    strip_default_attrs: bool,
    /// Add every default attribute a node lacks, as TensorFlow does on import
    #[arg(long)]
    add_default_attrs: bool,
    /// Print what would be removed, and why, instead of the graph
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    report: ReportArgs,
}

tf_cli::tool_args!(Args);

fn pair<'a>(flag: &str, s: &'a str) -> anyhow::Result<(String, &'a str)> {
    let (k, v) = s.split_once('=').with_context(|| format!("{flag} '{s}': expected NAME=..."))?;
    Ok((k.trim().to_string(), v.trim()))
}

impl TryFrom<&Args> for StripConfig {
    type Error = anyhow::Error;

    fn try_from(a: &Args) -> anyhow::Result<StripConfig> {
        let list = |v: &[String]| v.iter().filter(|s| !s.trim().is_empty()).cloned().collect();
        let mut input_shapes = Vec::new();
        for s in &a.input_shape {
            let (name, dims) = pair("--input-shape", s)?;
            let dims = dims
                .split(',')
                .filter(|d| !d.trim().is_empty())
                .map(|d| match d.trim() {
                    "?" => Ok(-1),
                    d => d.parse::<i64>().ok().filter(|v| *v >= -1).ok_or(()),
                })
                .collect::<Result<Vec<i64>, ()>>()
                .map_err(|()| anyhow::anyhow!("--input-shape '{s}': dims must be integers"))?;
            input_shapes.push((name, dims));
        }
        let set = a.set.iter().map(|s| pair("--set", s).map(|(k, v)| (k, v.to_string())));
        Ok(StripConfig {
            outputs: list(&a.outputs),
            inputs: list(&a.inputs),
            input_shapes,
            set: set.collect::<anyhow::Result<_>>()?,
            keep: list(&a.keep),
            keep_asserts: a.keep_asserts,
            keep_identity: a.keep_identity,
            keep_control_deps: a.keep_control_deps,
            keep_devices: a.keep_devices,
            clear_output_shapes: a.clear_output_shapes,
            default_attrs: match (a.strip_default_attrs, a.add_default_attrs) {
                (true, _) => DefaultAttrs::Strip,
                (_, true) => DefaultAttrs::Add,
                _ => DefaultAttrs::Keep,
            },
            ..StripConfig::default()
        })
    }
}

fn main() -> std::process::ExitCode {
    tf_cli::main("tf-strip", |session, args: Args| {
        let mut cfg = StripConfig::try_from(&args)?;
        let loaded = session.load(&args.input)?;
        cfg.signature_outputs = loaded.signature_outputs();
        let (source, buffer) = (loaded.source_name.clone(), loaded.buffer.clone());
        let (graph, report) = tf_strip::strip_graph_def(loaded.graph, &cfg).context(source)?;
        session.record("strip", &report.warnings, &report);
        if args.dry_run {
            session.write_text(args.output.output.as_deref(), &report.render_text())?;
        } else {
            session.write_graph(&args.output, &graph, &[buffer])?;
        }
        Ok(ExitStatus::Success)
    })
}
