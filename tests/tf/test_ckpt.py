"""tf-ckpt on checkpoints TF 2.21 writes here (TF1 Saver with Adam and a partitioned variable,
TF2 Keras model.fit with Adam): every checkpoint tf-ckpt writes is read back by TensorFlow
(tf.train.load_checkpoint, tf.compat.v1.train.Saver.restore, tf.train.Checkpoint.restore), kept
tensors bit-identical, cast ones equal to tf.cast."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

BIN = Path(os.environ.get("TF_TOOLS_BIN", str(Path(__file__).resolve().parents[2] / "target" / "release")))


def ckpt(*args, expect=0):
    p = subprocess.run([str(BIN / "tf-ckpt"), *map(str, args)], capture_output=True)
    assert p.returncode == expect, p.stderr.decode()
    return p


def values(prefix):
    r = tf.train.load_checkpoint(str(prefix))
    return {k: r.get_tensor(k) for k in r.get_variable_to_shape_map()}


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype == object:
        return a.dtype == b.dtype and a.shape == b.shape and list(a.ravel()) == list(b.ravel())
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.fixture(scope="module")
def tf1(tmp_path_factory):
    """A TF1 training checkpoint: Adam, a partitioned embedding, an int and a string variable."""
    d = tmp_path_factory.mktemp("tf1")
    g = tf.Graph()
    with g.as_default():
        tf.compat.v1.set_random_seed(1)
        x = tf.compat.v1.placeholder(tf.float32, [None, 4], name="x")
        emb = tf.compat.v1.get_variable(
            "emb", [6, 4], partitioner=tf.compat.v1.fixed_size_partitioner(2))
        w = tf.compat.v1.get_variable("dense/kernel", [4, 3])
        b = tf.compat.v1.get_variable("dense/bias", [3], initializer=tf.compat.v1.ones_initializer())
        tf.compat.v1.get_variable("count", [], tf.int32, initializer=tf.compat.v1.constant_initializer(7))
        tf.compat.v1.get_variable("vocab", [2], tf.string,
                                  initializer=tf.compat.v1.constant_initializer(["a", "bc"]),
                                  trainable=False)
        step = tf.compat.v1.train.get_or_create_global_step()
        e = tf.reduce_sum(tf.nn.embedding_lookup(emb, [0, 5]))
        y = tf.identity(tf.matmul(x, w) + b + e, name="y")
        train = tf.compat.v1.train.AdamOptimizer(0.01).minimize(tf.reduce_sum(y * y), global_step=step)
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session() as s:
            s.run(tf.compat.v1.global_variables_initializer())
            for _ in range(3):
                s.run(train, {x: np.ones([2, 4], np.float32)})
            saver.save(s, str(d / "model.ckpt"))
    return d / "model.ckpt"


def weights_saver_restores(prefix, names):
    """Restores `names` from `prefix` with a TF1 Saver in a fresh graph; returns their values."""
    g = tf.Graph()
    with g.as_default():
        r = tf.train.load_checkpoint(str(prefix))
        shapes, dtypes = r.get_variable_to_shape_map(), r.get_variable_to_dtype_map()
        vs = {n: tf.compat.v1.get_variable(n, shapes[n], dtypes[n]) for n in names}
        with tf.compat.v1.Session() as s:
            tf.compat.v1.train.Saver(vs).restore(s, str(prefix))
            return {n: s.run(v) for n, v in vs.items()}


@pytest.mark.needs_bin("tf-ckpt")
def test_tf1_slim_is_restored_by_the_saver(tf1, tmp_path):
    out = tmp_path / "slim" / "ck"
    ckpt("slim", tf1, "-o", out, "--shards", "2")
    full, slim = values(tf1), values(out)
    assert set(slim) == {"emb", "dense/kernel", "dense/bias", "count", "vocab"}, sorted(slim)
    for k, v in slim.items():
        assert same_bits(full[k], v), k
    # The TF1 Saver restores the weights (the partitioned one as a whole) from the slim copy.
    got = weights_saver_restores(out, ["dense/kernel", "dense/bias", "count"])
    for k, v in got.items():
        assert same_bits(full[k], v), k
    data = lambda p: sum(f.stat().st_size for f in p.parent.glob(p.name + ".data-*"))
    assert data(out) <= 0.34 * data(tf1) + 64, (data(out), data(tf1))


@pytest.mark.needs_bin("tf-ckpt")
def test_tf1_partitioned_variable_survives_merge_into_shards(tf1, tmp_path):
    out = tmp_path / "m" / "ck"
    ckpt("merge", tf1, "-o", out, "--shards", "3")
    assert len(list(out.parent.glob("ck.data-*-of-00003"))) == 3
    full, merged = values(tf1), values(out)
    assert set(full) == set(merged)
    for k in full:
        assert same_bits(full[k], merged[k]), k
    # The partitioned variable restores part by part, as its graph reads it.
    g = tf.Graph()
    with g.as_default():
        emb = tf.compat.v1.get_variable("emb", [6, 4], partitioner=tf.compat.v1.fixed_size_partitioner(2))
        with tf.compat.v1.Session() as s:
            tf.compat.v1.train.Saver(list(emb)).restore(s, str(out))
            got = np.concatenate([s.run(p) for p in emb])
    assert same_bits(full["emb"], got)
    ckpt("diff", tf1, out)


@pytest.mark.needs_bin("tf-ckpt")
def test_cast_equals_tf_cast(tf1, tmp_path):
    for dtype, tfd in [("float16", tf.float16), ("bfloat16", tf.bfloat16)]:
        out = tmp_path / dtype / "ck"
        ckpt("cast", tf1, "--dtype", dtype, "-o", out, "--exclude", "^dense/bias$")
        full, cast = values(tf1), values(out)
        for k, v in full.items():
            # TF cannot read float16 slices: a partitioned variable stays float32 then.
            if v.dtype == np.float32 and k != "dense/bias" and not (k.startswith("emb") and dtype == "float16"):
                want = tf.cast(v, tfd).numpy()
                assert cast[k].dtype == want.dtype and cast[k].tobytes() == want.tobytes(), (dtype, k)
            else:
                assert same_bits(v, cast[k]), (dtype, k)


@pytest.fixture(scope="module")
def keras(tmp_path_factory):
    """A TF2 object-based checkpoint of a Keras model trained with Adam, written with
    tf.train.Checkpoint.write (no `checkpoint` state file)."""
    d = tmp_path_factory.mktemp("tf2")
    tf.keras.utils.set_random_seed(2)

    def model():
        return tf.keras.Sequential([
            tf.keras.Input([32]),
            tf.keras.layers.Dense(128, activation="relu"),
            tf.keras.layers.BatchNormalization(),
            tf.keras.layers.Dense(64, activation="relu"),
            tf.keras.layers.Dense(2),
        ])

    m = model()
    m.compile(optimizer=tf.keras.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    m.fit(np.random.rand(32, 32).astype("float32"), np.random.rand(32, 2).astype("float32"),
          epochs=2, verbose=0)
    tf.train.Checkpoint(model=m, optimizer=m.optimizer).write(str(d / "ckpt" / "train"))
    return d / "ckpt", model, m


@pytest.mark.needs_bin("tf-ckpt")
def test_tf2_slim_restores_the_model(keras, tmp_path):
    directory, model, trained = keras
    out = tmp_path / "slim" / "w"
    ckpt("slim", directory, "-o", out)
    listed = json.loads(ckpt("ls", directory, "--json").stdout)
    kinds = {t["kind"] for t in listed["tensors"]}
    assert {"weight", "optimizer", "object_graph"} <= kinds, kinds
    full, slim = values(directory / "train"), values(out)
    assert not any(".OPTIMIZER_SLOT" in k or k.startswith("optimizer/") for k in slim), sorted(slim)
    for k, v in slim.items():
        if k != "_CHECKPOINTABLE_OBJECT_GRAPH":
            assert same_bits(full[k], v), k
    # Weights only: a third of what Adam trained (plus the batch-norm statistics, which have
    # no slots), the object graphs aside.
    tensors = lambda p: sum(t["bytes"] for t in json.loads(ckpt("ls", p, "--json").stdout)["tensors"]
                            if t["kind"] != "object_graph")
    assert tensors(out) <= 0.34 * tensors(directory), (tensors(out), tensors(directory))
    # The object graph names only what is there: an inference model restores from it.
    fresh = model()
    tf.train.Checkpoint(model=fresh).restore(str(out)).expect_partial()
    for a, b in zip(trained.weights, fresh.weights):
        assert same_bits(a.numpy(), b.numpy()), a.name
    # And with the optimizer attached too (its slots are simply not restored).
    fresh2 = model()
    fresh2.compile(optimizer=tf.keras.optimizers.Adam(0.01), loss="mse")
    tf.train.Checkpoint(model=fresh2, optimizer=fresh2.optimizer).restore(str(out)).expect_partial()
    for a, b in zip(trained.weights, fresh2.weights):
        assert same_bits(a.numpy(), b.numpy()), a.name


@pytest.mark.needs_bin("tf-ckpt")
def test_tf2_merge_keeps_the_object_graph(keras, tmp_path):
    directory, model, trained = keras
    out = tmp_path / "m" / "all"
    ckpt("merge", directory, "-o", out, "--shards", "2")
    fresh = model()
    fresh.compile(optimizer=tf.keras.optimizers.Adam(0.01), loss="mse")
    status = tf.train.Checkpoint(model=fresh, optimizer=fresh.optimizer).restore(str(out))
    status.expect_partial()
    for a, b in zip(trained.weights, fresh.weights):
        assert same_bits(a.numpy(), b.numpy()), a.name


@pytest.mark.needs_bin("tf-ckpt")
def test_damaged_checkpoint_is_refused(tf1, tmp_path):
    for f in tf1.parent.glob(tf1.name + ".*"):
        (tmp_path / f.name).write_bytes(f.read_bytes())
    data = next(tmp_path.glob("model.ckpt.data-*"))
    b = bytearray(data.read_bytes())
    b[len(b) // 2] ^= 0x55
    data.write_bytes(bytes(b))
    p = ckpt("slim", tmp_path / "model.ckpt", "-o", tmp_path / "out" / "ck", expect=2)
    err = p.stderr.decode()
    assert err.count("\n") == 1 and "checksum" in err and str(data) in err, err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.needs_bin("tf-ckpt")
def test_keras3_weights_stored_under_the_optimizer_are_kept(tmp_path):
    """Keras 3 optimizers track the model's variables, and TF stores a variable under its
    shortest path: the kernels are `optimizer/_trainable_variables/N`. The object graph tells
    them from the optimizer's own `optimizer/_variables/N`."""
    import keras  # Keras 3 (tf.keras is tf_keras in this tier)

    def model():
        return keras.Sequential([keras.Input([16]), keras.layers.Dense(64, activation="relu"),
                                 keras.layers.BatchNormalization(), keras.layers.Dense(2)])

    keras.utils.set_random_seed(3)
    m = model()
    m.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    m.fit(np.random.rand(32, 16).astype("float32"), np.random.rand(32, 2).astype("float32"),
          epochs=2, verbose=0)
    tf.train.Checkpoint(model=m, optimizer=m.optimizer).write(str(tmp_path / "full" / "ck"))
    ckpt("slim", tmp_path / "full", "-o", tmp_path / "slim" / "ck")
    slim = values(tmp_path / "slim" / "ck")
    assert not any(k.startswith("optimizer/_variables/") for k in slim), sorted(slim)
    fresh = model()
    tf.train.Checkpoint(model=fresh).restore(str(tmp_path / "slim" / "ck")).expect_partial()
    for a, b in zip(m.weights, fresh.weights):
        assert same_bits(a.numpy(), b.numpy()), a.name
