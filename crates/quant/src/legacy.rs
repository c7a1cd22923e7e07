//! `tf-quant int8 --activations ranges.json --legacy-gtt`: the graph form the Graph Transform
//! Tool's `quantize_nodes` produced, for serving stacks that expect exactly that graph.
//!
//! The chains and the other region ops are those of the default form ([`crate::activations`]:
//! same selection, ranges, `--exclude` and report); only the emitted nodes differ. Every
//! activation is quint8 with `MIN_FIRST` ranges, every op of a chain becomes its own eight-bit
//! op, and a qint32 result is narrowed back to quint8 by `Requantize`:
//!
//! ```text
//! x ─ QuantizeV2(MIN_FIRST) ─ QuantizedConv2D ─ Requantize ─ QuantizedBiasAdd ─ Requantize
//!       (calibrated range)     (quint8 weight)      │         (quint8 bias)        │
//!                                      RequantizationRange                 frozen range
//!   ─ QuantizedRelu ─ Dequantize(MIN_FIRST) named like the chain's last node
//! ```
//!
//! | float op | eight-bit op | output |
//! |---|---|---|
//! | Conv2D | `QuantizedConv2D` (Tinput, Tfilter quint8) | qint32 → `Requantize` |
//! | MatMul | `QuantizedMatMul` (T1, T2 quint8) | qint32 → `Requantize` |
//! | BiasAdd | `QuantizedBiasAdd` (T1, T2 quint8) | qint32 → `Requantize` |
//! | Relu, Relu6 | `QuantizedRelu`, `QuantizedRelu6` | quint8 |
//! | MaxPool, AvgPool | `QuantizedMaxPool`, `QuantizedAvgPool` | quint8 |
//! | Reshape | `QuantizedReshape` | quint8 |
//! | ConcatV2 (every value eight-bit) | `QuantizedConcat` | quint8 |
//!
//! Weights and biases are quint8 `Const`s with min/max `Const`s, quantized as GTT's
//! `quantize_weights` did (one range per tensor, containing 0) and named as it named them
//! (`<w>_quantized_const`, `_quantized_min`, `_quantized_max`). GTT wrapped every op in its own
//! Dequantize/QuantizeV2 pair and then removed the pairs between adjacent eight-bit ops; here
//! an eight-bit op reads the eight-bit tensor before it directly, so no such pair is ever made.
//!
//! The last `Requantize` of a chain takes the calibrated range of the chain's output
//! ([`Requantization::Frozen`], what GTT's `freeze_requantization_ranges` did; for a chain
//! ending in Relu it is [0, max], Relu6 [0, min(max, 6)]) or measures it at run time with
//! `RequantizationRange` ([`Requantization::Dynamic`]). The one between a Conv2D/MatMul and
//! its BiasAdd always measures it: the ranges file records each chain's input and output only.
//!
//! These ops are the reference CPU kernels: they run with oneDNN on and off, on any x86 CPU,
//! and are slower than float (measured in docs/tools/tf-quant.md).

use bytes::Bytes;
use tf_graph::{Graph, NodeId, TensorName};
use tf_proto::tensorflow::{AttrValue, DataType};
use tf_tensor::{dt, Tensor};

use crate::activations::{
    constant, float_bytes, floats, is_float, node, range_of, Act, Chain, Emitter, Int8Node, Kind,
    QTensor, Requantization,
};
use crate::emit::payload_proto;
use crate::kernels;
use crate::select::Layout;
use crate::QuantError;

fn quint8() -> AttrValue {
    DataType::DtQuint8.into()
}

fn qint32() -> AttrValue {
    DataType::DtQint32.into()
}

/// A float `Const` as GTT's `quantize_weights` stored it: its name, the quint8 payload and the
/// range; `Err` says why it cannot be (a non-finite value).
type Quint8 = (String, tf_proto::tensorflow::TensorProto, f32, f32);

