//! Each mode, axis rule and encoding on small hand-built graphs. The values the rewritten
//! graph computes are checked with a tiny evaluator of the ops tf-quant emits (Const, Cast,
//! Mul, Dequantize, Reshape); `tests/tf/test_quant.py` has real TensorFlow run them.

use super::*;
use tf_proto::tensorflow::{AttrValue, DataType, TensorProto};

// ---------------------------------------------------------------------------------------------
// graph building

fn node(name: &str, op: &str, inputs: &[&str]) -> NodeDef {
    NodeDef {
        name: name.into(),
        op: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn with(mut n: NodeDef, key: &str, v: impl Into<AttrValue>) -> NodeDef {
    n.attr.insert(key.into(), v.into());
    n
}

fn placeholder(name: &str) -> NodeDef {
    with(node(name, "Placeholder", &[]), "dtype", DataType::DtFloat)
}

/// A deterministic pseudo-random float tensor in [-1, 1), channel c scaled by (c + 1).
fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut x = seed.wrapping_mul(2654435761).wrapping_add(12345);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect()
}

fn const_f32(name: &str, shape: &[i64], v: &[f32]) -> NodeDef {
    let t = Tensor::from_values(dt::FLOAT, shape, v).unwrap().to_proto();
    with(with(node(name, "Const", &[]), "dtype", DataType::DtFloat), "value", t)
}

fn const_rand(name: &str, shape: &[i64], seed: u32) -> (NodeDef, Vec<f32>) {
    let n = shape.iter().product::<i64>() as usize;
    let v = values(n, seed);
    (const_f32(name, shape, &v), v)
}

fn graph(nodes: Vec<NodeDef>) -> GraphDef {
    GraphDef { node: nodes, ..Default::default() }
}

fn cfg(mode: Mode) -> QuantConfig {
    QuantConfig { mode, min_elements: 16, threads: 1, ..Default::default() }
}

fn run(g: GraphDef, c: &QuantConfig) -> Quantized {
    quantize_graph_def(g, c).unwrap()
}

fn find<'a>(g: &'a GraphDef, name: &str) -> &'a NodeDef {
    g.node.iter().find(|n| n.name == name).unwrap_or_else(|| panic!("no node {name}"))
}

fn tensor_of(n: &NodeDef) -> Tensor {
    Tensor::from_proto(n.attr_opt_tensor("value").unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// a tiny evaluator of what tf-quant emits

fn as_f32s(t: &Tensor) -> Vec<f32> {
    let raw = t.raw().unwrap();
    match dtype_base(t.dtype) {
        dt::FLOAT => t.values::<f32>().unwrap(),
        dt::INT8 | dt::QINT8 => raw.iter().map(|b| *b as i8 as f32).collect(),
        dt::QUINT8 => raw.iter().map(|b| *b as f32).collect(),
        dt::HALF => t.values::<half::f16>().unwrap().iter().map(|h| h.to_f32()).collect(),
        dt::BFLOAT16 => t.values::<half::bf16>().unwrap().iter().map(|h| h.to_f32()).collect(),
        dt::INT32 => t.values::<i32>().unwrap().iter().map(|v| *v as f32).collect(),
        other => panic!("dtype {other}"),
    }
}

fn dtype_base(d: i32) -> i32 {
    tf_tensor::dtype::base(d)
}

/// (shape, values) of a node's output 0.
fn eval(g: &GraphDef, name: &str) -> (Vec<i64>, Vec<f32>) {
    let n = find(g, name);
    let data_inputs: Vec<&str> =
        n.input.iter().filter(|s| !s.starts_with('^')).map(String::as_str).collect();
    match n.op.as_str() {
        "Const" => {
            let t = tensor_of(n);
            (t.shape.clone(), as_f32s(&t))
        }
        "Identity" => eval(g, data_inputs[0]),
        "Cast" => {
            let src = n.attr_opt_type("SrcT").unwrap();
            let c = find(g, data_inputs[0]);
            assert_eq!(c.op, "Const");
            assert_eq!(tensor_of(c).dtype, src as i32, "Cast SrcT matches the Const");
            assert_eq!(n.attr_opt_type("DstT"), Some(DataType::DtFloat));
            eval(g, data_inputs[0])
        }
        "Mul" => {
            let (sa, a) = eval(g, data_inputs[0]);
            let (sb, b) = eval(g, data_inputs[1]);
            assert!(sb.len() <= sa.len());
            // Right-aligned broadcasting of b against a.
            let bs: Vec<i64> = std::iter::repeat_n(1, sa.len() - sb.len()).chain(sb).collect();
            let out = (0..a.len())
                .map(|i| {
                    let (mut rem, mut bi, mut stride) = (i, 0usize, 1usize);
                    for d in (0..sa.len()).rev() {
                        let idx = rem % sa[d] as usize;
                        rem /= sa[d] as usize;
                        if bs[d] != 1 {
                            assert_eq!(bs[d], sa[d]);
                            bi += idx * stride;
                            stride *= bs[d] as usize;
                        }
                    }
                    a[i] * b[bi]
                })
                .collect();
            (sa, out)
        }
        "Reshape" => {
            let (_, v) = eval(g, data_inputs[0]);
            let (_, s) = eval(g, data_inputs[1]);
            (s.iter().map(|d| *d as i64).collect(), v)
        }
        "Dequantize" => {
            let (shape, q) = eval(g, data_inputs[0]);
            let (_, lo) = eval(g, data_inputs[1]);
            let (_, hi) = eval(g, data_inputs[2]);
            let mode = n.attr_opt_str("mode").unwrap_or("MIN_COMBINED");
            match mode {
                "SCALED" => {
                    assert_eq!(n.attr_opt_bool("narrow_range"), Some(true));
                    let axis = n.attr_opt_i64("axis").unwrap_or(-1);
                    let scale = |c: usize| (lo[c] / -127.0f32).max(hi[c] / 127.0);
                    let out = if axis < 0 {
                        q.iter().map(|x| x * scale(0)).collect()
                    } else {
                        let a = axis as usize;
                        let inner: i64 = shape[a + 1..].iter().product();
                        let ch = shape[a];
                        assert_eq!(lo.len() as i64, ch);
                        q.iter()
                            .enumerate()
                            .map(|(i, x)| x * scale((i as i64 / inner % ch) as usize))
                            .collect()
                    };
                    (shape, out)
                }
                "MIN_FIRST" => {
                    let (min, max) = (lo[0], hi[0]);
                    let range = (max - min) as f64 * (256.0 / 255.0);
                    let step = range / 256.0;
                    let min_rounded = ((min / step as f32).round() * step as f32) as f64;
                    (shape, q.iter().map(|x| (min_rounded + *x as f64 * step) as f32).collect())
                }
                m => panic!("mode {m}"),
            }
        }
        op => panic!("eval: op {op}"),
    }
}

/// Checks |w − ŵ| ≤ scale/2 (plus an ulp) element by element, channel by channel.
fn assert_within_half_step(w: &[f32], got: &[f32], scale_of: impl Fn(usize) -> f32) {
    assert_eq!(w.len(), got.len());
    for (i, (a, b)) in w.iter().zip(got).enumerate() {
        let s = scale_of(i);
        assert!(
            (a - b).abs() <= s * 0.5 * (1.0 + 1e-5) + 1e-7,
            "element {i}: {a} vs {b} (scale {s})"
        );
    }
}

fn max_abs_by(w: &[f32], channel: impl Fn(usize) -> usize, channels: usize) -> Vec<f32> {
    let mut m = vec![0.0f32; channels];
    for (i, v) in w.iter().enumerate() {
        let c = channel(i);
        m[c] = m[c].max(v.abs());
    }
    m
}

// ---------------------------------------------------------------------------------------------
// modes and flags

#[test]
fn modes_parse() {
    assert_eq!("int8".parse::<Mode>().unwrap(), Mode::Int8);
    assert_eq!("uint8".parse::<Mode>().unwrap(), Mode::Uint8);
    assert_eq!("fp16".parse::<Mode>().unwrap(), Mode::Float16);
    assert_eq!("bfloat16".parse::<Mode>().unwrap(), Mode::Bfloat16);
    assert_eq!("round".parse::<Mode>().unwrap(), Mode::Round(256));
    assert_eq!("round:16".parse::<Mode>().unwrap(), Mode::Round(16));
    assert_eq!(
        "int4".parse::<Mode>().unwrap_err().to_string(),
        "unknown mode 'int4' (expected int8, uint8, float16, bfloat16, round or round:N)"
    );
    assert!(matches!("round:0".parse::<Mode>(), Err(QuantError::RoundSteps(_))));
    assert!(matches!("round:x".parse::<Mode>(), Err(QuantError::RoundSteps(_))));
    assert_eq!("dequantize".parse::<Encoding>().unwrap(), Encoding::Dequantize);
    assert!("qdq".parse::<Encoding>().is_err());
}

#[test]
fn bad_regex_is_one_line_naming_the_flag() {
    let e = compile_patterns("--include", &["conv[".into()]).unwrap_err().to_string();
    assert!(e.starts_with("--include 'conv[': not a valid regular expression: "), "{e}");
    assert!(!e.contains('\n'), "{e}");
    assert!(e.contains("unclosed"), "{e}");
}

#[test]
fn int8_only_flags_are_rejected_with_other_modes() {
    let mut c = cfg(Mode::Float16);
    c.per_tensor = true;
    let e = quantize_graph_def(graph(vec![]), &c).unwrap_err().to_string();
    assert_eq!(e, "--per-tensor applies to int8 only, not float16");
    let mut c = cfg(Mode::Uint8);
    c.encoding = Encoding::Dequantize;
    assert!(quantize_graph_def(graph(vec![]), &c).is_err());
}

// ---------------------------------------------------------------------------------------------
// int8, per channel: the axis rules

fn conv_graph() -> (GraphDef, Vec<f32>) {
    let (w, v) = const_rand("conv/kernel", &[3, 3, 4, 8], 1);
    let g = graph(vec![
        placeholder("x"),
        w,
        node("conv/kernel/read", "Identity", &["conv/kernel"]),
        with(node("conv", "Conv2D", &["x", "conv/kernel/read"]), "T", DataType::DtFloat),
        const_f32("conv/bias", &[8], &[0.5; 8]),
        node("out", "BiasAdd", &["conv", "conv/bias"]),
    ]);
    (g, v)
}

#[test]
fn conv2d_filter_per_output_channel_cast_mul() {
    let (g, w) = conv_graph();
    let q = run(g, &cfg(Mode::Int8));
    let names: Vec<&str> = q.graph.node.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "x",
            "conv/kernel/quantized",
            "conv/kernel/cast",
            "conv/kernel/scale",
            "conv/kernel",
            "conv/kernel/read",
            "conv",
            "conv/bias",
            "out"
        ]
    );
    let qc = find(&q.graph, "conv/kernel/quantized");
    assert_eq!(tensor_of(qc).dtype, dt::INT8);
    assert_eq!(qc.attr_opt_type("dtype"), Some(DataType::DtInt8));
    let cast = find(&q.graph, "conv/kernel/cast");
    assert_eq!(cast.attr_opt_type("SrcT"), Some(DataType::DtInt8));
    assert_eq!(cast.attr_opt_bool("Truncate"), Some(false));
    let mul = find(&q.graph, "conv/kernel");
    assert_eq!(
        (mul.op.as_str(), mul.input.clone()),
        ("Mul", vec!["conv/kernel/cast".into(), "conv/kernel/scale".into()])
    );
    let scale = tensor_of(find(&q.graph, "conv/kernel/scale"));
    assert_eq!(scale.shape, [8]);
    let m = max_abs_by(&w, |i| i % 8, 8);
    let s = scale.values::<f32>().unwrap();
    for c in 0..8 {
        assert_eq!(s[c], m[c] / 127.0, "scale of channel {c} is max|w|/127");
    }
    // Narrow range: ±127, never -128; the channel's max hits ±127.
    let qv: Vec<i8> = tensor_of(qc).raw().unwrap().iter().map(|b| *b as i8).collect();
    assert!(qv.iter().all(|v| *v >= -127));
    for c in 0..8 {
        assert_eq!(qv.iter().skip(c).step_by(8).map(|v| v.unsigned_abs()).max(), Some(127));
    }
    let (shape, got) = eval(&q.graph, "conv/kernel");
    assert_eq!(shape, [3, 3, 4, 8]);
    assert_within_half_step(&w, &got, |i| s[i % 8]);
    // The bias is read by BiasAdd: not a weight (and too small anyway).
    assert_eq!(find(&q.graph, "conv/bias").op, "Const");
    let r = &q.report.tensors[0];
    assert_eq!(r.axis, Some(vec![3]));
    assert_eq!(r.scales, Some(8));
    assert_eq!((r.bytes_before, r.bytes_after), (4 * 288, 288 + 4 * 8));
    assert_eq!(r.read_by, ["Conv2D input 1 of 'conv'"]);
    assert!(r.snr_db.unwrap() > 35.0, "{:?}", r.snr_db);
    assert!(r.max_abs_error <= (s.iter().fold(0.0f32, |a, b| a.max(*b)) * 0.5) as f64 + 1e-7);
}

