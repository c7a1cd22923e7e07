//! Which library functions a graph refers to, and dropping the ones nothing refers to.

use std::collections::{HashMap, HashSet};

use tf_proto::tensorflow::{attr_value, AttrValue, FunctionDef, NameAttrList, NodeDef};

use crate::Graph;

/// Appends the function names an attribute value refers to: a `func` value, each function of
/// a `list(func)`, and, at any depth, the functions named in those functions' own attributes
/// (a function handed to a called function). Iterative: the nesting depth comes from the
/// input.
pub fn attr_functions<'a>(a: &'a AttrValue, out: &mut Vec<&'a str>) {
    let mut stack: Vec<&'a AttrValue> = vec![a];
    while let Some(a) = stack.pop() {
        let funcs: &'a [NameAttrList] = match &a.value {
            Some(attr_value::Value::Func(f)) => std::slice::from_ref(f),
            Some(attr_value::Value::List(l)) => &l.func,
            _ => &[],
        };
        for f in funcs {
            out.push(&f.name);
            stack.extend(f.attr.values());
        }
    }
}

/// Appends every function name a node refers to: its op (a direct call when it names a
/// library function) and its function-valued attributes at any depth ([`attr_functions`]).
/// Names the library does not define (registered ops) are appended too; look them up with
/// [`Graph::function`].
pub fn node_functions<'a>(n: &'a NodeDef, out: &mut Vec<&'a str>) {
    out.push(&n.op);
    for a in n.attr.values() {
        attr_functions(a, out);
    }
}

/// The interface a function implements (its `api_implements` attribute): Grappler may swap in
/// any other function of the library that implements the same one (Keras' LSTM has a CPU and a
/// cuDNN implementation).
fn api_implements(f: &FunctionDef) -> Option<&[u8]> {
    match f.attr.get("api_implements").and_then(|a| a.value.as_ref()) {
        Some(attr_value::Value::S(s)) => Some(s),
        _ => None,
    }
}

fn name(f: &FunctionDef) -> &str {
    f.signature.as_ref().map_or("", |s| s.name.as_str())
}

impl Graph {
    /// Drops the library functions nothing refers to any more, with their gradient entries;
    /// returns the names removed, in library order.
    ///
    /// A function is kept when it is referred to by a node of the graph or of a kept function's
    /// body ([`node_functions`]: as the op, or in a function-valued attribute at any depth), by
    /// a kept function's own attributes, as the gradient of a kept function, or when it
    /// implements the same `api_implements` interface as a kept function. Gradient entries stay
    /// when their function does. The walk uses a worklist: a chain of functions calling each
    /// other may be as long as the library.
    pub fn prune_library(&mut self) -> Vec<String> {
        let Some(lib) = &self.library else { return Vec::new() };
        if lib.function.is_empty() {
            return Vec::new();
        }
        let mut by_name: HashMap<&str, &FunctionDef> = HashMap::new();
        let mut implementers: HashMap<&[u8], Vec<&str>> = HashMap::new();
        for f in &lib.function {
            by_name.entry(name(f)).or_insert(f);
            if let Some(api) = api_implements(f) {
                implementers.entry(api).or_default().push(name(f));
            }
        }
        let mut gradients: HashMap<&str, Vec<&str>> = HashMap::new();
        for gd in &lib.gradient {
            gradients.entry(&gd.function_name).or_default().push(&gd.gradient_func);
        }
        let mut kept: HashSet<&str> = HashSet::new();
        let mut interfaces: HashSet<&[u8]> = HashSet::new();
        let mut stack: Vec<&str> = Vec::new();
        for (_, n) in self.nodes() {
            node_functions(n, &mut stack);
        }
        while let Some(fname) = stack.pop() {
            let Some(f) = by_name.get(fname) else { continue };
            if !kept.insert(fname) {
                continue;
            }
            for n in &f.node_def {
                node_functions(n, &mut stack);
            }
            for a in f.attr.values() {
                attr_functions(a, &mut stack);
            }
            stack.extend(gradients.get(fname).into_iter().flatten());
            if let Some(api) = api_implements(f) {
                if interfaces.insert(api) {
                    stack.extend(implementers.get(api).into_iter().flatten());
                }
            }
        }
        if lib.function.iter().all(|f| kept.contains(name(f))) {
            return Vec::new();
        }
        let kept: HashSet<String> = kept.into_iter().map(str::to_string).collect();
        let lib = self.library.as_mut().expect("checked above");
        let mut removed = Vec::new();
        lib.function.retain(|f| {
            let keep = kept.contains(name(f));
            if !keep {
                removed.push(name(f).to_string());
            }
            keep
        });
        lib.gradient.retain(|gd| kept.contains(&gd.function_name));
        removed
    }
}
