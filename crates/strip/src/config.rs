//! What to strip: the validated form of tf-strip's flags.

/// What to do with attributes that equal their op's default (`--strip-default-attrs`,
/// `--add-default-attrs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DefaultAttrs {
    /// Leave them as they are.
    #[default]
    Keep,
    /// Remove attributes equal to the op's default, so older TensorFlow versions that do not
    /// know a newer attribute still load the graph.
    Strip,
    /// Add every defaulted attribute a node lacks, as TensorFlow does on import.
    Add,
}

/// Everything tf-strip can be asked to do. `Default` is the tool's default behaviour with
/// outputs left to the signature or detection.
#[derive(Debug, Clone, Default)]
pub struct StripConfig {
    /// Output tensors (`name` or `name:k`), `--outputs`. Empty: the signature's, else detected.
    pub outputs: Vec<String>,
    /// The outputs of the SavedModel signature that was loaded (`TensorInfo.name`s), used when
    /// `outputs` is empty.
    pub signature_outputs: Vec<String>,
    /// Tensors to cut the graph at, `--inputs`: each becomes a `Placeholder` of its own dtype.
    pub inputs: Vec<String>,
    /// Shapes for `--inputs` tensors or existing placeholders, `--input-shape name=1,224,224,3`;
    /// `-1` is an unknown dimension.
    pub input_shapes: Vec<(String, Vec<i64>)>,
    /// Placeholders to bind to a constant, `--set name=value`.
    pub set: Vec<(String, String)>,
    /// Nodes to keep (and not splice) even if the outputs do not need them, `--keep`.
    pub keep: Vec<String>,
    /// Keep CheckNumerics, Assert, Print and PrintV2 (`--keep-asserts`).
    pub keep_asserts: bool,
    /// Keep Identity-like pass-throughs (`--keep-identity`).
    pub keep_identity: bool,
    /// Keep control edges that only order pure computations (`--keep-control-deps`).
    pub keep_control_deps: bool,
    /// Keep device placements and `_class` colocations (`--keep-devices`); entries naming
    /// removed nodes are dropped regardless.
    pub keep_devices: bool,
    /// Remove `_output_shapes` attributes (`--clear-output-shapes`).
    pub clear_output_shapes: bool,
    /// Default attribute handling.
    pub default_attrs: DefaultAttrs,
}