fn quint8_of(g: &Graph, id: NodeId) -> Result<Result<Quint8, String>, QuantError> {
    let n = g.node(id);
    let name = n.name.clone();
    let t = Tensor::from_proto(n.attr_opt_tensor("value").expect("a Const"))
        .map_err(|source| QuantError::Tensor { node: name.clone(), source })?;
    let data = match float_bytes(&t) {
        Ok(d) => d,
        Err(why) => return Ok(Err(format!("'{name}': {why}"))),
    };
    if kernels::max_abs(&data, Layout::per_tensor(data.len() / 4)).is_none() {
        return Ok(Err(format!("'{name}' has NaN or infinite values")));
    }
    let (min, max) = kernels::gtt_range(&data);
    let mut out = vec![0u8; data.len() / 4];
    kernels::uint8_min_first(&data, min, max, &mut out);
    Ok(Ok((name, payload_proto(dt::QUINT8, &t.shape, Bytes::from(out)), min, max)))
}

/// Adds the quint8 `Const` and its min and max `Const`s, named as GTT named them.
fn add_quint8(
    g: &mut Graph,
    st: &mut Emitter<'_>,
    (name, payload, min, max): Quint8,
    device: &str,
) -> Result<[String; 3], QuantError> {
    let names = &mut st.names;
    let q = names.fresh(&format!("{name}_quantized_const"));
    let (mn, mx) = (
        names.fresh(&format!("{name}_quantized_min")),
        names.fresh(&format!("{name}_quantized_max")),
    );
    g.add_node(constant(&q, payload, device))?;
    g.add_node(constant(&mn, floats(&[], &[min]), device))?;
    g.add_node(constant(&mx, floats(&[], &[max]), device))?;
    Ok([q, mn, mx])
}

/// `Requantize` of qint32 `src` to quint8: to `frozen` (Consts named as GTT's
/// `freeze_requantization_ranges` named them) or to what `RequantizationRange` measures.
fn requantize(
    g: &mut Graph,
    st: &mut Emitter<'_>,
    src: &str,
    frozen: Option<[f32; 2]>,
    device: &str,
) -> Result<String, QuantError> {
    let names = &mut st.names;
    let range = names.fresh(&format!("{src}/requant_range"));
    let (lo, hi) = match frozen {
        Some([lo, hi]) => {
            let (mn, mx) = (
                names.fresh(&format!("{range}/frozen_min")),
                names.fresh(&format!("{range}/frozen_max")),
            );
            g.add_node(constant(&mn, floats(&[], &[lo]), device))?;
            g.add_node(constant(&mx, floats(&[], &[hi]), device))?;
            (mn, mx)
        }
        None => {
            let inputs = vec![src.to_string(), format!("{src}:1"), format!("{src}:2")];
            let mut r = node(&range, "RequantizationRange", inputs, device);
            r.attr.insert("Tinput".into(), qint32());
            g.add_node(r)?;
            (range.clone(), format!("{range}:1"))
        }
    };
    let rq = names.fresh(&format!("{src}/requantize"));
    let inputs = vec![src.to_string(), format!("{src}:1"), format!("{src}:2"), lo, hi];
    let mut r = node(&rq, "Requantize", inputs, device);
    r.attr.insert("Tinput".into(), qint32());
    r.attr.insert("out_type".into(), quint8());
    g.add_node(r)?;
    Ok(rq)
}

/// GTT's name of a node's quantized input: `<op>_eightbit/<input>` with `:N` as `__port__N`.
fn input_base(op: &str, t: &TensorName) -> String {
    match t.port {
        0 => format!("{op}_eightbit/{}", t.node),
        p => format!("{op}_eightbit/{}__port__{p}", t.node),
    }
}

