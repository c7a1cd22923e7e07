"""Models built the way other people build them, for the real-world tier (test_realworld.py).

Each builder writes one model into a directory with real TensorFlow 2.21 (seeded, random weights,
nothing downloaded) and returns a ``Model``: where it is, how to run the original in TF, and which
signature/outputs a pipeline should keep. The models are made at test time (a few seconds in
all) rather than committed, so the tier always judges what this TF version writes.

    TF1 serving export   tf.Example string placeholder -> ParseExample -> Identity 'x', with
                         regress / classify / predict signatures (tf.compat.v1 SavedModelBuilder)
    TF1 ref variables    VariableV2 (use_resource=False) read through Identity as an output
    TF1 ref raw          a signature output that is the ref variable itself (dtype float_ref)
    TF1 ref cond         a ref variable inside TF1 control flow (RefSwitch, RefEnter)
    TF1 renamed keys V1  output key 'w' equal to the variable's name, variables saved by a V1 Saver
    TF2 counter          a signature that assigns a variable at run time (AssignAddVariableOp)
    TF2 no variables     a SavedModel whose signature has no variable at all
    TF1 two outputs      logits and probs = softmax(logits), checkpoint + .meta, both outputs named
    TF1 V1 checkpoint    tf.compat.v1.train.Saver(write_version=V1)
    tfmot pruned         prune_low_magnitude (sparsity 0.5 and 0.75), trained a few steps, saved
                         without strip_pruning (its serving function re-assigns w = w * mask),
                         and the same model after strip_pruning; and with masks of 0.5 (refused)
    Keras dynamic dims   Dense on [batch, seq, features] (Tensordot), LayerNormalization,
                         MultiHeadAttention, Conv1D, Reshape with -1, tf.shape arithmetic,
                         GlobalPooling, Embedding with a mask: batch and sequence unknown
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf

SEED = 20261203
v1 = tf.compat.v1


@dataclass
class Model:
    """A model on disk and what a pipeline must preserve."""

    name: str
    path: Path                      # SavedModel dir or checkpoint prefix
    freeze_args: list[str]          # extra tf-freeze arguments (signature, outputs)
    inputs: dict[str, Callable[[int, int], np.ndarray]]  # feed name -> (batch, seq) -> value
    outputs: list[str]              # fetch names in the frozen graph (signature keys or nodes)
    reference: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
    shapes: list[tuple[int, int]] = field(default_factory=lambda: [(3, 5)])
    twin: Path | None = None        # the same model in another form (tfmot: strip_pruning'd)


def _rng(i: int = 0) -> np.random.Generator:
    return np.random.default_rng(SEED + i)


def _examples(batch: int, _seq: int) -> np.ndarray:
    rng = _rng(batch)
    out = []
    for _ in range(batch):
        x = rng.standard_normal(4).astype(np.float32)
        ex = tf.train.Example(features=tf.train.Features(feature={
            "x": tf.train.Feature(float_list=tf.train.FloatList(value=x.tolist()))}))
        out.append(ex.SerializeToString())
    return np.array(out, dtype=object)


def _floats(*dims: int) -> Callable[[int, int], np.ndarray]:
    def make(batch: int, seq: int) -> np.ndarray:
        shape = [batch if d == -1 else seq if d == -2 else d for d in dims]
        return _rng(batch * 100 + seq).standard_normal(shape).astype(np.float32)
    return make


def _session(graph):
    cfg = v1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
    return v1.Session(graph=graph, config=cfg)


def _tf1_signature_runner(export: Path, signature: str):
    """Runs a TF1 SavedModel signature in a fresh session, feeding and fetching by key."""
    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        g = tf.Graph()
        with _session(g) as s:
            mg = v1.saved_model.loader.load(s, ["serve"], str(export))
            sig = mg.signature_def[signature]
            fd = {sig.inputs[k].name: v for k, v in feeds.items()}
            keys = sorted(sig.outputs)
            vals = s.run([sig.outputs[k].name for k in keys], fd)
            return dict(zip(keys, vals))
    return run


def _tf2_signature_runner(export: Path, signature: str = "serving_default"):
    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        loaded = tf.saved_model.load(str(export))
        fn = loaded.signatures[signature]
        out = fn(**{k: tf.constant(v) for k, v in feeds.items()})
        return {k: v.numpy() for k, v in out.items()}
    return run


# ---------------------------------------------------------------------------------------------

def tf1_serving_example(root: Path) -> list[Model]:
    """A TF1 serving export: a string placeholder of tf.Examples, parsed, and four signatures."""
    export = root / "tf1_serving_example"
    g = tf.Graph()
    with g.as_default():
        v1.set_random_seed(SEED)
        serialized = v1.placeholder(tf.string, [None], name="tf_example")
        feats = v1.parse_example(serialized, {"x": tf.io.FixedLenFeature([4], tf.float32)})
        x = tf.identity(feats["x"], name="x")
        w = v1.get_variable("w", [4, 3], initializer=v1.random_normal_initializer(seed=1))
        b = v1.get_variable("b", [3], initializer=v1.random_normal_initializer(seed=2))
        logits = tf.add(tf.matmul(x, w), b, name="logits")
        y = tf.reduce_sum(logits, axis=1, keepdims=True, name="y")
        probs = tf.nn.softmax(logits, name="probs")
        classes = tf.tile(tf.constant([[b"a", b"b", b"c"]]), [tf.shape(x)[0], 1], name="classes")
        sigs = {
            "regress_x_to_y": v1.saved_model.regression_signature_def(serialized, y),
            "classify_x_to_probs":
                v1.saved_model.classification_signature_def(serialized, classes, probs),
            "predict_x": v1.saved_model.predict_signature_def({"x": x}, {"y": y, "probs": probs}),
            "serving_default": v1.saved_model.predict_signature_def({"x": x}, {"y": y}),
        }
        with _session(g) as s:
            s.run(v1.global_variables_initializer())
            builder = v1.saved_model.Builder(str(export))
            builder.add_meta_graph_and_variables(s, ["serve"], signature_def_map=sigs)
            builder.save()
    feed_x = {"x": _floats(-1, 4)}
    feed_ex = {"inputs": _examples}
    return [
        Model("tf1_serving/serving_default", export, [], feed_x, ["y"],
              _tf1_signature_runner(export, "serving_default")),
        Model("tf1_serving/predict_x", export, ["--signature", "predict_x"], feed_x,
              ["probs", "y"], _tf1_signature_runner(export, "predict_x")),
        Model("tf1_serving/regress_x_to_y", export, ["--signature", "regress_x_to_y"], feed_ex,
              ["outputs"], _tf1_signature_runner(export, "regress_x_to_y")),
        Model("tf1_serving/classify_x_to_probs", export, ["--signature", "classify_x_to_probs"],
              feed_ex, ["classes", "scores"],
              _tf1_signature_runner(export, "classify_x_to_probs")),
    ]


def tf1_ref_variables(root: Path) -> list[Model]:
    """Ref variables (VariableV2) and a signature output that is a variable read by Identity."""
    export = root / "tf1_ref_variables"
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [None, 3], name="x")
        w = v1.Variable(np.arange(6, dtype=np.float32).reshape(3, 2) / 7.0, use_resource=False,
                        name="w")
        y = tf.matmul(x, w, name="y")
        w_out = tf.identity(w, name="w_out")
        # A TF1 counter: every call of the 'count' signature adds one to a ref variable.
        calls = v1.Variable(0.0, use_resource=False, name="calls")
        counted = tf.identity(v1.assign_add(calls, 1.0) * tf.reduce_sum(x), name="counted")
        sigs = {"serving_default":
                v1.saved_model.predict_signature_def({"x": x}, {"y": y, "w": w_out}),
                "count": v1.saved_model.predict_signature_def({"x": x}, {"counted": counted})}
        with _session(g) as s:
            s.run(v1.global_variables_initializer())
            builder = v1.saved_model.Builder(str(export))
            builder.add_meta_graph_and_variables(s, ["serve"], signature_def_map=sigs)
            builder.save()
    return [Model("tf1_ref_variables", export, [], {"x": _floats(-1, 3)}, ["w", "y"],
                  _tf1_signature_runner(export, "serving_default")),
            Model("tf1_ref_counter", export, ["--signature", "count"], {"x": _floats(-1, 3)},
                  ["counted"], _tf1_signature_runner(export, "count"))]


def tf1_ref_raw(root: Path) -> list[Model]:
    """A signature output that is the ref variable itself (`w:0`, dtype float_ref), read raw."""
    export = root / "tf1_ref_raw"
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [None, 3], name="x")
        w = v1.Variable(np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 2),
                        use_resource=False, name="w")
        y = tf.matmul(x, w, name="y")
        sigs = {"serving_default": v1.saved_model.predict_signature_def(
            {"x": x}, {"y": y, "weights": w})}
        with _session(g) as s:
            s.run(v1.global_variables_initializer())
            builder = v1.saved_model.Builder(str(export))
            builder.add_meta_graph_and_variables(s, ["serve"], signature_def_map=sigs)
            builder.save()
    return [Model("tf1_ref_raw", export, [], {"x": _floats(-1, 3)}, ["weights", "y"],
                  _tf1_signature_runner(export, "serving_default"))]


def tf1_ref_cond(root: Path) -> list[Model]:
    """A ref variable used inside TF1 control flow (RefSwitch in a cond, RefEnter in a loop)."""
    export = root / "tf1_ref_cond"
    v1.disable_control_flow_v2()
    try:
        g = tf.Graph()
        with g.as_default():
            x = v1.placeholder(tf.float32, [None, 3], name="x")
            w = v1.Variable(np.arange(6, dtype=np.float32).reshape(3, 2) / 5.0,
                            use_resource=False, name="w")
            # The variable's ref tensor itself (what Variable._ref(), tf.assign and optimizer
            # slots hand around in TF1 code) captured by a cond and a while loop: RefSwitch,
            # RefEnter.
            ref = w._ref()  # pylint: disable=protected-access
            pred = tf.reduce_sum(x) > 0.0
            y = tf.cond(pred, lambda: tf.matmul(x, ref) * 2.0, lambda: tf.matmul(x, ref) - 1.0)
            _, acc = tf.while_loop(lambda i, a: i < 3,
                                   lambda i, a: (i + 1, a + tf.reduce_sum(ref)),
                                   [tf.constant(0), tf.zeros([])])
            y = tf.identity(y + acc, name="y")
            sigs = {"serving_default": v1.saved_model.predict_signature_def({"x": x}, {"y": y})}
            with _session(g) as s:
                s.run(v1.global_variables_initializer())
                builder = v1.saved_model.Builder(str(export))
                builder.add_meta_graph_and_variables(s, ["serve"], signature_def_map=sigs)
                builder.save()
    finally:
        v1.enable_control_flow_v2()

    def signed(batch: int, seq: int) -> np.ndarray:
        a = _floats(-1, 3)(batch, seq)
        return a if batch % 2 else -np.abs(a)  # both branches over the listed sizes
    return [Model("tf1_ref_cond", export, [], {"x": signed}, ["y"],
                  _tf1_signature_runner(export, "serving_default"), [(3, 5), (4, 5)])]


def tf1_renamed_keys_v1(root: Path) -> list[Model]:
    """tf1_ref_variables' renaming case with variables saved by a V1 Saver."""
    export = root / "tf1_renamed_keys_v1"
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [None, 3], name="x")
        w = v1.Variable(np.arange(6, dtype=np.float32).reshape(3, 2) / 3.0, use_resource=False,
                        name="w")
        y = tf.matmul(x, w, name="y")
        w_out = tf.identity(w, name="w_out")
        sigs = {"serving_default":
                v1.saved_model.predict_signature_def({"x": x}, {"y": y, "w": w_out})}
        saver = v1.train.Saver(write_version=v1.train.SaverDef.V1)
        with _session(g) as s:
            s.run(v1.global_variables_initializer())
            builder = v1.saved_model.Builder(str(export))
            builder.add_meta_graph_and_variables(s, ["serve"], signature_def_map=sigs,
                                                 saver=saver)
            builder.save()
    return [Model("tf1_renamed_keys_v1", export, [], {"x": _floats(-1, 3)}, ["w", "y"],
                  _tf1_signature_runner(export, "serving_default"))]


