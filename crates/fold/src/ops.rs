//! What tf-fold knows about each op, in one table: one [`OpSemantics`] entry per op, with its
//! native kernel, its shape-inference rules and how the passes may treat it.
//!
//! Everything per op reads this table: [`crate::eval::kernel`] and
//! [`crate::eval::supported_ops`], [`crate::shape::infer`], the purity and merge checks of the
//! passes ([`crate::passes::is_pure`], [`crate::passes::is_mergeable`]), pruning (feeds are
//! kept) and the evaluation budgets (views, matrix products). An op without an entry has no
//! kernel, outputs of unknown shape and [`Kind::Compute`]; whether it is stateful always comes
//! from the tf-ops registry, never from here.
//!
//! Adding an op is adding its entry (the table is sorted by name; a unit test checks that, and
//! that every entry is an op the registry knows).

use tf_proto::tensorflow::NodeDef;

use crate::eval::{array, math, Kernel};
use crate::passes;
use crate::shape::{self, ElementsFn, Facts, OutputsFn, ShapeFn};

/// How the passes treat an op, beyond what the registry says (statefulness, functions, TF1
/// control flow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Computes its outputs from its inputs: folded and merged when the registry says it is
    /// stateless.
    Compute,
    /// `Const`: a value already. Never folded again; merged with constants of the same value.
    Const,
    /// A graph input (`Placeholder`, `PlaceholderWithDefault`): never folded, never merged,
    /// never pruned.
    Feed,
    /// Never folded, otherwise like [`Kind::Compute`] (merged when stateless, pruned when
    /// unused): `PlaceholderV2`, `_Arg`, `_Retval`.
    Unfolded,
    /// A function call by attribute (`PartitionedCall`, `StatefulPartitionedCall`): never
    /// merged (its body may have effects the op's registry entry does not show); folded like
    /// [`Kind::Compute`].
    Call,
}

/// The work of one output element of a node beyond reading it: the reduction length of a
/// matrix product (1 when unknown).
pub(crate) type ReductionFn = fn(&NodeDef, &[Facts]) -> i64;

/// Everything tf-fold knows about one op.
#[derive(Clone, Copy)]
pub(crate) struct OpSemantics {
    /// The op name, as in `NodeDef.op`.
    pub name: &'static str,
    /// How the passes treat it.
    pub kind: Kind,
    /// The native kernel: evaluates a node on constant inputs.
    pub kernel: Option<Kernel>,
    /// The shape of output 0 from the facts of the inputs.
    pub shape: Option<ShapeFn>,
    /// The facts of every output of a multi-output op (run after `shape`).
    pub outputs: Option<OutputsFn>,
    /// The known elements of output 0 when it is an integer vector or scalar (shape tensors).
    pub elements: Option<ElementsFn>,
    /// The kernel returns its input's data (under a new shape): evaluating it allocates and
    /// computes nothing, so the memory and work budgets do not apply.
    pub view: bool,
    /// The reduction length of each output element, for the work budget.
    pub reduction: Option<ReductionFn>,
    /// The result does not depend on the order of the data inputs (duplicate merging).
    pub commutative: bool,
}

const fn op(name: &'static str) -> OpSemantics {
    OpSemantics {
        name,
        kind: Kind::Compute,
        kernel: None,
        shape: None,
        outputs: None,
        elements: None,
        view: false,
        reduction: None,
        commutative: false,
    }
}

impl OpSemantics {
    const fn kind(self, kind: Kind) -> Self {
        OpSemantics { kind, ..self }
    }
    const fn kernel(self, k: Kernel) -> Self {
        OpSemantics { kernel: Some(k), ..self }
    }
    const fn shape(self, f: ShapeFn) -> Self {
        OpSemantics { shape: Some(f), ..self }
    }
    const fn outputs(self, f: OutputsFn) -> Self {
        OpSemantics { outputs: Some(f), ..self }
    }
    const fn elements(self, f: ElementsFn) -> Self {
        OpSemantics { elements: Some(f), ..self }
    }
    const fn view(self) -> Self {
        OpSemantics { view: true, ..self }
    }
    const fn reduction(self, f: ReductionFn) -> Self {
        OpSemantics { reduction: Some(f), ..self }
    }
    const fn commutative(self) -> Self {
        OpSemantics { commutative: true, ..self }
    }
}

