#!/usr/bin/env python3
"""Which int8 kernels stock TensorFlow 2.21 runs on this CPU, and how fast against float.

Before tf-quant rewrites activations into int8 kernels we need to know, on the machine at hand,
which quantized ops the pip wheel really executes on CPU, with which dtypes and attrs, whether
their results match the float computation they replace, and whether they are faster. This script
answers that in four parts:

1. registration: the CPU kernels registered for each quantized op, with their type constraints
   (``get_registered_kernels_for_op``): an op without a CPU kernel cannot be emitted;
2. execution and numbers: each op run on fixed random inputs (quint8 activations, qint8
   per-channel weights, float bias, frozen output range); the dequantized result is compared with
   the float op on the dequantized inputs (error in units of one output quantization step).
   Weights and bias are Const nodes inside the traced function, as in a frozen graph: oneDNN's
   graph rewrite replaces the quantized convolution placeholders with its kernels only when the
   filter is a constant, and a captured (placeholder) filter fails with "Missing 0-th output";
3. speed: median wall time of the int8 kernel against its float counterpart (Conv2D + BiasAdd +
   Relu, MatMul + BiasAdd + Relu, ...), each in its own tf.function, interleaved, for oneDNN on
   and off (``TF_ENABLE_ONEDNN_OPTS``, one subprocess each since TF reads it at import).

4. a MatMul whose input can be negative: each candidate form (MIN_FIRST with a float or a
   qint32 bias, the SCALED kernel fed a MIN_FIRST input, ``_QuantizedMatMul``) as a frozen
   GraphDef in a Session, with its QuantizeV2, against float (``signed_matmul_rows``; alone,
   printed as JSON lines, with ``--signed-only``).

Usage:
    .venv/bin/python scripts/survey_int8_kernels.py [--batch 8] [--seconds 1.0] [--out FILE.md]
    .venv/bin/python scripts/survey_int8_kernels.py --signed-only [--seconds 1.5]

Timing is whole-kernel wall time on whatever else the machine is doing: run it on a quiet
machine for figures you quote, and read ratios (int8/float, measured interleaved) rather than
absolute times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

OPS = [
    "QuantizeV2",
    "Dequantize",
    "QuantizedConv2D",
    "QuantizedConv2DPerChannel",
    "QuantizedConv2DWithBias",
    "QuantizedConv2DWithBiasAndRelu",
    "QuantizedConv2DWithBiasAndRequantize",
    "QuantizedConv2DWithBiasAndReluAndRequantize",
    "QuantizedConv2DWithBiasSumAndReluAndRequantize",
    "QuantizedDepthwiseConv2D",
    "QuantizedDepthwiseConv2DWithBiasAndReluAndRequantize",
    "QuantizedMatMul",
    "QuantizedMatMulWithBias",
    "QuantizedMatMulWithBiasAndRelu",
    "QuantizedMatMulWithBiasAndRequantize",
    "QuantizedMatMulWithBiasAndReluAndRequantize",
    "QuantizedMatMulWithBiasAndDequantize",
    "_QuantizedMatMul",
    "_FusedQuantizedConv2D",
    "_FusedQuantizedDepthwiseConv2D",
    "QuantizedMaxPool",
    "QuantizedAvgPool",
    "QuantizedConcatV2",
    "QuantizedBiasAdd",
    "QuantizedRelu",
    "QuantizedRelu6",
    "QuantizedAdd",
    "QuantizedMul",
    "RequantizationRange",
    "Requantize",
]


def registrations():
    import tensorflow as tf
    from tensorflow.python.framework import kernels

    rows = []
    for op in OPS:
        cpu = [k for k in kernels.get_registered_kernels_for_op(op).kernel if k.device_type == "CPU"]
        combos = []
        for k in cpu:
            parts = []
            for c in k.constraint:
                types = "|".join(tf.dtypes.as_dtype(t).name for t in c.allowed_values.list.type)
                parts.append(f"{c.name}={types}")
            combos.append(", ".join(parts) if parts else "any")
        rows.append({"op": op, "cpu_kernels": len(cpu), "type_constraints": combos})
    return rows


# --- the worker: runs in a subprocess with TF_ENABLE_ONEDNN_OPTS set before TF is imported ---


def _median_time(fn, seconds: float) -> float:
    fn()  # trace and warm up
    fn()
    times = []
    deadline = time.perf_counter() + seconds
    while len(times) < 5 or (time.perf_counter() < deadline and len(times) < 200):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def worker(batch: int, seconds: float) -> list[dict]:
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(20261203)
    raw = tf.raw_ops
    results = []

    def q_act(shape, hi=6.0):
        q = rng.integers(0, 256, size=shape, dtype=np.uint8)
        return q, q.astype(np.float32) * (hi / 255.0), 0.0, hi

    def q_weights(shape, out_axis=-1, per_channel=True):
        """Symmetric qint8 weights, one range per output channel (or one for the tensor)."""
        w = rng.standard_normal(shape).astype(np.float32) * 0.1
        axis = out_axis % w.ndim
        others = tuple(i for i in range(w.ndim) if i != axis) if per_channel else None
        m = np.maximum(np.abs(w).max(axis=others, keepdims=True), 1e-6)
        q = np.clip(np.round(w / m * 127.0), -127, 127).astype(np.int8)
        m_flat = m.reshape(-1) if per_channel else np.float32(m.reshape(()))
        return q, q.astype(np.float32) * (m / 127.0), -m_flat, m_flat

    def case(name, float_fn, int8_fn, dequant_ref):
        row = {"case": name}
        try:
            ref = float_fn().numpy()
            got, step = dequant_ref(int8_fn)
            err = float(np.max(np.abs(got - ref))) / step
            row["max_err_steps"] = round(err, 2)
        except Exception as e:  # the op is not runnable here: that is the finding
            lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
            row["error"] = (lines[-1] if lines else type(e).__name__)[:160]
            results.append(row)
            return
        # Interleave float and int8 timings so that load changes hit both.
        tf_, ti_ = [], []
        for _ in range(3):
            tf_.append(_median_time(lambda: float_fn().numpy(), seconds / 3))
            ti_.append(_median_time(lambda: int8_fn()[0].numpy(), seconds / 3))
        row["float_ms"] = round(sorted(tf_)[1] * 1e3, 3)
        row["int8_ms"] = round(sorted(ti_)[1] * 1e3, 3)
        row["speedup"] = round(row["float_ms"] / row["int8_ms"], 2)
        results.append(row)

    # Conv2D 3x3 and 1x1 with bias and Relu, requantized to quint8 with a frozen output range.
    for (h, cin, cout, k) in ((28, 64, 64, 3), (28, 256, 64, 1), (14, 256, 256, 3)):
        xq, xf, xmin, xmax = q_act((batch, h, h, cin))
        wq, wf, wmin, wmax = q_weights((k, k, cin, cout))
        bias = (rng.standard_normal(cout) * 0.1).astype(np.float32)
        xt = tf.constant(xf)

        @tf.function
        def f_float():
            return tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(xt, tf.constant(wf), 1, "SAME"),
                                             tf.constant(bias)))

        out_max = float(f_float().numpy().max()) or 1.0
        xqt = tf.constant(xq, dtype=tf.quint8)

        @tf.function
        def f_int8():
            return raw.QuantizedConv2DWithBiasAndReluAndRequantize(
                input=xqt, filter=tf.constant(wq, dtype=tf.qint8), bias=tf.constant(bias), min_input=xmin, max_input=xmax,
                min_filter=wmin, max_filter=wmax, min_freezed_output=0.0,
                max_freezed_output=out_max, strides=[1, 1, 1, 1], padding="SAME",
                out_type=tf.quint8)

        def deq(fn, out_max=out_max):
            o = fn()
            return o[0].numpy().astype(np.float32) * (float(o[2]) / 255.0), out_max / 255.0

        case(f"conv {k}x{k} {h}x{h}x{cin}->{cout} +bias+relu (quint8 out)", f_float, f_int8, deq)

    # Depthwise 3x3.
    xq, xf, xmin, xmax = q_act((batch, 28, 28, 128))
    wq, wf, wmin, wmax = q_weights((3, 3, 128, 1), out_axis=2)
    bias = (rng.standard_normal(128) * 0.1).astype(np.float32)
    xt = tf.constant(xf)

    @tf.function
    def dw_float():
        return tf.nn.relu(tf.nn.bias_add(
            tf.nn.depthwise_conv2d(xt, tf.constant(wf), [1, 1, 1, 1], "SAME"), tf.constant(bias)))

    dw_max = float(dw_float().numpy().max()) or 1.0
    xqt = tf.constant(xq, dtype=tf.quint8)

    @tf.function
    def dw_int8():
        return raw.QuantizedDepthwiseConv2DWithBiasAndReluAndRequantize(
            input=xqt, filter=tf.constant(wq, dtype=tf.qint8), bias=tf.constant(bias), min_input=xmin, max_input=xmax,
            min_filter=wmin, max_filter=wmax, min_freezed_output=0.0,
            max_freezed_output=dw_max, strides=[1, 1, 1, 1], padding="SAME", out_type=tf.quint8)

    case("depthwise 3x3 28x28x128 +bias+relu (quint8 out)", dw_float, dw_int8,
         lambda fn: (fn()[0].numpy().astype(np.float32) * (float(fn()[2]) / 255.0), dw_max / 255.0))

    # MatMul + bias + Relu, requantized; and the variant that dequantizes to float.
    m = batch * 16
    xq, xf, xmin, xmax = q_act((m, 1024))
    wq, wf, wmin, wmax = q_weights((1024, 1024), per_channel=False)
    bias = (rng.standard_normal(1024) * 0.1).astype(np.float32)
    xt = tf.constant(xf)

    @tf.function
    def mm_float():
        return tf.nn.relu(tf.nn.bias_add(tf.matmul(xt, tf.constant(wf)), tf.constant(bias)))

    mm_max = float(mm_float().numpy().max()) or 1.0
    xqt = tf.constant(xq, dtype=tf.quint8)

    @tf.function
    def mm_int8():
        return raw.QuantizedMatMulWithBiasAndReluAndRequantize(
            a=xqt, b=tf.constant(wq, dtype=tf.qint8), bias=tf.constant(bias), min_a=xmin, max_a=xmax, min_b=wmin, max_b=wmax,
            min_freezed_output=0.0, max_freezed_output=mm_max, Toutput=tf.quint8)

    case(f"matmul {m}x1024x1024 +bias+relu (quint8 out)", mm_float, mm_int8,
         lambda fn: (fn()[0].numpy().astype(np.float32) * (float(fn()[2]) / 255.0), mm_max / 255.0))

    @tf.function
    def mm_float_nr():
        return tf.nn.bias_add(tf.matmul(xt, tf.constant(wf)), tf.constant(bias))

    @tf.function
    def mm_int8_deq():
        o = raw.QuantizedMatMulWithBiasAndDequantize(
            a=xqt, b=tf.constant(wq, dtype=tf.qint8), bias=tf.constant(bias), min_a=xmin, max_a=xmax, min_b=wmin, max_b=wmax,
            min_freezed_output=-mm_max, max_freezed_output=mm_max, Toutput=tf.float32)
        return (o,)

    case(f"matmul {m}x1024x1024 +bias (float out)", mm_float_nr, mm_int8_deq,
         lambda fn: (fn()[0].numpy(), mm_max / 127.0))

    # The region boundaries: QuantizeV2 and Dequantize of an activation.
    act = tf.constant(rng.uniform(0, 6, size=(batch, 28, 28, 64)).astype(np.float32))

    @tf.function
    def ident():
        return act * 1.0

    @tf.function
    def quant():
        return raw.QuantizeV2(input=act, min_range=0.0, max_range=6.0, T=tf.quint8)

    case("QuantizeV2 28x28x64 (vs a float Mul)", ident, quant,
         lambda fn: (fn()[0].numpy().astype(np.float32) * (6.0 / 255.0), 6.0 / 255.0))

    qact = tf.constant(np.round(act.numpy() / 6.0 * 255).astype(np.uint8), dtype=tf.quint8)

    @tf.function
    def dequant():
        return (raw.Dequantize(input=qact, min_range=0.0, max_range=6.0),)

    case("Dequantize 28x28x64 (vs a float Mul)", ident, dequant,
         lambda fn: (fn()[0].numpy(), 6.0 / 255.0))

    # MaxPool on quint8.
    @tf.function
    def mp_float():
        return tf.nn.max_pool2d(act, 3, 2, "SAME")

    @tf.function
    def mp_int8():
        return raw.QuantizedMaxPool(input=qact, min_input=0.0, max_input=6.0, ksize=[1, 3, 3, 1],
                                    strides=[1, 2, 2, 1], padding="SAME")

    case("maxpool 3x3/2 28x28x64", mp_float, mp_int8,
         lambda fn: (fn()[0].numpy().astype(np.float32) * (6.0 / 255.0), 6.0 / 255.0))

    # The Graph Transform Tool's quantize_nodes form (tf-quant --legacy-gtt): quint8 MIN_FIRST
    # everywhere, one reference op per float op, qint32 narrowed by Requantize with the range
    # RequantizationRange measures. Conv2D + BiasAdd + Relu and MatMul + BiasAdd + Relu.
    def q_min_first(v):
        lo, hi = min(float(v.min()), 0.0), max(float(v.max()), 0.0)
        step = (hi - lo) / 255.0
        q = np.clip(np.round(v / step) - round(lo / step), 0, 255).astype(np.uint8)
        return q, (q.astype(np.float32) + round(lo / step)) * step, lo, hi

    def legacy_chain(op, xqt, xmin, xmax, wq, wmin, wmax, bq, bmin, bmax, **attrs):
        c = op(xqt, tf.constant(wq, dtype=tf.quint8), xmin, xmax, tf.constant(wmin),
               tf.constant(wmax), **attrs)
        r = raw.RequantizationRange(input=c[0], input_min=c[1], input_max=c[2])
        q = raw.Requantize(input=c[0], input_min=c[1], input_max=c[2], requested_output_min=r[0],
                           requested_output_max=r[1], out_type=tf.quint8)
        b = raw.QuantizedBiasAdd(input=q[0], bias=tf.constant(bq, dtype=tf.quint8), min_input=q[1],
                                 max_input=q[2], min_bias=tf.constant(bmin),
                                 max_bias=tf.constant(bmax), out_type=tf.qint32)
        r = raw.RequantizationRange(input=b[0], input_min=b[1], input_max=b[2])
        q = raw.Requantize(input=b[0], input_min=b[1], input_max=b[2], requested_output_min=r[0],
                           requested_output_max=r[1], out_type=tf.quint8)
        return raw.QuantizedRelu(features=q[0], min_features=q[1], max_features=q[2],
                                 out_type=tf.quint8)

    def legacy_deq(fn):
        o = fn()
        return (raw.Dequantize(input=o[0], min_range=o[1], max_range=o[2], mode="MIN_FIRST").numpy(),
                float(o[2] - o[1]) / 255.0)

    xq, xf, xmin, xmax = q_act((batch, 28, 28, 64))
    w = (rng.standard_normal((3, 3, 64, 64)) * 0.1).astype(np.float32)
    wq, wf, wmin, wmax = q_min_first(w)
    bq, bf, bmin, bmax = q_min_first((rng.standard_normal(64) * 0.1).astype(np.float32))
    xt, xqt = tf.constant(xf), tf.constant(xq, dtype=tf.quint8)

    @tf.function
    def lconv_float():
        return tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(xt, tf.constant(wf), 1, "SAME"),
                                         tf.constant(bf)))

    def conv_op(x, f, a, b, c, d):
        return raw.QuantizedConv2D(input=x, filter=f, min_input=a, max_input=b, min_filter=c,
                                   max_filter=d, strides=[1, 1, 1, 1], padding="SAME",
                                   out_type=tf.qint32)

    @tf.function
    def lconv_int8():
        return legacy_chain(conv_op, xqt, xmin, xmax, wq, wmin, wmax, bq, bmin, bmax)

    case("GTT conv 3x3 28x28x64->64 +bias+relu (quint8 MIN_FIRST, RequantizationRange)",
         lconv_float, lconv_int8, legacy_deq)

    xq, xf, xmin, xmax = q_act((batch * 16, 1024))
    w = (rng.standard_normal((1024, 1024)) * 0.05).astype(np.float32)
    wq, wf, wmin, wmax = q_min_first(w)
    bq, bf, bmin, bmax = q_min_first((rng.standard_normal(1024) * 0.1).astype(np.float32))
    xt, xqt = tf.constant(xf), tf.constant(xq, dtype=tf.quint8)

    @tf.function
    def lmm_float():
        return tf.nn.relu(tf.nn.bias_add(tf.matmul(xt, tf.constant(wf)), tf.constant(bf)))

    def mm_op(x, f, a, b, c, d):
        return raw.QuantizedMatMul(a=x, b=f, min_a=a, max_a=b, min_b=c, max_b=d,
                                   Toutput=tf.qint32)

    @tf.function
    def lmm_int8():
        return legacy_chain(mm_op, xqt, xmin, xmax, wq, wmin, wmax, bq, bmin, bmax)

    case(f"GTT matmul {batch * 16}x1024x1024 +bias+relu (quint8 MIN_FIRST, RequantizationRange)",
         lmm_float, lmm_int8, legacy_deq)
    results.extend(signed_matmul_rows(seconds))
    return results


# --- MatMul with an input that can be negative (after LayerNorm, GELU, tanh, attention) ---

SIGNED_FORMS = {
    "min_first_float_bias": "QuantizedMatMulWithBiasAndDequantize, MIN_FIRST quint8 input, "
                            "float bias",
    "min_first_qint32_bias": "QuantizedMatMulWithBiasAndDequantize, MIN_FIRST quint8 input, "
                             "qint32 bias with the zero point folded in",
    "shifted_scaled": "QuantizedMatMulWithBiasAndDequantize, SCALED, fed the MIN_FIRST quint8 "
                      "input, zero point folded into the float bias",
    "fused_qint8": "_QuantizedMatMul [BiasAdd, Dequantize], SCALED qint8 input, per-channel "
                   "weights",
    "fused_min_first": "_QuantizedMatMul [BiasAdd, Dequantize], MIN_FIRST quint8 input, "
                       "per-channel weights",
}


def graph_builder():
    """A new GraphDef with `add(name, op, inputs, **attrs)` (attrs as AttrValues) and
    `const(name, array, tf_dtype)` to fill it."""
    import tensorflow as tf
    from tensorflow.core.framework import attr_value_pb2, graph_pb2

    gd = graph_pb2.GraphDef()

    def add(name, op, inputs=(), **attrs):
        nd = gd.node.add(name=name, op=op, input=list(inputs))
        for key, v in attrs.items():
            nd.attr[key].CopyFrom(v)

    def const(name, arr, dtype):
        add(name, "Const", dtype=attr_value_pb2.AttrValue(type=dtype.as_datatype_enum),
            value=attr_value_pb2.AttrValue(tensor=tf.make_tensor_proto(arr, dtype=dtype)))

    return gd, add, const


def signed_matmul_rows(seconds: float, shapes=((128, 1024, 1024), (32, 64, 128), (1024, 64, 128))):
    """Each candidate form of an int8 MatMul whose input range is [-3, 2], as a frozen GraphDef
    run in a Session (the way tf-quant's graphs run): QuantizeV2 of the float input, the kernel,
    float out. The error is against float MatMul + BiasAdd on the same dequantized input and
    weights, in steps of max|out|/127; the times include the QuantizeV2."""
    import numpy as np
    import tensorflow as tf
    from tensorflow.core.framework import attr_value_pb2, types_pb2

    A = attr_value_pb2.AttrValue
    F, U8, S8, S32 = (types_pb2.DT_FLOAT, types_pb2.DT_QUINT8, types_pb2.DT_QINT8,
                      types_pb2.DT_QINT32)
    rows = []
    rng = np.random.default_rng(20261204)
    for (m, k, n) in shapes:
        lo, hi = -3.0, 2.0
        x = np.clip(rng.standard_normal((m, k)), lo, hi).astype(np.float32)
        w = (rng.standard_normal((k, n)) * 0.05).astype(np.float32)
        b = (rng.standard_normal(n) * 0.1).astype(np.float32)
        # Weights: per tensor (the QuantizedMatMul* ops take scalar ranges), per channel.
        m_t = float(np.abs(w).max())
        wq_t = np.clip(np.round(w / m_t * 127), -127, 127).astype(np.int8)
        m_c = np.abs(w).max(axis=0).astype(np.float32)
        wq_c = np.clip(np.round(w / m_c * 127), -127, 127).astype(np.int8)
        # Input: MIN_FIRST on a range whose zero point is an integer (min = -z * step).
        step = (hi - lo) / 255
        z = round(-lo / step)
        amin, amax = -z * step, -z * step + 255 * step
        r = max(abs(lo), abs(hi))

        def x_min_first():
            q = np.clip(np.round(x / step) + z, 0, 255)
            return ((q - z) * step).astype(np.float64)

        def x_qint8():
            return np.clip(np.round(x / r * 127), -127, 127) * (r / 127)

        def graph(form):
            gd, add, const = graph_builder()

            add("x", "Placeholder", dtype=A(type=F), shape=A(shape=tf.TensorShape([None, k]).as_proto()))
            if form == "float":
                const("w", w, tf.float32)
                const("b", b, tf.float32)
                add("mm", "MatMul", ["x", "w"], T=A(type=F))
                add("out", "BiasAdd", ["mm", "b"], T=A(type=F))
                return gd, None
            qint8 = form == "fused_qint8"
            const("qmin", np.float32(-r if qint8 else amin), tf.float32)
            const("qmax", np.float32(r if qint8 else amax), tf.float32)
            qattr = {"mode": A(s=b"SCALED"), "round_mode": A(s=b"HALF_TO_EVEN")} if qint8 else {
                "mode": A(s=b"MIN_FIRST")}
            add("q", "QuantizeV2", ["x", "qmin", "qmax"], T=A(type=S8 if qint8 else U8), **qattr)
            xd = x_qint8() if qint8 else x_min_first()
            if form.startswith("fused"):
                const("w", wq_c, tf.qint8)
                const("b", b, tf.float32)
                const("wmin", -m_c, tf.float32)
                const("wmax", m_c, tf.float32)
                t1 = S8 if qint8 else U8
                add("out", "_QuantizedMatMul", ["q", "w", "b", "q:1", "q:2", "wmin", "wmax"],
                    Tdevice_inputs=A(list=A.ListValue(type=[t1, S8, F, F, F, F, F])),
                    Thost_inputs=A(list=A.ListValue(type=[])),
                    Tdevice_outputs=A(list=A.ListValue(type=[F])),
                    Thost_outputs=A(list=A.ListValue(type=[])),
                    T1=A(type=t1), T2=A(type=S8), Tbias=A(type=F), Tout=A(type=F), U=A(type=F),
                    fused_ops=A(list=A.ListValue(s=[b"BiasAdd", b"Dequantize"])),
                    input_quant_mode=A(s=b"SCALED" if qint8 else b"MIN_FIRST"))
                return gd, xd @ (wq_c * (m_c / 127)).astype(np.float64) + b
            wd = wq_t.astype(np.float64) * (m_t / 127)
            const("w", wq_t, tf.qint8)
            const("wmin", np.float32(-m_t), tf.float32)
            const("wmax", np.float32(m_t), tf.float32)
            const("omin", np.float32(-1), tf.float32)
            const("omax", np.float32(1), tf.float32)
            ins, mode, tbias = ["q:1", "q:2"], b"MIN_FIRST", F
            if form == "min_first_float_bias":
                const("b", b, tf.float32)
            elif form == "min_first_qint32_bias":
                colsum = wq_t.astype(np.int64).sum(axis=0)
                acc = step * m_t / 127
                const("b", np.round(b / acc - z * colsum).astype(np.int32), tf.qint32)
                tbias = S32
            else:  # shifted_scaled: the kernel sees x - min in [0, max - min]
                const("b", (b + amin * wd.sum(axis=0)).astype(np.float32), tf.float32)
                const("amin", np.float32(0), tf.float32)
                const("amax", np.float32(amax - amin), tf.float32)
                ins, mode = ["amin", "amax"], b"SCALED"
            add("out", "QuantizedMatMulWithBiasAndDequantize",
                ["q", "w", "b", *ins, "wmin", "wmax", "omin", "omax"], T1=A(type=U8),
                T2=A(type=S8), Tbias=A(type=tbias), Toutput=A(type=F),
                input_quant_mode=A(s=mode))
            return gd, xd @ wd + b

        def session(gd):
            g = tf.Graph()
            with g.as_default():
                tf.graph_util.import_graph_def(gd, name="")
            s = tf.compat.v1.Session(graph=g)
            out, xin = g.get_tensor_by_name("out:0"), g.get_tensor_by_name("x:0")
            return lambda: s.run(out, {xin: x})

        f_run = session(graph("float")[0])
        for form, label in SIGNED_FORMS.items():
            row = {"case": f"matmul {m}x{k}x{n} input in [-3, 2]: {label}"}
            try:
                gd, ref = graph(form)
                i_run = session(gd)
                got = i_run()
                row["max_err_steps"] = round(float(np.abs(got - ref).max() / (np.abs(ref).max() / 127)), 2)
            except Exception as e:  # the form does not run here: that is the finding
                lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
                row["error"] = (lines[0] if lines else type(e).__name__)[:160]
                rows.append(row)
                continue
            tf_, ti_ = [], []
            for _ in range(3):
                tf_.append(_median_time(f_run, seconds / 3))
                ti_.append(_median_time(i_run, seconds / 3))
            row["float_ms"] = round(sorted(tf_)[1] * 1e3, 3)
            row["int8_ms"] = round(sorted(ti_)[1] * 1e3, 3)
            row["speedup"] = round(row["float_ms"] / row["int8_ms"], 2)
            rows.append(row)
    return rows


def sum_rows(seconds: float, batch: int = 8, reader: str = "none"):
    """The fused residual Add: a 1x1 conv 14x14x64->64 (+bias) plus a summand, then Relu, as a
    frozen GraphDef in a Session. Each form is checked against float on the same dequantized
    inputs (error in steps of the true output range / 255, or / 127 for the forms that keep 7
    bits) and timed against float Conv2D + BiasAdd + AddV2 + Relu. `reader`: "fetched" also
    fetches a Dequantize of the summand (a second reader, unordered), "ordered" gives the kernel
    a control edge from that Dequantize."""
    import numpy as np
    import tensorflow as tf
    from tensorflow.core.framework import attr_value_pb2, types_pb2

    A = attr_value_pb2.AttrValue
    F, U8, S8 = types_pb2.DT_FLOAT, types_pb2.DT_QUINT8, types_pb2.DT_QINT8
    rng = np.random.default_rng(20261204)
    n, h, w_, c, k = batch, 14, 14, 64, 64
    x = rng.uniform(0, 4, (n, h, w_, c)).astype(np.float32)
    wf = (rng.standard_normal((1, 1, c, k)) * 0.1).astype(np.float32)
    b = (rng.standard_normal(k) * 0.1).astype(np.float32)
    xmax, smax, omax = 4.0, 3.0, 8.0
    m = np.abs(wf).max(axis=(0, 1, 2))
    wq = np.clip(np.round(wf / m * 127), -127, 127)
    conv = np.einsum("nhwc,ck->nhwk", np.round(x / xmax * 255) * xmax / 255, (wq * m / 127)[0, 0]) + b
    summands = {"quint8": rng.uniform(0, smax, (n, h, w_, k)).astype(np.float32),
                "qint8": rng.uniform(-smax, smax, (n, h, w_, k)).astype(np.float32)}

    def graph(form, st, kmax):
        gd, add, const = graph_builder()

        add("x", "Placeholder", dtype=A(type=F))
        add("s", "Placeholder", dtype=A(type=F))
        if form == "float":
            const("w", wf, tf.float32)
            const("b", b, tf.float32)
            strides = A(list=A.ListValue(i=[1, 1, 1, 1]))
            add("conv", "Conv2D", ["x", "w"], T=A(type=F), strides=strides, padding=A(s=b"SAME"))
            add("bias", "BiasAdd", ["conv", "b"], T=A(type=F))
            add("sum", "AddV2", ["bias", "s"], T=A(type=F))
            add("out", "Relu", ["sum"], T=A(type=F))
            return gd
        signed = st == "qint8"
        const("xmin", np.float32(0), tf.float32)
        const("xmax", np.float32(xmax), tf.float32)
        rnd = {"mode": A(s=b"SCALED"), "round_mode": A(s=b"HALF_TO_EVEN")}
        add("qx", "QuantizeV2", ["x", "xmin", "xmax"], T=A(type=U8), **rnd)
        const("smin", np.float32(-smax if signed else 0), tf.float32)
        const("smax", np.float32(smax), tf.float32)
        add("qs", "QuantizeV2", ["s", "smin", "smax"], T=A(type=S8 if signed else U8), **rnd)
        const("w", wq.astype(np.int8), tf.qint8)
        const("b", b, tf.float32)
        const("wmin", -m, tf.float32)
        const("wmax", m, tf.float32)
        const("omin", np.float32(0), tf.float32)
        const("omax", np.float32(kmax), tf.float32)
        # What the kernel outputs: quint8 when it requantizes (every legacy op here), float
        # when it dequantizes, else qint32.
        out = U8 if not form.startswith("_Fused") or "Requantize" in form else (
            F if "Dequantize" in form else types_pb2.DT_QINT32)
        attrs = dict(Tinput=A(type=U8), Tfilter=A(type=S8), Tbias=A(type=F),
                     Tsummand=A(type=S8 if signed else U8), out_type=A(type=out),
                     strides=A(list=A.ListValue(i=[1, 1, 1, 1])), padding=A(s=b"SAME"))
        if form.startswith("_Fused"):
            fused = [f.encode() for f in form.split(":")[1].split(",")]
            types = [U8, S8, F, S8 if signed else U8] + [F] * 8
            add("k", "_FusedQuantizedConv2D",
                ["qx", "w", "b", "qs", "qx:1", "qx:2", "wmin", "wmax", "qs:1", "qs:2", "omin", "omax"],
                Tdevice_inputs=A(list=A.ListValue(type=types)), Thost_inputs=A(list=A.ListValue(type=[])),
                Tdevice_outputs=A(list=A.ListValue(type=[out, F, F])),
                Thost_outputs=A(list=A.ListValue(type=[])), fused_ops=A(list=A.ListValue(s=fused)),
                **attrs)
        else:
            add("k", form, ["qx", "w", "b", "qx:1", "qx:2", "wmin", "wmax", "omin", "omax",
                            "qs", "qs:1", "qs:2"], **attrs)
        if out == U8:
            add("out", "Dequantize", ["k", "k:1", "k:2"], T=A(type=U8), mode=A(s=b"SCALED"))
        else:  # per-channel ranges of a qint32 result are vectors, which Dequantize rejects
            add("out", "Identity", ["k"], T=A(type=out))
        if reader != "none":
            add("sd", "Dequantize", ["qs", "qs:1", "qs:2"], T=A(type=S8 if signed else U8),
                mode=A(s=b"SCALED"))
            if reader == "ordered":
                gd.node[[nd.name for nd in gd.node].index("k")].input.append("^sd")
        return gd

    def session(gd, st):
        g = tf.Graph()
        with g.as_default():
            tf.graph_util.import_graph_def(gd, name="")
        sess = tf.compat.v1.Session(graph=g)
        fetch = [g.get_tensor_by_name("out:0")]
        if reader != "none" and "sd" in [nd.name for nd in gd.node]:
            fetch.append(g.get_tensor_by_name("sd:0"))
        feeds = {g.get_tensor_by_name("x:0"): x, g.get_tensor_by_name("s:0"): summands[st]}
        return lambda: sess.run(fetch, feeds)[0]

    forms = [("QuantizedConv2DWithBiasSumAndReluAndRequantize", "quint8", 1.0),
             ("QuantizedConv2DWithBiasSignedSumAndReluAndRequantize", "qint8", 1.0),
             ("QuantizedConv2DWithBiasSignedSumAndReluAndRequantize", "qint8", 255 / 127),
             ("_FusedQuantizedConv2D:BiasAdd,Sum,Relu,Requantize", "quint8", 1.0),
             ("_FusedQuantizedConv2D:BiasAdd,Sum,Requantize", "qint8", 1.0),
             ("_FusedQuantizedConv2D:BiasAdd,Sum,Dequantize", "qint8", 1.0),
             ("_FusedQuantizedConv2D:BiasAdd,Sum", "qint8", 1.0)]
    rows = []
    for form, st, widen in forms:
        sd = summands[st]
        scale = smax / (127 if st == "qint8" else 255)
        sq = np.clip(np.round(sd / scale), -127 if st == "qint8" else 0, 255) * scale
        ref = np.clip(np.maximum(conv + sq, 0), 0, omax)
        label = f"{form}, {st} summand" + (", output range x255/127" if widen != 1.0 else "")
        row = {"case": label, "reader": reader}
        try:
            f_run = session(graph("float", st, omax), st)
            i_run = session(graph(form, st, omax * widen), st)
            got = i_run()
            if got.dtype != np.float32:
                row["error"] = f"runs, {got.dtype} output (no requantization)"
                rows.append(row)
                continue
            row["max_err_steps"] = round(float(np.abs(got - ref).max() / (omax / (255 / widen))), 2)
        except Exception as e:  # the form does not run here: that is the finding
            lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
            skip = ("Graph execution error", "Detected at node", "Node:", "[[", "Original stack")
            row["error"] = next((ln for ln in lines if not ln.startswith(skip)), "?")[:160]
            rows.append(row)
            continue
        if seconds > 0:
            row["float_ms"] = round(_median_time(f_run, seconds) * 1e3, 3)
            row["int8_ms"] = round(_median_time(i_run, seconds) * 1e3, 3)
            row["speedup"] = round(row["float_ms"] / row["int8_ms"], 2)
        rows.append(row)
    return rows


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                keep = ["avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8"]
                return " ".join(f for f in keep if f in flags) or "none of avx2/avx512/vnni"
    except OSError:
        pass
    return "unknown"


def markdown(regs, runs, args) -> str:
    out = ["<!-- written by scripts/survey_int8_kernels.py -->", ""]
    out.append(f"CPU: {cpu_name()} ({os.cpu_count()} logical cores; {cpu_flags()}). "
               f"Batch {args.batch}; medians over ~{args.seconds:g} s per kernel, float and int8 "
               "interleaved.")
    out.append("")
    out.append("### CPU kernels registered in the TF 2.21 wheel")
    out.append("")
    out.append("| op | CPU kernels | type constraints (first 3) |")
    out.append("|---|---|---|")
    for r in regs:
        cons = "; ".join(r["type_constraints"][:3]) or "-"
        out.append(f"| `{r['op']}` | {r['cpu_kernels']} | {cons} |")
    for label, rows in runs.items():
        out.append("")
        out.append(f"### Run and timed, {label}")
        out.append("")
        out.append("| kernel | max error (output steps) | float ms | int8 ms | float/int8 |")
        out.append("|---|---|---|---|---|")
        for r in rows:
            if "error" in r:
                out.append(f"| {r['case']} | does not run: {r['error']} | | | |")
            else:
                out.append(f"| {r['case']} | {r['max_err_steps']} | {r['float_ms']} | "
                           f"{r['int8_ms']} | {r['speedup']}x |")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--out", help="write the markdown tables here (default: stdout)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--signed-only", action="store_true",
                    help="only the MatMul forms for an input that can be negative (oneDNN on)")
    ap.add_argument("--sum-only", action="store_true",
                    help="only the fused residual Add forms (oneDNN on); each summand-reader "
                         "case in its own process, since an unordered reader can crash TF")
    ap.add_argument("--sum-reader", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sum_reader:
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
        for r in sum_rows(args.seconds, args.batch, args.sum_reader):
            print(json.dumps(r), flush=True)
        return
    if args.sum_only:
        for reader in ("none", "ordered", "fetched"):
            env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="1", TF_CPP_MIN_LOG_LEVEL="3")
            secs = str(args.seconds if reader == "none" else 0)
            p = subprocess.run([sys.executable, __file__, "--sum-reader", reader, "--batch",
                                str(args.batch), "--seconds", secs], env=env,
                               capture_output=True, text=True)
            sys.stdout.write(p.stdout)
            if p.returncode != 0:
                print(json.dumps({"reader": reader, "process": f"exit status {p.returncode}"}))
        return
    if args.signed_only:
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
        for r in signed_matmul_rows(args.seconds):
            print(json.dumps(r), flush=True)
        return
    if args.worker:
        print(json.dumps(worker(args.batch, args.seconds)))
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    regs = registrations()
    runs = {}
    for onednn in ("1", "0"):
        env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=onednn, TF_CPP_MIN_LOG_LEVEL="2")
        p = subprocess.run([sys.executable, __file__, "--worker", "--batch", str(args.batch),
                            "--seconds", str(args.seconds)], env=env, capture_output=True,
                           text=True, check=True)
        runs[f"TF_ENABLE_ONEDNN_OPTS={onednn}"] = json.loads(p.stdout.strip().splitlines()[-1])
    md = markdown(regs, runs, args)
    if args.out:
        with open(args.out, "w") as f:
            f.write(md)
    else:
        sys.stdout.write(md)


if __name__ == "__main__":
    main()
