//! Structure-aware mutations of the tools' inputs, shared by the libFuzzer targets (`fuzz/`) and
//! the seeded smoke test on stable (`tests/fuzz_smoke.rs`).
//!
//! Byte flips of a protobuf are nearly always refused by the decoder, so they exercise the
//! decoder and nothing behind it. The mutations here decode the input, edit what it means (nodes,
//! inputs, ops, attributes, tensors, functions, signatures, checkpoint entries) and encode it
//! again, so every length and checksum stays consistent and the edit reaches the passes:
//!
//! - [`mutate_model`]: a binary GraphDef, MetaGraphDef or SavedModel;
//! - [`mutate_pbtxt`]: text format, either re-printed from a mutated message or edited token by
//!   token so that the syntax stays valid;
//! - [`mutate_checkpoint`]: a checkpoint packed by [`pack_checkpoint`] (index and data in one
//!   buffer), the index table re-written with valid block checksums and tensor CRCs recomputed.
//!
//! [`Profile::Smoke`] holds back the edits that reach known, still open problems (huge
//! arity attributes, extreme integers in tensors and attributes, a checkpoint's shard count,
//! zero strides), so that the stable smoke test is green until they are fixed; the fuzzers use
//! [`Profile::Full`].
//!
//! Self-contained on purpose (its own small random generator, no dependency beyond prost,
//! tf-proto and tf-io) so that both crates can compile it.

use prost::Message;
use tf_proto::tensorflow::{
    attr_value, tensor_info, tensor_shape_proto::Dim, AttrValue, BundleEntryProto,
    BundleHeaderProto, FunctionDef, GraphDef, MetaGraphDef, NameAttrList, NodeDef, SavedModel,
    TensorInfo, TensorProto, TensorShapeProto,
};

/// A small deterministic generator (SplitMix64): the same seed gives the same cases everywhere.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True with probability `1/n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// A random element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, s: &'a [T]) -> Option<&'a T> {
        (!s.is_empty()).then(|| &s[self.below(s.len())])
    }
}

/// How far the mutations may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Everything, including the values that reach known open problems (for the fuzzers).
    Full,
    /// Small values only, for the stable smoke test (see the module documentation).
    Smoke,
}

const SMALL_INTS: &[i64] = &[-1, 0, 1, 2, 3, 4, 5, 8];
const BIG_INTS: &[i64] = &[
    -2,
    7,
    16,
    255,
    256,
    1 << 15,
    65535,
    i32::MAX as i64,
    i32::MIN as i64,
    1 << 31,
    1 << 32,
    1 << 40,
    i64::MAX,
    i64::MIN,
    i64::MIN + 1,
    -(1 << 31),
];
const FLOATS: &[f32] = &[
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    1e-3,
    1e30,
    -1e30,
    f32::MAX,
    f32::MIN_POSITIVE,
    f32::INFINITY,
    f32::NEG_INFINITY,
    f32::NAN,
];

/// Ops a node may be turned into: shape manipulation, control flow, function calls, variables,
/// quantization and the kernels of the native evaluator.
pub const OPS: &[&str] = &[
    "Const",
    "Identity",
    "IdentityN",
    "NoOp",
    "Placeholder",
    "PlaceholderWithDefault",
    "Snapshot",
    "StopGradient",
    "CheckNumerics",
    "Assert",
    "Add",
    "AddV2",
    "AddN",
    "Sub",
    "Mul",
    "RealDiv",
    "Div",
    "FloorDiv",
    "FloorMod",
    "Mod",
    "Maximum",
    "Minimum",
    "Pow",
    "SquaredDifference",
    "Neg",
    "Abs",
    "Sqrt",
    "Rsqrt",
    "Exp",
    "Log",
    "Relu",
    "Relu6",
    "Sigmoid",
    "Tanh",
    "Softmax",
    "Cast",
    "Bitcast",
    "Shape",
    "ShapeN",
    "Size",
    "Rank",
    "Reshape",
    "ExpandDims",
    "Squeeze",
    "Transpose",
    "ConcatV2",
    "Concat",
    "Pack",
    "Unpack",
    "Split",
    "SplitV",
    "Slice",
    "StridedSlice",
    "Tile",
    "Fill",
    "ZerosLike",
    "OnesLike",
    "Range",
    "Pad",
    "PadV2",
    "MirrorPad",
    "GatherV2",
    "Gather",
    "GatherNd",
    "OneHot",
    "Select",
    "SelectV2",
    "BroadcastTo",
    "BroadcastArgs",
    "Sum",
    "Mean",
    "Max",
    "Min",
    "Prod",
    "ArgMax",
    "Equal",
    "NotEqual",
    "Less",
    "Greater",
    "LogicalAnd",
    "LogicalNot",
    "MatMul",
    "BatchMatMulV2",
    "Einsum",
    "Conv2D",
    "DepthwiseConv2dNative",
    "BiasAdd",
    "FusedBatchNorm",
    "FusedBatchNormV3",
    "MaxPool",
    "AvgPool",
    "Switch",
    "Merge",
    "Enter",
    "Exit",
    "NextIteration",
    "LoopCond",
    "If",
    "StatelessIf",
    "While",
    "StatelessWhile",
    "Case",
    "PartitionedCall",
    "StatefulPartitionedCall",
    "VarHandleOp",
    "ReadVariableOp",
    "AssignVariableOp",
    "VariableV2",
    "Assign",
    "RestoreV2",
    "SaveV2",
    "Dequantize",
    "QuantizeV2",
    "Print",
    "NotAnOp",
];

