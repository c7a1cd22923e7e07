#!/usr/bin/env python3
"""Dump TensorFlow 2.21's XLA JIT op support table for the `tf-xla-check` crate.

Usage: .venv/bin/python scripts/gen_xla_table.py [--check]

Writes crates/xla/data/xla_ops.json (relative to the repository root):

  {"tensorflow": "2.21.0", "git": "...",
   "devices": {"XLA_CPU_JIT": {"Op": [kernel, ...]}, "XLA_GPU_JIT": {...}},
   "const_inputs": {"Op": ["input_arg", ...]}}

where each kernel is {"constraints": {"attr": ["DT_FLOAT", ...]}, "label": "..."} (label only
when set). The kernels come from TensorFlow itself: XLA JIT kernels are
registered lazily, so the script first runs one `tf.function(jit_compile=True)`, which calls
XlaOpRegistry::RegisterCompilationKernels, and then reads every KernelDef of the XLA_CPU_JIT
and XLA_GPU_JIT devices from `kernels.get_all_registered_kernels()` with its per-attribute
type constraints.

Compile-time-constant inputs are not part of a KernelDef (`host_memory_arg` is empty for all
XLA kernels), so `CONST_INPUTS` below lists them, transcribed from the
`CompileTimeConstantInput(...)` calls in tensorflow/compiler/tf2xla/kernels/*.cc (v2.21.0).
The script checks that every op and input name in it exists in the registry.

`--check` regenerates into memory and exits 1 if the committed file differs. Output is
deterministic (sorted keys and lists).
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402
from tensorflow.python.framework import kernels, op_def_registry, dtypes  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates/xla/data/xla_ops.json")
DEVICES = ["XLA_CPU_JIT", "XLA_GPU_JIT"]

# op -> input args that must be compile-time constants (tf2xla kernels' CompileTimeConstantInput).
CONST_INPUTS = {
    "All": ["reduction_indices"], "Any": ["reduction_indices"], "Max": ["reduction_indices"],
    "Mean": ["reduction_indices"], "Min": ["reduction_indices"], "Prod": ["reduction_indices"],
    "Sum": ["reduction_indices"], "EuclideanNorm": ["reduction_indices"],
    "ArgMax": ["dimension"], "ArgMin": ["dimension"],
    "Reshape": ["shape"], "ExpandDims": ["dim"], "Squeeze": [],
    "ConcatV2": ["axis"], "Concat": ["concat_dim"], "ConcatOffset": ["concat_dim"],
    "Transpose": ["perm"], "ConjugateTranspose": ["perm"],
    "Pad": ["paddings"], "PadV2": ["paddings"], "MirrorPad": ["paddings"],
    "MirrorPadGrad": ["paddings"],
    "Slice": ["begin", "size"], "StridedSlice": ["begin", "end", "strides"],
    "StridedSliceGrad": ["shape", "begin", "end", "strides"],
    "ResourceStridedSliceAssign": ["begin", "end", "strides"],
    "TensorStridedSliceUpdate": ["begin", "end", "strides"],
    "Tile": ["multiples"], "TopKV2": ["k"], "Fill": ["dims"],
    "Range": ["start", "limit", "delta"], "LinSpace": ["start", "stop", "num"],
    "OneHot": ["depth"], "BroadcastTo": ["shape"], "BroadcastArgs": ["s0", "s1"],
    "BroadcastGradientArgs": ["s0", "s1"],
    "ResizeBilinear": ["size"], "ResizeNearestNeighbor": ["size"],
    "ResizeBilinearGrad": [],
    "Split": ["split_dim"], "SplitV": ["size_splits", "split_dim"],
    "ReverseV2": ["axis"], "Reverse": ["dims"], "Roll": ["shift", "axis"],
    "Cumsum": ["axis"], "Cumprod": ["axis"], "CumulativeLogsumexp": ["axis"],
    "Empty": ["shape"], "RandomUniform": ["shape"], "RandomStandardNormal": ["shape"],
    "TruncatedNormal": ["shape"], "RandomUniformInt": ["shape"],
    "ParameterizedTruncatedNormal": ["shape"],
    "StatelessRandomUniform": ["shape"], "StatelessRandomNormal": ["shape"],
    "StatelessTruncatedNormal": ["shape"], "StatelessRandomUniformInt": ["shape"],
    "StatelessRandomUniformFullInt": ["shape"], "StatelessRandomUniformV2": ["shape", "alg"],
    "StatelessRandomNormalV2": ["shape", "alg"], "StatelessTruncatedNormalV2": ["shape", "alg"],
    "StatelessRandomUniformIntV2": ["shape", "alg"],
    "StatelessRandomUniformFullIntV2": ["shape", "alg"],
    "StatelessParameterizedTruncatedNormal": ["shape"],
    "StatefulUniform": ["algorithm", "shape"], "StatefulStandardNormalV2": ["algorithm", "shape"],
    "StatefulTruncatedNormal": ["algorithm", "shape"], "StatefulUniformInt": ["algorithm", "shape"],
    "StatefulUniformFullInt": ["algorithm", "shape"],
    "Multinomial": ["num_samples"], "StatelessMultinomial": ["num_samples"],
    "SpaceToBatchND": ["block_shape", "paddings"], "BatchToSpaceND": ["block_shape", "crops"],
    "SpaceToBatch": ["paddings"], "BatchToSpace": ["crops"],
    "Conv2DBackpropInput": ["input_sizes"], "Conv2DBackpropFilter": ["filter_sizes"],
    "Conv3DBackpropInputV2": ["input_sizes"], "Conv3DBackpropFilterV2": ["filter_sizes"],
    "DepthwiseConv2dNativeBackpropInput": ["input_sizes"],
    "DepthwiseConv2dNativeBackpropFilter": ["filter_sizes"],
    "AvgPoolGrad": ["orig_input_shape"], "AvgPool3DGrad": ["orig_input_shape"],
    "MaxPoolV2": ["ksize", "strides"], "MaxPoolGradV2": ["ksize", "strides"],
    "MaxPoolGradGradV2": ["ksize", "strides"],
    "SparseToDense": ["output_shape"], "ScatterNd": ["shape"],
    "UnsortedSegmentSum": ["num_segments"], "UnsortedSegmentMax": ["num_segments"],
    "UnsortedSegmentMin": ["num_segments"], "UnsortedSegmentProd": ["num_segments"],
    "SegmentSumV2": ["num_segments"], "SegmentMaxV2": ["num_segments"],
    "SegmentMinV2": ["num_segments"], "SegmentProdV2": ["num_segments"],
    "GatherV2": ["axis"], "Bincount": ["size"], "DenseBincount": ["size"],
    "MatrixDiagV2": ["k", "num_rows", "num_cols", "padding_value"],
    "MatrixDiagV3": ["k", "num_rows", "num_cols", "padding_value"],
    "MatrixDiagPartV2": ["k"], "MatrixDiagPartV3": ["k"],
    "MatrixSetDiagV2": ["k"], "MatrixSetDiagV3": ["k"],
    "MatrixBandPart": ["num_lower", "num_upper"],
    "RFFT": ["fft_length"], "RFFT2D": ["fft_length"], "RFFT3D": ["fft_length"],
    "IRFFT": ["fft_length"], "IRFFT2D": ["fft_length"], "IRFFT3D": ["fft_length"],
    "TensorListReserve": ["element_shape", "num_elements"],
    "EmptyTensorList": ["element_shape", "max_num_elements"],
    "TensorListElementShape": [],
    "TensorArrayV3": ["size"],
    "ReverseSequence": [], "InTopKV2": ["k"],
    "XlaPad": ["padding_low", "padding_high", "padding_interior"],
    "XlaDynamicSlice": ["size_indices"],
    "Dequantize": ["min_range", "max_range"],
    "QuantizeAndDequantizeV3": [],
    "NonMaxSuppressionV3": ["max_output_size"], "NonMaxSuppressionV4": ["max_output_size"],
    "RandomShuffle": [], "ExtractImagePatches": [],
    "ApproxTopK": [], "Bucketize": [],
}


def trigger_xla_registration():
    @tf.function(jit_compile=True)
    def f(x):
        return x + 1.0

    f(tf.constant(1.0))


def dtype_name(t):
    return dtypes.as_dtype(t).as_datatype_enum


def table():
    trigger_xla_registration()
    from tensorflow.core.framework import types_pb2
    devices = {d: {} for d in DEVICES}
    for k in kernels.get_all_registered_kernels().kernel:
        if k.device_type not in devices:
            continue
        kd = {"constraints": {c.name: sorted(types_pb2.DataType.Name(t)
                                             for t in c.allowed_values.list.type)
                              for c in k.constraint}}
        if k.label:
            kd["label"] = k.label
        devices[k.device_type].setdefault(k.op, []).append(kd)
    for d in devices.values():
        assert len(d) > 400, "XLA kernels were not registered"
        for op in d:
            d[op].sort(key=lambda kd: json.dumps(kd, sort_keys=True))
    reg = op_def_registry.get  # noqa
    const = {}
    for op, args in sorted(CONST_INPUTS.items()):
        od = op_def_registry.get(op)
        assert od is not None, op
        names = [a.name for a in od.input_arg]
        for a in args:
            assert a in names, (op, a, names)
        if args:
            const[op] = list(args)
    return {
        "tensorflow": tf.__version__,
        "git": tf.__git_version__,
        "devices": devices,
        "const_inputs": const,
    }


def render(t):
    return json.dumps(t, sort_keys=True, indent=0, separators=(",", ":")) + "\n"


def main(argv):
    data = render(table())
    if "--check" in argv[1:]:
        old = open(OUT).read() if os.path.exists(OUT) else ""
        if old != data:
            print(f"{OUT} is stale; run scripts/gen_xla_table.py", file=sys.stderr)
            return 1
        print("xla table up to date")
        return 0
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write(data)
    t = json.loads(data)
    print({d: len(v) for d, v in t["devices"].items()}, "ops;", len(t["const_inputs"]),
          "ops with constant inputs")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