#[test]
fn matmul_axis_1_and_axis_0_with_transpose_b() {
    for (transpose_b, shape, axis) in [(false, [32i64, 16], 1usize), (true, [16, 32], 0)] {
        let (w, v) = const_rand("dense/kernel", &shape, 2);
        let mm = with(node("mm", "MatMul", &["x", "dense/kernel"]), "transpose_b", transpose_b);
        let q = run(graph(vec![placeholder("x"), w, mm]), &cfg(Mode::Int8));
        let scale = tensor_of(find(&q.graph, "dense/kernel/scale"));
        let chans = shape[axis] as usize;
        let expect_shape: Vec<i64> = if axis == 1 { vec![16] } else { vec![16, 1] };
        assert_eq!(scale.shape, expect_shape, "transpose_b={transpose_b}");
        let channel = |i: usize| if axis == 1 { i % chans } else { i / shape[1] as usize };
        let m = max_abs_by(&v, channel, chans);
        let s = scale.values::<f32>().unwrap();
        assert_eq!(s, m.iter().map(|x| x / 127.0).collect::<Vec<_>>());
        let (_, got) = eval(&q.graph, "dense/kernel");
        assert_within_half_step(&v, &got, |i| s[channel(i)]);
        assert_eq!(q.report.tensors[0].axis, Some(vec![axis]));
    }
}

#[test]
fn matmul_constant_first_operand_is_a_weight_too() {
    let (w, _) = const_rand("a", &[16, 32], 3);
    let mm = node("mm", "MatMul", &["a", "x"]);
    let q = run(graph(vec![placeholder("x"), w, mm]), &cfg(Mode::Int8));
    assert_eq!(q.report.tensors[0].axis, Some(vec![0]));
    assert_eq!(tensor_of(find(&q.graph, "a/scale")).shape, [16, 1]);
}

#[test]
fn depthwise_per_input_channel_and_multiplier() {
    let (w, v) = const_rand("dw/kernel", &[3, 3, 4, 2], 4);
    let dw = node("dw", "DepthwiseConv2dNative", &["x", "dw/kernel"]);
    let g = graph(vec![placeholder("x"), w, dw]);
    let q = run(g.clone(), &cfg(Mode::Int8));
    let scale = tensor_of(find(&q.graph, "dw/kernel/scale"));
    assert_eq!(scale.shape, [4, 2]);
    let m = max_abs_by(&v, |i| i % 8, 8);
    let s = scale.values::<f32>().unwrap();
    assert_eq!(s, m.iter().map(|x| x / 127.0).collect::<Vec<_>>());
    let (_, got) = eval(&q.graph, "dw/kernel");
    assert_within_half_step(&v, &got, |i| s[i % 8]);
    assert_eq!(q.report.tensors[0].axis, Some(vec![2, 3]));

    // Dequantize encoding: one axis only, so (I,M) is stored merged and reshaped back.
    let mut c = cfg(Mode::Int8);
    c.encoding = Encoding::Dequantize;
    let d = run(g, &c);
    let qn = find(&d.graph, "dw/kernel/quantized");
    assert_eq!(tensor_of(qn).shape, [3, 3, 8]);
    assert_eq!(tensor_of(qn).dtype, dt::QINT8);
    let deq = find(&d.graph, "dw/kernel/dequantize");
    assert_eq!(deq.attr_opt_i64("axis"), Some(2));
    assert_eq!(deq.attr_opt_str("mode"), Some("SCALED"));
    assert_eq!(find(&d.graph, "dw/kernel").op, "Reshape");
    let (shape, got_d) = eval(&d.graph, "dw/kernel");
    assert_eq!(shape, [3, 3, 4, 2]);
    assert_eq!(got_d, got, "both encodings compute the same floats");
}

#[test]
fn conv2d_backprop_input_filter_axis_2() {
    let (w, v) = const_rand("deconv/kernel", &[3, 3, 6, 4], 5);
    let sizes = with(
        with(node("sizes", "Const", &[]), "dtype", DataType::DtInt32),
        "value",
        Tensor::from_values(dt::INT32, &[4], &[1i32, 8, 8, 6]).unwrap().to_proto(),
    );
    let d = node("deconv", "Conv2DBackpropInput", &["sizes", "deconv/kernel", "x"]);
    let q = run(graph(vec![placeholder("x"), sizes, w, d]), &cfg(Mode::Int8));
    assert_eq!(q.report.tensors.len(), 1, "the int32 sizes are not a weight");
    assert_eq!(q.report.tensors[0].axis, Some(vec![2]));
    let scale = tensor_of(find(&q.graph, "deconv/kernel/scale"));
    assert_eq!(scale.shape, [6, 1]);
    let s = scale.values::<f32>().unwrap();
    let (_, got) = eval(&q.graph, "deconv/kernel");
    assert_within_half_step(&v, &got, |i| s[i / 4 % 6]);
}

#[test]
fn gather_params_per_row() {
    let (w, v) = const_rand("emb", &[10, 8], 6);
    let ids = placeholder("ids");
    let axis = with(
        with(node("axis", "Const", &[]), "dtype", DataType::DtInt32),
        "value",
        Tensor::from_values(dt::INT32, &[], &[0i32]).unwrap().to_proto(),
    );
    let g = node("lookup", "GatherV2", &["emb", "ids", "axis"]);
    let mut c = cfg(Mode::Int8);
    c.min_elements = 80;
    let q = run(graph(vec![ids, axis, w, g]), &c);
    assert_eq!(q.report.tensors[0].axis, Some(vec![0]));
    let s = tensor_of(find(&q.graph, "emb/scale")).values::<f32>().unwrap();
    assert_eq!(s.len(), 10);
    let (_, got) = eval(&q.graph, "emb");
    assert_within_half_step(&v, &got, |i| s[i / 8]);
}

#[test]
fn gather_params_with_fewer_than_8_per_row_get_one_scale() {
    let (w, _) = const_rand("emb", &[64, 1], 6);
    let q = run(
        graph(vec![placeholder("ids"), w, node("g", "Gather", &["emb", "ids"])]),
        &cfg(Mode::Int8),
    );
    let r = &q.report.tensors[0];
    assert_eq!((r.axis.clone(), r.scales), (Some(vec![]), Some(1)));
    assert!(r.note.as_deref().unwrap().contains("per channel"), "{:?}", r.note);
}

#[test]
fn einsum_channels_from_the_equation() {
    // Keras EinsumDense / MultiHeadAttention: x[a,b,c] · w[c,d,e] → [a,b,d,e].
    let (w, v) = const_rand("q/kernel", &[8, 2, 4], 7);
    let e = with(node("q", "Einsum", &["x", "q/kernel"]), "equation", "abc,cde->abde");
    let q = run(graph(vec![placeholder("x"), w, e]), &cfg(Mode::Int8));
    assert_eq!(q.report.tensors[0].axis, Some(vec![1, 2]));
    let s = tensor_of(find(&q.graph, "q/kernel/scale")).values::<f32>().unwrap();
    assert_eq!(s.len(), 8);
    let (_, got) = eval(&q.graph, "q/kernel");
    assert_within_half_step(&v, &got, |i| s[i % 8]);
    // Output projection: x[a,b,d,e] · w[d,e,f] → [a,b,f]: channel f only.
    let r = |eq: &str, slot: usize, rank: usize| {
        select::weight_axes(&with(node("e", "Einsum", &[]), "equation", eq), slot, rank)
    };
    assert_eq!(r("abde,def->abf", 1, 3), Some(vec![2]));
    assert_eq!(r("ij,jk", 1, 2), Some(vec![1]), "implicit output ik");
    assert_eq!(r("...c,cd->...d", 1, 2), Some(vec![1]));
    assert_eq!(r("cd,...c->...d", 0, 2), Some(vec![1]));
    assert_eq!(r("...c,cd->...d", 0, 2), Some(vec![]), "ellipsis operand: per tensor");
    assert_eq!(r("ii,ij->j", 0, 2), Some(vec![]), "repeated label: per tensor");
    assert_eq!(r("abc,cde->abde", 1, 2), Some(vec![]), "rank mismatch: per tensor");
}

#[test]
fn the_axis_table() {
    let ax = |op: &str, slot: usize, rank: usize, attrs: &[(&str, bool)]| {
        let n = attrs.iter().fold(node("n", op, &[]), |n, (k, v)| with(n, k, *v));
        select::weight_axes(&n, slot, rank)
    };
    assert_eq!(ax("Conv2D", 1, 4, &[]), Some(vec![3]));
    assert_eq!(ax("Conv2D", 0, 4, &[]), None, "the input is not a weight");
    assert_eq!(ax("Conv2D", 1, 2, &[]), None, "a filter has rank 4");
    assert_eq!(ax("Conv3D", 1, 5, &[]), Some(vec![4]));
    assert_eq!(ax("DepthwiseConv2dNative", 1, 4, &[]), Some(vec![2, 3]));
    assert_eq!(ax("Conv2DBackpropInput", 1, 4, &[]), Some(vec![2]));
    assert_eq!(ax("Conv2DBackpropInput", 0, 1, &[]), None, "input_sizes");
    assert_eq!(ax("Conv3DBackpropInputV2", 1, 5, &[]), Some(vec![3]));
    assert_eq!(ax("MatMul", 1, 2, &[]), Some(vec![1]));
    assert_eq!(ax("MatMul", 1, 2, &[("transpose_b", true)]), Some(vec![0]));
    assert_eq!(ax("MatMul", 0, 2, &[]), Some(vec![0]));
    assert_eq!(ax("MatMul", 0, 2, &[("transpose_a", true)]), Some(vec![1]));
    assert_eq!(ax("BatchMatMulV2", 1, 3, &[]), Some(vec![2]));
    assert_eq!(ax("BatchMatMulV2", 1, 3, &[("adj_y", true)]), Some(vec![1]));
    assert_eq!(ax("BatchMatMulV3", 0, 3, &[]), Some(vec![1]));
    assert_eq!(ax("BatchMatMul", 0, 3, &[("adj_x", true)]), Some(vec![2]));
    assert_eq!(ax("GatherV2", 0, 2, &[]), Some(vec![0]));
    assert_eq!(ax("GatherV2", 1, 1, &[]), None, "indices");
    assert_eq!(ax("Gather", 0, 1, &[]), Some(vec![]), "a rank-1 table: one scale");
    assert_eq!(ax("SparseSegmentMean", 0, 2, &[]), Some(vec![0]));
    for op in ["BiasAdd", "FusedBatchNormV3", "AddV2", "Mul", "Reshape", "While", "ConcatV2"] {
        for slot in 0..3 {
            assert_eq!(ax(op, slot, 4, &[]), None, "{op} input {slot}");
        }
    }
}

#[test]
fn per_tensor_flag_gives_one_scalar_scale() {
    let (g, w) = conv_graph();
    let mut c = cfg(Mode::Int8);
    c.per_tensor = true;
    let q = run(g, &c);
    let scale = tensor_of(find(&q.graph, "conv/kernel/scale"));
    assert!(scale.shape.is_empty());
    let m = w.iter().fold(0.0f32, |a, b| a.max(b.abs()));
    assert_eq!(scale.values::<f32>().unwrap(), [m / 127.0]);
    let (_, got) = eval(&q.graph, "conv/kernel");
    assert_within_half_step(&w, &got, |_| m / 127.0);
    assert_eq!(q.report.tensors[0].axis, Some(vec![]));
    assert_eq!(q.report.granularity.as_deref(), Some("per_tensor"));
}

#[test]
fn dequantize_encoding_single_axis() {
    let (g, w) = conv_graph();
    let mut c = cfg(Mode::Int8);
    c.encoding = Encoding::Dequantize;
    let q = run(g.clone(), &c);
    let d = find(&q.graph, "conv/kernel");
    assert_eq!(d.op, "Dequantize");
    assert_eq!(d.input, ["conv/kernel/quantized", "conv/kernel/min", "conv/kernel/max"]);
    assert_eq!(d.attr_opt_type("T"), Some(DataType::DtQint8));
    assert_eq!(d.attr_opt_i64("axis"), Some(3));
    assert_eq!(d.attr_opt_type("dtype"), Some(DataType::DtFloat));
    let lo = tensor_of(find(&q.graph, "conv/kernel/min")).values::<f32>().unwrap();
    let hi = tensor_of(find(&q.graph, "conv/kernel/max")).values::<f32>().unwrap();
    assert_eq!(lo.len(), 8);
    assert!(lo.iter().zip(&hi).all(|(a, b)| *a == -*b));
    let (_, got) = eval(&q.graph, "conv/kernel");
    let (_, cast_mul) = eval(&run(g, &cfg(Mode::Int8)).graph, "conv/kernel");
    assert_eq!(got, cast_mul, "Dequantize(SCALED) computes the very floats Cast+Mul does");
    let _ = w;
    let r = &q.report.tensors[0];
    assert_eq!(r.bytes_after, 288 + 8 * 8);
}

