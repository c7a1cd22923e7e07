//! The logic behind the `tf-run` and `tf-diff` binaries (which only parse arguments).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tf_proto::tensorflow::GraphDef;

use crate::compare::{compare, format_table, Comparison, Tolerance};
use crate::error::{one_line, Error, Result};
use crate::graph::{
    candidate_outputs, encode_graph_def, feedable_inputs, load_graph_def, InputSpec,
};
use crate::npy::{read_npy, read_npz, write_npz, write_npz_to};
use crate::random::{random_tensor, Rng};
use crate::tensor::{fmt_shape, HostTensor};
use crate::tf::{canonical_tensor_name, split_tensor_name, Model};

/// Exit code for "ran, but outputs differ beyond tolerance".
pub const EXIT_DIFFERENT: u8 = 1;
/// Exit code for errors (bad arguments, unreadable files, TensorFlow errors).
pub const EXIT_ERROR: u8 = 2;

/// Where the values of the graph inputs come from.
#[derive(Debug, Clone, Default)]
pub struct InputOptions {
    /// `--input NAME=FILE.npy` (any tensor may be fed this way, not only placeholders).
    pub inputs: Vec<(String, PathBuf)>,
    /// `--inputs FILE.npz`: arrays whose key names a placeholder (`x` or `x:0`) are fed.
    pub inputs_npz: Option<PathBuf>,
    /// `--shape NAME=D0,D1,...`: shape of a generated input (overrides the placeholder's).
    pub shapes: Vec<(String, Vec<u64>)>,
    /// Seed of generated inputs.
    pub seed: u64,
    /// Size of unknown leading dimensions of generated inputs.
    pub batch: u64,
}

/// Options of `tf-run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub graph: PathBuf,
    pub input: InputOptions,
    /// Tensors to fetch; empty: the graph's candidate outputs.
    pub outputs: Vec<String>,
    /// `-o FILE.npz` (`-` for standard output).
    pub out: Option<PathBuf>,
    /// Also write the fed inputs into the output npz.
    pub save_inputs: bool,
}

/// Options of `tf-diff`.
#[derive(Debug, Clone)]
pub struct DiffOptions {
    pub a: PathBuf,
    pub b: PathBuf,
    pub input: InputOptions,
    /// `(name in A, name in B)`; empty: A's candidate outputs, same names in B.
    pub outputs: Vec<(String, String)>,
    pub tolerance: Tolerance,
    pub json: bool,
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

/// A graph loaded from disk and opened in TensorFlow.
pub struct LoadedGraph {
    pub def: GraphDef,
    pub model: Model,
}

impl LoadedGraph {
    pub fn open(path: &Path, label: &str) -> Result<LoadedGraph> {
        let def = load_graph_def(path)?;
        let model = Model::load(&encode_graph_def(&def), label)?;
        Ok(LoadedGraph { def, model })
    }

    /// Placeholders and placeholders-with-default.
    pub fn feedable_inputs(&self) -> Vec<InputSpec> {
        feedable_inputs(&self.def)
    }

