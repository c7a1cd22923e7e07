//! The op registry: OpDefs by name, plus the node-level queries built on them.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::OnceLock;

use prost::Message;
use tf_proto::tensorflow::{AttrValue, FunctionDefLibrary, NodeDef, OpDef, OpList};

use crate::signature;
use crate::OpError;

/// The serialized `tensorflow.OpList` written by `scripts/gen_op_registry.py`.
const OPS_PB: &[u8] = include_bytes!("../data/ops.pb");

/// `tensorflow <version>` / `git <describe>` / `ops <count>` lines, from the same script.
const VERSION_FILE: &str = include_str!("../data/VERSION");

/// A set of OpDefs by op name: the signatures, attribute defaults and flags of every op a
/// GraphDef may use.
///
/// [`Registry::global`] is TensorFlow 2.21's own registry, embedded in the binary. The
/// node-level queries ([`output_arity`](Self::output_arity), [`output_types`](Self::output_types),
/// [`output_port_range`](Self::output_port_range), ...) look the node's op up here only; for a
/// graph whose nodes may call functions of its library by name, use the `_with_library`
/// variants or a [`Signatures`] view.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    ops: BTreeMap<String, OpDef>,
    version: String,
}

impl Registry {
    /// TensorFlow 2.21's op registry (every op registered by `import tensorflow`, internal
    /// `_`-prefixed ones included), decoded from the embedded data on first use and shared
    /// afterwards.
    ///
    /// # Panics
    /// Never in practice: the embedded bytes are checked by this crate's tests.
    pub fn global() -> &'static Registry {
        static GLOBAL: OnceLock<Registry> = OnceLock::new();
        GLOBAL.get_or_init(|| {
            let list = OpList::decode(OPS_PB).expect("tf-ops: embedded ops.pb is a valid OpList");
            Registry::from_op_list(list).with_version(embedded_version())
        })
    }

    /// A registry of the given ops (for example an OpList from a MetaGraphDef's
    /// `stripped_op_list`, or a custom build's `TF_GetAllOpList`). If a name occurs twice, the
    /// later OpDef wins. Its [`version`](Self::version) is empty until set with
    /// [`with_version`](Self::with_version).
    pub fn from_op_list(list: OpList) -> Registry {
        let ops = list.op.into_iter().map(|op| (op.name.clone(), op)).collect();
        Registry { ops, version: String::new() }
    }

    /// Sets the TensorFlow version the ops come from (used in error messages).
    #[must_use]
    pub fn with_version(mut self, version: impl Into<String>) -> Registry {
        self.version = version.into();
        self
    }

    /// The TensorFlow version the ops come from, e.g. `"2.21.0"` for [`Registry::global`];
    /// empty if unknown.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The OpDef of `op`, if registered.
    pub fn get(&self, op: &str) -> Option<&OpDef> {
        self.ops.get(op)
    }

    /// Whether `op` is registered.
    pub fn contains(&self, op: &str) -> bool {
        self.ops.contains_key(op)
    }

    /// Number of ops.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether there are no ops.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// All OpDefs, sorted by name (bytewise, so `_Arg` comes after `Zeta`).
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &OpDef> + '_ {
        self.ops.values()
    }

    /// Whether `op` is stateful (`is_stateful` in its OpDef: variables, random ops, I/O,
    /// `If`/`While`, `StatefulPartitionedCall`, ...); such ops must not be constant-folded,
    /// deduplicated or dropped just because their outputs are unused. `None` if not registered.
    pub fn is_stateful(&self, op: &str) -> Option<bool> {
        self.get(op).map(|d| d.is_stateful)
    }

    /// A view that resolves ops in `library` first (calls of FunctionDefs by name), then in
    /// this registry. It indexes the library once; prefer it to the `_with_library` methods
    /// when querying many nodes of one graph.
    pub fn with_library<'a>(&'a self, library: Option<&'a FunctionDefLibrary>) -> Signatures<'a> {
        Signatures::new(self, library)
    }

    /// The OpDef that governs `node`: the signature of the library function named like its op
    /// if there is one (TensorFlow looks the function library up first), else the registered op.
    pub fn resolve<'a>(
        &'a self,
        node: &NodeDef,
        library: Option<&'a FunctionDefLibrary>,
    ) -> Result<&'a OpDef, OpError> {
        let in_library = library.and_then(|lib| {
            lib.function.iter().filter_map(|f| f.signature.as_ref()).find(|sig| sig.name == node.op)
        });
        in_library
            .or_else(|| self.get(&node.op))
            .ok_or_else(|| self.unknown(node, library.is_some()))
    }

    fn unknown(&self, node: &NodeDef, with_library: bool) -> OpError {
        let mut registry = match self.version.split('.').take(2).collect::<Vec<_>>()[..] {
            [major, minor] => format!("TensorFlow {major}.{minor} registry"),
            _ if !self.version.is_empty() => format!("TensorFlow {} registry", self.version),
            _ => "op registry".to_string(),
        };
        if with_library {
            registry.push_str(" nor the graph's function library");
        }
        OpError::UnknownOp { node: node.name.clone(), op: node.op.clone(), registry }
    }

    /// Number of output tensors of `node` (its ports are `0..n`), resolving list arguments
    /// from its `number_attr` / `type_list_attr` attributes or their OpDef defaults.
    ///
    /// ```
    /// use tf_ops::Registry;
    /// use tf_proto::tensorflow::{attr_value::Value, AttrValue, NodeDef};
    ///
    /// let mut node = NodeDef { name: "u".into(), op: "Unpack".into(), ..Default::default() };
    /// node.attr.insert("num".into(), AttrValue { value: Some(Value::I(3)) });
    /// assert_eq!(Registry::global().output_arity(&node).unwrap(), 3);
    /// ```
    pub fn output_arity(&self, node: &NodeDef) -> Result<usize, OpError> {
        self.output_arity_with_library(node, None)
    }

    /// [`output_arity`](Self::output_arity) for a node that may call a function of the
    /// graph's `library` by name; then the FunctionDef's signature gives the outputs.
    pub fn output_arity_with_library(
        &self,
        node: &NodeDef,
        library: Option<&FunctionDefLibrary>,
    ) -> Result<usize, OpError> {
        signature::output_arity(self.resolve(node, library)?, node)
    }

    /// Number of data inputs `node` takes (not counting `^control` inputs).
    pub fn input_arity(&self, node: &NodeDef) -> Result<usize, OpError> {
        self.input_arity_with_library(node, None)
    }

    /// [`input_arity`](Self::input_arity), resolving library function calls.
    pub fn input_arity_with_library(
        &self,
        node: &NodeDef,
        library: Option<&FunctionDefLibrary>,
    ) -> Result<usize, OpError> {
        signature::input_arity(self.resolve(node, library)?, node)
    }

    /// `DataType` (as `i32`) of each output of `node`, by port: from the argument's fixed
    /// `type`, its `type_attr` (node attr or default), repeated `number_attr` times, or the
    /// `type_list_attr` list. Reference outputs are the `_REF` twin (`DT_FLOAT_REF` = 101).
    pub fn output_types(&self, node: &NodeDef) -> Result<Vec<i32>, OpError> {
        self.output_types_with_library(node, None)
    }

    /// [`output_types`](Self::output_types), resolving library function calls.
    pub fn output_types_with_library(
        &self,
        node: &NodeDef,
        library: Option<&FunctionDefLibrary>,
    ) -> Result<Vec<i32>, OpError> {
        signature::output_types(self.resolve(node, library)?, node)
    }

    /// `DataType` (as `i32`) of each data input `node` expects; reference inputs (e.g. the
    /// `ref` of `Assign`) as the `_REF` twin.
    pub fn input_types(&self, node: &NodeDef) -> Result<Vec<i32>, OpError> {
        signature::input_types(self.resolve(node, None)?, node)
    }

    /// The flat output ports of `node` covered by its output argument `arg_name`.
    ///
    /// Converts FunctionDef body references `node:out_arg:idx` into GraphDef ports:
    /// the port is `range.start + idx`, valid if below `range.end`.
    ///
    /// ```
    /// use tf_ops::Registry;
    /// use tf_proto::tensorflow::NodeDef;
    ///
    /// let bn = NodeDef { name: "bn".into(), op: "FusedBatchNormV3".into(), ..Default::default() };
    /// assert_eq!(Registry::global().output_port_range(&bn, "batch_mean").unwrap(), 1..2);
    /// ```
    pub fn output_port_range(
        &self,
        node: &NodeDef,
        arg_name: &str,
    ) -> Result<Range<usize>, OpError> {
        self.output_port_range_with_library(node, arg_name, None)
    }

    /// [`output_port_range`](Self::output_port_range), resolving library function calls.
    pub fn output_port_range_with_library(
        &self,
        node: &NodeDef,
        arg_name: &str,
        library: Option<&FunctionDefLibrary>,
    ) -> Result<Range<usize>, OpError> {
        signature::output_port_range(self.resolve(node, library)?, node, arg_name)
    }

    /// The flat input indices of `node` covered by its input argument `arg_name`.
    pub fn input_port_range(
        &self,
        node: &NodeDef,
        arg_name: &str,
    ) -> Result<Range<usize>, OpError> {
        signature::input_port_range(self.resolve(node, None)?, node, arg_name)
    }

    /// The attributes of `op` that have a default value, with that value, in OpDef order.
    /// Empty for an unknown op.
    pub fn default_attrs<'a>(
        &'a self,
        op: &str,
    ) -> impl Iterator<Item = (&'a str, &'a AttrValue)> + 'a {
        self.get(op)
            .into_iter()
            .flat_map(|d| &d.attr)
            .filter_map(|a| a.default_value.as_ref().map(|v| (a.name.as_str(), v)))
    }

    /// Adds to `node` every attribute its op defaults and the node lacks, as TensorFlow does on
    /// import (`AddDefaultAttrsToGraphDef`). Returns how many were added; 0 for an op not in
    /// the registry.
    pub fn add_default_attrs(&self, node: &mut NodeDef) -> usize {
        let Some(op_def) = self.ops.get(&node.op) else { return 0 };
        let mut added = 0;
        for attr in &op_def.attr {
            if let Some(default) = &attr.default_value {
                if !node.attr.contains_key(&attr.name) {
                    node.attr.insert(attr.name.clone(), default.clone());
                    added += 1;
                }
            }
        }
        added
    }

    /// Removes from `node` every attribute equal to its op's default (compared as TensorFlow's
    /// `StripDefaultAttributes` does, see [`signature::attr_values_equal`]), so the graph
    /// also loads in older TensorFlow versions that predate those attributes. Returns how many
    /// were removed; 0 for an op not in the registry. `add_default_attrs` undoes it.
    pub fn strip_default_attrs(&self, node: &mut NodeDef) -> usize {
        let Some(op_def) = self.ops.get(&node.op) else { return 0 };
        let mut removed = 0;
        for attr in &op_def.attr {
            if let Some(default) = &attr.default_value {
                if node
                    .attr
                    .get(&attr.name)
                    .is_some_and(|v| signature::attr_values_equal(v, default))
                {
                    node.attr.remove(&attr.name);
                    removed += 1;
                }
            }
        }
        removed
    }
}

