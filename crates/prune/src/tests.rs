//! Pruning and channel surgery on tiny graphs.

use tf_graph::Graph;
use tf_proto::tensorflow::{GraphDef, NodeDef};
use tf_tensor::{dt, Tensor};

use crate::{const_f32, prune_graph, PruneConfig};

fn node(name: &str, op: &str, inputs: &[&str]) -> NodeDef {
    NodeDef {
        name: name.into(),
        op: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        ..NodeDef::default()
    }
}

fn konst(name: &str, shape: &[i64], v: &[f32]) -> NodeDef {
    let mut n = node(name, "Const", &[]);
    n.set_attr("value", Tensor::from_values(dt::FLOAT, shape, v).unwrap().to_proto());
    n
}

fn graph(nodes: Vec<NodeDef>) -> Graph {
    Graph::from_graph_def(GraphDef { node: nodes, ..GraphDef::default() }).unwrap()
}

fn values(g: &Graph, name: &str) -> (Vec<i64>, Vec<f32>) {
    const_f32(g.get(name).unwrap()).unwrap()
}

fn mlp(w1: &[f32], b1: &[f32], w2: &[f32]) -> Graph {
    // x[?,2] -> MatMul(w1 [2,3]) -> BiasAdd(b1) -> Relu -> MatMul(w2 [3,2]) -> BiasAdd(b2) -> y
    graph(vec![
        node("x", "Placeholder", &[]),
        konst("w1", &[2, 3], w1),
        node("w1/read", "Identity", &["w1"]),
        node("mm1", "MatMul", &["x", "w1/read"]),
        konst("b1", &[3], b1),
        node("ba1", "BiasAdd", &["mm1", "b1"]),
        node("relu", "Relu", &["ba1"]),
        konst("w2", &[3, 2], w2),
        node("mm2", "MatMul", &["relu", "w2"]),
        konst("b2", &[2], &[0.5, -0.5]),
        node("ba2", "BiasAdd", &["mm2", "b2"]),
        node("y", "Identity", &["ba2"]),
    ])
}