/// Attribute keys worth adding to a node that lacks them.
const ATTR_KEYS: &[&str] = &[
    "T",
    "dtype",
    "value",
    "shape",
    "N",
    "axis",
    "num_split",
    "Tidx",
    "Tshape",
    "DstT",
    "SrcT",
    "Tin",
    "Tout",
    "f",
    "then_branch",
    "else_branch",
    "cond",
    "body",
    "strides",
    "padding",
    "data_format",
    "epsilon",
    "transpose_a",
    "keep_dims",
    "begin_mask",
    "end_mask",
    "shrink_axis_mask",
    "new_axis_mask",
    "ellipsis_mask",
    "_output_shapes",
    "_class",
    "shared_name",
    "container",
    "frame_name",
    "is_constant",
    "parallel_iterations",
];

fn pick_int(rng: &mut Rng, p: Profile) -> i64 {
    if p == Profile::Full && rng.one_in(3) {
        *rng.pick(BIG_INTS).unwrap()
    } else {
        *rng.pick(SMALL_INTS).unwrap()
    }
}

fn pick_dim(rng: &mut Rng, p: Profile) -> i64 {
    match p {
        Profile::Smoke => rng.below(5) as i64,
        Profile::Full if rng.one_in(4) => {
            *rng.pick(&[-1, -2, 1 << 20, 1 << 31, 1 << 40, i64::MAX, i64::MIN]).unwrap()
        }
        Profile::Full => rng.below(9) as i64 - 1,
    }
}

fn pick_dtype(rng: &mut Rng, p: Profile) -> i32 {
    if p == Profile::Full && rng.one_in(6) {
        *rng.pick(&[0, 24, 101, 107, 123, 999, -1]).unwrap()
    } else {
        // The real DataType values 1..=23 (float .. uint64).
        1 + rng.below(23) as i32
    }
}

fn pick_float(rng: &mut Rng) -> f32 {
    *rng.pick(FLOATS).unwrap()
}

// ---- shapes, tensors, attributes ---------------------------------------------------------------

/// Edits a shape: a dimension added, removed or resized, or its rank made unknown.
pub fn mutate_shape(s: &mut TensorShapeProto, rng: &mut Rng, p: Profile) {
    match rng.below(5) {
        0 if s.dim.len() < 6 => s.dim.push(Dim { size: pick_dim(rng, p), name: String::new() }),
        1 if !s.dim.is_empty() => {
            let i = rng.below(s.dim.len());
            s.dim.remove(i);
        }
        2 => s.unknown_rank = !s.unknown_rank,
        _ if !s.dim.is_empty() => {
            let i = rng.below(s.dim.len());
            s.dim[i].size = pick_dim(rng, p);
        }
        _ => s.dim.push(Dim { size: pick_dim(rng, p), name: String::new() }),
    }
}

/// Edits a tensor: dtype, shape, content length, typed value lists.
pub fn mutate_tensor(t: &mut TensorProto, rng: &mut Rng, p: Profile) {
    match rng.below(9) {
        0 => t.dtype = pick_dtype(rng, p),
        1 | 2 => mutate_shape(t.tensor_shape.get_or_insert_with(Default::default), rng, p),
        3 => {
            // Content cut, grown, or replaced by the value lists.
            let n = t.tensor_content.len();
            let mut v = t.tensor_content.to_vec();
            match rng.below(3) {
                0 => v.truncate(rng.below(n + 1)),
                1 => v.extend((0..1 + rng.below(16)).map(|_| rng.next_u64() as u8)),
                _ => v.clear(),
            }
            t.tensor_content = v.into();
        }
        4 => {
            // Values in place (the length stays).
            let mut v = t.tensor_content.to_vec();
            if !v.is_empty() {
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(v.len());
                    v[i] = match p {
                        Profile::Full => rng.next_u64() as u8,
                        Profile::Smoke => rng.below(4) as u8,
                    };
                }
                t.tensor_content = v.into();
            } else {
                t.int_val.push(pick_int(rng, p) as i32);
            }
        }
        5 => {
            let v = pick_int(rng, p);
            match rng.below(3) {
                0 => t.int_val.push(v as i32),
                1 => t.int64_val.push(v),
                _ => {
                    if let Some(x) = t.int_val.iter_mut().next() {
                        *x = v as i32;
                    } else if let Some(x) = t.int64_val.iter_mut().next() {
                        *x = v;
                    } else {
                        t.int_val.push(v as i32);
                    }
                }
            }
        }
        6 => {
            let v = pick_float(rng);
            if rng.one_in(2) || t.float_val.is_empty() {
                t.float_val.push(v);
            } else {
                let i = rng.below(t.float_val.len());
                t.float_val[i] = v;
            }
        }
        7 => {
            // Clear every value: the fill rule then splats zeros of the declared shape.
            t.float_val.clear();
            t.int_val.clear();
            t.int64_val.clear();
            t.double_val.clear();
            t.bool_val.clear();
            t.string_val.clear();
            t.half_val.clear();
            t.tensor_content = Default::default();
        }
        _ => match rng.below(3) {
            0 => t.string_val.push(b"fuzz".to_vec()),
            1 => t.bool_val.push(rng.one_in(2)),
            _ => t.double_val.push(f64::from(pick_float(rng))),
        },
    }
}

/// Names a mutated attribute may refer to: nodes and functions of the graph being mutated.
#[derive(Debug, Default, Clone)]
pub struct Names {
    /// Node names.
    pub nodes: Vec<String>,
    /// Function names of the library.
    pub functions: Vec<String>,
    /// Ops present in the graph.
    pub ops: Vec<String>,
}

