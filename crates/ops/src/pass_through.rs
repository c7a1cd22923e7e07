//! Ops whose outputs are their inputs, unchanged.

/// Whether `op` has one data input and one output that is that input, unchanged: `Identity`,
/// `Snapshot`, `StopGradient` and `PreventGradient` (they differ only for gradients and
/// memory). A node of such an op can be replaced by its input: its readers read the input
/// instead, and a constant read through it is still that constant.
pub fn is_pass_through(op: &str) -> bool {
    matches!(op, "Identity" | "Snapshot" | "StopGradient" | "PreventGradient")
}

/// Whether output `k` of `op` is its data input `k`, unchanged, for every `k`: the
/// [`is_pass_through`] ops (one port) and `IdentityN` (any number of ports). Removing an
/// `IdentityN` needs the port each reader reads, so code that follows a single tensor uses
/// [`is_pass_through`].
pub fn is_pass_through_per_port(op: &str) -> bool {
    is_pass_through(op) || op == "IdentityN"
}
