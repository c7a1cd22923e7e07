//! Checks the registry against TensorFlow itself.
//!
//! `tests/data/arity_cases.json` is written by `scripts/gen_op_registry.py`: about 70 nodes of
//! diverse ops (list-typed inputs and outputs, ref outputs, defaulted list lengths, function
//! calls) built in real TF 2.21 graphs. For each it records the NodeDef TF built (with all
//! defaults filled), the same node with default-valued attrs removed, and what TF reports:
//! the input and output counts, output dtypes, and each argument's flat index range (from the
//! C API's `TF_Operation{Input,Output}ListLength`).

use std::collections::BTreeMap;
use std::ops::Range;

use prost::Message;
use serde_json::Value as Json;
use tf_ops::Registry;
use tf_proto::tensorflow::{FunctionDefLibrary, NodeDef};

struct Case {
    name: String,
    node_bytes: Vec<u8>,
    node: NodeDef,
    stripped: NodeDef,
    stripped_attrs: Vec<String>,
    num_inputs: usize,
    num_outputs: usize,
    output_types: Vec<i32>,
    input_ranges: BTreeMap<String, Range<usize>>,
    output_ranges: BTreeMap<String, Range<usize>>,
    library: Option<FunctionDefLibrary>,
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn ranges(j: &Json) -> BTreeMap<String, Range<usize>> {
    j.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let r = v.as_array().unwrap();
            (k.clone(), r[0].as_u64().unwrap() as usize..r[1].as_u64().unwrap() as usize)
        })
        .collect()
}

fn cases() -> Vec<Case> {
    let text = include_str!("data/arity_cases.json");
    let doc: Json = serde_json::from_str(text).unwrap();
    assert_eq!(doc["tensorflow"], "2.21.0");
    let usize_of = |j: &Json| j.as_u64().unwrap() as usize;
    doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_string(),
            node_bytes: unhex(c["node_def"].as_str().unwrap()),
            node: NodeDef::decode(&unhex(c["node_def"].as_str().unwrap())[..]).unwrap(),
            stripped: NodeDef::decode(&unhex(c["stripped_node_def"].as_str().unwrap())[..])
                .unwrap(),
            stripped_attrs: c["stripped_attrs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect(),
            num_inputs: usize_of(&c["num_inputs"]),
            num_outputs: usize_of(&c["num_outputs"]),
            output_types: c["output_types"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_i64().unwrap() as i32)
                .collect(),
            input_ranges: ranges(&c["input_ranges"]),
            output_ranges: ranges(&c["output_ranges"]),
            library: c
                .get("library_signatures")
                .map(|h| FunctionDefLibrary::decode(&unhex(h.as_str().unwrap())[..]).unwrap()),
        })
        .collect()
}

#[test]
fn fixture_is_substantial() {
    let cases = cases();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    // List-typed outputs and calls are represented.
    for op in ["IdentityN", "ParseExampleV2", "StatefulPartitionedCall", "VariableV2", "_Arg"] {
        assert!(cases.iter().any(|c| c.node.op == op), "{op}");
    }
}

#[test]
fn arity_and_types_match_tensorflow() {
    let ops = Registry::global();
    for case in cases() {
        let lib = case.library.as_ref();
        // Both the full node and the one relying on OpDef defaults.
        for (label, node) in [("full", &case.node), ("stripped", &case.stripped)] {
            let what = format!("{} ({label})", case.name);
            let sigs = ops.with_library(lib);
            assert_eq!(sigs.output_arity(node).unwrap(), case.num_outputs, "{what}");
            assert_eq!(sigs.input_arity(node).unwrap(), case.num_inputs, "{what}");
            assert_eq!(sigs.output_types(node).unwrap(), case.output_types, "{what}");
            assert_eq!(
                ops.output_arity_with_library(node, lib).unwrap(),
                case.num_outputs,
                "{what}"
            );
            for (arg, range) in &case.output_ranges {
                assert_eq!(&sigs.output_port_range(node, arg).unwrap(), range, "{what}: {arg}");
            }
            for (arg, range) in &case.input_ranges {
                assert_eq!(&sigs.input_port_range(node, arg).unwrap(), range, "{what}: {arg}");
            }
            if !sigs.is_function(&node.op) {
                assert_eq!(ops.output_arity(node).unwrap(), case.num_outputs, "{what}");
                assert_eq!(ops.output_types(node).unwrap(), case.output_types, "{what}");
            }
        }
    }
}

#[test]
fn default_attrs_match_tensorflow() {
    let ops = Registry::global();
    for case in cases() {
        if ops.get(&case.node.op).is_none() {
            continue; // a library function call: no registered defaults
        }
        // Stripping TF's full node removes exactly what Python's comparison removed.
        let mut n = case.node.clone();
        assert_eq!(ops.strip_default_attrs(&mut n), case.stripped_attrs.len(), "{}", case.name);
        assert_eq!(n, case.stripped, "{}", case.name);
        // Adding defaults back gives the node TF built (TF fills defaults while building).
        assert_eq!(ops.add_default_attrs(&mut n), case.stripped_attrs.len(), "{}", case.name);
        assert_eq!(n, case.node, "{}", case.name);
        // The fixture's bytes are canonical: prost re-encodes them identically.
        assert!(case.node.encode_to_vec() == case.node_bytes, "{}", case.name);
    }
}
