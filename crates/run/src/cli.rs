//! The logic behind the `tf-run` and `tf-diff` binaries, which parse arguments with tf-cli's
//! shared flags and conventions (input, `-o`, `--report`, exit codes, one-line errors) and call
//! [`run_graph`] and [`diff_graphs`].

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::PathBuf;

use serde_json::json;
use tf_cli::{InputArgs, Session};
use tf_proto::tensorflow::GraphDef;

use crate::compare::{compare, Comparison, Tolerance};
use crate::error::{Error, Result};
use crate::graph::{candidate_outputs, encode_graph_def, feedable_inputs, InputSpec};
use crate::npy::{read_npy, read_npz, write_npz_to};
use crate::random::{random_tensor, Rng};
use crate::tensor::{fmt_shape, HostTensor};
use crate::tf::{canonical_tensor_name, split_tensor_name, Model};

/// Where the values of the graph inputs come from: the flags tf-run and tf-diff share
/// (flatten it into a binary's arguments).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct InputOptions {
    /// Feed a tensor from an .npy file: NAME=FILE.npy (NAME is `node` or `node:port`)
    #[arg(long = "input", short = 'i', value_name = "NAME=FILE", value_parser = input_arg)]
    pub inputs: Vec<(String, PathBuf)>,
    /// Feed the arrays of an .npz file whose keys name placeholders (`x` or `x:0`)
    #[arg(long = "inputs", value_name = "FILE.npz")]
    pub inputs_npz: Option<PathBuf>,
    /// Shape of a generated input: NAME=D0,D1,... (`NAME=scalar` for rank 0)
    #[arg(long = "shape", value_name = "NAME=DIMS", value_parser = shape_arg)]
    pub shapes: Vec<(String, Vec<u64>)>,
    /// Seed for generated inputs
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Size of unknown leading dimensions of generated inputs (other unknown dims become 1)
    #[arg(long, default_value_t = 1)]
    pub batch: u64,
}

fn input_arg(s: &str) -> std::result::Result<(String, PathBuf), String> {
    parse_input_arg(s).map_err(|e| e.to_string())
}

fn shape_arg(s: &str) -> std::result::Result<(String, Vec<u64>), String> {
    parse_shape_arg(s).map_err(|e| e.to_string())
}

/// Options of `tf-run` (the graph itself comes from tf-cli's input arguments).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub input: InputOptions,
    /// Tensors to fetch; empty: the signature's outputs, else the graph's candidate outputs.
    pub outputs: Vec<String>,
    /// Also return the fed inputs with the outputs (for the npz).
    pub save_inputs: bool,
}

/// Options of `tf-diff` (the graphs come from tf-cli's input arguments).
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    pub input: InputOptions,
    /// `(name in A, name in B)`; empty: A's outputs (as for tf-run), same names in B.
    pub outputs: Vec<(String, String)>,
    pub tolerance: Tolerance,
}

/// Split `NAME=VALUE` (the name is everything before the first `=`).
pub fn parse_name_value(s: &str, what: &str) -> Result<(String, String)> {
    match s.split_once('=') {
        Some((n, v)) if !n.is_empty() && !v.is_empty() => Ok((n.to_string(), v.to_string())),
        _ => Err(Error::invalid(format!("bad {what} {s:?}: expected NAME=VALUE"))),
    }
}

/// Parse `--input NAME=FILE`.
pub fn parse_input_arg(s: &str) -> Result<(String, PathBuf)> {
    let (n, v) = parse_name_value(s, "--input")?;
    Ok((n, PathBuf::from(v)))
}

/// Parse `--shape NAME=D0,D1,...` (`NAME=` alone is not allowed; use `NAME=scalar` for rank 0).
pub fn parse_shape_arg(s: &str) -> Result<(String, Vec<u64>)> {
    let (n, v) = parse_name_value(s, "--shape")?;
    if v == "scalar" || v == "[]" {
        return Ok((n, Vec::new()));
    }
    let v = v.trim_start_matches('[').trim_end_matches(']');
    let dims = v
        .split([',', 'x'])
        .map(|d| {
            d.trim()
                .parse::<u64>()
                .map_err(|_| Error::invalid(format!("bad --shape {s:?}: {d:?} is not a dimension")))
        })
        .collect::<Result<Vec<u64>>>()?;
    Ok((n, dims))
}