/// Rewrites one chain into eight-bit ops; the inner `Err` says why it stays float (nothing
/// changed then).
pub(crate) fn emit_chain(
    g: &mut Graph,
    c: &Chain,
    st: &mut Emitter<'_>,
    rq: Requantization,
) -> Result<Result<(), String>, QuantError> {
    if c.kind == Kind::Depthwise {
        return Ok(Err("the Graph Transform Tool's form has no depthwise kernel".into()));
    }
    let act = st.act;
    let op = g.node(c.op).clone();
    let end_name = g.node(c.end).name.clone();
    let replaces: Vec<String> = c.nodes().iter().map(|&id| g.node(id).name.clone()).collect();
    let device = op.device.clone();
    let input_key = c.input.to_string();
    let upstream = st.qsrc.get(&input_key).cloned();
    let input_range = match &upstream {
        Some(_) => None,
        None => Some(range_of(g, act, &c.input, &format!("input of '{}'", op.name))?),
    };
    // The chain's output range, which the last Requantize is frozen to.
    let out = match rq {
        Requantization::Dynamic => None,
        Requantization::Frozen => {
            let t = TensorName { node: end_name.clone(), port: 0 };
            let (lo, hi) = range_of(g, act, &t, &format!("output of '{end_name}'"))?;
            Some(match c.act {
                Some((_, Act::Relu)) => [0.0, hi.max(1e-6)],
                Some((_, Act::Relu6)) => [0.0, hi.clamp(1e-6, 6.0)],
                None => [lo.min(0.0), hi.max(0.0).max(lo.min(0.0) + 1e-6)],
            })
        }
    };
    // Weights and bias first: a non-finite one leaves the chain float, nothing added.
    let w = match quint8_of(g, c.filter.0)? {
        Ok(w) => w,
        Err(why) => return Ok(Err(format!("weight {why}"))),
    };
    let b = match &c.bias {
        Some((_, bid, _)) => match quint8_of(g, *bid)? {
            Ok(b) => Some(b),
            Err(why) => return Ok(Err(format!("bias {why}"))),
        },
        None => None,
    };
    let w = add_quint8(g, st, w, &device)?;
    let b = b.map(|b| add_quint8(g, st, b, &device)).transpose()?;
    let (qin, input_from_int8) = match upstream {
        Some(q) => (q, true),
        None => {
            let r = input_range.expect("set when there is no upstream");
            let base = input_base(&op.name, &c.input);
            (st.quantize_input(g, &c.input, dt::QUINT8, r, &base, &device)?, false)
        }
    };
    let q = &qin.node;
    let main = st.names.fresh(&format!("{}/eightbit", op.name));
    let [wq, wmin, wmax] = w;
    let mut inputs = vec![q.clone(), wq, format!("{q}:1"), format!("{q}:2"), wmin, wmax];
    inputs.extend(c.control_inputs(g));
    let mut kernels = Vec::new();
    let mut k = match c.kind {
        Kind::Conv2D => {
            let mut k = node(&main, "QuantizedConv2D", inputs, &device);
            k.attr.insert("Tinput".into(), quint8());
            k.attr.insert("Tfilter".into(), quint8());
            for a in ["strides", "padding"] {
                k.attr.insert(a.into(), op.attr[a].clone());
            }
            k
        }
        Kind::Depthwise => unreachable!("depthwise chains return above"),
        Kind::MatMul => {
            let mut k = node(&main, "QuantizedMatMul", inputs, &device);
            k.attr.insert("T1".into(), quint8());
            k.attr.insert("T2".into(), quint8());
            for a in ["transpose_a", "transpose_b"] {
                k.attr.insert(a.into(), false.into());
            }
            k
        }
    };
    k.attr.insert(if c.kind == Kind::Conv2D { "out_type" } else { "Toutput" }.into(), qint32());
    kernels.push(k.op.clone());
    g.add_node(k)?;
    let mut cur = requantize(g, st, &main, out.filter(|_| b.is_none()), &device)?;
    if let (Some((bias_node, _, _)), Some([bq, bmin, bmax])) = (&c.bias, b) {
        let name = st.names.fresh(&format!("{}/eightbit", g.node(*bias_node).name));
        let inputs = vec![cur.clone(), bq, format!("{cur}:1"), format!("{cur}:2"), bmin, bmax];
        let mut k = node(&name, "QuantizedBiasAdd", inputs, &device);
        k.attr.insert("T1".into(), quint8());
        k.attr.insert("T2".into(), quint8());
        k.attr.insert("out_type".into(), qint32());
        kernels.push(k.op.clone());
        g.add_node(k)?;
        cur = requantize(g, st, &name, out, &device)?;
    }
    if let Some((act_node, a)) = c.act {
        let name = st.names.fresh(&format!("{}/eightbit", g.node(act_node).name));
        let qop = match a {
            Act::Relu => "QuantizedRelu",
            Act::Relu6 => "QuantizedRelu6",
        };
        let inputs = vec![cur.clone(), format!("{cur}:1"), format!("{cur}:2")];
        let mut k = node(&name, qop, inputs, &device);
        k.attr.insert("Tinput".into(), quint8());
        k.attr.insert("out_type".into(), quint8());
        kernels.push(qop.to_string());
        g.add_node(k)?;
        cur = name;
    }
    c.remove_inner(g);
    st.dequantize_in_place(g, c.end, &cur, dt::QUINT8);
    st.qsrc.insert(
        format!("{end_name}:0"),
        QTensor { node: cur, dtype: dt::QUINT8, range: out, offset: 0.0 },
    );
    st.rep.int8.push(Int8Node {
        node: main,
        kernel: kernels.join(" + "),
        replaces,
        input: input_key,
        input_type: "quint8",
        input_mode: "min_first",
        input_range: qin.range,
        input_from_int8,
        output_range: out,
        weight_scales: 1,
        summand: None,
        output_offset: None,
        folded_pad: None,
    });
    Ok(Ok(()))
}

