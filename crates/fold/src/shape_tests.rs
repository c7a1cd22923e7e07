//! Unknown dimensions never become numbers: shape inference checked against the evaluator on
//! every size an unknown dimension could take.
//!
//! Each generated program slices, reshapes, pads, tiles, gathers ... a placeholder whose shape
//! has unknown dimensions, then computes with its shape the way Keras and `Tensordot` do
//! (`Shape`, `StridedSlice`, `GatherV2`, `Prod`, `Pack`, `ConcatV2`, `Reshape`). Inference runs
//! once on the partial shape; the evaluator then runs the program on concrete inputs, one per
//! assignment of sizes to the unknown dimensions. Every dimension, element or value inference
//! claims to know must be the one computed for every assignment.

use std::collections::HashMap;
use std::sync::Arc;

use tf_proto::tensorflow::attr_value::Value;
use tf_proto::tensorflow::{AttrValue, NodeDef};
use tf_tensor::{dt, Tensor};

use crate::const_node;
use crate::eval;
use crate::shape::{self, Facts};

fn i(v: i64) -> AttrValue {
    AttrValue { value: Some(Value::I(v)) }
}

fn ty(t: i32) -> AttrValue {
    AttrValue { value: Some(Value::Type(t)) }
}

fn b(v: bool) -> AttrValue {
    AttrValue { value: Some(Value::B(v)) }
}

/// Builds programs: nodes in topological order, one output each, unique names.
#[derive(Default)]
struct Prog {
    nodes: Vec<NodeDef>,
}