class _Counter(tf.Module):
    def __init__(self):
        super().__init__()
        self.count = tf.Variable(0.0, name="count")
        self.scale = tf.Variable([1.5, -2.0, 0.5], name="scale")

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    def serve(self, x):
        self.count.assign_add(1.0)
        return {"y": x * self.scale + self.count}


class _NoVariables(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    def serve(self, x):
        return {"y": tf.nn.relu(x * 2.0 + 1.0)}


def tf2_counter(root: Path) -> list[Model]:
    """A stateful signature: every call increments a counter variable."""
    export = root / "tf2_counter"
    m = _Counter()
    tf.saved_model.save(m, str(export), signatures={"serving_default": m.serve})
    return [Model("tf2_counter", export, [], {"x": _floats(-1, 3)}, ["y"],
                  _tf2_signature_runner(export))]


def tf2_no_variables(root: Path) -> list[Model]:
    export = root / "tf2_no_variables"
    m = _NoVariables()
    tf.saved_model.save(m, str(export), signatures={"serving_default": m.serve})
    return [Model("tf2_no_variables", export, [], {"x": _floats(-1, 3)}, ["y"],
                  _tf2_signature_runner(export))]


def _tf1_two_outputs_graph(write_version) -> tuple[tf.Graph, Callable]:
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [None, 5], name="x")
        w = v1.get_variable("w", [5, 4], initializer=v1.random_normal_initializer(seed=3))
        b = v1.get_variable("b", [4], initializer=v1.random_normal_initializer(seed=4))
        logits = tf.identity(tf.nn.bias_add(tf.matmul(x, w), b), name="logits")
        tf.nn.softmax(logits, name="probs")
        saver = v1.train.Saver(write_version=write_version)
    return g, saver