/// Parse `--output A_NAME[=B_NAME]`.
pub fn parse_output_pair(s: &str) -> Result<(String, String)> {
    match s.split_once('=') {
        None if !s.is_empty() => Ok((s.to_string(), s.to_string())),
        Some((a, b)) if !a.is_empty() && !b.is_empty() => Ok((a.to_string(), b.to_string())),
        _ => Err(Error::invalid(format!("bad --output {s:?}: expected NAME or A_NAME=B_NAME"))),
    }
}

/// A graph read through tf-cli (so in any format the other tools accept) and opened in
/// TensorFlow.
pub struct LoadedGraph {
    pub def: GraphDef,
    pub model: Model,
    /// The outputs of the SavedModel signature it came from (empty for a GraphDef).
    pub signature_outputs: Vec<String>,
    /// The file it came from, for messages.
    pub source: String,
}

impl LoadedGraph {
    /// Reads the graph the arguments name (recording it in the session's report) and imports it
    /// into TensorFlow; `label` names the graph in TensorFlow errors ("graph A (a.pb)", ...).
    ///
    /// Only frozen graphs run as they are: variables of a SavedModel or checkpoint are not
    /// restored, so a warning is given when the graph has variable ops and did not come from a
    /// GraphDef.
    pub fn open(
        session: &mut Session,
        args: &InputArgs,
        label: impl FnOnce(&str) -> String,
    ) -> anyhow::Result<LoadedGraph> {
        let loaded = session.load(args)?;
        let source = loaded.source_name.clone();
        if loaded.kind != tf_io::MessageKind::GraphDef {
            let vars = loaded
                .graph
                .node
                .iter()
                .filter(|n| matches!(n.op.as_str(), "VarHandleOp" | "VariableV2" | "Variable"))
                .count();
            if vars > 0 {
                session.warn(format!(
                    "{source}: {vars} variable(s) will not be restored; freeze the graph \
                     (variables to constants) to run it"
                ));
            }
        }
        let signature_outputs = loaded.signature_outputs();
        let def = loaded.graph;
        let model = Model::load(&encode_graph_def(&def), &label(&source))?;
        Ok(LoadedGraph { def, model, signature_outputs, source })
    }

    /// Placeholders and placeholders-with-default.
    pub fn feedable_inputs(&self) -> Vec<InputSpec> {
        feedable_inputs(&self.def)
    }

    /// What to fetch when no outputs are named: the signature's outputs, else every output
    /// tensor of the nodes tf-graph detects as outputs.
    pub fn default_outputs(&self) -> Result<Vec<String>> {
        let outs = if self.signature_outputs.is_empty() {
            candidate_outputs(&self.def, self.model.graph())?
        } else {
            self.signature_outputs.clone()
        };
        if outs.is_empty() {
            return Err(Error::invalid(format!(
                "{}: no outputs found; name them with --outputs",
                self.source
            )));
        }
        Ok(outs)
    }
}

/// One value to feed.
#[derive(Debug, Clone)]
pub struct Feed {
    /// Tensor name as given/derived (`x`, `x:0`, ...).
    pub name: String,
    pub value: HostTensor,
    /// "random", or the file it came from.
    pub source: String,
}

/// Node name of a tensor name (`x:0` -> `x`), tolerating malformed names.
fn node_name(tensor: &str) -> &str {
    split_tensor_name(tensor).map(|(n, _)| n).unwrap_or(tensor)
}