impl Names {
    fn of(nodes: &[NodeDef], lib: &[FunctionDef]) -> Names {
        let mut ops: Vec<String> = nodes.iter().map(|n| n.op.clone()).collect();
        ops.sort();
        ops.dedup();
        Names {
            nodes: nodes.iter().map(|n| n.name.clone()).collect(),
            functions: lib
                .iter()
                .filter_map(|f| f.signature.as_ref().map(|s| s.name.clone()))
                .collect(),
            ops,
        }
    }

    fn node(&self, rng: &mut Rng) -> String {
        self.nodes.get(rng.below(self.nodes.len())).cloned().unwrap_or_else(|| "missing".into())
    }

    fn function(&self, rng: &mut Rng) -> String {
        match rng.pick(&self.functions) {
            Some(f) if !rng.one_in(8) => f.clone(),
            _ => "no_such_function".into(),
        }
    }
}

fn random_attr(rng: &mut Rng, p: Profile, names: &Names) -> attr_value::Value {
    use attr_value::Value;
    match rng.below(8) {
        0 => Value::I(pick_int(rng, p)),
        1 => Value::F(pick_float(rng)),
        2 => Value::B(rng.one_in(2)),
        3 => Value::Type(pick_dtype(rng, p)),
        4 => Value::Shape(TensorShapeProto {
            dim: (0..rng.below(4))
                .map(|_| Dim { size: pick_dim(rng, p), name: String::new() })
                .collect(),
            unknown_rank: false,
        }),
        5 => Value::S(names.node(rng).into_bytes()),
        6 => Value::Func(NameAttrList { name: names.function(rng), attr: Default::default() }),
        _ => {
            let mut t = TensorProto { dtype: pick_dtype(rng, p), ..Default::default() };
            mutate_tensor(&mut t, rng, p);
            Value::Tensor(Box::new(t))
        }
    }
}

/// Edits an attribute value in kind (an int stays an int, mostly) or replaces it.
pub fn mutate_attr(a: &mut AttrValue, rng: &mut Rng, p: Profile, names: &Names) {
    use attr_value::Value;
    if rng.one_in(8) || a.value.is_none() {
        a.value = Some(random_attr(rng, p, names));
        return;
    }
    match a.value.as_mut().unwrap() {
        Value::I(i) => *i = pick_int(rng, p),
        Value::F(f) => *f = pick_float(rng),
        Value::B(b) => *b = !*b,
        Value::Type(t) => *t = pick_dtype(rng, p),
        Value::Shape(s) => mutate_shape(s, rng, p),
        Value::Tensor(t) => mutate_tensor(t, rng, p),
        Value::S(s) => {
            *s = match rng.below(4) {
                0 => Vec::new(),
                1 => b"NCHW".to_vec(),
                2 => format!("loc:@{}", names.node(rng)).into_bytes(),
                _ => names.node(rng).into_bytes(),
            }
        }
        Value::Func(f) => {
            if rng.one_in(2) {
                f.name = names.function(rng);
            } else {
                f.attr.clear();
            }
        }
        Value::Placeholder(s) => *s = "T".into(),
        Value::List(l) => match rng.below(6) {
            0 => {
                // Strides, ksize, dilations, perm, sizes...
                let v = match p {
                    Profile::Full => pick_int(rng, p),
                    Profile::Smoke => 1 + rng.below(4) as i64,
                };
                if l.i.is_empty() || rng.one_in(3) {
                    l.i.push(v);
                } else {
                    let i = rng.below(l.i.len());
                    l.i[i] = v;
                }
            }
            1 if !l.i.is_empty() => {
                l.i.pop();
            }
            2 => {
                let t = pick_dtype(rng, p);
                if l.r#type.is_empty() || rng.one_in(2) {
                    l.r#type.push(t);
                } else {
                    l.r#type.pop();
                }
            }
            3 => {
                if l.shape.is_empty() || rng.one_in(3) {
                    l.shape.push(TensorShapeProto::default());
                }
                let i = rng.below(l.shape.len());
                mutate_shape(&mut l.shape[i], rng, p);
            }
            4 => {
                if rng.one_in(2) {
                    l.s.push(format!("loc:@{}", names.node(rng)).into_bytes());
                } else {
                    l.s.pop();
                }
            }
            _ => {
                if l.tensor.is_empty() {
                    l.f.push(pick_float(rng));
                } else {
                    let i = rng.below(l.tensor.len());
                    mutate_tensor(&mut l.tensor[i], rng, p);
                }
            }
        },
    }
}

// ---- nodes and graphs --------------------------------------------------------------------------

fn random_input(rng: &mut Rng, p: Profile, names: &Names, in_function: bool) -> String {
    let node = names.node(rng);
    let port: String = match (p, rng.below(8)) {
        (_, 0..=3) => String::new(),
        (_, 4) => ":1".into(),
        (_, 5) => ":2".into(),
        (Profile::Full, 6) => format!(":{}", pick_int(rng, p)),
        (Profile::Full, _) => ":x".into(),
        _ => ":0".into(),
    };
    if rng.one_in(6) {
        return format!("^{node}");
    }
    if in_function && rng.one_in(2) {
        // The function body form `node:output_arg:index`.
        return format!("{node}:output:{}", rng.below(3));
    }
    format!("{node}{port}")
}

