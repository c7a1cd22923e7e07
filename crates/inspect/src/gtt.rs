//! `tf-inspect --gtt`: the summary the Graph Transform Tool's `summarize_graph` printed, line
//! for line, so scripts that parse it keep working.
//!
//! Inputs are the `Placeholder`s, variables the `Variable`/`VariableV2` nodes, outputs the
//! nodes nothing reads that are not `Const`, `Assign`, `NoOp` or `Placeholder`; parameters are
//! the element counts of `Const` values (from their shapes); the op histogram includes the
//! ops inside library functions. Ops with equal counts are listed by name (summarize_graph's
//! order among them was unspecified).

use std::collections::{BTreeMap, HashSet};

use tf_graph::Input;
use tf_proto::tensorflow::{attr_value, GraphDef, NodeDef, TensorShapeProto};
use tf_tensor::dtype;

/// TensorFlow's `DataTypeString`: `float`, `int32`, `half`, `float_ref`...
fn dtype_string(t: i32) -> String {
    if t == 0 {
        return "INVALID".into();
    }
    let name = dtype::enum_name(t);
    match name.strip_prefix("DT_") {
        Some(n) if n.parse::<i64>().is_err() => n.to_ascii_lowercase(),
        _ => format!("unknown dtype enum ({t})"),
    }
}

/// `PartialTensorShape::DebugString`: `[?,224,224,3]`, `[]`, `<unknown>`.
fn shape_string(s: &TensorShapeProto) -> String {
    if s.unknown_rank {
        return "<unknown>".into();
    }
    let dims: Vec<String> = s
        .dim
        .iter()
        .map(|d| if d.size < 0 { "?".to_string() } else { d.size.to_string() })
        .collect();
    format!("[{}]", dims.join(","))
}

fn dtype_of(n: &NodeDef) -> i32 {
    match n.attr.get("dtype").and_then(|a| a.value.as_ref()) {
        Some(attr_value::Value::Type(t)) => *t,
        _ => 0,
    }
}

fn node_info(n: &NodeDef) -> String {
    let shape = n.attr_opt_shape("shape").map_or_else(|| "None".to_string(), shape_string);
    let t = dtype_of(n);
    format!("(name={}, type={}({t}), shape={shape}) ", n.name, dtype_string(t))
}

/// TensorFlow's `strings::HumanReadableNum`: `950`, `1.50k`, `23.53M`.
fn human(n: i64) -> String {
    if n.abs() < 1000 {
        return n.to_string();
    }
    let mut v = n as f64;
    let mut unit = ' ';
    for u in ['k', 'M', 'B', 'T', 'Q'] {
        if v.abs() < 1000.0 {
            break;
        }
        v /= 1000.0;
        unit = u;
    }
    format!("{v:.2}{unit}")
}