#[test]
fn a_zero_channel_gets_a_usable_scale() {
    let mut v = values(3 * 3 * 2 * 4, 9);
    for (i, x) in v.iter_mut().enumerate() {
        if i % 4 == 2 {
            *x = 0.0;
        }
    }
    let g = graph(vec![
        placeholder("x"),
        const_f32("k", &[3, 3, 2, 4], &v),
        node("c", "Conv2D", &["x", "k"]),
    ]);
    let mut c = cfg(Mode::Int8);
    c.encoding = Encoding::Dequantize;
    let q = run(g, &c);
    let hi = tensor_of(find(&q.graph, "k/max")).values::<f32>().unwrap();
    assert_eq!(hi[2], 1.0);
    let (_, got) = eval(&q.graph, "k");
    assert!(got.iter().skip(2).step_by(4).all(|x| *x == 0.0));
}

// ---------------------------------------------------------------------------------------------
// what is (not) a weight

#[test]
fn biases_batch_norm_and_shared_consts_are_not_weights() {
    let (k, _) = const_rand("k", &[3, 3, 4, 8], 10);
    let (gamma, _) = const_rand("gamma", &[64], 11);
    let (bias, _) = const_rand("bias", &[64], 12);
    let (shared, _) = const_rand("shared", &[8, 8], 13);
    let g = graph(vec![
        placeholder("x"),
        k,
        gamma,
        bias,
        shared,
        node("conv", "Conv2D", &["x", "k"]),
        node("bn", "FusedBatchNormV3", &["conv", "gamma", "bias", "bias", "gamma"]),
        node("ba", "BiasAdd", &["x", "bias"]),
        node("mm", "MatMul", &["x", "shared"]),
        node("add", "AddV2", &["x", "shared"]),
    ]);
    let q = run(g, &cfg(Mode::Int8));
    let quantized: Vec<&str> = q.report.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(quantized, ["k"]);
    let why = |n: &str| q.report.skipped.iter().find(|s| s.name == n).unwrap().why.clone();
    assert!(why("gamma").contains("FusedBatchNormV3"), "{}", why("gamma"));
    assert!(why("bias").starts_with("not a weight"), "{}", why("bias"));
    assert!(why("shared").contains("AddV2"), "{}", why("shared"));
    for n in ["gamma", "bias", "shared"] {
        assert_eq!(find(&q.graph, n).op, "Const");
    }
}

#[test]
fn a_weight_read_through_an_unread_identity_is_not_quantized() {
    let (k, _) = const_rand("k", &[4, 4], 14);
    let g = graph(vec![placeholder("x"), k, node("k/read", "Identity", &["k"])]);
    let q = run(g.clone(), &cfg(Mode::Int8));
    assert_eq!(q.graph, g, "passed through unchanged");
    assert!(q.report.skipped[0].why.contains("'k/read', which nothing reads"));
    assert!(
        q.report.warnings[0].starts_with("no float weights to quantize"),
        "{:?}",
        q.report.warnings
    );
}

#[test]
fn readers_disagreeing_on_the_axis_give_one_scale() {
    let (k, _) = const_rand("k", &[8, 8], 15);
    let g = graph(vec![
        placeholder("x"),
        k,
        node("a", "MatMul", &["x", "k"]),
        with(node("b", "MatMul", &["x", "k"]), "transpose_b", true),
    ]);
    let q = run(g, &cfg(Mode::Int8));
    let r = &q.report.tensors[0];
    assert_eq!(r.axis, Some(vec![]));
    assert!(r.note.as_deref().unwrap().contains("disagree"));
    assert_eq!(r.read_by.len(), 2);
}

#[test]
fn min_elements_include_and_exclude() {
    let (g, _) = conv_graph(); // 288-element kernel
    let mut c = cfg(Mode::Int8);
    c.min_elements = 1024;
    let q = run(g.clone(), &c);
    assert!(q.report.tensors.is_empty());
    assert_eq!(q.report.skipped[0].why, "fewer than 1024 elements (--min-elements)");
    assert_eq!(q.graph, g);

    let mut c = cfg(Mode::Int8);
    c.exclude = compile_patterns("--exclude", &["^conv/".into()]).unwrap();
    let q = run(g.clone(), &c);
    assert!(q.report.tensors.is_empty());
    assert_eq!(q.report.skipped[0].why, "matches --exclude '^conv/'");

    let mut c = cfg(Mode::Int8);
    c.include = compile_patterns("--include", &["dense".into()]).unwrap();
    assert!(run(g.clone(), &c).report.tensors.is_empty());
    c.include = compile_patterns("--include", &["dense".into(), "kernel$".into()]).unwrap();
    assert_eq!(run(g, &c).report.tensors.len(), 1);
}

#[test]
fn control_inputs_device_and_colocation_are_kept() {
    let (k, w) = const_rand("k", &[4, 8], 16);
    let mut k = NodeDef { input: vec!["^frame_pivot".into()], ..k };
    k.device = "/device:CPU:0".into();
    k.attr.insert("_class".into(), AttrValue::from(vec!["loc:@frame_pivot"]));
    let g = graph(vec![
        placeholder("x"),
        node("frame_pivot", "Identity", &["x"]),
        k,
        node("mm", "MatMul", &["x", "k"]),
        node("after", "Identity", &["x", "^k"]),
    ]);
    let q = run(g, &cfg(Mode::Int8));
    for n in ["k/quantized", "k/scale"] {
        assert_eq!(find(&q.graph, n).input, ["^frame_pivot"], "{n} waits for what k waited for");
    }
    for n in ["k/quantized", "k/cast", "k/scale", "k"] {
        assert_eq!(find(&q.graph, n).device, "/device:CPU:0");
    }
    let last = find(&q.graph, "k");
    assert!(last.attr.contains_key("_class"));
    assert!(!last.attr.contains_key("value") && !last.attr.contains_key("dtype"));
    let (_, got) = eval(&q.graph, "k");
    assert_eq!(got.len(), w.len());
}

#[test]
fn helper_names_never_collide() {
    let (k, _) = const_rand("k", &[4, 8], 17);
    let g = graph(vec![
        placeholder("x"),
        k,
        node("k/scale", "Identity", &["x"]),
        node("mm", "MatMul", &["x", "k"]),
    ]);
    let q = run(g, &cfg(Mode::Int8));
    assert_eq!(find(&q.graph, "k").input, ["k/cast", "k/scale_1"]);
    assert_eq!(find(&q.graph, "k/scale").op, "Identity");
}

#[test]
fn non_finite_weights_stay_float_with_a_warning() {
    let mut v = values(32, 18);
    v[5] = f32::NAN;
    let g = graph(vec![
        placeholder("x"),
        const_f32("k", &[4, 8], &v),
        node("mm", "MatMul", &["x", "k"]),
    ]);
    let q = run(g, &cfg(Mode::Int8));
    assert!(q.report.tensors.is_empty());
    assert!(q.report.warnings[0].contains("NaN"), "{:?}", q.report.warnings);
}

#[test]
fn quantizing_twice_changes_nothing_more() {
    let (g, _) = conv_graph();
    for mode in [Mode::Int8, Mode::Uint8, Mode::Float16, Mode::Bfloat16] {
        let once = run(g.clone(), &cfg(mode)).graph;
        let twice = run(once.clone(), &cfg(mode));
        assert_eq!(twice.graph, once, "{mode}");
        assert!(twice.report.tensors.is_empty());
    }
}

#[test]
fn versions_library_and_untouched_consts_pass_through() {
    let (mut g, _) = conv_graph();
    g.versions = Some(tf_proto::tensorflow::VersionDef {
        producer: 2474,
        min_consumer: 12,
        bad_consumers: vec![],
    });
    let bias_before = find(&g, "conv/bias").clone();
    let q = run(g, &cfg(Mode::Int8));
    assert_eq!(q.graph.versions.as_ref().unwrap().producer, 2474);
    assert_eq!(find(&q.graph, "conv/bias"), &bias_before);
}

// ---------------------------------------------------------------------------------------------
// uint8, float16, bfloat16, round

#[test]
fn uint8_is_gtt_quantize_weights() {
    let (g, w) = conv_graph();
    let q = run(g, &cfg(Mode::Uint8));
    let d = find(&q.graph, "conv/kernel");
    assert_eq!(d.op, "Dequantize");
    assert_eq!(
        d.input,
        ["conv/kernel_quantized_const", "conv/kernel_quantized_min", "conv/kernel_quantized_max"]
    );
    assert_eq!(d.attr_opt_type("T"), Some(DataType::DtQuint8));
    assert_eq!(d.attr_opt_str("mode"), Some("MIN_FIRST"));
    assert!(!d.attr.contains_key("axis") && !d.attr.contains_key("narrow_range"));
    let (min, max) = (
        tensor_of(find(&q.graph, "conv/kernel_quantized_min")).values::<f32>().unwrap()[0],
        tensor_of(find(&q.graph, "conv/kernel_quantized_max")).values::<f32>().unwrap()[0],
    );
    let lo = w.iter().fold(0.0f32, |a, b| a.min(*b));
    let hi = w.iter().fold(0.0f32, |a, b| a.max(*b));
    assert_eq!((min, max), (lo, hi));
    // GTT's FloatToQuantized<quint8>, in double.
    let range_scale = 256.0 / ((max - min) as f64 * (256.0 / 255.0));
    let qv = tensor_of(find(&q.graph, "conv/kernel_quantized_const"));
    assert_eq!(qv.dtype, dt::QUINT8);
    for (x, got) in w.iter().zip(qv.raw().unwrap().iter()) {
        let want = ((*x as f64 * range_scale).round() - (min as f64 * range_scale).round())
            .clamp(0.0, 255.0);
        assert_eq!(*got as f64, want);
    }
    let (_, deq) = eval(&q.graph, "conv/kernel");
    let step = (max - min) / 255.0;
    assert_within_half_step(&w, &deq, |_| step * 1.01);
    assert!(q.report.tensors[0].axis.is_none());
}

#[test]
fn uint8_zero_point_is_the_dequantizers_when_gtt_would_shift_every_value() {
    // A range symmetric about 0: min·255/(max−min) = −127.5 exactly. GTT's quantizer rounds
    // it to −128, TensorFlow's Dequantize to −127 (float division gives −127.49999...).
    let m = 0.036084346f32;
    let v: Vec<f32> = (0..64).map(|i| -m + 2.0 * m * i as f32 / 63.0).collect();
    let data: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    let (min, max) = kernels::gtt_range(&data);
    assert_eq!((min, max), (-m, m));
    let mut out = vec![0u8; 64];
    let (st, fixed) = kernels::uint8_min_first(&data, min, max, &mut out);
    assert!(fixed, "GTT's zero point differs for this range");
    let (step, zero) = kernels::min_first_dequantizer(min, max);
    assert_eq!(zero, -127.0);
    assert!(st.max_abs_err <= step * 0.5 * 1.001, "{} vs step {step}", st.max_abs_err);
    // What GTT writes: every value one step off.
    let range_scale = 256.0 / ((max - min) as f64 * (256.0 / 255.0));
    let gtt: Vec<f64> = v
        .iter()
        .map(|x| {
            ((*x as f64 * range_scale).round() - (min as f64 * range_scale).round())
                .clamp(0.0, 255.0)
        })
        .collect();
    let gtt_err = v
        .iter()
        .zip(&gtt)
        .map(|(x, q)| (x - (*q as f32 * step + zero * step)).abs())
        .fold(0.0f32, f32::max);
    assert!(gtt_err > step * 0.9, "GTT's bytes are a step off: {gtt_err} vs {step}");
}

#[test]
fn uint8_range_fixups() {
    let data = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    assert_eq!(kernels::gtt_range(&data(&[1.0, 3.0])), (0.0, 3.0), "range contains 0");
    assert_eq!(kernels::gtt_range(&data(&[-2.0, -1.0])), (-2.0, 0.0));
    assert_eq!(kernels::gtt_range(&data(&[0.0, 0.0])), (0.0, 1.0), "empty range");
}

#[test]
fn float16_and_bfloat16_are_const_then_cast() {
    let (g, w) = conv_graph();
    for (mode, name, dtype) in [
        (Mode::Float16, "conv/kernel/float16", dt::HALF),
        (Mode::Bfloat16, "conv/kernel/bfloat16", dt::BFLOAT16),
    ] {
        let q = run(g.clone(), &cfg(mode));
        let h = find(&q.graph, name);
        assert_eq!(tensor_of(h).dtype, dtype);
        let c = find(&q.graph, "conv/kernel");
        assert_eq!((c.op.as_str(), c.input.clone()), ("Cast", vec![name.to_string()]));
        let (_, got) = eval(&q.graph, "conv/kernel");
        for (a, b) in w.iter().zip(&got) {
            let want = if dtype == dt::HALF {
                half::f16::from_f32(*a).to_f32()
            } else {
                half::bf16::from_f32(*a).to_f32()
            };
            assert_eq!(*b, want);
        }
        let r = &q.report.tensors[0];
        assert_eq!(r.bytes_after, 2 * 288);
        assert!(r.axis.is_none());
    }
}