/// One edit of one node.
pub fn mutate_node(n: &mut NodeDef, rng: &mut Rng, p: Profile, names: &Names, in_function: bool) {
    match rng.below(12) {
        0 => {
            n.op = match rng.below(3) {
                0 => names.ops.get(rng.below(names.ops.len())).cloned().unwrap_or_default(),
                1 if !names.functions.is_empty() => names.function(rng),
                _ => rng.pick(OPS).unwrap().to_string(),
            }
        }
        1 => {
            let i = random_input(rng, p, names, in_function);
            let at = rng.below(n.input.len() + 1);
            n.input.insert(at, i);
        }
        2 if !n.input.is_empty() => {
            let i = rng.below(n.input.len());
            n.input.remove(i);
        }
        3 if !n.input.is_empty() => {
            let i = rng.below(n.input.len());
            n.input[i] = random_input(rng, p, names, in_function);
        }
        4 if n.input.len() > 1 => {
            let (a, b) = (rng.below(n.input.len()), rng.below(n.input.len()));
            n.input.swap(a, b);
        }
        5 => {
            // A self loop, or a control edge.
            let me = n.name.clone();
            n.input.push(if rng.one_in(2) { me } else { format!("^{}", names.node(rng)) });
        }
        6 | 7 if !n.attr.is_empty() => {
            let keys: Vec<String> = n.attr.keys().cloned().collect();
            let k = rng.pick(&keys).unwrap().clone();
            mutate_attr(n.attr.get_mut(&k).unwrap(), rng, p, names);
        }
        8 if !n.attr.is_empty() => {
            let keys: Vec<String> = n.attr.keys().cloned().collect();
            let k = rng.pick(&keys).unwrap().clone();
            n.attr.remove(&k);
        }
        9 => {
            let k = rng.pick(ATTR_KEYS).unwrap().to_string();
            n.attr.insert(k, AttrValue { value: Some(random_attr(rng, p, names)) });
        }
        10 => {
            n.device = match rng.below(3) {
                0 => String::new(),
                1 => "/device:GPU:0".into(),
                _ => "/job:localhost/replica:0/task:0/device:CPU:0".into(),
            }
        }
        _ => {
            n.name = match rng.below(4) {
                0 => names.node(rng),
                1 => format!("{}/fz", n.name),
                2 => String::new(),
                _ => format!("{}_1", n.name),
            }
        }
    }
}

fn mutate_nodes(
    nodes: &mut Vec<NodeDef>,
    rng: &mut Rng,
    p: Profile,
    names: &Names,
    in_function: bool,
) {
    match rng.below(10) {
        0 if !nodes.is_empty() => {
            let i = rng.below(nodes.len());
            nodes.remove(i);
        }
        1 if !nodes.is_empty() && nodes.len() < 100_000 => {
            let i = rng.below(nodes.len());
            let mut copy = nodes[i].clone();
            if rng.one_in(2) {
                copy.name = format!("{}_fz{}", copy.name, rng.below(100));
            }
            let at = rng.below(nodes.len() + 1);
            nodes.insert(at, copy);
        }
        2 if nodes.len() > 1 => {
            let (a, b) = (rng.below(nodes.len()), rng.below(nodes.len()));
            nodes.swap(a, b);
        }
        _ if !nodes.is_empty() => {
            let i = rng.below(nodes.len());
            mutate_node(&mut nodes[i], rng, p, names, in_function);
        }
        _ => nodes.push(NodeDef {
            name: "fz".into(),
            op: rng.pick(OPS).unwrap().to_string(),
            ..Default::default()
        }),
    }
}

fn mutate_function(f: &mut FunctionDef, rng: &mut Rng, p: Profile, graph_names: &Names) {
    let mut names = Names::of(&f.node_def, &[]);
    names.functions = graph_names.functions.clone();
    if let Some(sig) = &f.signature {
        names.nodes.extend(sig.input_arg.iter().map(|a| a.name.clone()));
    }
    match rng.below(6) {
        0 => {
            if let Some(sig) = f.signature.as_mut() {
                let args = if rng.one_in(2) { &mut sig.input_arg } else { &mut sig.output_arg };
                match rng.below(4) {
                    0 if !args.is_empty() => {
                        args.remove(rng.below(args.len()));
                    }
                    1 if !args.is_empty() => {
                        let a = rng.below(args.len());
                        args[a].r#type = pick_dtype(rng, p);
                        args[a].type_attr.clear();
                    }
                    2 if !args.is_empty() => {
                        let a = rng.below(args.len());
                        args[a].number_attr = "N".into();
                    }
                    _ => {
                        let mut a = args.first().cloned().unwrap_or_default();
                        a.name = format!("fz{}", rng.below(10));
                        args.push(a);
                    }
                }
            }
        }
        1 if !f.ret.is_empty() => {
            let keys: Vec<String> = f.ret.keys().cloned().collect();
            let k = rng.pick(&keys).unwrap().clone();
            if rng.one_in(2) {
                f.ret.remove(&k);
            } else {
                f.ret.insert(k, random_input(rng, p, &names, true));
            }
        }
        _ => mutate_nodes(&mut f.node_def, rng, p, &names, true),
    }
}

/// One to four edits of a GraphDef: nodes, inputs, ops, attributes, functions, versions.
pub fn mutate_graph(g: &mut GraphDef, rng: &mut Rng, p: Profile) {
    for _ in 0..1 + rng.below(4) {
        let lib = g.library.as_ref().map(|l| l.function.as_slice()).unwrap_or(&[]);
        let names = Names::of(&g.node, lib);
        let nfun = lib.len();
        match rng.below(12) {
            0 if nfun > 0 => {
                let lib = g.library.as_mut().unwrap();
                let i = rng.below(nfun);
                match rng.below(8) {
                    0 => {
                        lib.function.remove(i);
                    }
                    1 => {
                        let copy = lib.function[i].clone();
                        lib.function.push(copy);
                    }
                    _ => mutate_function(&mut lib.function[i], rng, p, &names),
                }
            }
            1 if nfun > 0 => {
                let i = rng.below(nfun);
                mutate_function(&mut g.library.as_mut().unwrap().function[i], rng, p, &names);
            }
            2 => {
                let v = g.versions.get_or_insert_with(Default::default);
                match rng.below(3) {
                    0 => v.producer = pick_int(rng, p) as i32,
                    1 => v.min_consumer = pick_int(rng, p) as i32,
                    #[allow(deprecated)]
                    _ => g.version = pick_int(rng, p) as i32,
                }
            }
            _ => mutate_nodes(&mut g.node, rng, p, &names, false),
        }
    }
}

