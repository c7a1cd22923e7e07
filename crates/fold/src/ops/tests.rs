//! The op table is consistent: sorted and unique, every entry an op TensorFlow's registry
//! knows, every kernel listed by `supported_ops`, every field used where it means something.

use std::collections::HashSet;

use tf_ops::Registry;

use super::{all, get, kind, Kind};
use crate::eval;

#[test]
fn names_are_sorted_unique_and_found() {
    let ops = all();
    // Not vacuous: the table holds the native evaluator and shape inference.
    assert!(ops.len() > 120, "{} entries", ops.len());
    for w in ops.windows(2) {
        assert!(w[0].name < w[1].name, "'{}' must come before '{}'", w[1].name, w[0].name);
    }
    for e in ops {
        let found = get(e.name).map(|f| f.name);
        assert_eq!(found, Some(e.name), "lookup of '{}'", e.name);
    }
    for missing in ["", "add", "Zzz", "Conv3D", "_Send", "MatMulX", "Abs "] {
        assert!(get(missing).is_none(), "'{missing}' has no entry");
    }
    assert_eq!(kind("NoSuchOp"), Kind::Compute);
    assert_eq!(kind("Placeholder"), Kind::Feed);
    assert_eq!(kind("Const"), Kind::Const);
}

#[test]
fn every_entry_is_a_registered_op_and_says_something() {
    let reg = Registry::global();
    let mut checked = 0;
    for e in all() {
        assert!(reg.contains(e.name), "'{}' is not in the tf-ops registry", e.name);
        let has_rule = e.kernel.is_some()
            || e.shape.is_some()
            || e.outputs.is_some()
            || e.elements.is_some()
            || e.kind != Kind::Compute;
        assert!(
            has_rule,
            "'{}' has an entry but neither a kernel, a shape rule nor a kind",
            e.name
        );
        // A view or a reduction length describes what evaluating costs: kernels only.
        if e.view || e.reduction.is_some() {
            assert!(e.kernel.is_some(), "'{}' is a view or has a reduction but no kernel", e.name);
        }
        // A kernel for an op that is never folded would never run.
        if e.kernel.is_some() {
            assert_eq!(reg.is_stateful(e.name), Some(false), "kernel of stateful '{}'", e.name);
            assert!(matches!(e.kind, Kind::Compute), "kernel of '{}' ({:?})", e.name, e.kind);
        }
        // Rules for the other outputs: ops with more than one output (or a variable number).
        if e.outputs.is_some() {
            let def = reg.get(e.name).unwrap();
            let variable = def
                .output_arg
                .iter()
                .any(|a| !a.number_attr.is_empty() || !a.type_list_attr.is_empty());
            assert!(def.output_arg.len() > 1 || variable, "'{}' has one output", e.name);
        }
        checked += 1;
    }
    assert_eq!(checked, all().len());
}

#[test]
fn supported_ops_are_exactly_the_kernels() {
    let supported = eval::supported_ops();
    assert!(supported.len() > 90, "{} kernels", supported.len());
    let with_kernel: Vec<&str> =
        all().iter().filter(|e| e.kernel.is_some()).map(|e| e.name).collect();
    assert_eq!(supported, with_kernel);
    let set: HashSet<&str> = supported.iter().copied().collect();
    assert_eq!(set.len(), supported.len(), "duplicates in supported_ops");
    for e in all() {
        assert_eq!(set.contains(e.name), e.kernel.is_some(), "'{}'", e.name);
        assert_eq!(eval::kernel(e.name).is_some(), e.kernel.is_some(), "'{}'", e.name);
    }
    // Ops the folder knows the shape of but cannot evaluate are not listed.
    for op in ["Conv2D", "Placeholder", "Const", "Switch", "Softmax"] {
        assert!(get(op).is_some_and(|e| e.shape.is_some()), "{op}");
        assert!(!set.contains(op), "{op} has no kernel");
    }
}