impl<'a> IntoIterator for &'a Registry {
    type Item = &'a OpDef;
    type IntoIter = std::collections::btree_map::Values<'a, String, OpDef>;

    fn into_iter(self) -> Self::IntoIter {
        self.ops.values()
    }
}

/// The `tensorflow <version>` line of the embedded VERSION file.
fn embedded_version() -> &'static str {
    VERSION_FILE
        .lines()
        .find_map(|l| l.strip_prefix("tensorflow "))
        .map(str::trim)
        .expect("tf-ops: data/VERSION has a 'tensorflow <version>' line")
}

/// The op signatures visible to one graph: the functions of its library, then a registry.
///
/// A node whose op names a FunctionDef of the graph's library is a direct function call (TF1
/// `Defun` call sites, and bodies of other functions); its inputs and outputs are those of the
/// FunctionDef's `signature`. As in TensorFlow, the library is consulted before the registry.
/// Built by [`Registry::with_library`] (borrowing the library) or [`Signatures::owned`] (a
/// copy of the function signatures, for a pass that edits the graph holding the library while
/// it asks); indexes the library once.
#[derive(Debug, Clone)]
pub struct Signatures<'a> {
    registry: &'a Registry,
    functions: HashMap<Cow<'a, str>, Cow<'a, OpDef>>,
    has_library: bool,
}