fn mutate_tensor_info(t: &mut TensorInfo, rng: &mut Rng, p: Profile, names: &Names) {
    match rng.below(4) {
        0 => t.dtype = pick_dtype(rng, p),
        1 => mutate_shape(t.tensor_shape.get_or_insert_with(Default::default), rng, p),
        2 => t.encoding = None,
        _ => t.encoding = Some(tensor_info::Encoding::Name(random_input(rng, p, names, false))),
    }
}

/// One to three edits of a MetaGraphDef: its graph, signatures, tags, object graph, saver.
pub fn mutate_meta_graph(m: &mut MetaGraphDef, rng: &mut Rng, p: Profile) {
    for _ in 0..1 + rng.below(3) {
        let names = m
            .graph_def
            .as_ref()
            .map(|g| {
                Names::of(&g.node, g.library.as_ref().map(|l| l.function.as_slice()).unwrap_or(&[]))
            })
            .unwrap_or_default();
        match rng.below(10) {
            0 | 1 if !m.signature_def.is_empty() => {
                let keys: Vec<String> = m.signature_def.keys().cloned().collect();
                let k = rng.pick(&keys).unwrap().clone();
                let sig = m.signature_def.get_mut(&k).unwrap();
                let map = if rng.one_in(2) { &mut sig.outputs } else { &mut sig.inputs };
                let ks: Vec<String> = map.keys().cloned().collect();
                match rng.pick(&ks).cloned() {
                    Some(key) if rng.one_in(4) => {
                        map.remove(&key);
                    }
                    Some(key) => mutate_tensor_info(map.get_mut(&key).unwrap(), rng, p, &names),
                    None => {
                        let mut t = TensorInfo::default();
                        mutate_tensor_info(&mut t, rng, p, &names);
                        map.insert("fz".into(), t);
                    }
                }
            }
            2 => {
                if let Some(info) = m.meta_info_def.as_mut() {
                    match rng.below(3) {
                        0 => info.tags.clear(),
                        1 => info.tags.push("train".into()),
                        _ => info.stripped_op_list = None,
                    }
                }
            }
            3 => {
                if let Some(og) = m.object_graph_def.as_mut() {
                    if !og.nodes.is_empty() {
                        let i = rng.below(og.nodes.len());
                        let n = og.nodes.len() as i32;
                        let node = &mut og.nodes[i];
                        match rng.below(3) {
                            0 if !node.children.is_empty() => {
                                let c = rng.below(node.children.len());
                                node.children[c].node_id = match p {
                                    Profile::Smoke => rng.below(n as usize) as i32,
                                    Profile::Full => pick_int(rng, p) as i32,
                                };
                            }
                            1 if !node.children.is_empty() => {
                                let c = rng.below(node.children.len());
                                node.children.remove(c);
                            }
                            _ => node.kind = None,
                        }
                    }
                }
            }
            4 => {
                let k = rng.pick(&["SAVEABLE_OBJECTS", "variables", "trainable_variables"]);
                m.collection_def.remove(*k.unwrap());
            }
            5 => {
                if let Some(s) = m.saver_def.as_mut() {
                    s.restore_op_name = names.node(rng);
                }
            }
            _ => mutate_graph(m.graph_def.get_or_insert_with(Default::default), rng, p),
        }
    }
}

/// What a binary model buffer holds, as far as the mutator can tell.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // One per input; the size does not matter.
pub enum Model {
    /// `tensorflow.GraphDef`.
    Graph(GraphDef),
    /// `tensorflow.MetaGraphDef`.
    Meta(Box<MetaGraphDef>),
    /// `tensorflow.SavedModel`.
    Saved(SavedModel),
}

/// Decodes a binary model the way tf-io would classify it (`None` if it is not one).
pub fn decode_model(data: &[u8]) -> Option<Model> {
    let Some(kind) = tf_io::detect::binary_kind(data) else {
        // Text, or unreadable for the tools: decode by shape.
        return SavedModel::decode(data)
            .ok()
            .filter(|s| !s.meta_graphs.is_empty())
            .map(Model::Saved)
            .or_else(|| GraphDef::decode(data).ok().map(Model::Graph));
    };
    match kind {
        tf_io::MessageKind::GraphDef => GraphDef::decode(data).ok().map(Model::Graph),
        tf_io::MessageKind::MetaGraphDef => {
            MetaGraphDef::decode(data).ok().map(|m| Model::Meta(Box::new(m)))
        }
        tf_io::MessageKind::SavedModel => SavedModel::decode(data).ok().map(Model::Saved),
    }
}

