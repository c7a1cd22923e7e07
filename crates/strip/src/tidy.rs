//! The last pass: devices and colocations, `_output_shapes`, default attributes, and the
//! library functions nothing calls any more.

use std::collections::{BTreeSet, HashSet};

use tf_ops::Registry;
use tf_proto::tensorflow::{attr_value, AttrValue, FunctionDef, NodeDef};

use crate::{DefaultAttrs, StripConfig, StripReport};

pub(crate) fn tidy(g: &mut tf_graph::Graph, cfg: &StripConfig, report: &mut StripReport) {
    let registry = Registry::global();
    let live: HashSet<String> = g.nodes().map(|(_, n)| n.name.clone()).collect();
    for id in g.ids() {
        let mut guard = g.node_mut(id);
        let n: &mut tf_proto::tensorflow::NodeDef = &mut guard;
        if !cfg.keep_devices {
            if !n.device.is_empty() {
                n.device.clear();
                report.devices_cleared += 1;
            }
            if let Some(a) = n.attr.remove("_class") {
                report.colocations_removed += colocations(&a).count().max(1);
            }
        } else {
            report.colocations_removed += drop_dangling_colocations(n, &live);
        }
        if cfg.clear_output_shapes && n.attr.remove("_output_shapes").is_some() {
            report.output_shapes_cleared += 1;
        }
        match cfg.default_attrs {
            DefaultAttrs::Keep => {}
            DefaultAttrs::Strip => report.default_attrs_stripped += registry.strip_default_attrs(n),
            DefaultAttrs::Add => report.default_attrs_added += registry.add_default_attrs(n),
        }
    }
    prune_library(g, report);
    if cfg.default_attrs != DefaultAttrs::Keep {
        for f in g.library.iter_mut().flat_map(|l| l.function.iter_mut()) {
            for n in &mut f.node_def {
                match cfg.default_attrs {
                    DefaultAttrs::Strip => {
                        report.default_attrs_stripped += registry.strip_default_attrs(n)
                    }
                    _ => report.default_attrs_added += registry.add_default_attrs(n),
                }
            }
        }
    }
}

fn colocations(a: &AttrValue) -> impl Iterator<Item = &[u8]> {
    let list = match &a.value {
        Some(attr_value::Value::List(l)) => l.s.as_slice(),
        _ => &[],
    };
    list.iter().map(Vec::as_slice).filter(|s| s.starts_with(b"loc:@"))
}

/// Removes `_class` entries `loc:@x` whose `x` is gone (TF refuses to import them), and the attribute when nothing is left; returns how many entries went.
fn drop_dangling_colocations(n: &mut NodeDef, live: &HashSet<String>) -> usize {
    let Some(AttrValue { value: Some(attr_value::Value::List(l)) }) = n.attr.get_mut("_class")
    else {
        return 0;
    };
    let before = l.s.len();
    l.s.retain(|s| match s.strip_prefix(b"loc:@") {
        Some(target) => std::str::from_utf8(target).is_ok_and(|t| live.contains(t)),
        None => true,
    });
    let removed = before - l.s.len();
    if l.s.is_empty() && removed > 0 {
        n.attr.remove("_class");
    }
    removed
}

/// Function names an attribute value refers to (`func`, `list(func)`, nested).
fn attr_functions<'a>(a: &'a AttrValue, out: &mut Vec<&'a str>) {
    match &a.value {
        Some(attr_value::Value::Func(f)) => {
            out.push(&f.name);
            for v in f.attr.values() {
                attr_functions(v, out);
            }
        }
        Some(attr_value::Value::List(l)) => {
            for f in &l.func {
                out.push(&f.name);
                for v in f.attr.values() {
                    attr_functions(v, out);
                }
            }
        }
        _ => {}
    }
}

fn node_functions<'a>(n: &'a NodeDef, out: &mut Vec<&'a str>) {
    out.push(&n.op);
    for a in n.attr.values() {
        attr_functions(a, out);
    }
}

fn api_implements(f: &FunctionDef) -> Option<&[u8]> {
    match f.attr.get("api_implements").and_then(|a| a.value.as_ref()) {
        Some(attr_value::Value::S(s)) => Some(s),
        _ => None,
    }
}

/// Drops the library functions no node calls any more (directly, through a function-valued
/// attribute, or from another kept function), with their gradient entries. A function that
/// implements the same `api_implements` interface as a kept one stays too: Grappler may swap
/// it in (Keras' LSTM has a CPU and a cuDNN implementation).
fn prune_library(g: &mut tf_graph::Graph, report: &mut StripReport) {
    let Some(lib) = &g.library else { return };
    if lib.function.is_empty() {
        return;
    }
    let by_name: std::collections::HashMap<&str, &FunctionDef> = lib
        .function
        .iter()
        .filter_map(|f| f.signature.as_ref().map(|s| (s.name.as_str(), f)))
        .collect();
    let mut kept: BTreeSet<&str> = BTreeSet::new();
    let mut stack: Vec<&str> = Vec::new();
    for (_, n) in g.nodes() {
        node_functions(n, &mut stack);
    }
    let mut interfaces: HashSet<&[u8]> = HashSet::new();
    loop {
        while let Some(name) = stack.pop() {
            let Some(f) = by_name.get(name) else { continue };
            if !kept.insert(name) {
                continue;
            }
            if let Some(api) = api_implements(f) {
                interfaces.insert(api);
            }
            for n in &f.node_def {
                node_functions(n, &mut stack);
            }
            for a in f.attr.values() {
                attr_functions(a, &mut stack);
            }
            for g in lib.gradient.iter().filter(|gd| gd.function_name == name) {
                stack.push(&g.gradient_func);
            }
        }
        // Alternative implementations of a kept interface.
        for (name, f) in &by_name {
            if !kept.contains(name) && api_implements(f).is_some_and(|a| interfaces.contains(a)) {
                stack.push(name);
            }
        }
        if stack.is_empty() {
            break;
        }
    }
    if kept.len() == by_name.len() {
        return;
    }
    let kept: HashSet<String> = kept.into_iter().map(str::to_string).collect();
    let lib = g.library.as_mut().expect("checked above");
    let mut removed = Vec::new();
    lib.function.retain(|f| {
        let name = f.signature.as_ref().map_or("", |s| s.name.as_str());
        let keep = kept.contains(name);
        if !keep {
            removed.push(name.to_string());
        }
        keep
    });
    lib.gradient.retain(|gd| kept.contains(&gd.function_name));
    report.functions_removed = removed;
}
