//! Why stripping failed; every message names the node, tensor or flag value at fault.

use tf_graph::GraphError;

/// A stripping failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StripError {
    /// The input is not a valid graph (duplicate or empty names).
    #[error("{0}")]
    Graph(#[from] GraphError),
    /// An `--outputs` (or signature) tensor names a node that does not exist.
    #[error("output '{0}': no such node in the graph")]
    UnknownOutput(String),
    /// An output tensor's port is past the node's last output.
    #[error("output '{name}': node '{node}' ({op}) has {arity} output(s)")]
    OutputPort {
        /// The tensor as given.
        name: String,
        /// Its node.
        node: String,
        /// The node's op.
        op: String,
        /// The node's number of outputs.
        arity: usize,
    },
    /// The graph has no node that could be an output and none was given.
    #[error("no outputs given and none detected (every node is consumed or is machinery); use --outputs")]
    NoOutputs,
    /// A `--keep` name that does not exist.
    #[error("--keep '{0}': no such node in the graph")]
    UnknownKeep(String),
    /// An `--inputs` tensor names a node that does not exist.
    #[error("--inputs '{0}': no such node in the graph")]
    UnknownInput(String),
    /// An `--inputs` tensor's port is past the node's last output.
    #[error("--inputs '{name}': node '{node}' ({op}) has {arity} output(s)")]
    InputPort {
        /// The tensor as given.
        name: String,
        /// Its node.
        node: String,
        /// The node's op.
        op: String,
        /// The node's number of outputs.
        arity: usize,
    },
    /// The dtype of an `--inputs` tensor cannot be found (unknown op, no typed consumer).
    #[error("--inputs '{name}': cannot tell the dtype of output {port} of '{node}' ({op}): the op is not in the TensorFlow 2.21 registry")]
    InputDtype {
        /// The tensor as given.
        name: String,
        /// Its node.
        node: String,
        /// The node's op.
        op: String,
        /// The port.
        port: u32,
    },
    /// An `--input-shape` name is neither an `--inputs` tensor nor a placeholder.
    #[error("--input-shape '{0}': not an --inputs tensor nor a placeholder of the graph")]
    UnknownShapeTarget(String),
    /// A `--set` name that does not exist.
    #[error("--set '{0}': no such node in the graph")]
    UnknownSet(String),
    /// A `--set` name that is not a placeholder.
    #[error("--set '{name}': node is a {op}, not a Placeholder or PlaceholderWithDefault")]
    SetNotPlaceholder {
        /// The node.
        name: String,
        /// Its op.
        op: String,
    },
    /// A `--set` value that does not parse as the placeholder's dtype.
    #[error("--set {name}={value}: '{name}' is {dtype}, and '{value}' is not a {dtype} value")]
    SetWrongType {
        /// The placeholder.
        name: String,
        /// Its dtype.
        dtype: String,
        /// The value as given.
        value: String,
    },
    /// A `--set` placeholder whose dtype cannot be written from text.
    #[error("--set '{name}': binding a {dtype} placeholder is not supported")]
    SetDtype {
        /// The placeholder.
        name: String,
        /// Its dtype.
        dtype: String,
    },
    /// A `--set` placeholder with a partially known shape (a scalar would not fit).
    #[error("--set '{name}': the placeholder's shape {shape} is only partly known; --set binds scalars or fully known shapes")]
    SetShape {
        /// The placeholder.
        name: String,
        /// Its shape.
        shape: String,
    },
    /// The same name was given twice where that makes no sense.
    #[error("{flag} '{name}' given twice")]
    Duplicate {
        /// The flag.
        flag: &'static str,
        /// The name.
        name: String,
    },
    /// The input graph breaks an invariant TensorFlow enforces on import, in a part the
    /// outputs need.
    #[error("the input graph is invalid: {0}")]
    InvalidInput(GraphError),
    /// Stripping produced a graph TensorFlow would reject (a bug).
    #[error("internal error: the stripped graph is invalid: {0}")]
    InvalidResult(GraphError),
    /// A broken internal invariant (a bug).
    #[error("internal error: {0}")]
    Internal(String),
}
