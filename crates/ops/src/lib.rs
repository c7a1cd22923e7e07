//! TensorFlow's op registry, without TensorFlow.
//!
//! A GraphDef names each node's op (`"Conv2D"`, `"ConcatV2"`, `"_Arg"`) but does not say how
//! many outputs the node has, what their types are, or which attributes it would get by
//! default: all of that is in the op's **OpDef**, held by TensorFlow's op registry. A filter
//! that rewrites graphs needs it to
//!
//! - know a node's valid output ports (`x:2` exists only if `x` has 3 outputs) and their
//!   dtypes, e.g. to insert a `Const` or `Cast` in place of a tensor
//!   ([`Registry::output_arity`], [`Registry::output_types`]);
//! - turn FunctionDef body references `node:out_arg:idx` into GraphDef ports
//!   ([`Registry::output_port_range`]);
//! - add or strip attributes that equal their defaults, as TensorFlow does on import and
//!   export ([`Registry::add_default_attrs`], [`Registry::strip_default_attrs`]);
//! - tell stateful ops, which must never be folded or dropped, from pure ones
//!   ([`Registry::is_stateful`], [`Signatures::is_stateful`]);
//! - know which ops pass their input through unchanged ([`is_pass_through`],
//!   [`is_pass_through_per_port`]).
//!
//! # Where the data comes from
//!
//! `data/ops.pb` is a serialized `tensorflow.OpList` with every op the TensorFlow 2.21.0 pip
//! wheel registers on `import tensorflow` (1910 ops, public and internal: `_Arg`, `_Retval`,
//! `_Recv`, `_FusedConv2D`, `_MklConv2D`, the XLA ops, ...), dumped by
//! `scripts/gen_op_registry.py` through the C API's `TF_GetAllOpList`, sorted by name, with
//! the human-readable `summary`/`description` texts removed. `data/VERSION` records the TF
//! version and op count. Both are embedded with `include_bytes!` and decoded once, on the
//! first call to [`Registry::global`]. Regenerate them with
//! `.venv/bin/python scripts/gen_op_registry.py` (`--check` verifies they are current); the
//! script also writes `tests/data/arity_cases.json`, nodes built by TensorFlow itself whose
//! arities, dtypes and defaults the tests compare against.
//!
//! # Function calls
//!
//! A node may call a function of the graph's library by name (its op is a FunctionDef's
//! name). Such an op is not in the registry; the `_with_library` methods and the
//! [`Signatures`] view resolve it with the FunctionDef's `signature`, which is an OpDef too.
//! The lower-level functions in [`signature`] work on any OpDef.
//!
//! ```
//! use tf_ops::Registry;
//! use tf_proto::tensorflow::{attr_value::Value, AttrValue, NodeDef};
//!
//! let ops = Registry::global();
//! assert!(ops.len() > 1000);
//! assert_eq!(ops.is_stateful("VariableV2"), Some(true));
//!
//! let mut concat = NodeDef { name: "c".into(), op: "ConcatV2".into(), ..Default::default() };
//! concat.attr.insert("N".into(), AttrValue { value: Some(Value::I(3)) });
//! assert_eq!(ops.input_arity(&concat).unwrap(), 4); // 3 values + axis
//! assert_eq!(ops.output_arity(&concat).unwrap(), 1);
//!
//! let split = NodeDef { name: "s".into(), op: "Split".into(), ..Default::default() };
//! let err = ops.output_arity(&split).unwrap_err();
//! assert_eq!(err.to_string(), "node 's' (Split): attribute 'num_split' missing");
//! ```

#![deny(missing_docs)]

mod error;
mod pass_through;
mod registry;
pub mod signature;

pub use error::OpError;
pub use pass_through::{is_pass_through, is_pass_through_per_port};
pub use registry::{Registry, Signatures};

#[cfg(test)]
mod tests;
