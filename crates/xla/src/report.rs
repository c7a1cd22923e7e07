//! The human report printed on stderr.

use std::fmt::Write;

use crate::XlaReport;

impl XlaReport {
    /// A short human-readable report: the verdict, one block per finding (with the error
    /// line TensorFlow would print), and the compilable clusters.
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        let dev = self.device.jit_name();
        if self.compilable {
            let _ = writeln!(
                s,
                "compiles on {dev}: {} node(s) checked, {} folded, {} function(s)",
                self.nodes_checked, self.nodes_folded, self.functions_checked
            );
        } else {
            let _ = writeln!(
                s,
                "does NOT compile on {dev}: {} finding(s) in {} node(s) checked, {} function(s)",
                self.findings.len(),
                self.nodes_checked,
                self.functions_checked
            );
        }
        const SHOWN: usize = 25;
        for f in self.findings.iter().take(SHOWN) {
            let place =
                f.function.as_ref().map(|fun| format!(" in function {fun}")).unwrap_or_default();
            let kind = serde_json::to_value(f.kind).ok();
            let kind = kind.as_ref().and_then(|k| k.as_str()).unwrap_or("?");
            let _ = writeln!(s, "  {} ({}){place}: [{kind}] {}", f.node, f.op, f.reason);
            let first = f.tf_error.lines().next().unwrap_or_default();
            let _ = writeln!(s, "    TF: {first}");
        }
        if self.findings.len() > SHOWN {
            let mut kinds = std::collections::BTreeMap::<String, usize>::new();
            for f in &self.findings[SHOWN..] {
                let k = serde_json::to_value(f.kind).ok();
                *kinds
                    .entry(k.and_then(|k| k.as_str().map(str::to_string)).unwrap_or_default())
                    .or_default() += 1;
            }
            let list: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
            let _ = writeln!(
                s,
                "  ... and {} more ({}); see --report for all",
                self.findings.len() - SHOWN,
                list.join(", ")
            );
        }
        if !self.clusters.is_empty() {
            let sizes: Vec<String> =
                self.clusters.iter().take(10).map(|c| c.size.to_string()).collect();
            let more = if self.clusters.len() > 10 { ", ..." } else { "" };
            let _ = writeln!(
                s,
                "{} compilable cluster(s), sizes {}{more}",
                self.clusters.len(),
                sizes.join(", ")
            );
        }
        s
    }
}