/// Compute the feeds for the union of the placeholders of `graphs` (first graph wins on
/// conflicting specs): explicit `--input` files first, then npz arrays naming a placeholder,
/// then seeded random values.
pub fn prepare_feeds(
    session: &mut Session,
    opts: &InputOptions,
    graphs: &[&LoadedGraph],
) -> Result<Vec<Feed>> {
    // Placeholders by node name, in graph order.
    let mut specs: Vec<InputSpec> = Vec::new();
    for g in graphs {
        for p in g.feedable_inputs() {
            if !specs.iter().any(|s| s.name == p.name) {
                specs.push(p);
            }
        }
    }
    let spec_of = |node: &str| specs.iter().find(|s| s.name == node);
    let shapes: BTreeMap<&str, &Vec<u64>> =
        opts.shapes.iter().map(|(n, s)| (node_name(n), s)).collect();
    for name in shapes.keys() {
        if spec_of(name).is_none() {
            return Err(Error::invalid(format!("--shape {name}: no placeholder of that name")));
        }
    }

    let mut feeds: Vec<Feed> = Vec::new();
    let mut fed_nodes: BTreeSet<String> = BTreeSet::new();
    let mut add =
        |feeds: &mut Vec<Feed>, name: String, value: HostTensor, source: String| -> Result<()> {
            let node = node_name(&name).to_string();
            if !fed_nodes.insert(canonical_tensor_name(&name)) {
                return Ok(()); // an earlier source already provides it
            }
            let value = match spec_of(&node) {
                Some(spec) => conform(spec, value, &source)?,
                None => value,
            };
            feeds.push(Feed { name, value, source });
            Ok(())
        };

    for (name, path) in &opts.inputs {
        let exists = graphs.iter().any(|g| g.model.graph().has_operation(node_name(name)));
        if !exists {
            return Err(Error::TensorNotFound { name: name.clone(), graph: graph_labels(graphs) });
        }
        let t = read_npy(path)?;
        add(&mut feeds, name.clone(), t, path.display().to_string())?;
    }

    if let Some(npz) = &opts.inputs_npz {
        let arrays = read_npz(npz)?;
        let mut used = 0usize;
        for (key, t) in arrays {
            let Some(name) = npz_key_to_placeholder(&key, &specs) else {
                continue;
            };
            used += 1;
            add(&mut feeds, name, t, npz.display().to_string())?;
        }
        if used == 0 && !specs.is_empty() {
            session.warn(format!(
                "{}: no array is named after a placeholder ({}); generating inputs",
                npz.display(),
                specs.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
    }

    for spec in &specs {
        if spec.optional || fed_nodes.contains(&format!("{}:0", spec.name)) {
            continue;
        }
        let dtype = spec.dtype()?;
        let shape = match shapes.get(spec.name.as_str()) {
            Some(s) => (*s).clone(),
            None => spec.concrete_shape(opts.batch)?,
        };
        let mut rng = Rng::for_name(opts.seed, &spec.name);
        let t = random_tensor(dtype, shape, &mut rng)?;
        feeds.push(Feed {
            name: spec.name.clone(),
            value: t,
            source: format!("random (seed {})", opts.seed),
        });
        fed_nodes.insert(format!("{}:0", spec.name));
    }
    Ok(feeds)
}

/// Tensor names an npz key may stand for, most literal first: the key itself (`x`, `x:0`),
/// `node__port` as `node:port` (the fixtures' convention, since `:` is awkward in file names),
/// and the same without an `input:`/`inputs/`/`output:`/`outputs/`-style prefix.
pub fn npz_key_tensor_names(key: &str) -> Vec<String> {
    let mut bases = vec![key];
    for prefix in [
        "input:", "inputs:", "inputs/", "input/", "in:", "output:", "outputs:", "outputs/",
        "output/", "out:",
    ] {
        if let Some(rest) = key.strip_prefix(prefix) {
            bases.push(rest);
        }
    }
    let mut out: Vec<String> = Vec::new();
    for b in bases {
        let mut add = |n: String| {
            if !out.contains(&n) {
                out.push(n);
            }
        };
        add(canonical_tensor_name(b));
        if let Some((node, port)) = b.rsplit_once("__") {
            if !node.is_empty() && !port.is_empty() && port.bytes().all(|c| c.is_ascii_digit()) {
                add(format!("{node}:{port}"));
            }
        }
    }
    out
}

/// Map an npz key to the name of a placeholder (see [`npz_key_tensor_names`]).
pub(crate) fn npz_key_to_placeholder(key: &str, specs: &[InputSpec]) -> Option<String> {
    npz_key_tensor_names(key).into_iter().find(
        |c| matches!(split_tensor_name(c), Ok((node, 0)) if specs.iter().any(|s| s.name == node)),
    )
}

/// Convert a given value to the placeholder's dtype and check its shape against the known dims.
fn conform(spec: &InputSpec, value: HostTensor, source: &str) -> Result<HostTensor> {
    let ctx = |e: Error| Error::invalid(format!("input '{}' from {source}: {e}", spec.name));
    let value = value.cast(spec.dtype()?).map_err(ctx)?;
    if let Some(dims) = &spec.shape {
        let fits = dims.len() == value.shape.len()
            && dims.iter().zip(&value.shape).all(|(&d, &v)| d < 0 || d as u64 == v);
        if !fits {
            return Err(Error::invalid(format!(
                "input '{}' from {source}: shape {} does not match placeholder shape {}",
                spec.name,
                fmt_shape(&value.shape),
                spec.shape_string()
            )));
        }
    }
    Ok(value)
}

fn graph_labels(graphs: &[&LoadedGraph]) -> String {
    graphs.iter().map(|g| g.model.label().to_string()).collect::<Vec<_>>().join(" or ")
}

/// Feeds of one graph: those whose node exists in it.
fn feeds_for<'a>(g: &LoadedGraph, feeds: &'a [Feed]) -> Vec<(&'a str, &'a HostTensor)> {
    feeds
        .iter()
        .filter(|f| g.model.graph().has_operation(node_name(&f.name)))
        .map(|f| (f.name.as_str(), &f.value))
        .collect()
}

/// The summary lines on stderr (unless `--quiet`) and the report entry of the inputs.
fn report_inputs(quiet: bool, feeds: &[Feed]) -> serde_json::Value {
    let mut entries = Vec::new();
    for f in feeds {
        if !quiet {
            eprintln!("input  {}: {} <- {}", f.name, f.value.summary(), f.source);
        }
        entries.push(json!({
            "name": f.name,
            "dtype": f.value.dtype().name(),
            "shape": f.value.shape,
            "source": f.source,
        }));
    }
    serde_json::Value::Array(entries)
}

/// What `tf-run` computed.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Fetched outputs by canonical tensor name, then (with `save_inputs`) the fed inputs.
    pub arrays: Vec<(String, HostTensor)>,
}

impl RunResult {
    /// The arrays as an npz file.
    pub fn to_npz(&self) -> Result<Vec<u8>> {
        let mut buf = std::io::Cursor::new(Vec::new());
        write_npz_to(&mut buf, &self.arrays).map_err(|e| Error::io("<npz>", e))?;
        Ok(buf.into_inner())
    }
}

/// `tf-run`: run a graph on the prepared feeds; prints a summary line per input and output on
/// stderr (unless `quiet`) and records them in the report under `changes.run`.
pub fn run_graph(
    session: &mut Session,
    quiet: bool,
    g: &LoadedGraph,
    opts: &RunOptions,
) -> Result<RunResult> {
    let feeds = prepare_feeds(session, &opts.input, &[g])?;
    let outputs = if opts.outputs.is_empty() { g.default_outputs()? } else { opts.outputs.clone() };
    let fetch: Vec<&str> = outputs.iter().map(String::as_str).collect();
    let values = g.model.run(&feeds_for(g, &feeds), &fetch)?;
    let inputs = report_inputs(quiet, &feeds);
    let mut arrays: Vec<(String, HostTensor)> = Vec::new();
    let mut entries = Vec::new();
    for (name, v) in outputs.iter().zip(values) {
        if !quiet {
            eprintln!("output {}: {}", name, v.summary());
        }
        let key = canonical_tensor_name(name);
        entries.push(json!({"name": key, "dtype": v.dtype().name(), "shape": v.shape}));
        arrays.push((key, v));
    }
    session.report.change("run", json!({"inputs": inputs, "outputs": entries}));
    if opts.save_inputs {
        for f in &feeds {
            let key = canonical_tensor_name(&f.name);
            if !arrays.iter().any(|(k, _)| *k == key) {
                arrays.push((key, f.value.clone()));
            }
        }
    }
    Ok(RunResult { arrays })
}

/// Refuses to write binary data to a terminal (stdout, or `-o` naming one) without `--force`,
/// as the other tools do for binary GraphDefs.
pub fn check_binary_destination(output: Option<&std::path::Path>, force: bool) -> Result<()> {
    let to_stdout = output.is_none_or(|p| p.as_os_str() == "-");
    if !force && to_stdout && std::io::stdout().is_terminal() {
        return Err(Error::invalid(
            "refusing to write an npz file to a terminal; use -o FILE or --force",
        ));
    }
    Ok(())
}

/// Result of `tf-diff`.
#[derive(Debug, Clone)]
pub struct DiffReport {
    /// Where graphs A and B came from.
    pub a: String,
    pub b: String,
    pub comparisons: Vec<Comparison>,
}

impl DiffReport {
    pub fn ok(&self) -> bool {
        self.comparisons.iter().all(Comparison::ok)
    }

    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "a": self.a,
            "b": self.b,
            "ok": self.ok(),
            "outputs": self.comparisons.iter().map(Comparison::to_json).collect::<Vec<_>>(),
        })
    }
}