def _tf1_checkpoint(root: Path, name: str, write_version) -> Path:
    g, saver = _tf1_two_outputs_graph(write_version)
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    prefix = d / "model.ckpt"
    with _session(g) as s:
        s.run(v1.variables_initializer(g.get_collection(v1.GraphKeys.GLOBAL_VARIABLES)))
        saver.save(s, str(prefix))
    return prefix


def _tf1_checkpoint_runner(prefix: Path, outputs: list[str]):
    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        g = tf.Graph()
        with _session(g) as s:
            saver = v1.train.import_meta_graph(str(prefix) + ".meta")
            saver.restore(s, str(prefix))
            vals = s.run([f"{o}:0" for o in outputs], {f"{k}:0": v for k, v in feeds.items()})
            return dict(zip(outputs, vals))
    return run


def tf1_two_outputs(root: Path) -> list[Model]:
    """A TF1 checkpoint whose two named outputs feed each other (logits -> probs)."""
    prefix = _tf1_checkpoint(root, "tf1_two_outputs", v1.train.SaverDef.V2)
    outs = ["logits", "probs"]
    return [Model("tf1_two_outputs", prefix, ["--outputs", ",".join(outs)],
                  {"x": _floats(-1, 5)}, outs, _tf1_checkpoint_runner(prefix, outs))]