impl<'a> Signatures<'a> {
    /// A view of `registry` extended by the signatures of `library`'s functions.
    pub fn new(registry: &'a Registry, library: Option<&'a FunctionDefLibrary>) -> Signatures<'a> {
        let functions = library
            .into_iter()
            .flat_map(|lib| &lib.function)
            .filter_map(|f| f.signature.as_ref())
            .map(|sig| (Cow::Borrowed(sig.name.as_str()), Cow::Borrowed(sig)))
            .collect();
        Signatures { registry, functions, has_library: library.is_some() }
    }

    /// Like [`Signatures::new`], but owning copies of the (small) function signatures, so that
    /// it does not borrow the library.
    pub fn owned(registry: &'a Registry, library: Option<&FunctionDefLibrary>) -> Signatures<'a> {
        let functions = library
            .into_iter()
            .flat_map(|lib| &lib.function)
            .filter_map(|f| f.signature.as_ref())
            .map(|sig| (Cow::Owned(sig.name.clone()), Cow::Owned(sig.clone())))
            .collect();
        Signatures { registry, functions, has_library: library.is_some() }
    }

    /// The registry behind this view.
    pub fn registry(&self) -> &'a Registry {
        self.registry
    }

    /// The OpDef for op (or function) name `op`: a library function's signature, else the
    /// registered op.
    pub fn get(&self, op: &str) -> Option<&OpDef> {
        self.functions.get(op).map(|d| &**d).or_else(|| self.registry.get(op))
    }

    /// Whether `op` is a function of the library (rather than a registered op).
    pub fn is_function(&self, op: &str) -> bool {
        self.functions.contains_key(op)
    }

    /// Whether `op` (a registered op or a library function) is stateful: its OpDef's
    /// `is_stateful` (TensorFlow sets it on a function's signature when its body has a
    /// stateful op). `None` for an op neither knows.
    pub fn is_stateful(&self, op: &str) -> Option<bool> {
        self.get(op).map(|d| d.is_stateful)
    }

    /// The OpDef that governs `node`, or [`OpError::UnknownOp`].
    pub fn resolve(&self, node: &NodeDef) -> Result<&OpDef, OpError> {
        self.get(&node.op).ok_or_else(|| self.registry.unknown(node, self.has_library))
    }

    /// See [`Registry::output_arity`].
    pub fn output_arity(&self, node: &NodeDef) -> Result<usize, OpError> {
        signature::output_arity(self.resolve(node)?, node)
    }

    /// See [`Registry::input_arity`].
    pub fn input_arity(&self, node: &NodeDef) -> Result<usize, OpError> {
        signature::input_arity(self.resolve(node)?, node)
    }

    /// See [`Registry::output_types`].
    pub fn output_types(&self, node: &NodeDef) -> Result<Vec<i32>, OpError> {
        signature::output_types(self.resolve(node)?, node)
    }

    /// See [`Registry::input_types`].
    pub fn input_types(&self, node: &NodeDef) -> Result<Vec<i32>, OpError> {
        signature::input_types(self.resolve(node)?, node)
    }

    /// See [`Registry::output_port_range`].
    pub fn output_port_range(
        &self,
        node: &NodeDef,
        arg_name: &str,
    ) -> Result<Range<usize>, OpError> {
        signature::output_port_range(self.resolve(node)?, node, arg_name)
    }

    /// See [`Registry::input_port_range`].
    pub fn input_port_range(
        &self,
        node: &NodeDef,
        arg_name: &str,
    ) -> Result<Range<usize>, OpError> {
        signature::input_port_range(self.resolve(node)?, node, arg_name)
    }
}