/// `tf-diff`: run both graphs on the same inputs and compare the outputs; records the
/// comparison in the report under `changes.diff`.
pub fn diff_graphs(
    session: &mut Session,
    quiet: bool,
    a: &LoadedGraph,
    b: &LoadedGraph,
    opts: &DiffOptions,
) -> Result<DiffReport> {
    let pairs: Vec<(String, String)> = if opts.outputs.is_empty() {
        a.default_outputs()?.into_iter().map(|n| (n.clone(), n)).collect()
    } else {
        opts.outputs.clone()
    };
    // Check the names up front so the error names the graph that lacks the tensor.
    for (na, nb) in &pairs {
        check_tensor(a, na)?;
        check_tensor(b, nb)?;
    }
    let feeds = prepare_feeds(session, &opts.input, &[a, b])?;
    let fetch_a: Vec<&str> = pairs.iter().map(|(x, _)| x.as_str()).collect();
    let fetch_b: Vec<&str> = pairs.iter().map(|(_, y)| y.as_str()).collect();
    let va = a.model.run(&feeds_for(a, &feeds), &fetch_a)?;
    let vb = b.model.run(&feeds_for(b, &feeds), &fetch_b)?;
    report_inputs(quiet, &feeds);
    let comparisons = pairs
        .iter()
        .zip(va.iter().zip(&vb))
        .map(|((na, nb), (x, y))| {
            compare(&canonical_tensor_name(na), &canonical_tensor_name(nb), x, y, opts.tolerance)
        })
        .collect();
    let report = DiffReport { a: a.source.clone(), b: b.source.clone(), comparisons };
    session.report.change("diff", report.to_json());
    Ok(report)
}

fn check_tensor(g: &LoadedGraph, name: &str) -> Result<()> {
    let (node, port) = split_tensor_name(name)?;
    match g.model.graph().num_outputs(node) {
        None => Err(Error::TensorNotFound {
            name: name.to_string(),
            graph: g.model.label().to_string(),
        }),
        Some(n) if port >= n => Err(Error::invalid(format!(
            "tensor '{name}' not found in {}: node '{node}' has {n} output(s)",
            g.model.label()
        ))),
        Some(_) => Ok(()),
    }
}