def tf1_v1_checkpoint(root: Path) -> list[Model]:
    """The same graph saved as a V1 checkpoint (one SSTable of tensor slices)."""
    prefix = _tf1_checkpoint(root, "tf1_v1_checkpoint", v1.train.SaverDef.V1)
    outs = ["probs"]
    return [Model("tf1_v1_checkpoint", prefix, ["--outputs", "probs"], {"x": _floats(-1, 5)},
                  outs, _tf1_checkpoint_runner(prefix, outs))]


TFMOT_SPARSITY = {"d1": 0.5, "d2": 0.75}


def tfmot_pruned(root: Path) -> list[Model]:
    """A tf_keras model pruned with tensorflow-model-optimization, saved as users save it."""
    import tensorflow_model_optimization as tfmot  # imports tf_keras (TF_USE_LEGACY_KERAS=1)
    keras = tf.keras
    sparsity = tfmot.sparsity.keras
    keras.utils.set_random_seed(SEED)

    def pruned(name: str, units: int, **kw):
        return sparsity.prune_low_magnitude(
            keras.layers.Dense(units, name=name, **kw),
            pruning_schedule=sparsity.ConstantSparsity(TFMOT_SPARSITY[name], 0, frequency=1))

    model = keras.Sequential([keras.Input((6,), name="x"), pruned("d1", 8, activation="relu"),
                              pruned("d2", 4)])
    model.compile(keras.optimizers.SGD(0.05), "mse")
    rng = _rng(7)
    x = rng.standard_normal((32, 6)).astype(np.float32)
    y = rng.standard_normal((32, 4)).astype(np.float32)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, shuffle=False,
              callbacks=[sparsity.UpdatePruningStep()])
    export, stripped = root / "tfmot_pruned", root / "tfmot_stripped"
    model.save(str(export), save_format="tf")
    sparsity.strip_pruning(model).save(str(stripped), save_format="tf")
    # A mask that is not zeros and ones: re-applying it on every call is not idempotent.
    for v in model.variables:
        if v.name.endswith("/mask:0"):
            v.assign(v * 0.5)
    bad = root / "tfmot_half_mask"
    model.save(str(bad), save_format="tf")
    return [Model("tfmot_pruned", export, [], {"x": _floats(-1, 6)}, ["prune_low_magnitude_d2"],
                  _tf2_signature_runner(export), twin=stripped),
            Model("tfmot_stripped", stripped, [], {"x": _floats(-1, 6)}, ["d2"],
                  _tf2_signature_runner(stripped)),
            Model("tfmot_half_mask", bad, [], {"x": _floats(-1, 6)}, ["prune_low_magnitude_d2"],
                  _tf2_signature_runner(bad))]


def _keras_save(model, export: Path, input_name: str, spec: tf.TensorSpec) -> None:
    @tf.function(input_signature=[spec])
    def serve(x):
        return {"y": model(x, training=False)}

    tf.saved_model.save(model, str(export), signatures={"serving_default": serve})


