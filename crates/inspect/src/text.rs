//! The human-readable rendering of a [`Summary`].

use std::fmt::Write;

use crate::{Summary, TensorDesc};

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn tensor_line(t: &TensorDesc) -> String {
    let mut s = t.name.clone();
    if !t.op.is_empty() {
        let _ = write!(s, " ({})", t.op);
    }
    if let Some(d) = &t.dtype {
        let _ = write!(s, " {d}");
    }
    if let Some(sh) = &t.shape {
        let _ = write!(s, " {sh}");
    }
    s
}

/// Renders the summary as text; `top` limits the op histogram (0 = all).
pub fn render_text(s: &Summary, top: usize) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{}: {} ({}), {}", s.source, s.format, s.encoding, human_bytes(s.bytes));
    if let Some(p) = s.producer {
        let _ = writeln!(o, "producer {p}, min_consumer {}", s.min_consumer.unwrap_or(0));
    }
    let _ = writeln!(
        o,
        "{} nodes, {} data edges, {} control edges, {} functions",
        s.nodes,
        s.data_edges,
        s.control_edges,
        s.functions.len()
    );
    for (title, list) in [("inputs", &s.inputs), ("outputs", &s.outputs)] {
        let _ = writeln!(o, "\n{} candidate {title}:", list.len());
        for t in list {
            let _ = writeln!(o, "  {}", tensor_line(t));
        }
    }
    if !s.marked_outputs.is_empty() {
        let _ = writeln!(
            o,
            "\noutputs chosen by an earlier stage (kept by later ones): {}",
            s.marked_outputs.join(", ")
        );
    }
    if !s.parameters.is_empty() {
        let total = s.parameters.values().fold(0u64, |a, p| a.saturating_add(p.bytes));
        let _ = writeln!(
            o,
            "\nparameters: {} float elements, {} in Consts",
            s.float_parameters,
            human_bytes(total)
        );
        for (d, p) in &s.parameters {
            let _ = writeln!(
                o,
                "  {d:<10} {:>6} tensors {:>12} elements {:>10}",
                p.tensors,
                p.elements,
                human_bytes(p.bytes)
            );
        }
    }
    if !s.variables.is_empty() {
        let _ = writeln!(o, "\n{} variables:", s.variables.len());
        for v in &s.variables {
            let _ = writeln!(o, "  {} ({}) {} {}", v.name, v.op, v.dtype, v.shape);
        }
    }
    let mut hist: Vec<(&String, &usize)> = s.ops.iter().collect();
    hist.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let shown = if top == 0 { hist.len() } else { top.min(hist.len()) };
    let _ = writeln!(o, "\nops ({} distinct):", hist.len());
    for (op, n) in &hist[..shown] {
        let _ = writeln!(o, "  {n:>7} {op}");
    }
    if shown < hist.len() {
        let _ = writeln!(o, "  ... {} more (--top 0 lists all)", hist.len() - shown);
    }
    if !s.functions.is_empty() {
        let fops: usize = s.function_ops.values().sum();
        let _ = writeln!(o, "\nfunctions ({} nodes in bodies):", fops);
        for f in &s.functions {
            let _ = writeln!(
                o,
                "  {} ({} nodes, {} in, {} out, {} callers)",
                f.name, f.nodes, f.inputs, f.outputs, f.callers
            );
        }
    }
    if !s.control_flow.is_empty() {
        let cf: Vec<String> = s.control_flow.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(o, "\ncontrol flow: {}", cf.join(", "));
    }
    if !s.unknown_ops.is_empty() {
        let _ = writeln!(o, "\nops not in TensorFlow 2.21: {}", s.unknown_ops.join(", "));
    }
    if !s.devices.is_empty() {
        let d: Vec<String> = s.devices.iter().map(|(k, v)| format!("{k} ({v})")).collect();
        let _ = writeln!(o, "\ndevices: {}", d.join(", "));
    }
    if !s.tag_sets.is_empty() {
        let t: Vec<String> = s.tag_sets.iter().map(|t| format!("'{}'", t.join(","))).collect();
        let _ = writeln!(o, "\ntag sets: {}", t.join(", "));
    }
    for sig in &s.signatures {
        let _ = writeln!(o, "\nsignature '{}' ({}):", sig.key, sig.method);
        for (k, t) in &sig.inputs {
            let _ = writeln!(o, "  input  {k}: {}", tensor_line(t));
        }
        for (k, t) in &sig.outputs {
            let _ = writeln!(o, "  output {k}: {}", tensor_line(t));
        }
    }
    o
}