/// An op of the legacy form's regions that is not part of a chain, run on the eight-bit
/// tensors it reads: ConcatV2 here, the single-input ones in
/// [`crate::activations::pass_through`]. Returns whether it did.
pub(crate) fn pass_through(
    g: &mut Graph,
    id: NodeId,
    st: &mut Emitter<'_>,
) -> Result<bool, QuantError> {
    if g.node(id).op != "ConcatV2" {
        return crate::activations::pass_through(g, id, st);
    }
    let n = g.node(id);
    let int32_axis =
        n.attr.get("Tidx").and_then(AttrValue::as_type_i32).is_none_or(|t| t == dt::INT32);
    if !is_float(n) || !int32_axis {
        return Ok(false);
    }
    let data: Vec<&String> = n.input.iter().filter(|s| !s.starts_with('^')).collect();
    let Some((axis, values)) = data.split_last().filter(|(_, v)| !v.is_empty()) else {
        return Ok(false);
    };
    let Some(qs) = values
        .iter()
        .map(|s| st.qsrc.get(&TensorName::parse(s).to_string()).cloned())
        .collect::<Option<Vec<QTensor>>>()
    else {
        return Ok(false);
    };
    let (name, device) = (n.name.clone(), n.device.clone());
    let mut inputs = vec![axis.to_string()];
    inputs.extend(qs.iter().map(|q| q.node.clone()));
    inputs.extend(qs.iter().map(|q| format!("{}:1", q.node)));
    inputs.extend(qs.iter().map(|q| format!("{}:2", q.node)));
    inputs.extend(n.input.iter().filter(|s| s.starts_with('^')).cloned());
    let qn = st.names.fresh(&format!("{name}/eightbit"));
    let mut k = node(&qn, "QuantizedConcat", inputs, &device);
    k.attr.insert("N".into(), (qs.len() as i64).into());
    k.attr.insert("T".into(), quint8());
    g.add_node(k)?;
    st.dequantize_in_place(g, id, &qn, dt::QUINT8);
    st.rep.int8_other.push(name.clone());
    st.qsrc.insert(
        format!("{name}:0"),
        QTensor { node: qn, dtype: dt::QUINT8, range: None, offset: 0.0 },
    );
    Ok(true)
}