def keras_dynamic(root: Path) -> list[Model]:
    """Keras layers on tensors whose batch and sequence lengths are unknown."""
    keras = tf.keras
    tf.keras.utils.set_random_seed(SEED)
    out: list[Model] = []
    shapes = [(2, 7), (5, 11)]

    # Dense on 3-D inputs (Tensordot), LayerNorm, self-attention, Conv1D, pooling.
    inp = keras.Input(shape=(None, 16), name="seq")
    h = keras.layers.Dense(32, activation="relu", name="ffn_in")(inp)
    h = keras.layers.LayerNormalization(name="ln")(h)
    h = h + keras.layers.MultiHeadAttention(num_heads=2, key_dim=8, name="mha")(h, h)
    h = keras.layers.Conv1D(8, 3, padding="same", name="conv")(h)
    h = keras.layers.Dense(6, name="ffn_out")(h)
    pooled = keras.layers.GlobalAveragePooling1D(name="gap")(h)
    model = keras.Model(inp, keras.layers.Dense(4, name="head")(pooled))
    export = root / "keras_transformer"
    _keras_save(model, export, "x", tf.TensorSpec([None, None, 16], tf.float32, name="x"))
    out.append(Model("keras_transformer", export, [], {"x": _floats(-1, -2, 16)}, ["y"],
                     _tf2_signature_runner(export), shapes))

    # The same block with a known sequence length: only the batch is unknown.
    inp = keras.Input(shape=(8, 16), name="seq8")
    h = keras.layers.Dense(32, activation="relu", name="ffn_in")(inp)
    h = keras.layers.LayerNormalization(name="ln")(h)
    h = h + keras.layers.MultiHeadAttention(num_heads=2, key_dim=8, name="mha")(h, h)
    h = keras.layers.Dense(6, name="ffn_out")(h)
    model = keras.Model(inp, keras.layers.Flatten(name="flat")(h))
    export = root / "keras_transformer_seq8"
    _keras_save(model, export, "x", tf.TensorSpec([None, 8, 16], tf.float32, name="x"))
    out.append(Model("keras_transformer_seq8", export, [], {"x": _floats(-1, 8, 16)}, ["y"],
                     _tf2_signature_runner(export), [(2, 8), (5, 8)]))

    # Dense on 4-D inputs, Reshape with -1, tf.shape arithmetic, global max pooling.
    inp = keras.Input(shape=(None, 4, 3), name="grid")
    h = keras.layers.Dense(5, name="d4")(inp)
    h = keras.layers.Reshape((-1, 5), name="flat_seq")(h)
    h = keras.layers.Lambda(lambda t: t * tf.cast(tf.shape(t)[1], tf.float32), name="len_scale")(h)
    model = keras.Model(inp, keras.layers.GlobalMaxPooling1D(name="gmp")(h))
    export = root / "keras_dense4d"
    _keras_save(model, export, "x", tf.TensorSpec([None, None, 4, 3], tf.float32, name="x"))
    out.append(Model("keras_dense4d", export, [], {"x": _floats(-1, -2, 4, 3)}, ["y"],
                     _tf2_signature_runner(export), shapes))

    # Embedding with a padding mask, masked average, Dense.
    inp = keras.Input(shape=(None,), dtype="int32", name="ids")
    h = keras.layers.Embedding(50, 8, mask_zero=True, name="emb")(inp)
    h = keras.layers.GlobalAveragePooling1D(name="mgap")(h)
    model = keras.Model(inp, keras.layers.Dense(3, name="cls")(h))
    export = root / "keras_embedding"
    _keras_save(model, export, "x", tf.TensorSpec([None, None], tf.int32, name="x"))

    def ids(batch: int, seq: int) -> np.ndarray:
        a = _rng(batch * 100 + seq).integers(1, 50, size=(batch, seq)).astype(np.int32)
        a[:, seq // 2:] *= (np.arange(batch)[:, None] % 2).astype(np.int32)  # padded rows
        return a

    out.append(Model("keras_embedding", export, [], {"x": ids}, ["y"],
                     _tf2_signature_runner(export), shapes))
    return out


BUILDERS = [tf1_serving_example, tf1_ref_variables, tf1_ref_raw, tf1_ref_cond,
            tf1_renamed_keys_v1, tf2_counter, tf2_no_variables, tf1_two_outputs,
            tf1_v1_checkpoint, tfmot_pruned, keras_dynamic]


def build_all(root: Path) -> dict[str, Model]:
    models: dict[str, Model] = {}
    for b in BUILDERS:
        for m in b(root):
            models[m.name] = m
    return models
