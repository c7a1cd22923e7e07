//! The one error type of this crate.
//!
//! Every message names the node, its op and, where there is one, the attribute or argument, so a
//! tool can print it as is: `node 'c' (ConcatV2): attribute 'N' missing`.

/// Why the signature of a node could not be resolved.
///
/// Returned by the arity, type and port-range queries of [`Registry`](crate::Registry),
/// [`Signatures`](crate::Signatures) and the [`signature`](crate::signature) functions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    /// The node's op is neither in the registry nor (when one was given) a function of the
    /// graph's library.
    #[error("node '{node}' ({op}): op not in the {registry}")]
    UnknownOp {
        /// The node's name.
        node: String,
        /// The node's op.
        op: String,
        /// Where the op was looked up, e.g. "TensorFlow 2.21 registry" or
        /// "TensorFlow 2.21 registry nor the graph's function library".
        registry: String,
    },
    /// An attribute that the signature needs is neither on the node nor defaulted by the
    /// OpDef.
    #[error("node '{node}' ({op}): attribute '{attr}' missing")]
    MissingAttr {
        /// The node's name.
        node: String,
        /// The node's op.
        op: String,
        /// The attribute's name.
        attr: String,
    },
    /// The attribute holds a value of another kind than the signature needs (for example a
    /// `list(int)` where a `list(type)` is expected, or no value at all).
    #[error("node '{node}' ({op}): attribute '{attr}' should be {expected}, found {found}")]
    WrongAttrType {
        /// The node's name.
        node: String,
        /// The node's op.
        op: String,
        /// The attribute's name.
        attr: String,
        /// The kind the signature needs: `int`, `type` or `list(type)`.
        expected: &'static str,
        /// The kind found, as TensorFlow spells attr types (`list(int)`, `string`, ...).
        found: String,
    },
    /// The attribute is a function-body placeholder (`$T`): the node is inside a FunctionDef
    /// that has not been instantiated, so the value is not known yet.
    #[error(
        "node '{node}' ({op}): attribute '{attr}' is the placeholder '${placeholder}', \
         which is only known once the function is instantiated"
    )]
    Placeholder {
        /// The node's name.
        node: String,
        /// The node's op.
        op: String,
        /// The attribute's name.
        attr: String,
        /// The function attribute it refers to (without the `$`).
        placeholder: String,
    },
    /// A list-length attribute (`number_attr`) is negative.
    #[error("node '{node}' ({op}): attribute '{attr}' is {value}, but a list length must be >= 0")]
    NegativeLength {
        /// The node's name.
        node: String,
        /// The node's op.
        op: String,
        /// The attribute's name.
        attr: String,
        /// The value found.
        value: i64,
    },
    /// A list-length attribute (`number_attr`, or the length of a `type_list_attr`) is above
    /// [`MAX_LIST_LEN`](crate::signature::MAX_LIST_LEN).
    #[error(
        "node '{node}' ({op}): attribute '{attr}' is {value}, more than the {limit} tensors \
         a list argument may have"
    )]
    TooLong {
        /// The node's name.
        node: String,
        /// The node's op.
        op: String,
        /// The attribute's name.
        attr: String,
        /// The value found.
        value: i64,
        /// The limit.
        limit: usize,
    },
    /// The op has no input or output argument of that name.
    #[error("node '{node}' ({op}): op has no {direction} argument '{arg}'")]
    UnknownArg {
        /// The node's name.
        node: String,
        /// The node's op.
        op: String,
        /// `"input"` or `"output"`.
        direction: &'static str,
        /// The argument name asked for.
        arg: String,
    },
    /// The OpDef itself is malformed: an argument has neither a fixed type nor a type
    /// attribute. Cannot happen with the embedded registry; possible with a hand-made OpList
    /// or a broken FunctionDef signature.
    #[error("node '{node}' ({op}): argument '{arg}' of the op definition has no type")]
    UntypedArg {
        /// The node's name.
        node: String,
        /// The node's op.
        op: String,
        /// The argument's name.
        arg: String,
    },
}
