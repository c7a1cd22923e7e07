"""Partially known shapes: tf-fold folds a value only when constants and *known* dimensions
determine it.

Real Keras layers (Keras 3, TF 2.21's default, and tf_keras for the legacy Tensordot lowering)
and raw shape arithmetic are saved as SavedModels whose inputs have an unknown batch and an
unknown sequence (or inner) dimension, then run through `tf-freeze | tf-strip | tf-fold` (and
`tf-quant int8` for models with weights). TensorFlow runs the folded graph and the unfolded one
(tf-freeze's output) at two batch sizes and two sequence lengths, Grappler off: every output
must be equal, floats within 1e-5 relative. A dimension folded into a constant shows up as a
wrong shape, a Reshape error or a wrong value at one of the four sizes.
"""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest

from conftest import BIN_DIR, import_graph, parse_graphdef_bytes, run_tool
import tensorflow as tf

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras  # noqa: E402  (Keras 3: TF 2.21's own)
import tf_keras  # noqa: E402  (the legacy Keras: Dense on 3-D lowers to Tensordot)

SEED = 20261204
BATCHES = (2, 5)
SEQS = (4, 9)
v1 = tf.compat.v1


def _plain_session(g):
    cfg = v1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
    cfg.graph_options.rewrite_options.disable_meta_optimizer = True
    return v1.Session(graph=g, config=cfg)


# ---------------------------------------------------------------------------------------------
# Models: name -> (builder(K) -> keras model or callable, input spec, input maker, quantize?)

def _dense3d(K):
    inp = K.Input(shape=(None, 16))
    h = K.layers.Dense(32, activation="relu")(inp)
    return K.Model(inp, K.layers.Dense(6)(h))


def _dense4d(K):
    inp = K.Input(shape=(None, 4, 3))
    h = K.layers.Dense(5)(inp)
    h = K.layers.Reshape((-1, 5))(h)
    return K.Model(inp, K.layers.GlobalMaxPooling1D()(h))


def _mha_ln(K):
    inp = K.Input(shape=(None, 16))
    h = K.layers.LayerNormalization()(inp)
    h = h + K.layers.MultiHeadAttention(num_heads=2, key_dim=8)(h, h)
    h = K.layers.LayerNormalization()(h)
    return K.Model(inp, K.layers.Dense(4)(h))


def _crop_dense(K):
    """A Dense after a crop of the sequence: Shape of a slice over the unknown length."""
    inp = K.Input(shape=(None, 16))
    h = K.layers.Cropping1D((1, 1))(inp)
    h = K.layers.Dense(8, activation="relu")(h)
    h = K.layers.Lambda(lambda t: t[:, 1:] - t[:, :-1])(h)
    return K.Model(inp, K.layers.Dense(4)(h))


def _causal_mha(K):
    inp = K.Input(shape=(None, 16))
    h = K.layers.MultiHeadAttention(num_heads=2, key_dim=4)(inp, inp, use_causal_mask=True)
    return K.Model(inp, K.layers.LayerNormalization()(inp + h))


def _conv1d(K):
    inp = K.Input(shape=(None, 6))
    h = K.layers.Conv1D(8, 3, padding="same", activation="relu")(inp)
    h = K.layers.Conv1D(4, 2, strides=2, padding="same")(h)
    return K.Model(inp, K.layers.GlobalAveragePooling1D()(h))


def _flatten(K):
    inp = K.Input(shape=(None, 4))
    h = K.layers.Dense(3)(inp)
    return K.Model(inp, K.layers.Flatten()(h))


def _pool2d(K):
    inp = K.Input(shape=(None, None, 3))  # height and width both the "sequence" length
    h = K.layers.Conv2D(4, 3, padding="same")(inp)
    h = K.layers.Reshape((-1, 4))(h)
    return K.Model(inp, K.layers.GlobalMaxPooling1D()(h))