/// The entry of `op`, if tf-fold knows it.
pub(crate) fn get(op: &str) -> Option<&'static OpSemantics> {
    OPS.binary_search_by(|e| e.name.cmp(op)).ok().map(|i| &OPS[i])
}

/// How the passes treat `op` ([`Kind::Compute`] for ops without an entry).
pub(crate) fn kind(op: &str) -> Kind {
    get(op).map_or(Kind::Compute, |e| e.kind)
}

/// Every entry, sorted by name.
pub(crate) fn all() -> &'static [OpSemantics] {
    OPS
}

/// The table, sorted by name (byte order).
static OPS: &[OpSemantics] = &[
    op("Abs").kernel(math::unary).shape(shape::same_as_input),
    op("Add")
        .kernel(math::binary)
        .shape(shape::broadcasting)
        .elements(shape::arithmetic_elements)
        .commutative(),
    op("AddN").kernel(math::add_n).shape(shape::broadcasting).commutative(),
    op("AddV2")
        .kernel(math::binary)
        .shape(shape::broadcasting)
        .elements(shape::arithmetic_elements)
        .commutative(),
    op("All").kernel(math::reduce).shape(shape::reduce),
    op("Any").kernel(math::reduce).shape(shape::reduce),
    op("ArgMax").kernel(math::arg_reduce).shape(shape::arg_reduce),
    op("ArgMin").kernel(math::arg_reduce).shape(shape::arg_reduce),
    op("AvgPool").shape(shape::pool),
    op("BatchMatMul")
        .kernel(math::batch_mat_mul)
        .shape(shape::batch_mat_mul)
        .reduction(passes::batch_mat_mul_reduction),
    op("BatchMatMulV2")
        .kernel(math::batch_mat_mul)
        .shape(shape::batch_mat_mul)
        .reduction(passes::batch_mat_mul_reduction),
    op("BatchMatMulV3")
        .kernel(math::batch_mat_mul)
        .shape(shape::batch_mat_mul)
        .reduction(passes::batch_mat_mul_reduction),
    op("BiasAdd").kernel(math::bias_add).shape(shape::same_as_input),
    op("BroadcastArgs").kernel(array::broadcast_args),
    op("BroadcastTo").kernel(array::broadcast_to).shape(shape::broadcast_to),
    op("Cast").kernel(math::cast).shape(shape::same_as_input).elements(shape::cast_elements),
    op("Ceil").kernel(math::unary).shape(shape::same_as_input),
    op("CheckNumerics").shape(shape::same_as_input),
    op("Concat").kernel(array::concat_v1).shape(shape::concat),
    op("ConcatV2")
        .kernel(array::concat_v2)
        .shape(shape::concat_v2)
        .elements(shape::concat_v2_elements),
    op("Const").shape(shape::constant).kind(Kind::Const),
    op("Conv2D").shape(shape::conv2d),
    op("Cos").kernel(math::unary).shape(shape::same_as_input),
    op("DepthwiseConv2dNative").shape(shape::depthwise_conv2d),
    op("Div").kernel(math::binary).shape(shape::broadcasting),
    op("DivNoNan").kernel(math::binary).shape(shape::broadcasting),
    op("Einsum").shape(shape::einsum),
    op("Elu").shape(shape::same_as_input),
    op("EnsureShape").kernel(array::identity).view(),
    op("Enter").shape(shape::same_as_input),
    op("Equal").kernel(math::compare).shape(shape::broadcasting).commutative(),
    op("Erf").shape(shape::same_as_input),
    op("Erfc").shape(shape::same_as_input),
    op("Exit").shape(shape::same_as_input),
    op("Exp").kernel(math::unary).shape(shape::same_as_input),
    op("ExpandDims")
        .kernel(array::expand_dims)
        .shape(shape::expand_dims)
        .elements(shape::reshaped_elements)
        .view(),
    op("Expm1").kernel(math::unary).shape(shape::same_as_input),
    op("Fill").kernel(array::fill).shape(shape::fill),
    op("Floor").kernel(math::unary).shape(shape::same_as_input),
    op("FloorDiv")
        .kernel(math::binary)
        .shape(shape::broadcasting)
        .elements(shape::arithmetic_elements),
    op("FloorMod").kernel(math::binary).shape(shape::broadcasting),
    op("FusedBatchNorm").shape(shape::same_as_input).outputs(shape::fused_batch_norm_outputs),
    op("FusedBatchNormV2").shape(shape::same_as_input).outputs(shape::fused_batch_norm_outputs),
    op("FusedBatchNormV3").shape(shape::same_as_input).outputs(shape::fused_batch_norm_outputs),
    op("Gather").kernel(array::gather_v1).shape(shape::gather).elements(shape::gather_elements),
    op("GatherV2")
        .kernel(array::gather_v2)
        .shape(shape::gather_v2)
        .elements(shape::gather_v2_elements),
    op("Greater").kernel(math::compare).shape(shape::broadcasting),
    op("GreaterEqual").kernel(math::compare).shape(shape::broadcasting),
    op("Identity")
        .kernel(array::identity)
        .shape(shape::same_as_input)
        .elements(shape::same_elements)
        .view(),
    op("IdentityN").kernel(array::identity_n).view(),
    op("Inv").kernel(math::unary).shape(shape::same_as_input),
    op("LRN").shape(shape::same_as_input),
    op("LeakyRelu").kernel(math::unary).shape(shape::same_as_input),
    op("Less").kernel(math::compare).shape(shape::broadcasting),
    op("LessEqual").kernel(math::compare).shape(shape::broadcasting),
    op("Log").kernel(math::unary).shape(shape::same_as_input),
    op("Log1p").kernel(math::unary).shape(shape::same_as_input),
    op("LogSoftmax").shape(shape::same_as_input),
    op("LogicalAnd").kernel(math::logical).shape(shape::broadcasting).commutative(),
    op("LogicalNot").kernel(math::logical_not).shape(shape::same_as_input),
    op("LogicalOr").kernel(math::logical).shape(shape::broadcasting).commutative(),
    op("MatMul").kernel(math::mat_mul).shape(shape::mat_mul).reduction(passes::mat_mul_reduction),
    op("Max").kernel(math::reduce).shape(shape::reduce),
    op("MaxPool").shape(shape::pool),
    op("Maximum")
        .kernel(math::binary)
        .shape(shape::broadcasting)
        .elements(shape::arithmetic_elements)
        .commutative(),
    op("Mean").kernel(math::reduce).shape(shape::reduce),
    op("Merge").shape(shape::merge).outputs(shape::merge_outputs),
    op("Min").kernel(math::reduce).shape(shape::reduce),
    op("Minimum")
        .kernel(math::binary)
        .shape(shape::broadcasting)
        .elements(shape::arithmetic_elements)
        .commutative(),
    op("MirrorPad").shape(shape::pad),
    op("Mul")
        .kernel(math::binary)
        .shape(shape::broadcasting)
        .elements(shape::arithmetic_elements)
        .commutative(),
    op("Neg").kernel(math::unary).shape(shape::same_as_input),
    op("NextIteration").shape(shape::same_as_input),
    op("NotEqual").kernel(math::compare).shape(shape::broadcasting).commutative(),
    op("OnesLike").kernel(array::ones_like).shape(shape::same_as_input),
    op("Pack").kernel(array::pack).shape(shape::pack).elements(shape::pack_elements),
    op("Pad").kernel(array::pad).shape(shape::pad),
    op("PadV2").kernel(array::pad).shape(shape::pad),
    op("PartitionedCall").kind(Kind::Call),
    op("Placeholder").shape(shape::placeholder).kind(Kind::Feed),
    op("PlaceholderV2").kind(Kind::Unfolded),
    op("PlaceholderWithDefault").shape(shape::placeholder).kind(Kind::Feed),
    op("Pow").kernel(math::binary).shape(shape::broadcasting),
    op("PreventGradient").kernel(array::identity).shape(shape::same_as_input).view(),
    op("Prod").kernel(math::reduce).shape(shape::reduce).elements(shape::reduce_elements),
    op("Range").kernel(math::range).shape(shape::range),
    op("Rank").kernel(array::rank).shape(shape::scalar).elements(shape::rank_elements),
    op("RealDiv").kernel(math::binary).shape(shape::broadcasting),
    op("Reciprocal").kernel(math::unary).shape(shape::same_as_input),
    op("RefIdentity").shape(shape::same_as_input),
    op("RefMerge").shape(shape::merge).outputs(shape::merge_outputs),
    op("RefSwitch").shape(shape::same_as_input).outputs(shape::switch_outputs),
    op("Relu").kernel(math::unary).shape(shape::same_as_input),
    op("Relu6").kernel(math::unary).shape(shape::same_as_input),
    op("Reshape")
        .kernel(array::reshape)
        .shape(shape::reshape)
        .elements(shape::reshaped_elements)
        .view(),
    op("ResourceGather").shape(shape::gather),
    op("ReverseV2").kernel(array::reverse_v2),
    op("Rint").kernel(math::unary).shape(shape::same_as_input),
    op("Round").kernel(math::unary).shape(shape::same_as_input),
    op("Rsqrt").kernel(math::unary).shape(shape::same_as_input),
    op("Select").kernel(array::select).shape(shape::select),
    op("SelectV2").kernel(array::select_v2).shape(shape::broadcasting),
    op("Selu").shape(shape::same_as_input),
    op("Shape").kernel(array::shape).shape(shape::shape).elements(shape::shape_elements),
    op("ShapeN").kernel(array::shape_n).outputs(shape::shape_n_outputs),
    op("Sigmoid").kernel(math::unary).shape(shape::same_as_input),
    op("Sign").kernel(math::unary).shape(shape::same_as_input),
    op("Sin").kernel(math::unary).shape(shape::same_as_input),
    op("Size").kernel(array::size).shape(shape::scalar).elements(shape::size_elements),
    op("Slice").kernel(array::slice).shape(shape::slice),
    op("Snapshot")
        .kernel(array::identity)
        .shape(shape::same_as_input)
        .elements(shape::same_elements)
        .view(),
    op("Softmax").shape(shape::same_as_input),
    op("Softplus").kernel(math::unary).shape(shape::same_as_input),
    op("Softsign").shape(shape::same_as_input),
    op("Split").kernel(array::split).outputs(shape::split_outputs),
    op("SplitV").kernel(array::split_v).outputs(shape::split_v_outputs),
    op("Sqrt").kernel(math::unary).shape(shape::same_as_input),
    op("Square").kernel(math::unary).shape(shape::same_as_input),
    op("SquaredDifference").kernel(math::binary).shape(shape::broadcasting).commutative(),
    op("Squeeze")
        .kernel(array::squeeze)
        .shape(shape::squeeze)
        .elements(shape::reshaped_elements)
        .view(),
    op("StatefulPartitionedCall").kind(Kind::Call),
    op("StopGradient")
        .kernel(array::identity)
        .shape(shape::same_as_input)
        .elements(shape::same_elements)
        .view(),
    op("StridedSlice")
        .kernel(array::strided_slice)
        .shape(shape::strided_slice)
        .elements(shape::strided_slice_elements),
    op("Sub").kernel(math::binary).shape(shape::broadcasting).elements(shape::arithmetic_elements),
    op("Sum").kernel(math::reduce).shape(shape::reduce).elements(shape::reduce_elements),
    op("Switch").shape(shape::same_as_input).outputs(shape::switch_outputs),
    op("Tanh").kernel(math::unary).shape(shape::same_as_input),
    op("Tile").kernel(array::tile).shape(shape::tile),
    op("Transpose").kernel(array::transpose).shape(shape::transpose),
    op("TruncateDiv").kernel(math::binary).shape(shape::broadcasting),
    op("TruncateMod").kernel(math::binary).shape(shape::broadcasting),
    op("Unpack").kernel(array::unpack).outputs(shape::unpack_outputs),
    op("ZerosLike").kernel(array::zeros_like).shape(shape::same_as_input),
    op("_Arg").kind(Kind::Unfolded),
    op("_Retval").kind(Kind::Unfolded),
];

#[cfg(test)]
mod tests;