/// The text summarize_graph printed for `graph`, read from `path`. A graph with inputs naming
/// missing nodes is an error (summarize_graph failed on it too), listing them.
pub fn render_gtt(graph: &GraphDef, path: &str) -> Result<String, String> {
    let mut out = String::new();
    let placeholders: Vec<&NodeDef> = graph.node.iter().filter(|n| n.op == "Placeholder").collect();
    let variables: Vec<&NodeDef> =
        graph.node.iter().filter(|n| matches!(n.op.as_str(), "Variable" | "VariableV2")).collect();
    if placeholders.is_empty() {
        out += "No inputs spotted.\n";
    } else {
        out += &format!("Found {} possible inputs: ", placeholders.len());
        placeholders.iter().for_each(|n| out += &node_info(n));
        out += "\n";
    }
    if variables.is_empty() {
        out += "No variables spotted.\n";
    } else {
        out += &format!("Found {} variables: ", variables.len());
        variables.iter().for_each(|n| out += &node_info(n));
        out += "\n";
    }
    let read: HashSet<&str> =
        graph.node.iter().flat_map(|n| n.input.iter().map(|s| Input::parse(s).node())).collect();
    let outputs: Vec<&NodeDef> = graph
        .node
        .iter()
        .filter(|n| !read.contains(n.name.as_str()))
        .filter(|n| !matches!(n.op.as_str(), "Const" | "Assign" | "NoOp" | "Placeholder"))
        .collect();
    if outputs.is_empty() {
        out += "No outputs spotted.\n";
    } else {
        out += &format!("Found {} possible outputs: ", outputs.len());
        outputs.iter().for_each(|n| out += &format!("(name={}, op={}) ", n.name, n.op));
        out += "\n";
    }
    let (mut consts, mut vars, mut control) = (0i64, 0i64, 0usize);
    let mut devices: BTreeMap<&str, usize> = BTreeMap::new();
    for n in &graph.node {
        control += n.input.iter().filter(|s| s.starts_with('^')).count();
        if !n.device.is_empty() {
            *devices.entry(&n.device).or_default() += 1;
        }
        if matches!(n.op.as_str(), "Const" | "Variable" | "VariableV2") {
            let count = n.attr_opt_tensor("value").and_then(|t| {
                let dims: Vec<i64> = t
                    .tensor_shape
                    .as_ref()
                    .map(|s| s.dim.iter().map(|d| d.size).collect())
                    .unwrap_or_default();
                tf_tensor::num_elements(&dims)
            });
            let count = count.map_or(0, |c| i64::try_from(c).unwrap_or(i64::MAX));
            if n.op == "Const" {
                consts = consts.saturating_add(count);
            } else {
                vars = vars.saturating_add(count);
            }
        }
    }
    out += &format!(
        "Found {consts} ({}) const parameters, {vars} ({}) variable parameters, and {control} \
         control_edges\n",
        human(consts),
        human(vars)
    );
    // summarize_graph ends these without a newline; kept, since parsers saw it that way.
    for (d, c) in &devices {
        out += &format!("{c} nodes assigned to device '{d}'");
    }
    let names: HashSet<&str> = graph.node.iter().map(|n| n.name.as_str()).collect();
    let invalid: Vec<String> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter().map(move |s| (n, s)))
        .filter(|(_, s)| !names.contains(Input::parse(s).node()))
        .map(|(n, s)| format!("input '{s}' of node '{}'", n.name))
        .collect();
    if !invalid.is_empty() {
        return Err(format!(
            "invalid graph with inputs referring to nonexistent nodes: {}",
            invalid.join(", ")
        ));
    }
    let mut ops: BTreeMap<&str, usize> = BTreeMap::new();
    let fn_nodes = graph.library.iter().flat_map(|l| &l.function).flat_map(|f| &f.node_def);
    for n in graph.node.iter().chain(fn_nodes) {
        *ops.entry(&n.op).or_default() += 1;
    }
    let mut ops: Vec<(&str, usize)> = ops.into_iter().collect();
    ops.sort_by_key(|o| std::cmp::Reverse(o.1));
    let ops: Vec<String> = ops.iter().map(|(o, c)| format!("{c} {o}")).collect();
    out += &format!("Op types used: {}\n", ops.join(", "));
    let inputs: Vec<&NodeDef> = placeholders.iter().chain(&variables).copied().collect();
    let layer = |f: &dyn Fn(&NodeDef) -> String, sep: &str| {
        inputs.iter().map(|n| f(n)).collect::<Vec<_>>().join(sep)
    };
    let shapes = layer(
        &|n| match n.attr_opt_shape("shape") {
            Some(s) if !s.unknown_rank => {
                s.dim.iter().map(|d| d.size.to_string()).collect::<Vec<_>>().join(",")
            }
            _ => String::new(),
        },
        ":",
    );
    out += "To use with tensorflow/tools/benchmark:benchmark_model try these arguments:\n";
    out += &format!(
        "bazel run tensorflow/tools/benchmark:benchmark_model -- --graph={path} --show_flops \
         --input_layer={} --input_layer_type={} --input_layer_shape={shapes} --output_layer={}\n",
        layer(&|n| n.name.clone(), ","),
        layer(&|n| dtype_string(dtype_of(n)), ","),
        outputs.iter().map(|n| n.name.as_str()).collect::<Vec<_>>().join(",")
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(dtype_string(1), "float");
        assert_eq!(dtype_string(3), "int32");
        assert_eq!(dtype_string(19), "half");
        assert_eq!(dtype_string(101), "float_ref");
        assert_eq!(human(950), "950");
        assert_eq!(human(23_534_592), "23.53M");
        assert_eq!(human(1500), "1.50k");
    }
}