def _embedding(K):
    inp = K.Input(shape=(None,), dtype="int32")
    h = K.layers.Embedding(50, 8, mask_zero=True)(inp)
    h = K.layers.GlobalAveragePooling1D()(h)
    return K.Model(inp, K.layers.Dense(3)(h))


def _shape_math(_K):
    """Raw shape arithmetic on [batch, seq, 6]: every op shape inference tracks."""
    w = tf.Variable(np.random.default_rng(SEED).standard_normal((6, 6)).astype(np.float32))

    def f(x):
        s = tf.shape(x)
        b, n = s[0], s[1]
        y = tf.reshape(x, tf.stack([b * n, 6])) @ w
        y = tf.reshape(y, tf.concat([s[:2], [-1]], 0))
        out = {
            "y": y,
            "last": x[:, -1, :],
            "tail": x[:, 1:, ::2],
            "head_shape": tf.shape(x[:, :2]),
            "tail_shape": tf.shape(x[:, 1:, :]),
            "rev_shape": tf.shape(x[:, ::-1, 1:3]),
            "slice": tf.slice(x, [0, 1, 0], [-1, -1, 3]),
            "slice_shape": tf.shape(tf.slice(x, [0, 1, 0], [-1, -1, 3])),
            "flat": tf.reshape(x, [b, n * 6]),
            "flat2": tf.reshape(x, [-1, tf.reduce_prod(tf.gather(s, [1, 2]))]),
            "pos": x + tf.cast(tf.range(n), tf.float32)[None, :, None],
            "fill": tf.fill(tf.stack([b, n]), 2.0) * tf.reduce_sum(x, -1),
            "bcast": tf.broadcast_to(tf.reduce_mean(x, [0, 1]), s) - x,
            "tile": tf.tile(x, [1, 2, 1]),
            "tile_shape": tf.shape(tf.tile(x, [1, 2, 1])),
            "pad_shape": tf.shape(tf.pad(x, [[0, 0], [1, 2], [0, 0]])),
            "size": tf.size(x) + tf.rank(x),
            "scale": x * tf.cast(n, tf.float32) / tf.cast(s[-1], tf.float32),
            "expand": tf.shape(tf.expand_dims(x[:, 0], 1)),
            "squeeze": tf.squeeze(x[:, :1], 1),
            "split": tf.split(x, 2, axis=2)[1],
            "concat_shape": tf.shape(tf.concat([x, x[:, :1]], 1)),
            "gather": tf.gather(x, [0, 2], axis=2),
            "prod": tf.reduce_prod(s[:-1]) + tf.reduce_sum(s),
            "transpose": tf.shape(tf.transpose(x, [1, 0, 2])),
            "matmul_shape": tf.shape(tf.matmul(x, x, transpose_b=True)),
        }
        return out

    f.variables = [w]
    return f


def _floats(*dims):
    def make(batch, seq):
        shape = [batch if d == -1 else seq if d == -2 else d for d in dims]
        return np.random.default_rng(batch * 100 + seq).standard_normal(shape).astype(np.float32)
    return make