#[test]
fn per_tensor_sparsity_is_exact_and_ties_are_deterministic() {
    let mut g = mlp(&[0.1, 0.5, 0.3, 0.3, 0.2, 0.2], &[0.0; 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let cfg = PruneConfig { sparsity: Some(0.5), ..PruneConfig::default() };
    let r = prune_graph(&mut g, &cfg).unwrap();
    assert_eq!(values(&g, "w1").1, vec![0.0, 0.5, 0.3, 0.3, 0.0, 0.0]);
    assert_eq!(values(&g, "w2").1, vec![0.0, 0.0, 0.0, 4.0, 5.0, 6.0]);
    assert_eq!(r.tensors.len(), 2);
    assert!(r.tensors.iter().all(|t| t.sparsity_after == 0.5));
    // biases are never pruned
    assert_eq!(values(&g, "b2").1, vec![0.5, -0.5]);
}

#[test]
fn sparsity_zero_leaves_the_protos_untouched() {
    let mut g = mlp(&[0.0, 0.5, 0.3, 0.3, 0.2, 0.2], &[0.0; 3], &[1.0; 6]);
    let before = g.get("w1").unwrap().clone();
    let cfg = PruneConfig { sparsity: Some(0.0), ..PruneConfig::default() };
    prune_graph(&mut g, &cfg).unwrap();
    assert_eq!(g.get("w1").unwrap(), &before);
}

#[test]
fn global_threshold_spans_tensors() {
    let mut g = mlp(&[0.1, 0.2, 0.3, 0.4, 0.5, 0.6], &[0.0; 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let cfg = PruneConfig { sparsity: Some(0.5), global: true, ..PruneConfig::default() };
    prune_graph(&mut g, &cfg).unwrap();
    assert!(values(&g, "w1").1.iter().all(|v| *v == 0.0));
    assert!(values(&g, "w2").1.iter().all(|v| *v != 0.0));
}

#[test]
fn include_exclude_and_min_elements() {
    let w = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
    let mut g = mlp(&w, &[0.0; 3], &w);
    let cfg = PruneConfig {
        sparsity: Some(0.5),
        exclude: Some(regex::Regex::new("^mm2$").unwrap()),
        ..PruneConfig::default()
    };
    let r = prune_graph(&mut g, &cfg).unwrap();
    assert_eq!(values(&g, "w2").1, w.to_vec());
    assert_eq!(r.tensors[1].skipped.as_deref(), Some("matched by --exclude"));
    let mut g = mlp(&w, &[0.0; 3], &w);
    let cfg = PruneConfig { sparsity: Some(0.5), min_elements: 7, ..PruneConfig::default() };
    prune_graph(&mut g, &cfg).unwrap();
    assert_eq!(values(&g, "w1").1, w.to_vec());
}

#[test]
fn two_of_four_along_the_input_axis_of_matmul() {
    // w [4, 2]: input axis 0, so each column is one group of 4.
    let mut g = graph(vec![
        node("x", "Placeholder", &[]),
        konst("w", &[4, 2], &[1.0, 8.0, 2.0, 7.0, 3.0, 6.0, 4.0, 5.0]),
        node("mm", "MatMul", &["x", "w"]),
    ]);
    let cfg = PruneConfig { n_m: Some((2, 4)), ..PruneConfig::default() };
    prune_graph(&mut g, &cfg).unwrap();
    assert_eq!(values(&g, "w").1, vec![0.0, 8.0, 0.0, 7.0, 3.0, 0.0, 4.0, 0.0]);
}

#[test]
fn block_pruning_zeroes_whole_blocks() {
    let mut g = graph(vec![
        node("x", "Placeholder", &[]),
        konst("w", &[2, 4], &[1.0, -1.0, 0.1, 0.1, 0.5, 0.4, 3.0, 0.0]),
        node("mm", "MatMul", &["x", "w"]),
    ]);
    let cfg = PruneConfig { sparsity: Some(0.5), block: Some((1, 2)), ..PruneConfig::default() };
    prune_graph(&mut g, &cfg).unwrap();
    assert_eq!(values(&g, "w").1, vec![1.0, -1.0, 0.0, 0.0, 0.0, 0.0, 3.0, 0.0]);
}

#[test]
fn dead_neuron_is_removed_with_the_next_layers_row() {
    // Neuron 1 of mm1 is dead and has bias 0: row 1 of w2 goes, shapes shrink.
    let mut g =
        mlp(&[1.0, 0.0, 2.0, 3.0, 0.0, 4.0], &[0.1, 0.0, 0.2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let cfg = PruneConfig { channels: true, ..PruneConfig::default() };
    let r = prune_graph(&mut g, &cfg).unwrap();
    assert_eq!(values(&g, "w1"), (vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]));
    assert_eq!(values(&g, "b1"), (vec![2], vec![0.1, 0.2]));
    assert_eq!(values(&g, "w2"), (vec![2, 2], vec![1.0, 2.0, 5.0, 6.0]));
    let ch = r.channels.unwrap();
    assert_eq!(ch.channels_removed, 1);
    assert_eq!(ch.layers[0].removed, vec![1]);
    assert_eq!(r.params_after, r.params_before - 4);
}

#[test]
fn constant_neuron_is_folded_into_the_next_bias() {
    // Neuron 1 is dead with bias 2: relu(2) = 2 reaches mm2, folded into b2 += 2 * w2[1, :].
    let mut g =
        mlp(&[1.0, 0.0, 2.0, 3.0, 0.0, 4.0], &[0.1, 2.0, 0.2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let cfg = PruneConfig { channels: true, ..PruneConfig::default() };
    prune_graph(&mut g, &cfg).unwrap();
    assert_eq!(values(&g, "b2").1, vec![0.5 + 6.0, -0.5 + 8.0]);
    assert_eq!(values(&g, "w2").0, vec![2, 2]);
}

#[test]
fn channels_feeding_a_reshape_or_residual_are_kept_with_a_reason() {
    let mut g = graph(vec![
        node("x", "Placeholder", &[]),
        konst("w", &[1, 1, 2, 2], &[1.0, 0.0, 2.0, 0.0]),
        node("conv", "Conv2D", &["x", "w"]),
        node("add", "AddV2", &["conv", "x"]),
        node("y", "Identity", &["add"]),
    ]);
    let cfg = PruneConfig { channels: true, ..PruneConfig::default() };
    let r = prune_graph(&mut g, &cfg).unwrap();
    let ch = r.channels.unwrap();
    assert_eq!(ch.channels_removed, 0);
    assert!(ch.layers[0].kept.keys().any(|k| k.contains("residual")), "{:?}", ch.layers[0].kept);
    assert_eq!(values(&g, "w").0, vec![1, 1, 2, 2]);
}

#[test]
fn conv_channel_removed_through_bias_relu_pool_into_next_conv() {
    // conv1 [1,1,1,3] channel 2 dead (bias 0) -> BiasAdd -> Relu -> MaxPool -> conv2 [1,1,3,1]
    let mut g = graph(vec![
        node("x", "Placeholder", &[]),
        konst("w1", &[1, 1, 1, 3], &[1.0, 2.0, 0.0]),
        node("c1", "Conv2D", &["x", "w1"]),
        konst("b1", &[3], &[0.1, 0.2, 0.0]),
        node("ba", "BiasAdd", &["c1", "b1"]),
        node("r", "Relu", &["ba"]),
        node("p", "MaxPool", &["r"]),
        konst("w2", &[1, 1, 3, 1], &[1.0, 2.0, 3.0]),
        node("c2", "Conv2D", &["p", "w2"]),
        node("y", "Identity", &["c2"]),
    ]);
    let cfg = PruneConfig { channels: true, ..PruneConfig::default() };
    prune_graph(&mut g, &cfg).unwrap();
    assert_eq!(values(&g, "w1"), (vec![1, 1, 1, 2], vec![1.0, 2.0]));
    assert_eq!(values(&g, "b1"), (vec![2], vec![0.1, 0.2]));
    assert_eq!(values(&g, "w2"), (vec![1, 1, 2, 1], vec![1.0, 2.0]));
}

#[test]
fn einsum_weights_are_found_with_their_reduction_axis() {
    // abc,cde->abde: the weight's c (axis 0) is reduced; 2:4 along it.
    let mut e = node("e", "Einsum", &["x", "w"]);
    e.set_attr("equation", "abc,cde->abde");
    let w: Vec<f32> = (1..=8).map(|i| i as f32).collect();
    let mut g = graph(vec![node("x", "Placeholder", &[]), konst("w", &[4, 1, 2], &w), e]);
    let cfg = PruneConfig { n_m: Some((2, 4)), ..PruneConfig::default() };
    let r = prune_graph(&mut g, &cfg).unwrap();
    assert_eq!(r.tensors[0].op, "Einsum");
    assert_eq!(values(&g, "w").1, vec![0.0, 0.0, 0.0, 0.0, 5.0, 6.0, 7.0, 8.0]);
}

#[test]
fn channels_flow_through_a_depthwise_conv() {
    // conv [1,1,1,3] channel 0 dead -> depthwise [3,3,3,1] -> Relu -> conv2 [1,1,3,1]
    let dw: Vec<f32> = (0..27).map(|i| i as f32).collect();
    let mut g = graph(vec![
        node("x", "Placeholder", &[]),
        konst("w1", &[1, 1, 1, 3], &[0.0, 2.0, 3.0]),
        node("c1", "Conv2D", &["x", "w1"]),
        konst("dw", &[3, 3, 3, 1], &dw),
        node("d", "DepthwiseConv2dNative", &["c1", "dw"]),
        node("r", "Relu", &["d"]),
        konst("w2", &[1, 1, 3, 1], &[1.0, 2.0, 3.0]),
        node("c2", "Conv2D", &["r", "w2"]),
        node("y", "Identity", &["c2"]),
    ]);
    let cfg = PruneConfig { channels: true, ..PruneConfig::default() };
    prune_graph(&mut g, &cfg).unwrap();
    let (s, v) = values(&g, "dw");
    assert_eq!(s, vec![3, 3, 2, 1]);
    assert_eq!(&v[..4], &[1.0, 2.0, 4.0, 5.0]);
    assert_eq!(values(&g, "w2"), (vec![1, 1, 2, 1], vec![2.0, 3.0]));
}

#[test]
fn channel_sparsity_zeroes_the_weakest_channels_then_removes_them() {
    // w1 [2,3]: column L1 norms 4, 1, 6 -> at F=0.34 (keep round(1.98) = 2) neuron 1 goes.
    let mut g =
        mlp(&[1.0, 0.5, 2.0, 3.0, 0.5, 4.0], &[0.1, 2.0, 0.2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    // The head is excluded: its outputs are the graph's.
    let cfg = PruneConfig {
        channels: true,
        channel_sparsity: Some(0.34),
        exclude: Some(regex::Regex::new("^mm2$").unwrap()),
        ..PruneConfig::default()
    };
    let r = prune_graph(&mut g, &cfg).unwrap();
    assert_eq!(values(&g, "w1"), (vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]));
    assert_eq!(values(&g, "w2"), (vec![2, 2], vec![1.0, 2.0, 5.0, 6.0]));
    assert_eq!(r.channels.unwrap().channels_removed, 1);
    // removed outright: its bias (relu(2) = 2) is not folded into the next layer
    assert_eq!(values(&g, "b2").1, vec![0.5, -0.5]);
}

#[test]
fn dead_channels_behind_two_identities_are_found() {
    let mut g = graph(vec![
        node("x", "Placeholder", &[]),
        konst("w1", &[1, 1, 1, 2], &[0.0, 2.0]),
        node("w1/a", "Identity", &["w1"]),
        node("w1/b", "Identity", &["w1/a"]),
        node("c1", "Conv2D", &["x", "w1/b"]),
        konst("w2", &[1, 1, 2, 1], &[1.0, 2.0]),
        node("w2/a", "Identity", &["w2"]),
        node("w2/b", "Identity", &["w2/a"]),
        node("c2", "Conv2D", &["c1", "w2/b"]),
        node("y", "Identity", &["c2"]),
    ]);
    let cfg = PruneConfig { channels: true, ..PruneConfig::default() };
    prune_graph(&mut g, &cfg).unwrap();
    assert_eq!(values(&g, "w1"), (vec![1, 1, 1, 1], vec![2.0]));
    assert_eq!(values(&g, "w2"), (vec![1, 1, 1, 1], vec![2.0]));
}

#[test]
fn flops_of_degenerate_convolutions_do_not_divide_by_zero() {
    // A Conv2D with a zero stride (TF refuses it when run) and one with dims that overflow.
    let mut x = node("x", "Placeholder", &[]);
    x.set_attr(
        "shape",
        tf_proto::tensorflow::TensorShapeProto {
            dim: [1, 4, 4, 1]
                .iter()
                .map(|&size| tf_proto::tensorflow::tensor_shape_proto::Dim {
                    size,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        },
    );
    let mut conv = node("c", "Conv2D", &["x", "w"]);
    conv.set_attr("strides", vec![1i64, 0, 0, 1]);
    conv.set_attr("padding", "SAME");
    let g = graph(vec![x, konst("w", &[1, 1, 1, 1], &[1.0]), conv, node("y", "Identity", &["c"])]);
    let f = crate::flops::count(&g);
    assert_eq!((f.flops, f.unknown), (0, 1));

    // A splat [2^40, 2^40] constant squared: the count saturates instead of wrapping.
    let mut a = node("a", "Const", &[]);
    let huge = tf_proto::tensorflow::TensorProto {
        dtype: dt::FLOAT,
        tensor_shape: Some(tf_proto::tensorflow::TensorShapeProto {
            dim: vec![
                tf_proto::tensorflow::tensor_shape_proto::Dim {
                    size: 1 << 40,
                    ..Default::default()
                };
                2
            ],
            ..Default::default()
        }),
        float_val: vec![1.0],
        ..Default::default()
    };
    a.set_attr("value", huge);
    let g = graph(vec![a, node("m", "MatMul", &["a", "a"]), node("y", "Identity", &["m"])]);
    assert_eq!(crate::flops::count(&g).flops, u64::MAX);
}

#[test]
fn empty_weights_with_huge_dimensions_are_refused() {
    // A [2^40, 0] weight has no elements but would size channel vectors and loops by 2^40.
    let mut w = node("w", "Const", &[]);
    let p = tf_proto::tensorflow::TensorProto {
        dtype: dt::FLOAT,
        tensor_shape: Some(tf_tensor::shape_proto(&[1 << 40, 0])),
        ..Default::default()
    };
    w.set_attr("value", p);
    let e = const_f32(&w).unwrap_err().to_string();
    assert!(e.contains("empty tensor of shape [1099511627776,0]"), "{e}");
    for cfg in [
        PruneConfig { sparsity: Some(0.5), block: Some((1, 4)), ..PruneConfig::default() },
        PruneConfig { channels: true, ..PruneConfig::default() },
    ] {
        let mut g = graph(vec![
            node("x", "Placeholder", &[]),
            w.clone(),
            node("m", "MatMul", &["x", "w"]),
            node("y", "Identity", &["m"]),
        ]);
        // Refused or left alone, but never a 2^40 loop or allocation.
        let _ = prune_graph(&mut g, &cfg);
    }
}