impl Prog {
    fn op(&mut self, name: &str, op: &str, inputs: &[&str], attrs: &[(&str, AttrValue)]) -> String {
        let mut n = NodeDef {
            name: name.into(),
            op: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        for (k, v) in attrs {
            n.attr.insert((*k).into(), v.clone());
        }
        self.nodes.push(n);
        name.into()
    }

    fn ints(&mut self, name: &str, shape: &[i64], v: &[i64]) -> String {
        let t = eval::int_tensor(dt::INT32, shape, v).unwrap();
        self.nodes.push(const_node(name.into(), &t, &[], ""));
        name.into()
    }

    fn vec(&mut self, name: &str, v: &[i64]) -> String {
        self.ints(name, &[v.len() as i64], v)
    }

    fn scalar(&mut self, name: &str, v: i64) -> String {
        self.ints(name, &[], &[v])
    }

    #[allow(clippy::too_many_arguments)]
    fn strided(
        &mut self,
        name: &str,
        x: &str,
        be: (&[i64], &[i64], &[i64]),
        masks: [i64; 5],
    ) -> String {
        let (bn, en, sn) = (format!("{name}/b"), format!("{name}/e"), format!("{name}/s"));
        self.vec(&bn, be.0);
        self.vec(&en, be.1);
        self.vec(&sn, be.2);
        let [bm, em, el, na, sh] = masks;
        self.op(
            name,
            "StridedSlice",
            &[x, &bn, &en, &sn],
            &[
                ("Index", ty(dt::INT32)),
                ("begin_mask", i(bm)),
                ("end_mask", i(em)),
                ("ellipsis_mask", i(el)),
                ("new_axis_mask", i(na)),
                ("shrink_axis_mask", i(sh)),
            ],
        )
    }
}

/// The data transforms of a rank-3 tensor `x` into `y`.
fn transforms() -> Vec<(String, Prog)> {
    let mut out: Vec<(String, Prog)> = Vec::new();
    let mut add = |label: String, f: &dyn Fn(&mut Prog)| {
        let mut p = Prog::default();
        f(&mut p);
        out.push((label, p));
    };
    add("identity".into(), &|p| {
        p.op("y", "Identity", &["x"], &[]);
    });
    // (label, begin, end, stride, begin_mask bit, end_mask bit, shrink)
    let specs: [(&str, i64, i64, i64, bool, bool, bool); 9] = [
        ("[1:]", 1, 0, 1, false, true, false),
        ("[:2]", 0, 2, 1, true, false, false),
        ("[-1]", -1, 0, 1, false, false, true),
        ("[::-1]", 0, 0, -1, true, true, false),
        ("[1:-1]", 1, -1, 1, false, false, false),
        ("[::2]", 0, 0, 2, true, true, false),
        ("[-2:]", -2, 0, 1, false, true, false),
        ("[0]", 0, 1, 1, false, false, true),
        ("[2:1]", 2, 1, 1, false, false, false),
    ];
    for axis in 0..3usize {
        for (label, bg, en, st, bm, em, sh) in specs {
            add(format!("strided axis {axis} {label}"), &|p| {
                let mut bv = vec![0; axis + 1];
                let mut ev = vec![0; axis + 1];
                let mut sv = vec![1; axis + 1];
                let full = (1i64 << axis) - 1;
                bv[axis] = bg;
                ev[axis] = en;
                sv[axis] = st;
                let bit = 1i64 << axis;
                let masks = [
                    full | if bm { bit } else { 0 },
                    full | if em { bit } else { 0 },
                    0,
                    0,
                    if sh { bit } else { 0 },
                ];
                p.strided("y", "x", (&bv, &ev, &sv), masks);
            });
        }
    }
    add("strided [..., 1:]".into(), &|p| {
        p.strided("y", "x", (&[0, 1], &[0, 0], &[1, 1]), [0, 2, 1, 0, 0]);
    });
    add("strided [:, None]".into(), &|p| {
        p.strided("y", "x", (&[0, 0], &[0, 0], &[1, 1]), [1, 1, 0, 2, 0]);
    });
    for (bg, sz) in [([0, 1, 0], [-1, -1, 2]), ([1, 0, 0], [1, -1, -1]), ([0, 0, 1], [-1, 2, -1])] {
        add(format!("slice {bg:?} {sz:?}"), &|p| {
            p.vec("y/b", &bg);
            p.vec("y/s", &sz);
            p.op("y", "Slice", &["x", "y/b", "y/s"], &[("Index", ty(dt::INT32))]);
        });
    }
    add("reshape [-1]".into(), &|p| {
        p.vec("y/s", &[-1]);
        p.op("y", "Reshape", &["x", "y/s"], &[]);
    });
    for d in [1, -1] {
        add(format!("expand_dims {d}"), &|p| {
            p.scalar("y/d", d);
            p.op("y", "ExpandDims", &["x", "y/d"], &[]);
        });
    }
    for perm in [[1, 0, 2], [2, 0, 1]] {
        add(format!("transpose {perm:?}"), &|p| {
            p.vec("y/p", &perm);
            p.op("y", "Transpose", &["x", "y/p"], &[]);
        });
    }
    for a in 0..3 {
        add(format!("concat axis {a}"), &|p| {
            p.scalar("y/a", a);
            p.op("y", "ConcatV2", &["x", "x", "y/a"], &[("N", i(2))]);
        });
        add(format!("gather [0] axis {a}"), &|p| {
            p.vec("y/i", &[0]);
            p.scalar("y/a", a);
            p.op("y", "GatherV2", &["x", "y/i", "y/a"], &[]);
        });
    }
    for a in [0, 2] {
        add(format!("pack axis {a}"), &|p| {
            p.op("y", "Pack", &["x", "x"], &[("N", i(2)), ("axis", i(a))]);
        });
    }
    for m in [[1, 2, 1], [3, 1, 1]] {
        add(format!("tile {m:?}"), &|p| {
            p.vec("y/m", &m);
            p.op("y", "Tile", &["x", "y/m"], &[]);
        });
    }
    for pads in [[0, 0, 1, 2, 0, 0], [1, 0, 0, 0, 0, 3]] {
        add(format!("pad {pads:?}"), &|p| {
            p.ints("y/p", &[3, 2], &pads);
            p.op("y", "Pad", &["x", "y/p"], &[]);
        });
    }
    for keep in [false, true] {
        add(format!("sum axis 1 keep {keep}"), &|p| {
            p.scalar("y/a", 1);
            p.op("y", "Sum", &["x", "y/a"], &[("keep_dims", b(keep))]);
        });
    }
    add("batch_matmul x·xᵀ".into(), &|p| {
        p.op("y", "BatchMatMulV2", &["x", "x"], &[("adj_y", b(true))]);
    });
    out
}

/// Shape computations on `y` (of rank `r`), as Keras and Tensordot write them.
fn probes(p: &mut Prog, r: Option<usize>) {
    let shape = [("out_type", ty(dt::INT32))];
    let s = p.op("s", "Shape", &["y"], &shape);
    p.op("size", "Size", &["y"], &shape);
    p.op("rank", "Rank", &["y"], &[]);
    let Some(r) = r.filter(|&r| r >= 1) else { return };
    let mut dims = Vec::new();
    for k in 0..r as i64 {
        dims.push(p.strided(&format!("s{k}"), &s, (&[k], &[k + 1], &[1]), [0, 0, 0, 0, 1]));
    }
    let tail = p.strided("tail", &s, (&[1], &[0], &[1]), [0, 1, 0, 0, 0]);
    p.scalar("ax0", 0);
    let ptail = p.op("ptail", "Prod", &[&tail, "ax0"], &[]);
    p.vec("gi", &[0, r as i64 - 1]);
    let g = p.op("g", "GatherV2", &[&s, "gi", "ax0"], &[]);
    p.op("pg", "Prod", &[&g, "ax0"], &[]);
    let pk = p.op("pk", "Pack", &[&dims[0], &ptail], &[("N", i(2)), ("axis", i(0))]);
    let r2 = p.op("r2", "Reshape", &["y", &pk], &[]);
    p.op("r2s", "Shape", &[&r2], &shape);
    let head = p.strided("head", &s, (&[0], &[1], &[1]), [0, 0, 0, 0, 0]);
    p.vec("m1", &[-1]);
    let cc = p.op("cc", "ConcatV2", &[&head, "m1", "ax0"], &[("N", i(2))]);
    let r3 = p.op("r3", "Reshape", &["y", &cc], &[]);
    p.op("r3s", "Shape", &[&r3], &shape);
    let cc2 = p.op("cc2", "ConcatV2", &[&g, &tail, "ax0"], &[("N", i(2))]);
    p.op("pcc2", "Prod", &[&cc2, "ax0"], &[]);
    p.op("mul", "Mul", &[&dims[0], &dims[r - 1]], &[]);
    p.op("sub", "Sub", &[&ptail, &dims[0]], &[]);
}

fn out_type(n: &NodeDef, ins: &[Facts]) -> i32 {
    match n.op.as_str() {
        "Shape" | "Size" | "Rank" => dt::INT32,
        "Placeholder" => dt::FLOAT,
        _ => ins.first().and_then(|f| f.dtype).unwrap_or(dt::FLOAT),
    }
}

fn const_of(n: &NodeDef) -> Tensor {
    Tensor::from_proto(n.attr_opt_tensor("value").unwrap()).unwrap()
}

fn infer_all(nodes: &[NodeDef], x: &[i64]) -> HashMap<String, Facts> {
    let mut facts: HashMap<String, Facts> = HashMap::new();
    for n in nodes {
        let f = match n.op.as_str() {
            "Const" => Facts::of_value(Arc::new(const_of(n))),
            "Placeholder" => {
                Facts { dtype: Some(dt::FLOAT), shape: Some(x.to_vec()), ..Default::default() }
            }
            _ => {
                let ins: Vec<Facts> = n.input.iter().map(|s| facts[s].clone()).collect();
                let t = out_type(n, &ins);
                shape::infer(n, &ins, &[t]).swap_remove(0)
            }
        };
        facts.insert(n.name.clone(), f);
    }
    facts
}

/// Compares facts with the value computed; returns how many claims were checked.
fn compare(f: &Facts, t: &Tensor, what: &str) -> usize {
    let mut claims = 0;
    if let Some(d) = f.dtype {
        assert_eq!(d, t.dtype, "{what}: dtype");
    }
    if let Some(s) = &f.shape {
        assert_eq!(
            s.len(),
            t.shape.len(),
            "{what}: inferred rank of {s:?}, computed {:?}",
            t.shape
        );
        for (k, (&d, &a)) in s.iter().zip(&t.shape).enumerate() {
            if d >= 0 {
                assert_eq!(d, a, "{what}: inferred shape {s:?}, computed {:?} (dim {k})", t.shape);
                claims += 1;
            }
        }
    }
    if let Some(p) = &f.partial {
        let v = eval::ints(t).unwrap();
        assert_eq!(p.len(), v.len(), "{what}: partial {p:?}, computed {v:?}");
        for (a, b) in p.iter().zip(&v) {
            if let Some(a) = a {
                assert_eq!(a, b, "{what}: partial {p:?}, computed {v:?}");
                claims += 1;
            }
        }
    }
    if let Some(v) = &f.value {
        assert_eq!(v.shape, t.shape, "{what}: folded value's shape");
        assert_eq!(eval::ints(v).unwrap(), eval::ints(t).unwrap(), "{what}: folded value");
        claims += 1;
    }
    claims
}

/// Every assignment of sizes from `sizes` to the unknown dimensions of `pattern`.
fn assignments(pattern: &[i64], sizes: &[i64]) -> Vec<Vec<i64>> {
    let mut out = vec![pattern.to_vec()];
    for (k, &d) in pattern.iter().enumerate() {
        if d < 0 {
            out = out
                .into_iter()
                .flat_map(|s| {
                    sizes.iter().map(move |&v| {
                        let mut s = s.clone();
                        s[k] = v;
                        s
                    })
                })
                .collect();
        }
    }
    out
}

fn run_program(nodes: &[NodeDef], x: &[i64]) -> HashMap<String, Tensor> {
    let n = x.iter().product::<i64>() as usize;
    let vals: Vec<f32> = (0..n).map(|k| k as f32 * 0.5 - 3.0).collect();
    let mut out: HashMap<String, Tensor> = HashMap::new();
    for node in nodes {
        let t = match node.op.as_str() {
            "Const" => Some(const_of(node)),
            "Placeholder" => Some(Tensor::from_values(dt::FLOAT, x, &vals).unwrap()),
            _ => node
                .input
                .iter()
                .map(|s| out.get(s).cloned())
                .collect::<Option<Vec<Tensor>>>()
                .and_then(|ins| eval::evaluate(node, &ins).ok())
                .map(|mut v| v.swap_remove(0)),
        };
        if let Some(t) = t {
            out.insert(node.name.clone(), t);
        }
    }
    out
}

#[test]
fn unknown_dims_never_become_numbers() {
    let patterns: [&[i64]; 6] =
        [&[-1, 4, 5], &[2, -1, 3], &[-1, -1, 3], &[-1, 3, -1], &[-1, -1, -1], &[4, 5, 3]];
    let sizes = [1, 2, 5];
    let (mut programs, mut runs, mut claims, mut folded_known) = (0, 0, 0, 0);
    let mut unfolded_known = Vec::new();
    for pattern in patterns {
        for (label, t) in transforms() {
            let mut p = Prog::default();
            p.op("x", "Placeholder", &[], &[("dtype", ty(dt::FLOAT))]);
            p.nodes.extend(t.nodes);
            let y_rank = infer_all(&p.nodes, pattern)["y"].rank();
            probes(&mut p, y_rank);
            let facts = infer_all(&p.nodes, pattern);
            programs += 1;
            let fully_known = pattern.iter().all(|&d| d >= 0);
            for x in assignments(pattern, &sizes) {
                let actual = run_program(&p.nodes, &x);
                for n in &p.nodes {
                    let Some(t) = actual.get(&n.name) else { continue };
                    let what =
                        format!("x {pattern:?} = {x:?}, {label}, node {} ({})", n.name, n.op);
                    claims += compare(&facts[&n.name], t, &what);
                    runs += 1;
                }
            }
            if fully_known {
                let folds = |k: &str| facts.get(k).is_some_and(|f| f.value.is_some());
                if folds("pg") && folds("r2s") && folds("size") {
                    folded_known += 1;
                } else {
                    unfolded_known.push(label);
                }
            }
        }
    }
    // Not vacuous: hundreds of programs, and with a fully known shape the shape chains fold.
    assert!(programs >= 300, "{programs} programs");
    assert!(runs > 50_000 && claims > 100_000, "{runs} nodes run, {claims} claims checked");
    assert!(
        unfolded_known.is_empty(),
        "{folded_known} fully known programs fold their shape chains, these do not: {unfolded_known:?}"
    );
}

#[test]
fn strided_slice_over_an_unknown_dim_is_unknown() {
    // x[:, 1:] of [?, ?, 16]: the sliced length is unknown, not 0 (what folded a Tensordot's
    // Reshape target to 0 elements).
    let mut p = Prog::default();
    p.op("x", "Placeholder", &[], &[("dtype", ty(dt::FLOAT))]);
    p.strided("y", "x", (&[0, 1], &[0, 0], &[1, 1]), [1, 2, 0, 0, 0]);
    p.strided("z", "x", (&[0, -1], &[0, 0], &[1, 1]), [1, 0, 0, 0, 2]);
    probes(&mut p, Some(3));
    let f = infer_all(&p.nodes, &[-1, -1, 16]);
    assert_eq!(f["y"].shape, Some(vec![-1, -1, 16]));
    assert_eq!(f["z"].shape, Some(vec![-1, 16]), "a shrunk index is one element");
    assert_eq!(f["s"].partial, Some(vec![None, None, Some(16)]));
    assert!(f["s"].value.is_none() && f["ptail"].value.is_none() && f["pg"].value.is_none());
    // Per element: Pack(batch, ·) and Concat([batch], [-1]) keep what is known.
    assert_eq!(f["pk"].partial, Some(vec![None, None]));
    assert_eq!(f["cc"].partial, Some(vec![None, Some(-1)]));
    assert_eq!(f["r3"].shape, Some(vec![-1, -1]));
    assert!(f["r2s"].value.is_none() && f["r3s"].value.is_none());
}

#[test]
fn known_inner_dims_still_fold_with_an_unknown_batch() {
    let mut p = Prog::default();
    p.op("x", "Placeholder", &[], &[("dtype", ty(dt::FLOAT))]);
    p.op("y", "Identity", &["x"], &[]);
    probes(&mut p, Some(3));
    let f = infer_all(&p.nodes, &[-1, 4, 5]);
    assert_eq!(eval::ints(f["ptail"].value.as_deref().unwrap()).unwrap(), vec![20]);
    assert_eq!(f["pk"].partial, Some(vec![None, Some(20)]));
    assert_eq!(f["r2"].shape, Some(vec![-1, 20]));
    assert_eq!(f["r2s"].partial, Some(vec![None, Some(20)]));
    assert!(f["r2s"].value.is_none() && f["s"].value.is_none() && f["size"].value.is_none());
    assert_eq!(eval::ints(f["rank"].value.as_deref().unwrap()).unwrap(), vec![3]);
}

#[test]
fn int32_shape_arithmetic_that_would_wrap_is_unknown() {
    let mut p = Prog::default();
    p.op("x", "Placeholder", &[], &[("dtype", ty(dt::FLOAT))]);
    p.op("y", "Identity", &["x"], &[]);
    probes(&mut p, Some(3));
    let f = infer_all(&p.nodes, &[-1, 1 << 20, 1 << 20]);
    // 2^40 does not fit an int32 Prod: TF would wrap; inference must not claim 2^40.
    assert_eq!(f["ptail"].partial, Some(vec![None]));
    assert!(f["ptail"].value.is_none());
}