impl Model {
    /// Binary encoding.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Model::Graph(g) => g.encode_to_vec(),
            Model::Meta(m) => m.encode_to_vec(),
            Model::Saved(s) => s.encode_to_vec(),
        }
    }

    /// Text format, as tf-convert prints it.
    pub fn to_text(&self) -> Option<String> {
        match self {
            Model::Graph(g) => tf_io::text::print(g).ok(),
            Model::Meta(m) => tf_io::text::print(m.as_ref()).ok(),
            Model::Saved(s) => tf_io::text::print(s).ok(),
        }
    }

    /// One to four edits.
    pub fn mutate(&mut self, rng: &mut Rng, p: Profile) {
        match self {
            Model::Graph(g) => mutate_graph(g, rng, p),
            Model::Meta(m) => mutate_meta_graph(m, rng, p),
            Model::Saved(s) => {
                if s.meta_graphs.is_empty() {
                    s.meta_graphs.push(MetaGraphDef::default());
                }
                if rng.one_in(20) {
                    s.saved_model_schema_version = pick_int(rng, p);
                }
                let i = rng.below(s.meta_graphs.len());
                mutate_meta_graph(&mut s.meta_graphs[i], rng, p);
            }
        }
    }
}

/// Decodes a binary model, edits it and encodes it again; `None` if `data` is not a model.
pub fn mutate_model(data: &[u8], rng: &mut Rng, p: Profile) -> Option<Vec<u8>> {
    let mut m = decode_model(data)?;
    m.mutate(rng, p);
    Some(m.encode())
}

// ---- text format -------------------------------------------------------------------------------

/// A pbtxt token: its text and the whitespace/comments before it.
#[derive(Debug, Clone)]
struct Token {
    pre: String,
    text: String,
}

fn tokenize(s: &str) -> Option<Vec<Token>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'#') {
            if b[i] == b'#' {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            } else {
                i += 1;
            }
        }
        let pre = s[start..i].to_string();
        if i == b.len() {
            out.push(Token { pre, text: String::new() });
            break;
        }
        let t0 = i;
        match b[i] {
            b'"' | b'\'' => {
                let q = b[i];
                i += 1;
                while i < b.len() && b[i] != q {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                if i > b.len() {
                    return None;
                }
            }
            b'{' | b'}' | b'[' | b']' | b':' | b',' | b'<' | b'>' | b';' => i += 1,
            _ => {
                while i < b.len()
                    && !b[i].is_ascii_whitespace()
                    && !b"{}[]:,<>;\"'#".contains(&b[i])
                {
                    i += 1;
                }
                if i == t0 {
                    return None;
                }
            }
        }
        out.push(Token { pre, text: s.get(t0..i)?.to_string() });
    }
    Some(out)
}

fn is_number(t: &str) -> bool {
    let t = t.strip_prefix('-').unwrap_or(t);
    t.chars().next().is_some_and(|c| c.is_ascii_digit() || c == '.')
        || matches!(t, "inf" | "nan" | "infinity")
}