#[test]
fn float16_overflow_stays_float() {
    let mut v = values(32, 19);
    v[3] = 70000.0;
    let g = graph(vec![
        placeholder("x"),
        const_f32("k", &[4, 8], &v),
        node("mm", "MatMul", &["x", "k"]),
    ]);
    let q = run(g, &cfg(Mode::Float16));
    assert!(q.report.tensors.is_empty());
    assert!(q.report.skipped[0].why.contains("65504"));
}

#[test]
fn round_is_gtt_round_weights_without_the_flt_min_quirk() {
    let (g, w) = conv_graph();
    let q = run(g, &cfg(Mode::Round(16)));
    let k = find(&q.graph, "conv/kernel");
    assert_eq!(k.op, "Const");
    let got = tensor_of(k).values::<f32>().unwrap();
    let min = w.iter().fold(f32::INFINITY, |a, b| a.min(*b));
    let max = w.iter().fold(f32::NEG_INFINITY, |a, b| a.max(*b));
    let width = (max - min) / 16.0;
    for (a, b) in w.iter().zip(&got) {
        let bucket = ((a - min) / width).floor() as i32;
        assert_eq!(*b, min + width * (bucket as f32 + 0.5));
    }
    let mut distinct = got.clone();
    distinct.sort_by(f32::total_cmp);
    distinct.dedup();
    assert!(distinct.len() <= 17, "{} levels", distinct.len());

    // All negative: GTT's max starts at FLT_MIN (~0), stretching the range to [min, 0];
    // ours is [min, max].
    let neg: Vec<f32> = (0..32).map(|i| -1.0 - i as f32 / 31.0).collect();
    let g = graph(vec![
        placeholder("x"),
        const_f32("k", &[4, 8], &neg),
        node("mm", "MatMul", &["x", "k"]),
    ]);
    let q = run(g, &cfg(Mode::Round(4)));
    let got = tensor_of(find(&q.graph, "k")).values::<f32>().unwrap();
    let width = 1.0f32 / 4.0;
    assert!(got.iter().all(|v| *v <= -1.0 + width), "{got:?}");
    assert!(q.report.tensors[0].max_abs_error <= (width / 2.0) as f64 + 1e-6);
}

// ---------------------------------------------------------------------------------------------
// kernels

#[test]
fn rounding_is_half_away_from_zero() {
    let q = |w: f32| kernels_q(w);
    assert_eq!(q(2.5), 3);
    assert_eq!(q(-2.5), -3);
    assert_eq!(q(2.4999998), 2);
    assert_eq!(q(0.49999997), 0);
    assert_eq!(q(-0.5), -1);
    assert_eq!(q(127.4), 127);
    assert_eq!(q(-200.0), -127, "narrow range clamp");
}

fn kernels_q(x: f32) -> i8 {
    let data = x.to_le_bytes();
    let mut out = [0u8];
    kernels::int8(&data, Layout::per_tensor(1), &[(1.0, 1.0)], &mut out);
    out[0] as i8
}

#[test]
fn int8_kernels_match_a_naive_reference_on_every_layout() {
    let shape = [5i64, 3, 7, 9];
    let n: usize = shape.iter().product::<i64>() as usize;
    let v = values(n, 20);
    let data: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    for axes in [vec![], vec![0], vec![1], vec![2], vec![3], vec![2, 3], vec![0, 1]] {
        let l = Layout::of(&shape, &axes).unwrap();
        let m = kernels::max_abs(&data, l).unwrap();
        let scales: Vec<(f32, f32)> = m.iter().map(|x| kernels::int8_scale(*x)).collect();
        let mut out = vec![0u8; n];
        let st = kernels::int8(&data, l, &scales, &mut out);
        let mut max_err = 0.0f32;
        for i in 0..n {
            let c = i / l.inner % l.channels;
            let want_m = (0..n)
                .filter(|j| j / l.inner % l.channels == c)
                .map(|j| v[j].abs())
                .fold(0.0, f32::max);
            assert_eq!(m[c], want_m);
            let (s, inv) = scales[c];
            let want = (v[i] * inv).round().clamp(-127.0, 127.0) as i8;
            assert_eq!(out[i] as i8, want, "axes {axes:?} element {i}");
            max_err = max_err.max((v[i] - want as f32 * s).abs());
        }
        assert_eq!(st.max_abs_err, max_err);
    }
    assert_eq!(Layout::of(&shape, &[0, 2]), None, "non-contiguous axes");
    assert_eq!(Layout::scale_shape(&shape, &[1]), [3, 1, 1]);
    assert_eq!(Layout::scale_shape(&shape, &[2, 3]), [7, 9]);
    assert_eq!(Layout::scale_shape(&shape, &[]), Vec::<i64>::new());
}

#[test]
fn work_is_split_over_threads_with_the_same_result() {
    let mut nodes = vec![placeholder("x")];
    for i in 0..6 {
        let (k, _) = const_rand(&format!("k{i}"), &[16 * (i + 1), 8], 30 + i as u32);
        nodes.push(k);
        nodes.push(node(&format!("mm{i}"), "MatMul", &["x", &format!("k{i}")]));
    }
    let g = graph(nodes);
    let one = run(g.clone(), &cfg(Mode::Int8));
    let mut c = cfg(Mode::Int8);
    c.threads = 3;
    let three = run(g, &c);
    assert_eq!(one.graph, three.graph);
    assert_eq!(three.report.totals.tensors, 6);
    assert!(three.report.totals.ratio < 0.27);
}

#[test]
fn splat_constants_in_typed_fields_are_read_too() {
    let t = TensorProto {
        dtype: dt::FLOAT,
        tensor_shape: Some(tf_tensor::shape_proto(&[4, 8])),
        float_val: vec![0.25, -0.5],
        ..Default::default()
    };
    let k = with(with(node("k", "Const", &[]), "dtype", DataType::DtFloat), "value", t);
    let q =
        run(graph(vec![placeholder("x"), k, node("mm", "MatMul", &["x", "k"])]), &cfg(Mode::Int8));
    let (_, got) = eval(&q.graph, "k");
    let mut want = vec![-0.5f32; 32];
    want[0] = 0.25;
    assert_within_half_step(&want, &got, |_| 0.5 / 127.0);
}