    pub fn candidate_outputs(&self) -> Vec<String> {
        candidate_outputs(&self.def, self.model.graph())
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
pub fn prepare_feeds(opts: &InputOptions, graphs: &[&LoadedGraph]) -> Result<Vec<Feed>> {
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
            eprintln!(
                "warning: {}: no array is named after a placeholder ({}); generating inputs",
                npz.display(),
                specs.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
            );
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
fn npz_key_to_placeholder(key: &str, specs: &[InputSpec]) -> Option<String> {
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

fn report_inputs(feeds: &[Feed]) {
    for f in feeds {
        eprintln!("input  {}: {} <- {}", f.name, f.value.summary(), f.source);
    }
}

/// `tf-run`: run a graph and return the fetched outputs (name, value), after printing a summary
/// line per input and output to stderr and writing the npz if asked.
pub fn run_graph(opts: &RunOptions) -> Result<Vec<(String, HostTensor)>> {
    let g = LoadedGraph::open(&opts.graph, &opts.graph.display().to_string())?;
    let feeds = prepare_feeds(&opts.input, &[&g])?;
    let outputs: Vec<String> = if opts.outputs.is_empty() {
        let c = g.candidate_outputs();
        if c.is_empty() {
            return Err(Error::invalid(format!(
                "{}: no candidate outputs found; name them with --output",
                opts.graph.display()
            )));
        }
        c
    } else {
        opts.outputs.clone()
    };
    let fetch: Vec<&str> = outputs.iter().map(String::as_str).collect();
    let values = g.model.run(&feeds_for(&g, &feeds), &fetch)?;
    report_inputs(&feeds);
    let mut result: Vec<(String, HostTensor)> = Vec::new();
    for (name, v) in outputs.iter().zip(values) {
        eprintln!("output {}: {}", name, v.summary());
        result.push((canonical_tensor_name(name), v));
    }
    if let Some(out) = &opts.out {
        let mut arrays = result.clone();
        if opts.save_inputs {
            for f in &feeds {
                let key = canonical_tensor_name(&f.name);
                if !arrays.iter().any(|(k, _)| *k == key) {
                    arrays.push((key, f.value.clone()));
                }
            }
        }
        if out.as_os_str() == "-" {
            let mut buf = std::io::Cursor::new(Vec::new());
            write_npz_to(&mut buf, &arrays).map_err(|e| Error::io("<stdout>", e))?;
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(buf.get_ref())
                .and_then(|_| stdout.flush())
                .map_err(|e| Error::io("<stdout>", e))?;
        } else {
            write_npz(out, &arrays)?;
        }
    }
    Ok(result)
}

/// Result of `tf-diff`.
#[derive(Debug, Clone)]
pub struct DiffReport {
    pub comparisons: Vec<Comparison>,
}

impl DiffReport {
    pub fn ok(&self) -> bool {
        self.comparisons.iter().all(Comparison::ok)
    }

    pub fn to_json(&self, opts: &DiffOptions) -> serde_json::Value {
        serde_json::json!({
            "a": opts.a.display().to_string(),
            "b": opts.b.display().to_string(),
            "ok": self.ok(),
            "outputs": self.comparisons.iter().map(Comparison::to_json).collect::<Vec<_>>(),
        })
    }
}

/// `tf-diff`: run both graphs on the same inputs and compare the outputs.
pub fn diff_graphs(opts: &DiffOptions) -> Result<DiffReport> {
    let a = LoadedGraph::open(&opts.a, &format!("graph A ({})", opts.a.display()))?;
    let b = LoadedGraph::open(&opts.b, &format!("graph B ({})", opts.b.display()))?;
    let pairs: Vec<(String, String)> = if opts.outputs.is_empty() {
        let c = a.candidate_outputs();
        if c.is_empty() {
            return Err(Error::invalid(format!(
                "{}: no candidate outputs found; name them with --output",
                opts.a.display()
            )));
        }
        c.into_iter().map(|n| (n.clone(), n)).collect()
    } else {
        opts.outputs.clone()
    };
    // Check the names up front so the error names the graph that lacks the tensor.
    for (na, nb) in &pairs {
        check_tensor(&a, na)?;
        check_tensor(&b, nb)?;
    }
    let feeds = prepare_feeds(&opts.input, &[&a, &b])?;
    let fetch_a: Vec<&str> = pairs.iter().map(|(x, _)| x.as_str()).collect();
    let fetch_b: Vec<&str> = pairs.iter().map(|(_, y)| y.as_str()).collect();
    let va = a.model.run(&feeds_for(&a, &feeds), &fetch_a)?;
    let vb = b.model.run(&feeds_for(&b, &feeds), &fetch_b)?;
    if !opts.json {
        report_inputs(&feeds);
    }
    let comparisons = pairs
        .iter()
        .zip(va.iter().zip(&vb))
        .map(|((na, nb), (x, y))| {
            compare(&canonical_tensor_name(na), &canonical_tensor_name(nb), x, y, opts.tolerance)
        })
        .collect();
    Ok(DiffReport { comparisons })
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

/// Run a tool body: print errors (and panics) as one line on stderr and map them to exit 2.
pub fn main_guard(tool: &str, body: impl FnOnce() -> Result<ExitCode>) -> ExitCode {
    let tool_name = tool.to_string();
    std::panic::set_hook(Box::new(move |info| {
        let msg = if let Some(s) = info.payload().downcast_ref::<&str>() {
            s.to_string()
        } else if let Some(s) = info.payload().downcast_ref::<String>() {
            s.clone()
        } else {
            "panic".to_string()
        };
        let loc =
            info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!("{tool_name}: internal error: {}{loc}", one_line(&msg));
    }));
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            eprintln!("{tool}: error: {}", one_line(&e.to_string()));
            ExitCode::from(EXIT_ERROR)
        }
        Err(_) => ExitCode::from(EXIT_ERROR),
    }
}

/// Entry point of `tf-run` after argument parsing.
pub fn tf_run_main(opts: RunOptions) -> ExitCode {
    main_guard("tf-run", || {
        run_graph(&opts)?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Entry point of `tf-diff` after argument parsing: 0 all within tolerance, 1 beyond, 2 error.
pub fn tf_diff_main(opts: DiffOptions) -> ExitCode {
    main_guard("tf-diff", || {
        let report = diff_graphs(&opts)?;
        let mut stdout = std::io::stdout().lock();
        let text = if opts.json {
            let mut s = serde_json::to_string_pretty(&report.to_json(&opts))
                .map_err(|e| Error::invalid(e.to_string()))?;
            s.push('\n');
            s
        } else {
            format_table(&report.comparisons)
        };
        stdout
            .write_all(text.as_bytes())
            .and_then(|_| stdout.flush())
            .map_err(|e| Error::io("<stdout>", e))?;
        Ok(if report.ok() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_DIFFERENT) })
    })
}