def _ids(batch, seq):
    a = np.random.default_rng(batch * 100 + seq).integers(1, 50, size=(batch, seq)).astype(np.int32)
    a[:, seq // 2:] *= (np.arange(batch)[:, None] % 2).astype(np.int32)  # padded rows
    return a


MODELS = {
    "dense3d": (_dense3d, [None, None, 16], tf.float32, _floats(-1, -2, 16), True),
    "dense4d": (_dense4d, [None, None, 4, 3], tf.float32, _floats(-1, -2, 4, 3), True),
    "mha_layernorm": (_mha_ln, [None, None, 16], tf.float32, _floats(-1, -2, 16), True),
    "crop_dense": (_crop_dense, [None, None, 16], tf.float32, _floats(-1, -2, 16), True),
    "causal_mha": (_causal_mha, [None, None, 16], tf.float32, _floats(-1, -2, 16), True),
    "conv1d": (_conv1d, [None, None, 6], tf.float32, _floats(-1, -2, 6), True),
    "flatten": (_flatten, [None, None, 4], tf.float32, _floats(-1, -2, 4), False),
    "pool2d": (_pool2d, [None, None, None, 3], tf.float32, _floats(-1, -2, -2, 3), False),
    "embedding_mask": (_embedding, [None, None], tf.int32, _ids, True),
    "shape_math": (_shape_math, [None, None, 6], tf.float32, _floats(-1, -2, 6), False),
}
FRAMEWORKS = {"keras3": keras, "tf_keras": tf_keras}
CASES = [(fw, m) for m in MODELS for fw in FRAMEWORKS if not (m == "shape_math" and fw != "keras3")]


def _save(fw: str, name: str, path) -> None:
    build, shape, dtype, _, _ = MODELS[name]
    K = FRAMEWORKS[fw]
    K.utils.set_random_seed(SEED)
    model = build(K)
    mod = tf.Module()
    mod.model = model
    if name == "shape_math":
        mod.vars = model.variables

    @tf.function(input_signature=[tf.TensorSpec(shape, dtype, name="x")])
    def serve(x):
        if name == "shape_math":
            return model(x)
        return {"y": model(x, training=False)}

    tf.saved_model.save(mod, str(path), signatures={"serving_default": serve})


def _run_graph(data: bytes, outputs: list[str], x) -> dict:
    g = import_graph(parse_graphdef_bytes(data))
    with _plain_session(g) as s:
        return dict(zip(outputs, s.run([f"{o}:0" for o in outputs], {"x:0": x})))


def _compare(got, ref, what, quantized=False):
    for k, b in ref.items():
        a = got[k]
        assert a.shape == b.shape, f"{what} {k}: shape {a.shape} != {b.shape}"
        if a.size == 0:
            continue
        if a.dtype.kind == "f" and quantized:
            err = np.sqrt(np.mean((a - b) ** 2)) / max(np.sqrt(np.mean(b ** 2)), 1e-30)
            assert err <= 0.1, f"{what} {k}: relative RMS {err}"
        elif a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=f"{what} {k}")
        else:
            assert a.tolist() == b.tolist(), f"{what} {k}: {a.tolist()} != {b.tolist()}"


@pytest.mark.needs_bin("tf-freeze", "tf-strip", "tf-fold", "tf-quant")
@pytest.mark.parametrize("fw,name", CASES, ids=[f"{fw}-{m}" for fw, m in CASES])
def test_folded_graph_equals_unfolded_at_every_size(tmp_path, fw, name):
    _save(fw, name, tmp_path / "sm")
    quantize = MODELS[name][4]
    make = MODELS[name][3]
    frozen = run_tool("tf-freeze", tmp_path / "sm").stdout
    stripped = run_tool("tf-strip", input=frozen).stdout
    folded = run_tool("tf-fold", input=stripped).stdout
    stages = [("tf-fold", folded, False)]
    if quantize:
        stages.append(("tf-quant int8", run_tool("tf-quant", "int8", input=folded).stdout, True))
    gd = parse_graphdef_bytes(stripped)
    outputs = sorted(n.name for n in gd.node if not any(
        i.split(":")[0].lstrip("^") == n.name for m in gd.node for i in m.input)
        and n.op != "Placeholder")
    assert outputs, f"{fw}-{name}: no outputs found"
    # Folding did something (otherwise the comparison proves nothing about it).
    assert len(parse_graphdef_bytes(folded).node) < len(gd.node), f"{fw}-{name}: nothing folded"
    for batch, seq in itertools.product(BATCHES, SEQS):
        x = make(batch, seq)
        ref = _run_graph(stripped, outputs, x)
        for stage, data, q in stages:
            got = _run_graph(data, outputs, x)
            _compare(got, ref, f"{fw}-{name} after {stage} at batch {batch} seq {seq}", q)

