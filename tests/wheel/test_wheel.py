"""The wheel's Python helper (tf_tools.run) on TensorFlow's GraphDef.

Run by scripts/test_wheel.sh (make test-wheel) with the wheel installed in a fresh venv whose
site-packages is on PYTHONPATH; that script sets TF_TOOLS_WHEEL_SITE. Without it these tests fail
rather than skip: they are only meaningful against the installed wheel.
"""

import os
from pathlib import Path

import pytest
import tensorflow as tf

import tf_tools

SITE = os.environ.get("TF_TOOLS_WHEEL_SITE")
MODEL = os.environ.get("TF_TOOLS_MODEL")


def test_helper_is_the_wheels():
    assert SITE, "run through scripts/test_wheel.sh (make test-wheel)"
    assert Path(tf_tools.__file__).resolve().is_relative_to(Path(SITE).resolve())
    # Found beside the install, not on PATH (PATH holds only /usr/bin:/bin here).
    for tool in ("tf-freeze", "tf-strip", "tf-fold", "tf-quant"):
        assert Path(tf_tools.which(tool)).resolve().parent.parent == Path(SITE).resolve().parents[2]


def test_chain_on_graphdef():
    frozen = tf.compat.v1.GraphDef.FromString(tf_tools.run("tf-freeze", MODEL))
    assert any(n.op == "Placeholder" for n in frozen.node)
    # A GraphDef object in, bytes out, chained in memory.
    stripped = tf_tools.run("tf-strip", input=frozen)
    folded = tf_tools.run("tf-fold", input=stripped)
    quant = tf.compat.v1.GraphDef.FromString(tf_tools.run("tf-quant", "int8", "--min-elements", "16", input=folded))
    assert any(n.op == "Const" and n.attr["dtype"].type == tf.int8.as_datatype_enum
               for n in quant.node)
    # TensorFlow imports and runs the result.
    g = tf.Graph()
    with g.as_default():
        tf.graph_util.import_graph_def(quant, name="")
    assert g.get_operations()


def test_error_is_raised_with_the_tools_line():
    with pytest.raises(tf_tools.ToolError) as e:
        tf_tools.run("tf-strip", input=b"not a graph")
    assert e.value.returncode == 2
    assert "tf-strip: error:" in str(e.value) and "\n" not in e.value.message


def test_input_type_checked():
    with pytest.raises(TypeError):
        tf_tools.run("tf-strip", input=42)