/// The index just past the `}` matching the `{` at `open`.
fn block_end(toks: &[Token], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate().skip(open) {
        match t.text.as_str() {
            "{" | "<" => depth += 1,
            "}" | ">" => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// Token edits that keep pbtxt syntactically valid: a number or string replaced by another of
/// its kind, an enum name by another, a whole `field { ... }` block deleted, duplicated or
/// moved, a scalar field duplicated.
fn mutate_tokens(s: &str, rng: &mut Rng, p: Profile) -> Option<String> {
    let mut toks = tokenize(s)?;
    let n = toks.len();
    if n < 2 {
        return None;
    }
    for _ in 0..1 + rng.below(3) {
        let n = toks.len();
        let i = rng.below(n);
        let text = toks[i].text.clone();
        match rng.below(4) {
            0 | 1 => {
                // Replace a value in kind.
                let Some(j) = (0..n).map(|k| (i + k) % n).find(|&k| {
                    let t = &toks[k].text;
                    is_number(t) || t.starts_with('"') || t.starts_with("DT_")
                }) else {
                    continue;
                };
                let t = toks[j].text.clone();
                toks[j].text = if is_number(&t) {
                    match rng.below(4) {
                        0 => format!("{}", pick_float(rng)).replace("NaN", "nan"),
                        1 if p == Profile::Full => (*rng
                            .pick(&["99999999999999999999", "-0", "1e400", "0x7fffffff"])
                            .unwrap())
                        .to_string(),
                        _ => pick_int(rng, p).to_string(),
                    }
                } else if t.starts_with("DT_") {
                    (*rng
                        .pick(&[
                            "DT_FLOAT",
                            "DT_INT32",
                            "DT_INT64",
                            "DT_STRING",
                            "DT_BOOL",
                            "DT_HALF",
                            "DT_RESOURCE",
                            "DT_VARIANT",
                            "DT_INVALID",
                            "DT_QINT8",
                            "DT_FLOAT_REF",
                        ])
                        .unwrap())
                    .to_string()
                } else {
                    // Another string of the file (often a node name), or a special one.
                    let strings: Vec<&Token> =
                        toks.iter().filter(|t| t.text.starts_with('"')).collect();
                    match rng.below(4) {
                        0 => "\"\"".into(),
                        1 => "\"\\000\\377\"".into(),
                        _ => rng.pick(&strings).map(|t| t.text.clone()).unwrap_or(t),
                    }
                };
            }
            2 => {
                // A block: `name {` ... `}` (or `name: {`).
                let Some(open) = (0..n).map(|k| (i + k) % n).find(|&k| toks[k].text == "{") else {
                    continue;
                };
                if open == 0 {
                    continue;
                }
                let start =
                    if open >= 2 && toks[open - 1].text == ":" { open - 2 } else { open - 1 };
                if toks[start].text.starts_with('"') {
                    continue;
                }
                let Some(end) = block_end(&toks, open) else { continue };
                let block: Vec<Token> = toks[start..end].to_vec();
                match rng.below(3) {
                    0 => {
                        toks.drain(start..end);
                    }
                    1 if toks.len() < 200_000 => {
                        let at = end;
                        let mut copy = block;
                        copy[0].pre = "\n".into();
                        toks.splice(at..at, copy);
                    }
                    _ => {
                        // Move it to the top level end (before the trailing whitespace token).
                        toks.drain(start..end);
                        let at = toks.len().saturating_sub(1);
                        let mut copy = block;
                        copy[0].pre = "\n".into();
                        toks.splice(at..at, copy);
                    }
                }
            }
            _ => {
                // Duplicate a scalar field `key: value`.
                if text != ":" || i == 0 || i + 1 >= n || toks[i + 1].text == "{" {
                    continue;
                }
                let mut copy = toks[i - 1..i + 2].to_vec();
                copy[0].pre = " ".into();
                toks.splice(i + 2..i + 2, copy);
            }
        }
    }
    Some(toks.iter().map(|t| format!("{}{}", t.pre, t.text)).collect())
}

/// Edits pbtxt and keeps it valid text format: either parsed, edited as a message and printed
/// again, or edited token by token (values, blocks, repeated fields).
pub fn mutate_pbtxt(data: &[u8], rng: &mut Rng, p: Profile) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(data).ok()?;
    if rng.one_in(2) {
        let loaded = tf_io::read_bytes(
            bytes::Bytes::copy_from_slice(data),
            "mutator",
            None,
            &tf_io::ReadOptions::default(),
        )
        .ok()?;
        let mut m = match loaded.kind {
            tf_io::MessageKind::GraphDef => Model::Graph(loaded.graph),
            tf_io::MessageKind::MetaGraphDef => {
                Model::Meta(Box::new(tf_io::text::parse::<MetaGraphDef>(data).ok()?))
            }
            tf_io::MessageKind::SavedModel => {
                Model::Saved(tf_io::text::parse::<SavedModel>(data).ok()?)
            }
        };
        m.mutate(rng, p);
        return m.to_text().map(String::into_bytes);
    }
    mutate_tokens(text, rng, p).map(String::into_bytes)
}

// ---- checkpoints -------------------------------------------------------------------------------

/// A checkpoint as one fuzz input: `u32` little-endian length of the index, the `.index` file,
/// then the single data shard.
pub fn pack_checkpoint(index: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = (index.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(index);
    out.extend_from_slice(data);
    out
}

/// The `.index` and data parts of a packed checkpoint.
pub fn unpack_checkpoint(b: &[u8]) -> (&[u8], &[u8]) {
    if b.len() < 4 {
        return (b, &[]);
    }
    let n = (u32::from_le_bytes(b[..4].try_into().unwrap()) as usize).min(b.len() - 4);
    (&b[4..4 + n], &b[4 + n..])
}

fn block_entries(b: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let restarts = u32::from_le_bytes(b.get(b.len().checked_sub(4)?..)?.try_into().ok()?) as usize;
    let end = b.len().checked_sub(4 + restarts.checked_mul(4)?)?;
    let (mut pos, mut key, mut out) = (0, Vec::new(), Vec::new());
    while pos < end {
        let shared = tf_io::varint_at(b, &mut pos)? as usize;
        let unshared = tf_io::varint_at(b, &mut pos)? as usize;
        let vlen = tf_io::varint_at(b, &mut pos)? as usize;
        key.truncate(shared);
        key.extend_from_slice(b.get(pos..pos.checked_add(unshared)?)?);
        pos += unshared;
        out.push((key.clone(), b.get(pos..pos.checked_add(vlen)?)?.to_vec()));
        pos += vlen;
    }
    Some(out)
}

/// The entries of an uncompressed `.index` table (checksums not verified: this is a seed).
pub fn read_index(file: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let footer = file.get(file.len().checked_sub(48)?..)?;
    let mut pos = 0;
    let (_, _) = (tf_io::varint_at(footer, &mut pos)?, tf_io::varint_at(footer, &mut pos)?);
    let (off, size) = (
        tf_io::varint_at(footer, &mut pos)? as usize,
        tf_io::varint_at(footer, &mut pos)? as usize,
    );
    let index = file.get(off..off.checked_add(size)?)?;
    let mut out = Vec::new();
    for (_, h) in block_entries(index)? {
        let mut p = 0;
        let (o, s) =
            (tf_io::varint_at(&h, &mut p)? as usize, tf_io::varint_at(&h, &mut p)? as usize);
        if *file.get(o.checked_add(s)?)? != 0 {
            return None; // Snappy-compressed: not handled here.
        }
        out.extend(block_entries(file.get(o..o + s)?)?);
    }
    Some(out)
}

fn masked_crc(parts: &[&[u8]]) -> u32 {
    let mut all = Vec::new();
    parts.iter().for_each(|p| all.extend_from_slice(p));
    tf_io::crc32c(&all).rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Writes entries as an `.index` table with valid checksums (one data block, in the given order:
/// unsorted keys are one of the things fuzzed).
pub fn write_index(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    fn block(out: &mut Vec<u8>, contents: &[u8]) -> (u64, u64) {
        let at = out.len() as u64;
        out.extend_from_slice(contents);
        out.push(0);
        let crc = masked_crc(&[contents, &[0]]);
        out.extend_from_slice(&crc.to_le_bytes());
        (at, contents.len() as u64)
    }
    fn entries_block(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
        let mut b = Vec::new();
        let mut restarts = Vec::new();
        for (k, v) in entries {
            restarts.push(b.len() as u32);
            prost::encoding::encode_varint(0, &mut b);
            prost::encoding::encode_varint(k.len() as u64, &mut b);
            prost::encoding::encode_varint(v.len() as u64, &mut b);
            b.extend_from_slice(k);
            b.extend_from_slice(v);
        }
        if restarts.is_empty() {
            restarts.push(0);
        }
        for r in &restarts {
            b.extend_from_slice(&r.to_le_bytes());
        }
        b.extend_from_slice(&(restarts.len() as u32).to_le_bytes());
        b
    }
    let mut out = Vec::new();
    let data = block(&mut out, &entries_block(entries));
    let meta = block(&mut out, &entries_block(&[]));
    let mut handle = Vec::new();
    prost::encoding::encode_varint(data.0, &mut handle);
    prost::encoding::encode_varint(data.1, &mut handle);
    let last = entries.iter().map(|(k, _)| k.clone()).max().unwrap_or_default();
    let mut last_key = last;
    last_key.push(0xff);
    let index = block(&mut out, &entries_block(&[(last_key, handle)]));
    let mut footer = Vec::new();
    for v in [meta.0, meta.1, index.0, index.1] {
        prost::encoding::encode_varint(v, &mut footer);
    }
    footer.resize(40, 0);
    footer.extend_from_slice(&0xdb47_7524_8b80_fb57u64.to_le_bytes());
    out.extend_from_slice(&footer);
    out
}

fn fix_crc(e: &mut BundleEntryProto, data: &[u8]) {
    let (o, s) = (e.offset, e.size);
    if o >= 0 && s >= 0 && (o as u64).saturating_add(s as u64) <= data.len() as u64 {
        let bytes = &data[o as usize..(o + s) as usize];
        e.crc32c = tf_io::crc32c(bytes).rotate_right(15).wrapping_add(0xa282_ead8);
    }
}

/// Edits a packed checkpoint ([`pack_checkpoint`]): entries (dtype, shape, offset, size, shard,
/// slices, CRC), keys, the header, and tensor bytes (with their CRC recomputed). The index is
/// written again with valid checksums. `None` if the index cannot be read.
pub fn mutate_checkpoint(packed: &[u8], rng: &mut Rng, p: Profile) -> Option<Vec<u8>> {
    let (index, data) = unpack_checkpoint(packed);
    let mut entries = read_index(index)?;
    let mut data = data.to_vec();
    for _ in 0..1 + rng.below(3) {
        if entries.is_empty() {
            entries.push((Vec::new(), BundleHeaderProto::default().encode_to_vec()));
        }
        let i = rng.below(entries.len());
        if entries[i].0.is_empty() {
            // The header.
            let Ok(mut h) = BundleHeaderProto::decode(entries[i].1.as_slice()) else { continue };
            match rng.below(3) {
                0 if p == Profile::Full => h.num_shards = pick_int(rng, p) as i32,
                1 => h.endianness = 1 - h.endianness.clamp(0, 1),
                _ => h.version.get_or_insert_with(Default::default).producer = rng.below(3) as i32,
            }
            entries[i].1 = h.encode_to_vec();
            continue;
        }
        match rng.below(12) {
            0 => {
                entries.remove(i);
            }
            1 => {
                let copy = entries[i].clone();
                entries.insert(i, copy);
            }
            2 => {
                let (a, b) = (i, rng.below(entries.len()));
                entries.swap(a, b);
            }
            3 => entries[i].0.push(b'x'),
            _ => {
                let Ok(mut e) = BundleEntryProto::decode(entries[i].1.as_slice()) else { continue };
                match rng.below(8) {
                    0 => e.dtype = pick_dtype(rng, p),
                    1 => mutate_shape(e.shape.get_or_insert_with(Default::default), rng, p),
                    2 => {
                        e.offset = match p {
                            Profile::Smoke => rng.below(data.len() + 1) as i64,
                            Profile::Full => pick_int(rng, p),
                        };
                        fix_crc(&mut e, &data);
                    }
                    3 => {
                        e.size = match p {
                            Profile::Smoke => rng.below(data.len() + 1) as i64,
                            Profile::Full => pick_int(rng, p),
                        };
                        fix_crc(&mut e, &data);
                    }
                    4 if p == Profile::Full => e.shard_id = pick_int(rng, p) as i32,
                    5 => {
                        if e.slices.is_empty() || rng.one_in(2) {
                            e.slices.push(Default::default());
                        }
                        let s = rng.below(e.slices.len());
                        let slice = &mut e.slices[s];
                        use tf_proto::tensorflow::tensor_slice_proto::{
                            extent::HasLengthHack, Extent,
                        };
                        slice.extent.push(Extent {
                            start: pick_int(rng, p),
                            has_length_hack: rng
                                .one_in(2)
                                .then(|| HasLengthHack::Length(pick_int(rng, p))),
                        });
                    }
                    _ => {
                        // Bytes of this tensor changed, its CRC made right again.
                        let (o, s) = (e.offset.max(0) as usize, e.size.max(0) as usize);
                        if s > 0 && o.saturating_add(s) <= data.len() {
                            for _ in 0..1 + rng.below(3) {
                                let at = o + rng.below(s);
                                data[at] = match p {
                                    Profile::Full => rng.next_u64() as u8,
                                    Profile::Smoke => rng.below(3) as u8,
                                };
                            }
                            fix_crc(&mut e, &data);
                        }
                    }
                }
                entries[i].1 = e.encode_to_vec();
            }
        }
    }
    if rng.one_in(2) {
        entries.sort();
    }
    Some(pack_checkpoint(&write_index(&entries), &data))
}