#[test]
fn a_broken_input_is_a_user_error_naming_node_and_input() {
    let g = graph(vec![placeholder("x"), node("y", "MatMul", &["x", "gone"])]);
    let e = quantize_graph_def(g, &cfg(Mode::Int8)).unwrap_err();
    assert!(matches!(e, QuantError::Graph(_)), "{e}");
    assert!(e.to_string().contains("node 'y' input 'gone'"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// --activations: the full-integer rewrite

/// x -> Conv2D -> BiasAdd -> Relu -> MaxPool -> Conv2D -> Reshape -> MatMul(+BiasAdd) (logits),
/// plus a depthwise convolution on the side.
fn int8_graph() -> GraphDef {
    let conv = |name: &str, input: &str, w: &str| {
        let n = with(node(name, "Conv2D", &[input, w]), "T", DataType::DtFloat);
        let n = with(n, "strides", vec![1i64, 1, 1, 1]);
        with(n, "padding", "SAME")
    };
    let pool = with(
        with(
            with(node("pool", "MaxPool", &["relu"]), "ksize", vec![1i64, 2, 2, 1]),
            "strides",
            vec![1i64, 2, 2, 1],
        ),
        "padding",
        "VALID",
    );
    graph(vec![
        placeholder("x"),
        const_rand("w1", &[3, 3, 2, 4], 1).0,
        const_rand("b1", &[4], 2).0,
        conv("conv1", "x", "w1"),
        with(node("bias1", "BiasAdd", &["conv1", "b1"]), "T", DataType::DtFloat),
        with(node("relu", "Relu", &["bias1"]), "T", DataType::DtFloat),
        with(pool, "T", DataType::DtFloat),
        const_rand("w2", &[1, 1, 4, 4], 3).0,
        conv("conv2", "pool", "w2"),
        const_rand("dw", &[3, 3, 2, 1], 4).0,
        with(
            with(
                with(
                    node("depthwise", "DepthwiseConv2dNative", &["x", "dw"]),
                    "T",
                    DataType::DtFloat,
                ),
                "strides",
                vec![1i64, 1, 1, 1],
            ),
            "padding",
            "SAME",
        ),
    ])
}

fn ranges_for(tensors: &[&str]) -> crate::ranges::RangesFile {
    let mut f = crate::ranges::RangesFile {
        format: crate::ranges::FORMAT.into(),
        version: crate::ranges::VERSION,
        source: "test".into(),
        samples: 1,
        smoke_run_only: false,
        note: None,
        bins: 2,
        tensors: Default::default(),
    };
    for t in tensors {
        f.tensors.insert(
            t.to_string(),
            crate::ranges::TensorRange {
                min: -1.0,
                max: 2.0,
                count: 2,
                hist_max: 2.0,
                histogram: vec![1, 1],
                shape: Some(vec![-1, 4, 4, 4]),
            },
        );
    }
    f
}

fn act_cfg(ranges: crate::ranges::RangesFile) -> QuantConfig {
    QuantConfig {
        activations: Some(activations::Activations {
            ranges,
            file: "r.json".into(),
            calibration: Default::default(),
            min_matmul_weights: 0,
            form: Default::default(),
        }),
        ..Default::default()
    }
}

#[test]
fn calibration_tensors_are_chain_inputs_and_outputs() {
    let t = activations::calibration_tensors(&int8_graph()).unwrap();
    assert_eq!(t, ["conv2:0", "pool:0", "relu:0", "x:0"]);
}

#[test]
fn activations_rewrite_chains_into_int8_kernels() {
    let q = run(int8_graph(), &act_cfg(ranges_for(&["x:0", "relu:0", "pool:0", "conv2:0"])));
    let g = &q.graph;
    // The chain's last node is now the Dequantize; the kernel reads a qint8 QuantizeV2 of x
    // (x can be negative) and the pool runs on its quint8 output, which conv2 reads directly.
    assert_eq!(find(g, "relu").op, "Dequantize");
    let k = find(g, "relu/eightbit");
    assert_eq!(k.op, "QuantizedConv2DWithBiasAndReluAndRequantize");
    assert_eq!(k.input[0], "x/quantize");
    assert_eq!(find(g, "x/quantize").attr["T"].as_type(), Some(DataType::DtQint8));
    assert_eq!(tensor_of(find(g, "conv1/weights_qint8")).dtype, dt::QINT8);
    assert_eq!(find(g, "pool/eightbit").op, "QuantizedMaxPool");
    let k2 = find(g, "conv2/eightbit");
    assert_eq!(k2.op, "QuantizedConv2DWithBiasAndRequantize");
    assert_eq!(k2.input[0], "pool/eightbit");
    assert_eq!(find(g, "conv2").op, "Dequantize");
    // The float weights, biases and replaced nodes are gone; depthwise stays float.
    for gone in ["w1", "b1", "w2", "conv1", "bias1"] {
        assert!(g.node.iter().all(|n| n.name != gone), "{gone} is still there");
    }
    assert_eq!(find(g, "depthwise").op, "DepthwiseConv2dNative");
    let rep = q.report.activations.as_ref().unwrap();
    assert_eq!(rep.int8.len(), 2);
    assert_eq!(rep.quantize_nodes, 1);
    assert!(rep.float.iter().any(|f| f.node == "depthwise" && f.why.contains("depthwise")));
    let out = &rep.int8[0].output_range;
    assert_eq!(*out, Some([0.0, 2.0]));
}

#[test]
fn activations_need_every_range_and_honour_exclude() {
    let e = quantize_graph_def(int8_graph(), &act_cfg(ranges_for(&["x:0"]))).unwrap_err();
    assert!(e.to_string().starts_with("r.json: no range for tensor 'relu:0'"), "{e}");
    let mut c = act_cfg(ranges_for(&["x:0", "relu:0"]));
    c.exclude = compile_patterns("--exclude", &["conv2".to_string()]).unwrap();
    let q = run(int8_graph(), &c);
    assert_eq!(find(&q.graph, "conv2").op, "Conv2D");
    let rep = q.report.activations.unwrap();
    assert!(rep.float.iter().any(|f| f.node == "conv2" && f.why.contains("--exclude")));
}

/// A ResNet identity block: x -> Conv2D + BiasAdd + Relu (r0) -> Conv2D + Relu (r1) -> Conv2D +
/// BiasAdd (b2) -> AddV2(b2, r0) -> Relu (out); `extra` adds more nodes.
fn residual_block(extra: Vec<NodeDef>) -> GraphDef {
    let f = |n: NodeDef| with(n, "T", DataType::DtFloat);
    let conv = |name: &str, input: &str, w: &str| {
        let n = f(node(name, "Conv2D", &[input, w]));
        with(with(n, "strides", vec![1i64, 1, 1, 1]), "padding", "SAME")
    };
    let mut nodes = vec![
        placeholder("x"),
        const_rand("w0", &[1, 1, 3, 4], 20).0,
        const_rand("c0/b", &[4], 21).0,
        conv("c0", "x", "w0"),
        f(node("b0", "BiasAdd", &["c0", "c0/b"])),
        f(node("r0", "Relu", &["b0"])),
        const_rand("w1", &[3, 3, 4, 4], 22).0,
        conv("c1", "r0", "w1"),
        f(node("r1", "Relu", &["c1"])),
        const_rand("w2", &[1, 1, 4, 4], 23).0,
        const_rand("c2/b", &[4], 24).0,
        conv("c2", "r1", "w2"),
        f(node("b2", "BiasAdd", &["c2", "c2/b"])),
        f(node("add", "AddV2", &["b2", "r0"])),
        f(node("out", "Relu", &["add"])),
    ];
    nodes.extend(extra);
    graph(nodes)
}

const RESIDUAL_TENSORS: [&str; 6] = ["x:0", "r0:0", "r1:0", "b2:0", "out:0", "c2:0"];

#[test]
fn residual_add_is_fused_into_the_convolution() {
    let g = residual_block(Vec::new());
    let t = activations::calibration_tensors(&g).unwrap();
    assert_eq!(t, ["b2:0", "out:0", "r0:0", "r1:0", "x:0"]);
    let mut ranges = ranges_for(&RESIDUAL_TENSORS);
    for (name, r) in ranges.tensors.iter_mut() {
        if name != "x:0" {
            r.min = 0.0;
        }
    }
    let q = run(g.clone(), &act_cfg(ranges.clone()));
    let k = find(&q.graph, "out/eightbit");
    assert_eq!(k.op, "QuantizedConv2DWithBiasSumAndReluAndRequantize");
    // The summand is r0's kernel output, with its range; r0's Dequantize (a region exit that
    // runs only when fetched) must run before the kernel writes over the summand.
    assert_eq!(&k.input[9..12], ["r0/eightbit", "r0/eightbit:1", "r0/eightbit:2"]);
    assert!(k.input.contains(&"^r0".to_string()), "{:?}", k.input);
    assert_eq!(k.attr["Tsummand"].as_type(), Some(DataType::DtQuint8));
    for gone in ["c2", "b2", "add"] {
        assert!(q.graph.node.iter().all(|n| n.name != gone), "{gone} is still there");
    }
    assert_eq!(find(&q.graph, "out").op, "Dequantize");
    let rep = q.report.activations.as_ref().unwrap();
    let fused = rep.int8.iter().find(|n| n.node == "out/eightbit").unwrap();
    assert_eq!(fused.replaces, ["c2", "b2", "add", "out"]);
    assert_eq!(fused.summand, Some(["r0:0".to_string(), "quint8".to_string()]));
    assert_eq!(fused.output_range, Some([0.0, 2.0]));

    // A signed summand (qint8): the signed-sum kernel, given twice the output range.
    let mut signed = ranges.clone();
    signed.tensors.get_mut("x:0").unwrap().min = 0.0;
    signed.tensors.get_mut("r0:0").unwrap().min = -1.0;
    let mut g2 = g.clone();
    g2.node.retain(|n| n.name != "r0");
    for n in g2.node.iter_mut() {
        for i in n.input.iter_mut() {
            if i == "r0" {
                *i = "b0".into();
            }
        }
    }
    let t = activations::calibration_tensors(&g2).unwrap();
    assert!(t.contains(&"b0:0".to_string()), "{t:?}");
    let mut s2 = signed.clone();
    let b0 = s2.tensors["r0:0"].clone();
    s2.tensors.insert("b0:0".into(), b0);
    let q = run(g2, &act_cfg(s2));
    let k = find(&q.graph, "out/eightbit");
    assert_eq!(k.op, "QuantizedConv2DWithBiasSignedSumAndReluAndRequantize");
    assert_eq!(k.attr["Tsummand"].as_type(), Some(DataType::DtQint8));
    let rep = q.report.activations.as_ref().unwrap();
    let fused = rep.int8.iter().find(|n| n.node == "out/eightbit").unwrap();
    assert_eq!(fused.output_range, Some([0.0, 2.0 * 255.0 / 127.0]));

    // Ranges without shapes (an older tf-run): the Add stays float, with the reason.
    let mut old = ranges.clone();
    for r in old.tensors.values_mut() {
        r.shape = None;
    }
    let q = run(g.clone(), &act_cfg(old));
    assert_eq!(find(&q.graph, "add").op, "AddV2");
    assert_eq!(find(&q.graph, "b2").op, "Dequantize");
    let rep = q.report.activations.as_ref().unwrap();
    assert!(rep.float.iter().any(|f| f.node == "add" && f.why.contains("recalibrate")), "{rep:?}");

    // A broadcast summand: float Add.
    let mut bc = ranges.clone();
    bc.tensors.get_mut("r0:0").unwrap().shape = Some(vec![1, 1, 1, 4]);
    let q = run(g.clone(), &act_cfg(bc));
    assert_eq!(find(&q.graph, "add").op, "AddV2");

    // The legacy form has no fused sum.
    let q = run(g, &legacy_cfg(ranges, activations::Requantization::Frozen));
    assert_eq!(find(&q.graph, "add").op, "AddV2");
}

#[test]
fn residual_add_stays_float_when_a_size_1_dimension_may_hide_a_broadcast() {
    // Calibrated on one sample at a time (or a smoke run): every shape starts with 1, so a
    // summand [1, …] that the Add broadcasts over a batch of n would look like the sum. Where
    // an input leaves that dimension open (or its whole shape), the Add stays float.
    let mut one = ranges_for(&RESIDUAL_TENSORS);
    for r in one.tensors.values_mut() {
        r.min = 0.0;
        r.shape = Some(vec![1, 4, 4, 4]);
    }
    let with_x_shape = |dims: Option<&[i64]>| {
        let mut g = residual_block(Vec::new());
        if let Some(d) = dims {
            let x = g.node.iter_mut().find(|n| n.name == "x").unwrap();
            x.attr.insert("shape".into(), tf_tensor::shape_proto(d).into());
        }
        g
    };
    for dims in [None, Some(&[-1i64, 4, 4, 3][..])] {
        let q = run(with_x_shape(dims), &act_cfg(one.clone()));
        assert_eq!(find(&q.graph, "add").op, "AddV2", "{dims:?}");
        let rep = q.report.activations.as_ref().unwrap();
        assert!(
            rep.float.iter().any(|f| f.node == "add"
                && f.why.contains("size 1 in dimension 0 in every calibration run")),
            "{:?}",
            rep.float
        );
    }
    // A graph whose input shape is fixed at batch 1: no broadcast can appear at run time.
    let q = run(with_x_shape(Some(&[1, 4, 4, 3])), &act_cfg(one.clone()));
    assert_eq!(find(&q.graph, "out/eightbit").op, "QuantizedConv2DWithBiasSumAndReluAndRequantize");
    // An open batch seen with several sizes (-1), other sizes of 1 fixed by the input: fused.
    let mut many = one;
    for r in many.tensors.values_mut() {
        r.shape = Some(vec![-1, 4, 1, 4]);
    }
    let q = run(with_x_shape(Some(&[-1, 4, 1, 3])), &act_cfg(many.clone()));
    assert_eq!(find(&q.graph, "out/eightbit").op, "QuantizedConv2DWithBiasSumAndReluAndRequantize");
    // ... but not when the input leaves that dimension open as well.
    let q = run(with_x_shape(Some(&[-1, 4, -1, 3])), &act_cfg(many));
    assert_eq!(find(&q.graph, "add").op, "AddV2");
}

/// The ranges of [`residual_block`], every tensor non-negative, and r0's range for `more`.
fn residual_ranges(more: &[&str]) -> crate::ranges::RangesFile {
    let mut ranges = ranges_for(&RESIDUAL_TENSORS);
    for r in ranges.tensors.values_mut() {
        r.min = 0.0;
    }
    for t in more {
        ranges.tensors.insert(t.to_string(), ranges.tensors["r0:0"].clone());
    }
    ranges
}

/// The residual Add of `q` stayed float, and the report's reason for it holds `why`.
fn assert_add_float(q: &Quantized, why: &str) {
    assert_eq!(find(&q.graph, "add").op, "AddV2");
    let rep = q.report.activations.as_ref().unwrap();
    assert!(rep.float.iter().any(|f| f.node == "add" && f.why.contains(why)), "{:?}", rep.float);
}

/// [`residual_block`] whose Add reads `k` (among `extra`) instead of r0.
fn summand_k(extra: Vec<NodeDef>) -> GraphDef {
    let mut g = residual_block(extra);
    g.node.retain(|n| n.name != "add");
    g.node.push(with(node("add", "AddV2", &["b2", "k"]), "T", DataType::DtFloat));
    g
}

#[test]
fn residual_add_stays_float_when_the_summand_depends_on_no_input() {
    // A summand computed from constants only (an op tf-fold left alone), or from an input's
    // shape alone: TensorFlow folds it into a Const when it loads the graph, and the kernel
    // writing over that buffer crashed it. Float Add, with the reason.
    let f = |n: NodeDef| with(n, "T", DataType::DtFloat);
    let ranges = residual_ranges(&["k:0"]);
    for from in ["c", "zeros"] {
        let g = summand_k(vec![
            const_rand("c", &[1, 4, 4, 4], 40).0,
            f(node("zeros", "ZerosLike", &["r0"])),
            f(node("k", "Relu", &[from])),
        ]);
        assert_add_float(&run(g, &act_cfg(ranges.clone())), "depends on no input");
    }
    // Read through a Relu from the input's values, or from a stateful op (not folded): fused.
    let shape = Tensor::from_values(dt::INT32, &[4], &[1i32, 4, 4, 4]).unwrap().to_proto();
    let random = with(
        with(node("random", "RandomUniform", &["shape"]), "dtype", DataType::DtFloat),
        "T",
        DataType::DtInt32,
    );
    for from in ["r0", "random"] {
        let g = summand_k(vec![
            with(
                with(node("shape", "Const", &[]), "dtype", DataType::DtInt32),
                "value",
                shape.clone(),
            ),
            random.clone(),
            f(node("k", "Relu", &[from])),
        ]);
        let q = run(g, &act_cfg(ranges.clone()));
        assert_eq!(
            find(&q.graph, "out/eightbit").op,
            "QuantizedConv2DWithBiasSumAndReluAndRequantize",
            "{from}"
        );
    }
}

#[test]
fn residual_add_stays_float_when_a_duplicate_of_the_summand_is_read_later() {
    // r0b computes what r0 does (same op, input and attributes): TensorFlow merges the two when
    // it loads the graph, and then 'side' reads the buffer the kernel writes over.
    let f = |n: NodeDef| with(n, "T", DataType::DtFloat);
    // b0 has two readers now: its chain ends there.
    let ranges = residual_ranges(&["b0:0"]);
    let g = residual_block(vec![f(node("r0b", "Relu", &["b0"])), f(node("side", "Neg", &["r0b"]))]);
    assert_add_float(&run(g, &act_cfg(ranges.clone())), "'side' also reads it");
    // Not a duplicate (another op): fused.
    let g =
        residual_block(vec![f(node("r0b", "Relu6", &["b0"])), f(node("side", "Neg", &["r0b"]))]);
    let q = run(g, &act_cfg(ranges));
    assert_eq!(find(&q.graph, "out/eightbit").op, "QuantizedConv2DWithBiasSumAndReluAndRequantize");
}

#[test]
fn ranges_beyond_float32_after_widening_stay_float() {
    // add1 has a qint8 summand: the signed-sum kernel's range is 255/127 of the sum's, which
    // from 3e38 would be infinite.
    let g = bottlenecks();
    let t = activations::calibration_tensors(&g).unwrap();
    let mut ranges = ranges_for(&t.iter().map(String::as_str).collect::<Vec<_>>());
    for (name, r) in ranges.tensors.iter_mut() {
        if name.starts_with('r') || name == "x:0" {
            r.min = 0.0;
        }
    }
    ranges.tensors.get_mut("add1:0").unwrap().max = 3e38;
    let q = run(g, &act_cfg(ranges));
    let rep = q.report.activations.as_ref().unwrap();
    let f = rep.float.iter().find(|f| f.node == "c1").expect("c1 stays float");
    assert!(f.why.contains("no 8-bit form"), "{}", f.why);
    assert!(q.graph.node.iter().all(|n| n.attr_opt_tensor("value").is_none_or(|t| {
        Tensor::from_proto(t)
            .ok()
            .and_then(|t| t.values::<f32>().ok().map(|v| v.to_vec()))
            .is_none_or(|v| v.iter().all(|x| x.is_finite()))
    })));
    // A summand range that large: the Add stays float, the chain int8 without it.
    let mut ranges = ranges_for(&RESIDUAL_TENSORS);
    for r in ranges.tensors.values_mut() {
        r.min = 0.0;
    }
    ranges.tensors.get_mut("r0:0").unwrap().max = 3e38;
    let q = run(residual_block(Vec::new()), &act_cfg(ranges));
    let rep = q.report.activations.as_ref().unwrap();
    let f = rep.float.iter().find(|f| f.node == "add").expect("the Add stays float");
    assert!(f.why.contains("no 8-bit form"), "{}", f.why);
    assert_eq!(find(&q.graph, "add").op, "AddV2");
}

#[test]
fn residual_add_stays_float_when_the_summand_is_read_later() {
    // r0 is also read by a node that does not run before the last convolution: the kernel
    // would write over r0 while that node may still read it.
    let side = with(node("side", "Neg", &["r0"]), "T", DataType::DtFloat);
    let g = residual_block(vec![side]);
    assert_add_float(&run(g, &act_cfg(residual_ranges(&[]))), "'side' also reads it");
    // One convolution between the block input and the Add: the kernel would read its input
    // from the buffer it writes. Float Add.
    let f = |n: NodeDef| with(n, "T", DataType::DtFloat);
    let conv = with(
        with(f(node("c", "Conv2D", &["r", "w"])), "strides", vec![1i64, 1, 1, 1]),
        "padding",
        "SAME",
    );
    let g = graph(vec![
        placeholder("x"),
        f(node("r", "Relu", &["x"])),
        const_rand("w", &[1, 1, 4, 4], 30).0,
        conv,
        f(node("add", "AddV2", &["c", "r"])),
        f(node("out", "Relu", &["add"])),
    ]);
    let q = run(g, &act_cfg(ranges_for(&["r:0", "out:0", "c:0", "x:0"])));
    assert_eq!(find(&q.graph, "add").op, "AddV2");
}

/// MobileNetV2's linear bottlenecks: x -> 1x1 conv + BiasAdd (p0, linear) -> two blocks of
/// [1x1 conv + Relu6 -> 1x1 conv + BiasAdd -> AddV2(block input, ·)] (add1, add2, no Relu) ->
/// a 1x1 conv + Relu (c3) and a 3x3 SAME conv + Relu (c4), both reading add2.
fn bottlenecks() -> GraphDef {
    let f = |n: NodeDef| with(n, "T", DataType::DtFloat);
    let conv = |name: &str, input: &str, w: &str| {
        let n = f(node(name, "Conv2D", &[input, w]));
        with(with(n, "strides", vec![1i64, 1, 1, 1]), "padding", "SAME")
    };
    graph(vec![
        placeholder("x"),
        const_rand("w0", &[1, 1, 3, 4], 40).0,
        const_rand("bb0", &[4], 41).0,
        conv("c0", "x", "w0"),
        f(node("p0", "BiasAdd", &["c0", "bb0"])),
        const_rand("we1", &[1, 1, 4, 8], 42).0,
        conv("e1", "p0", "we1"),
        f(node("r1", "Relu6", &["e1"])),
        const_rand("w1", &[1, 1, 8, 4], 43).0,
        const_rand("bb1", &[4], 44).0,
        conv("c1", "r1", "w1"),
        f(node("p1", "BiasAdd", &["c1", "bb1"])),
        f(node("add1", "AddV2", &["p0", "p1"])),
        const_rand("we2", &[1, 1, 4, 8], 45).0,
        conv("e2", "add1", "we2"),
        f(node("r2", "Relu6", &["e2"])),
        const_rand("w2", &[1, 1, 8, 4], 46).0,
        const_rand("bb2", &[4], 47).0,
        conv("c2", "r2", "w2"),
        f(node("p2", "BiasAdd", &["c2", "bb2"])),
        f(node("add2", "AddV2", &["add1", "p2"])),
        const_rand("w3", &[1, 1, 4, 4], 48).0,
        conv("c3", "add2", "w3"),
        f(node("r3", "Relu", &["c3"])),
        const_rand("w4", &[3, 3, 4, 4], 49).0,
        conv("c4", "add2", "w4"),
        f(node("r4", "Relu", &["c4"])),
    ])
}

#[test]
fn residual_add_without_relu_writes_an_offset_tensor() {
    let g = bottlenecks();
    let t = activations::calibration_tensors(&g).unwrap();
    for want in ["p0:0", "p1:0", "add1:0", "p2:0", "add2:0"] {
        assert!(t.contains(&want.to_string()), "{want} not in {t:?}");
    }
    let mut ranges = ranges_for(&t.iter().map(String::as_str).collect::<Vec<_>>());
    for (name, r) in ranges.tensors.iter_mut() {
        if name.starts_with('r') || name == "x:0" {
            r.min = 0.0;
        }
    }
    let q = run(g, &act_cfg(ranges));
    let gq = &q.graph;
    let rep = q.report.activations.as_ref().unwrap();
    // add1: the summand p0 is a qint8 kernel output: the signed-sum kernel, 127 steps over
    // [-1, 2], so the offset is 1 / (3 / 127) = 42.33 -> 42 steps.
    let k1 = find(gq, "add1/eightbit");
    assert_eq!(k1.op, "QuantizedConv2DWithBiasSignedSumAndReluAndRequantize");
    let step1 = 3.0f32 / 127.0;
    let c1 = 42.0 * step1;
    let n1 = rep.int8.iter().find(|n| n.node == "add1/eightbit").unwrap();
    assert_eq!(n1.replaces, ["c1", "p1", "add1"]);
    assert_eq!(n1.output_offset, Some(c1));
    assert_eq!(n1.output_range, Some([0.0, 255.0 * step1]));
    let bias1 = tensor_of(find(gq, &k1.input[2])).values::<f32>().unwrap().to_vec();
    let orig1 = values(4, 44);
    for (b, o) in bias1.iter().zip(&orig1) {
        assert!((b - (o + c1)).abs() < 1e-5, "{b} vs {o} + {c1}");
    }
    // add1's exit takes the offset back: Dequantize(MIN_FIRST) on [-c1, 255 step - c1].
    let d1 = find(gq, "add1");
    assert_eq!(d1.op, "Dequantize");
    assert_eq!(d1.attr["mode"].as_bytes(), Some(b"MIN_FIRST".as_slice()));
    assert_eq!(tensor_of(find(gq, &d1.input[1])).values::<f32>().unwrap()[0], -c1);
    // e2 (1x1) reads add1's codes directly; its bias takes the offset back: -c1 · Σ ŵ.
    let ke2 = find(gq, "r2/eightbit");
    assert_eq!(ke2.input[0], "add1/eightbit");
    let be2 = tensor_of(find(gq, &ke2.input[2])).values::<f32>().unwrap().to_vec();
    assert!(be2.iter().all(|b| *b != 0.0), "{be2:?}");
    // add2: the summand add1 is quint8 with an offset: the unsigned-sum kernel, bias raised by
    // its own offset less the summand's.
    let k2 = find(gq, "add2/eightbit");
    assert_eq!(k2.op, "QuantizedConv2DWithBiasSumAndReluAndRequantize");
    assert_eq!(k2.input[9], "add1/eightbit");
    let step2 = 3.0f32 / 255.0;
    let c2 = 85.0 * step2;
    let bias2 = tensor_of(find(gq, &k2.input[2])).values::<f32>().unwrap().to_vec();
    for (b, o) in bias2.iter().zip(&values(4, 47)) {
        assert!((b - (o + c2 - c1)).abs() < 1e-5, "{b} vs {o} + {c2} - {c1}");
    }
    // c3 (1x1) reads add2's codes; c4 (3x3, zero padding) cannot and quantizes add2's float.
    assert_eq!(find(gq, "r3/eightbit").input[0], "add2/eightbit");
    assert_eq!(find(gq, "r4/eightbit").input[0], "add2/quantize");
    assert_eq!(find(gq, "add2/quantize").input[0], "add2:0");
}

#[test]
fn a_zero_pad_before_a_valid_convolution_folds_into_same_padding() {
    // x -> 1x1 conv + Relu6 (r) -> Pad (bottom and right by 1) -> depthwise 3x3 stride 2
    // VALID + Relu6: Keras' ZeroPadding2D before MobileNetV2's strided depthwise convolutions.
    let f = |n: NodeDef| with(n, "T", DataType::DtFloat);
    let paddings =
        Tensor::from_values(dt::INT32, &[4, 2], &[0i32, 0, 0, 1, 0, 1, 0, 0]).unwrap().to_proto();
    let dw = f(node("dw", "DepthwiseConv2dNative", &["pad", "dwk"]));
    let g = graph(vec![
        placeholder("x"),
        const_rand("w", &[1, 1, 3, 4], 50).0,
        with(
            with(f(node("c", "Conv2D", &["x", "w"])), "strides", vec![1i64, 1, 1, 1]),
            "padding",
            "SAME",
        ),
        f(node("r", "Relu6", &["c"])),
        with(with(node("p", "Const", &[]), "dtype", DataType::DtInt32), "value", paddings),
        with(f(node("pad", "Pad", &["r", "p"])), "Tpaddings", DataType::DtInt32),
        const_rand("dwk", &[3, 3, 4, 1], 51).0,
        with(with(dw, "strides", vec![1i64, 2, 2, 1]), "padding", "VALID"),
        f(node("dwr", "Relu6", &["dw"])),
    ]);
    let t = activations::calibration_tensors(&g).unwrap();
    assert_eq!(t, ["dwr:0", "pad:0", "r:0", "x:0"]);
    let mut ranges = ranges_for(&t.iter().map(String::as_str).collect::<Vec<_>>());
    for r in ranges.tensors.values_mut() {
        r.min = 0.0;
    }
    // Height and width 4 (even): SAME pads 0 before and 1 after, as the Pad does.
    let q = run(g.clone(), &act_cfg(ranges.clone()));
    let k = find(&q.graph, "dwr/eightbit");
    assert_eq!(k.input[0], "r/eightbit");
    assert_eq!(k.attr["padding"].as_bytes(), Some(b"SAME".as_slice()));
    let rep = q.report.activations.as_ref().unwrap();
    assert_eq!(rep.quantize_nodes, 1, "only x is quantized");
    let n = rep.int8.iter().find(|n| n.node == "dwr/eightbit").unwrap();
    assert_eq!(n.folded_pad.as_deref(), Some("pad"));
    // Size 5 (odd): SAME would pad 1 and 1; the Pad stays and its output is quantized.
    ranges.tensors.get_mut("r:0").unwrap().shape = Some(vec![1, 5, 5, 4]);
    let q = run(g, &act_cfg(ranges));
    let k = find(&q.graph, "dwr/eightbit");
    assert_eq!(k.input[0], "pad/quantize");
    assert_eq!(k.attr["padding"].as_bytes(), Some(b"VALID".as_slice()));
}

/// A MobileNet block: x -> 1x1 Conv2D + Relu6 -> depthwise 3x3 (multiplier 2) + BiasAdd + Relu6
/// -> 1x1 Conv2D (linear), the depthwise node given `dw_attrs`; the depthwise reads `dw_input`
/// and the projection `project_input` (`expand_relu` and `dw_relu` in the block).
fn mobilenet_block_from(
    dw_attrs: &[(&str, AttrValue)],
    dw_input: &str,
    project_input: &str,
) -> (GraphDef, Vec<f32>) {
    let f = |n: NodeDef| with(n, "T", DataType::DtFloat);
    let conv = |name: &str, input: &str, w: &str| {
        let n = f(node(name, "Conv2D", &[input, w]));
        with(with(n, "strides", vec![1i64, 1, 1, 1]), "padding", "SAME")
    };
    let mut dw = f(node("dw", "DepthwiseConv2dNative", &[dw_input, "dw/kernel"]));
    dw = with(with(dw, "strides", vec![1i64, 1, 1, 1]), "padding", "SAME");
    for (k, v) in dw_attrs {
        dw.attr.insert(k.to_string(), v.clone());
    }
    let (dwk, dw_values) = const_rand("dw/kernel", &[3, 3, 4, 2], 11);
    let g = graph(vec![
        placeholder("x"),
        const_rand("expand/kernel", &[1, 1, 3, 4], 10).0,
        conv("expand", "x", "expand/kernel"),
        f(node("expand_relu", "Relu6", &["expand"])),
        dwk,
        dw,
        const_rand("dw/bias", &[8], 12).0,
        f(node("dw_bias", "BiasAdd", &["dw", "dw/bias"])),
        f(node("dw_relu", "Relu6", &["dw_bias"])),
        const_rand("project/kernel", &[1, 1, 8, 5], 13).0,
        conv("project", project_input, "project/kernel"),
    ]);
    (g, dw_values)
}

fn mobilenet_block(dw_attrs: &[(&str, AttrValue)]) -> (GraphDef, Vec<f32>) {
    mobilenet_block_from(dw_attrs, "expand_relu", "dw_relu")
}

const BLOCK_TENSORS: [&str; 5] = ["x:0", "expand_relu:0", "dw_relu:0", "project:0", "dw:0"];

#[test]
fn depthwise_chain_stays_int8_between_convolutions() {
    let (g0, w) = mobilenet_block(&[]);
    let t = activations::calibration_tensors(&g0).unwrap();
    assert_eq!(t, ["dw_relu:0", "expand_relu:0", "project:0", "x:0"]);
    let mut r = ranges_for(&BLOCK_TENSORS);
    r.tensors.get_mut("dw_relu:0").unwrap().max = 9.0;
    let q = run(g0, &act_cfg(r));
    let g = &q.graph;
    let k = find(g, "dw_relu/eightbit");
    assert_eq!(k.op, "QuantizedDepthwiseConv2DWithBiasAndReluAndRequantize");
    // Straight from the expand kernel's quint8 output, straight into the projection.
    assert_eq!(k.input[0], "expand_relu/eightbit");
    assert_eq!(k.input[1], "dw/weights_qint8");
    assert_eq!(k.input[2], "dw/bias_1");
    assert_eq!(k.attr["Tinput"].as_type(), Some(DataType::DtQuint8));
    assert_eq!(k.attr["Tfilter"].as_type(), Some(DataType::DtQint8));
    assert_eq!(k.attr["Tbias"].as_type(), Some(DataType::DtFloat));
    assert_eq!(k.attr["out_type"].as_type(), Some(DataType::DtQuint8));
    assert_eq!(k.attr["padding"], AttrValue::from("SAME"));
    assert_eq!(find(g, "project/eightbit").input[0], "dw_relu/eightbit");
    assert_eq!(find(g, "dw_relu").op, "Dequantize");
    for gone in ["dw", "dw_bias", "dw/kernel", "dw/bias"] {
        assert!(g.node.iter().all(|n| n.name != gone), "{gone} is still there");
    }
    // One qint8 range per output channel (in_channel * 2 + m), the filter keeps its shape.
    let wq = tensor_of(find(g, "dw/weights_qint8"));
    assert_eq!((wq.dtype, wq.shape.clone()), (dt::QINT8, vec![3, 3, 4, 2]));
    let max = as_f32s(&tensor_of(find(g, "dw/weights_max")));
    let min = as_f32s(&tensor_of(find(g, "dw/weights_min")));
    assert_eq!(max, max_abs_by(&w, |i| i % 8, 8));
    assert_eq!(min, max.iter().map(|m| -m).collect::<Vec<_>>());
    let codes = as_f32s(&wq);
    for (i, (c, v)) in codes.iter().zip(&w).enumerate() {
        assert!((c * max[i % 8] / 127.0 - v).abs() <= max[i % 8] / 254.0 + 1e-6, "{i}");
    }
    // Relu6: the frozen output range stops at 6.
    assert_eq!(as_f32s(&tensor_of(find(g, "dw/output_max"))), [6.0]);
    let rep = q.report.activations.as_ref().unwrap();
    assert_eq!(rep.quantize_nodes, 1);
    assert!(rep.float.is_empty(), "{:?}", rep.float);
    let d = rep.int8.iter().find(|n| n.node == "dw_relu/eightbit").unwrap();
    assert_eq!(d.replaces, ["dw", "dw_bias", "dw_relu"]);
    assert_eq!((d.weight_scales, d.input_from_int8), (8, true));
    assert_eq!(d.output_range, Some([0.0, 6.0]));
    assert_eq!(rep.eight_bit_ops["Dequantize"], 3);
}

#[test]
fn depthwise_that_int8_cannot_run_stays_float_with_the_reason() {
    // project reads dw_bias: the depthwise chain has no activation.
    let (mut no_relu, _) = mobilenet_block_from(&[], "expand_relu", "dw_bias");
    no_relu.node.retain(|n| n.name != "dw_relu");
    let dilated = mobilenet_block(&[("dilations", vec![1i64, 2, 2, 1].into())]).0;
    let nchw = mobilenet_block(&[("data_format", "NCHW".into())]).0;
    let uneven = mobilenet_block(&[("strides", vec![1i64, 1, 2, 1].into())]).0;
    let cases = [
        (no_relu, "not followed by Relu or Relu6"),
        (dilated, "dilated"),
        (nchw, "not NHWC"),
        (uneven, "strides differ"),
    ];
    for (g, why) in cases {
        let mut r = ranges_for(&BLOCK_TENSORS);
        r.tensors.insert("dw_bias:0".into(), r.tensors["x:0"].clone());
        let q = run(g, &act_cfg(r));
        assert_eq!(find(&q.graph, "dw").op, "DepthwiseConv2dNative", "{why}");
        let rep = q.report.activations.unwrap();
        let f = rep.float.iter().find(|f| f.node == "dw").unwrap();
        assert!(f.why.contains(why), "{why}: {}", f.why);
    }
    // An input that can be negative: the kernel takes quint8 only.
    let (mut g, _) = mobilenet_block_from(&[], "expand", "dw_relu");
    g.node.retain(|n| n.name != "expand_relu");
    let mut r = ranges_for(&BLOCK_TENSORS);
    r.tensors.insert("expand:0".into(), r.tensors["x:0"].clone());
    let q = run(g, &act_cfg(r));
    assert_eq!(find(&q.graph, "dw").op, "DepthwiseConv2dNative");
    let rep = q.report.activations.unwrap();
    let f = rep.float.iter().find(|f| f.node == "dw").unwrap();
    assert!(f.why.contains("negative values") && f.why.contains("quint8 input only"), "{}", f.why);
}

#[test]
fn min_first_range_puts_zero_on_a_code() {
    for (lo, hi) in
        [(-1.0f32, 2.0f32), (-3.0, 2.0), (-0.17, 5.3), (-4.0, -1.0), (-1e-4, 1e-4), (-6.5, 0.0)]
    {
        let (min, max) = activations::min_first_range(lo, hi);
        let step = (max - min) as f64 / 255.0;
        let z = -(min as f64) / step;
        assert!((z - z.round()).abs() < 1e-3, "({lo}, {hi}): zero at code {z}");
        assert!((0.0..=255.0).contains(&z.round()), "({lo}, {hi}): zero at code {z}");
        // QuantizeV2(MIN_FIRST) widens a range narrower than 1 % of its magnitude (at least
        // 0.01); this one is wide enough to be kept.
        let wide = 0.01 * 1f64.max(min.abs() as f64).max(max.abs() as f64);
        assert!((max - min) as f64 >= wide, "({lo}, {hi}) -> ({min}, {max})");
        // Within half a step of the calibrated range (which always holds 0).
        if (hi.max(0.0) - lo.min(0.0)) as f64 >= wide * 1.01 {
            assert!((min as f64 - lo.min(0.0) as f64).abs() <= step / 2.0 + 1e-6, "{lo} {min}");
            assert!((max as f64 - hi.max(0.0) as f64).abs() <= step / 2.0 + 1e-6, "{hi} {max}");
        }
    }
}

#[test]
fn shifted_bias_adds_min_times_column_sums() {
    // codes [[1, -2], [3, 4]] (row-major [in, out]), max |w| = 127 / 2: ŵ = codes / 2.
    let codes = [1i8, -2, 3, 4].map(|c| c as u8);
    let b = activations::shifted_bias(&[0.5, -1.0], &codes, &[63.5], -2.0).unwrap();
    // Column sums of ŵ: 2 and 1; min = -2.
    assert_eq!(b, [0.5 - 4.0, -1.0 - 2.0]);
    assert!(activations::shifted_bias(&[0.0; 3], &codes, &[1.0], -1.0).is_err());
    // One scale per output channel: column 1's ŵ = codes.
    let b = activations::shifted_bias(&[0.5, -1.0], &codes, &[63.5, 127.0], -2.0).unwrap();
    assert_eq!(b, [0.5 - 4.0, -1.0 - 4.0]);
    assert!(activations::shifted_bias(&[0.0; 2], &codes, &[1.0; 3], -1.0).is_err());
    let huge = activations::shifted_bias(&[0.0, 0.0], &codes, &[3e38], -3e38).unwrap_err();
    assert!(huge.contains("overflows"), "{huge}");
}

#[test]
fn matmul_with_negative_input_reads_it_min_first() {
    // dense reads flat (a Reshape of conv2, whose qint8 output a MatMul cannot take), range
    // [-1, 2]: QuantizeV2(MIN_FIRST) to quint8, read by the kernel as SCALED x - min, the
    // zero point folded into the bias.
    let g = legacy_graph();
    let b3 = tensor_of(find(&g, "b3")).values::<f32>().unwrap();
    let q = run(g, &act_cfg(legacy_ranges()));
    let g = &q.graph;
    let k = find(g, "dense_relu/eightbit");
    assert_eq!(k.op, "QuantizedMatMulWithBiasAndReluAndRequantize");
    assert_eq!(k.attr["input_quant_mode"].as_bytes(), Some(&b"SCALED"[..]));
    let qv = find(g, &k.input[0]);
    assert_eq!((qv.name.as_str(), qv.op.as_str()), ("flat/quantize", "QuantizeV2"));
    assert_eq!(qv.attr["mode"].as_bytes(), Some(&b"MIN_FIRST"[..]));
    assert_eq!(qv.attr["T"].as_type(), Some(DataType::DtQuint8));
    let f = |name: &str| as_f32s(&tensor_of(find(g, name)));
    let (min, max) = (f(&qv.input[1])[0], f(&qv.input[2])[0]);
    assert_eq!((min, max), activations::min_first_range(-1.0, 2.0));
    assert_eq!(f(&k.input[3]), [0.0]);
    assert_eq!(f(&k.input[4]), [max - min]);
    let codes = f(&k.input[1]);
    let wmax = f(&k.input[6])[0];
    let bias = f(&k.input[2]);
    for (j, (got, b)) in bias.iter().zip(&b3).enumerate() {
        let col: f64 =
            codes.iter().skip(j).step_by(3).map(|c| *c as f64 * wmax as f64 / 127.0).sum();
        let want = *b as f64 + min as f64 * col;
        assert!((*got as f64 - want).abs() < 1e-6, "bias {j}: {got} vs {want}");
    }
    let rep = q.report.activations.as_ref().unwrap();
    let d = rep.int8.iter().find(|k| k.node == "dense_relu/eightbit").unwrap();
    assert_eq!((d.input_type, d.input_mode), ("quint8", "min_first"));
    assert_eq!(d.input_range, Some([min, max]));
    assert!(rep.int8.iter().filter(|k| k.node != d.node).all(|k| k.input_mode == "scaled"));
    assert!(rep.float.iter().all(|f| f.op != "MatMul"), "{:?}", rep.float);
}

#[test]
fn matmul_under_min_matmul_weights_stays_float() {
    // dense's weight is 4x3: 12 elements. At 12 it becomes int8; at 13 (and by default) it
    // stays float with the reason, and its input gets no QuantizeV2. The convolutions are not
    // affected, nor is the legacy form.
    for (min, int8) in [(12, true), (13, false), (activations::DEFAULT_MIN_MATMUL_WEIGHTS, false)] {
        let mut cfg = act_cfg(legacy_ranges());
        cfg.activations.as_mut().unwrap().min_matmul_weights = min;
        let q = run(legacy_graph(), &cfg);
        let rep = q.report.activations.as_ref().unwrap();
        let float = rep.float.iter().find(|f| f.node == "dense");
        assert_eq!(float.is_none(), int8, "{min}: {:?}", rep.float);
        assert_eq!(rep.int8.iter().any(|k| k.node == "dense_relu/eightbit"), int8);
        if let Some(f) = float {
            assert!(f.why.contains("12 elements") && f.why.contains("--min-matmul-weights"));
            // The report names the chain's MatMul (not its last node, the Relu).
            assert_eq!(f.op, "MatMul");
            assert_eq!(find(&q.graph, "dense").op, "MatMul");
            assert!(q.graph.node.iter().all(|n| n.name != "flat/quantize"));
        }
        assert_eq!(rep.int8.iter().filter(|k| k.kernel.contains("Conv2D")).count(), 2);
    }
    let mut cfg = legacy_cfg(legacy_ranges(), activations::Requantization::Frozen);
    cfg.activations.as_mut().unwrap().min_matmul_weights = 13;
    let q = run(legacy_graph(), &cfg);
    let rep = q.report.activations.as_ref().unwrap();
    assert!(rep.float.iter().all(|f| f.op != "MatMul"), "{:?}", rep.float);
}

// ---------------------------------------------------------------------------------------------
// --activations --legacy-gtt: the Graph Transform Tool's quantize_nodes graph

fn legacy_cfg(ranges: crate::ranges::RangesFile, rq: activations::Requantization) -> QuantConfig {
    let mut c = act_cfg(ranges);
    c.activations.as_mut().unwrap().form = activations::Form::LegacyGtt(rq);
    c
}

/// `int8_graph` plus a Flatten-like Reshape of conv2 into a MatMul + BiasAdd + Relu, a
/// Concat of two eight-bit tensors and an AvgPool.
fn legacy_graph() -> GraphDef {
    let mut g = int8_graph();
    let f = |n: NodeDef| with(n, "T", DataType::DtFloat);
    g.node.extend([
        tf_proto::tensorflow::NodeDef {
            attr: [
                ("dtype".to_string(), AttrValue::from(DataType::DtInt32)),
                (
                    "value".to_string(),
                    Tensor::from_values(dt::INT32, &[2], &[-1i32, 4]).unwrap().to_proto().into(),
                ),
            ]
            .into_iter()
            .collect(),
            ..node("shape", "Const", &[])
        },
        f(node("flat", "Reshape", &["conv2", "shape"])),
        const_rand("w3", &[4, 3], 5).0,
        const_rand("b3", &[3], 6).0,
        f(node("dense", "MatMul", &["flat", "w3"])),
        f(node("dense_bias", "BiasAdd", &["dense", "b3"])),
        f(node("dense_relu", "Relu", &["dense_bias"])),
        const_f32("axis", &[], &[3.0]),
    ]);
    let mut axis = g.node.pop().unwrap();
    axis.attr.insert("dtype".into(), DataType::DtInt32.into());
    axis.attr.insert(
        "value".into(),
        Tensor::from_values(dt::INT32, &[], &[3i32]).unwrap().to_proto().into(),
    );
    g.node.push(axis);
    let cat = with(
        with(node("cat", "ConcatV2", &["pool", "conv2", "axis"]), "N", 2i64),
        "T",
        DataType::DtFloat,
    );
    g.node.push(cat);
    let avg = with(
        with(
            with(node("avg", "AvgPool", &["cat"]), "ksize", vec![1i64, 2, 2, 1]),
            "strides",
            vec![1i64, 2, 2, 1],
        ),
        "padding",
        "VALID",
    );
    g.node.push(f(avg));
    g
}

fn legacy_ranges() -> crate::ranges::RangesFile {
    ranges_for(&["x:0", "relu:0", "pool:0", "conv2:0", "flat:0", "dense_relu:0"])
}

/// The structure every legacy graph must have: GTT's op types and attributes, every input
/// resolving, no Dequantize → QuantizeV2 between two eight-bit ops.
fn assert_legacy_structure(g: &GraphDef) {
    let by_name: std::collections::HashMap<&str, &NodeDef> =
        g.node.iter().map(|n| (n.name.as_str(), n)).collect();
    let quint8 = Some(DataType::DtQuint8);
    for n in &g.node {
        for i in &n.input {
            let src = i.trim_start_matches('^').split(':').next().unwrap();
            assert!(by_name.contains_key(src), "'{}' reads missing '{i}'", n.name);
        }
        let t = |a: &str| n.attr.get(a).and_then(|v| v.as_type());
        let mode = n.attr.get("mode").and_then(|v| v.as_bytes());
        match n.op.as_str() {
            "QuantizeV2" | "Dequantize" => {
                assert_eq!(t("T"), quint8, "{}", n.name);
                assert_eq!(mode, Some(&b"MIN_FIRST"[..]), "{}", n.name);
            }
            "QuantizedConv2D" => {
                assert_eq!((t("Tinput"), t("Tfilter")), (quint8, quint8), "{}", n.name);
                assert_eq!(t("out_type"), Some(DataType::DtQint32));
            }
            "QuantizedMatMul" => {
                assert_eq!((t("T1"), t("T2")), (quint8, quint8), "{}", n.name);
                assert_eq!(t("Toutput"), Some(DataType::DtQint32));
            }
            "QuantizedBiasAdd" => {
                assert_eq!((t("T1"), t("T2")), (quint8, quint8), "{}", n.name);
                assert_eq!(t("out_type"), Some(DataType::DtQint32));
            }
            "QuantizedRelu" | "QuantizedRelu6" => {
                assert_eq!((t("Tinput"), t("out_type")), (quint8, quint8), "{}", n.name)
            }
            "Requantize" => {
                assert_eq!((t("Tinput"), t("out_type")), (Some(DataType::DtQint32), quint8))
            }
            "QuantizedMaxPool" | "QuantizedAvgPool" | "QuantizedReshape" | "QuantizedConcat" => {
                assert_eq!(t("T"), quint8, "{}", n.name)
            }
            op => assert!(
                !op.starts_with("Quantized") && !op.starts_with("_"),
                "'{}' is a {op}, not of GTT's form",
                n.name
            ),
        }
        if n.op == "QuantizeV2" {
            let src = by_name[n.input[0].split(':').next().unwrap()];
            assert_ne!(src.op, "Dequantize", "{} re-quantizes the Dequantize {}", n.name, src.name);
        }
        if n.op == "Const" {
            let v = n.attr_opt_tensor("value").unwrap();
            assert!(v.dtype != dt::QINT8, "{}: weights are quint8 in GTT's form", n.name);
        }
    }
}

#[test]
fn legacy_gtt_emits_quantize_nodes_form() {
    let cfg = legacy_cfg(legacy_ranges(), activations::Requantization::Frozen);
    let q = run(legacy_graph(), &cfg);
    let g = &q.graph;
    assert_legacy_structure(g);
    // conv1 -> bias1 -> relu: three eight-bit ops, the input through one MIN_FIRST QuantizeV2
    // with the calibrated range, the weights quint8 Consts with their ranges.
    let k = find(g, "conv1/eightbit");
    assert_eq!(k.op, "QuantizedConv2D");
    assert_eq!(k.input[0], "conv1_eightbit/x/quantize");
    assert_eq!(k.input[1], "w1_quantized_const");
    assert_eq!(tensor_of(find(g, "w1_quantized_const")).dtype, dt::QUINT8);
    assert_eq!(k.input[4..6], ["w1_quantized_min", "w1_quantized_max"]);
    let mn = find(g, "conv1_eightbit/x/quantize/min");
    assert_eq!(as_f32s(&tensor_of(mn)), [-1.0]);
    // Conv -> BiasAdd: measured at run time (the file has no range for it).
    assert_eq!(find(g, "conv1/eightbit/requant_range").op, "RequantizationRange");
    let rq = find(g, "conv1/eightbit/requantize");
    assert_eq!(rq.input[3..5], ["conv1/eightbit/requant_range", "conv1/eightbit/requant_range:1"]);
    let b = find(g, "bias1/eightbit");
    assert_eq!(b.op, "QuantizedBiasAdd");
    assert_eq!(b.input[0], "conv1/eightbit/requantize");
    assert_eq!(b.input[1], "b1_quantized_const");
    // BiasAdd -> Relu: frozen to [0, max of relu:0].
    let rq = find(g, "bias1/eightbit/requantize");
    let lo = find(g, &rq.input[3]);
    assert_eq!(lo.name, "bias1/eightbit/requant_range/frozen_min");
    assert_eq!(as_f32s(&tensor_of(lo)), [0.0]);
    assert_eq!(as_f32s(&tensor_of(find(g, &rq.input[4]))), [2.0]);
    assert_eq!(find(g, "relu/eightbit").op, "QuantizedRelu");
    assert_eq!(find(g, "relu").op, "Dequantize");
    // The pool, conv2, Reshape, the dense chain, Concat and AvgPool all read eight-bit tensors.
    assert_eq!(find(g, "pool/eightbit").op, "QuantizedMaxPool");
    assert_eq!(find(g, "pool/eightbit").input[0], "relu/eightbit");
    assert_eq!(find(g, "conv2/eightbit").input[0], "pool/eightbit");
    assert_eq!(find(g, "flat/eightbit").op, "QuantizedReshape");
    assert_eq!(find(g, "flat/eightbit").input[0], "conv2/eightbit/requantize");
    let d = find(g, "dense/eightbit");
    assert_eq!(d.op, "QuantizedMatMul");
    assert_eq!(d.input[0], "flat/eightbit");
    let cat = find(g, "cat/eightbit");
    assert_eq!(cat.op, "QuantizedConcat");
    assert_eq!(cat.input[..3], ["axis", "pool/eightbit", "conv2/eightbit/requantize"]);
    assert_eq!(find(g, "avg/eightbit").op, "QuantizedAvgPool");
    assert_eq!(find(g, "avg/eightbit").input[0], "cat/eightbit");
    // A MatMul input that can be negative is fine here (MIN_FIRST); depthwise stays float.
    assert_eq!(find(g, "depthwise").op, "DepthwiseConv2dNative");
    for gone in ["w1", "b1", "w2", "w3", "b3", "conv1", "bias1", "dense", "dense_bias"] {
        assert!(g.node.iter().all(|n| n.name != gone), "{gone} is still there");
    }
    let rep = q.report.activations.as_ref().unwrap();
    assert_eq!((rep.form, rep.requantization), ("legacy-gtt", Some("frozen")));
    assert_eq!(rep.int8.len(), 3);
    assert_eq!(rep.int8[0].kernel, "QuantizedConv2D + QuantizedBiasAdd + QuantizedRelu");
    assert_eq!(rep.quantize_nodes, 1);
    assert_eq!(rep.int8_pools, ["pool", "avg"]);
    assert_eq!(rep.int8_other, ["flat", "cat"]);
    assert_eq!(rep.eight_bit_ops["QuantizeV2"], 1);
    assert_eq!(rep.eight_bit_ops["QuantizedConv2D"], 2);
    assert_eq!(rep.eight_bit_ops["RequantizationRange"], 2);
    assert_eq!(rep.eight_bit_ops["Requantize"], 5);
    assert_eq!(q.report.encoding.as_deref(), Some("legacy-gtt"));
}

#[test]
fn legacy_gtt_dynamic_measures_every_range_and_honours_exclude() {
    let mut cfg = legacy_cfg(legacy_ranges(), activations::Requantization::Dynamic);
    cfg.exclude = compile_patterns("--exclude", &["^dense".to_string()]).unwrap();
    let q = run(legacy_graph(), &cfg);
    let g = &q.graph;
    assert_legacy_structure(g);
    assert!(g.node.iter().all(|n| !n.name.contains("frozen")));
    let rr = g.node.iter().filter(|n| n.op == "RequantizationRange").count();
    let rq = g.node.iter().filter(|n| n.op == "Requantize").count();
    assert_eq!((rr, rq), (3, 3));
    assert_eq!(find(g, "dense").op, "MatMul");
    let rep = q.report.activations.as_ref().unwrap();
    assert!(rep.float.iter().any(|f| f.node == "dense" && f.why.contains("--exclude")));
    assert!(rep.int8.iter().all(|k| k.output_range.is_none()));
    // The chain's ranges are still the file's: a missing input range is the same error.
    let e = quantize_graph_def(
        legacy_graph(),
        &legacy_cfg(ranges_for(&["relu:0"]), activations::Requantization::Dynamic),
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("r.json: no range for tensor 'x:0'"), "{e}");
}

#[test]
fn legacy_gtt_weights_are_quantize_weights_bytes() {
    // The payload is what `tf-quant uint8` (GTT's quantize_weights) stores for the same tensor.
    let q = run(legacy_graph(), &legacy_cfg(legacy_ranges(), activations::Requantization::Frozen));
    let u = run(legacy_graph(), &QuantConfig { min_elements: 1, ..cfg(Mode::Uint8) });
    for w in ["w1", "w2"] {
        let a = find(&q.graph, &format!("{w}_quantized_const"));
        let b = find(&u.graph, &format!("{w}_quantized_const"));
        assert_eq!(tensor_of(a).raw(), tensor_of(b).raw(), "{w}");
        for r in ["_quantized_min", "_quantized_max"] {
            let (a, b) = (find(&q.graph, &format!("{w}{r}")), find(&u.graph, &format!("{w}{r}")));
            assert_eq!(as_f32s(&tensor_of(a)), as_f32s(&tensor_of(b)), "{w}{r}");
        }
    }
}

#[test]
fn legacy_form_keeps_depthwise_float() {
    let (g, _) = mobilenet_block(&[]);
    let q = run(g, &legacy_cfg(ranges_for(&BLOCK_TENSORS), activations::Requantization::Frozen));
    assert_eq!(find(&q.graph, "dw").op, "DepthwiseConv2dNative");
    let rep = q.report.activations.unwrap();
    let f = rep.float.iter().find(|f| f.node == "dw").unwrap();
    assert!(f.why.contains("no depthwise kernel"), "{}", f.why);
    assert_eq!(rep.int8.len(), 2);
}
