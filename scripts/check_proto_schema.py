#!/usr/bin/env python3
"""Compare our proto schema (a serialized FileDescriptorSet) against TensorFlow's own.

Usage: .venv/bin/python scripts/check_proto_schema.py OUR_DESCRIPTOR_SET.bin

The reference is the compiled descriptors carried by the installed TensorFlow's ``*_pb2``
modules. For every file we vendor, every message and enum is compared recursively: names,
nested types, every field's number/name/label/type/type_name/default/packed-ness (explicit
option and effective wire form)/oneof membership/proto3-optional, map-entry-ness, reserved
ranges and names, enum values, file syntax, package and imports. json_name and file options
(java_package, go_package, ...) are ignored. Something TF has and we lack, or that we have and
TF lacks, is a difference.

Prints every difference on its own line and exits 1 if there is any; otherwise prints a
one-line summary and exits 0.
"""

import importlib
import importlib.util
import os
import sys
import types

from google.protobuf import descriptor_pb2

F = descriptor_pb2.FieldDescriptorProto

# The pb2 modules whose files we vendor under proto/ (the closure of their imports, minus the
# google/protobuf well-known types).
MODULES = [
    "tensorflow.core.framework.attr_value_pb2",
    "tensorflow.core.framework.full_type_pb2",
    "tensorflow.core.framework.function_pb2",
    "tensorflow.core.framework.graph_pb2",
    "tensorflow.core.framework.graph_debug_info_pb2",
    "tensorflow.core.framework.node_def_pb2",
    "tensorflow.core.framework.op_def_pb2",
    "tensorflow.core.framework.resource_handle_pb2",
    "tensorflow.core.framework.tensor_pb2",
    "tensorflow.core.framework.tensor_shape_pb2",
    "tensorflow.core.framework.tensor_slice_pb2",
    "tensorflow.core.framework.types_pb2",
    "tensorflow.core.framework.variable_pb2",
    "tensorflow.core.framework.versions_pb2",
    "tensorflow.core.protobuf.fingerprint_pb2",
    "tensorflow.core.protobuf.meta_graph_pb2",
    "tensorflow.core.protobuf.saved_model_pb2",
    "tensorflow.core.protobuf.saved_object_graph_pb2",
    "tensorflow.core.protobuf.saver_pb2",
    "tensorflow.core.protobuf.struct_pb2",
    "tensorflow.core.util.saved_tensor_slice_pb2",
    "tensorflow.core.protobuf.tensor_bundle_pb2",
    "tensorflow.core.protobuf.trackable_object_graph_pb2",
    "tensorflow.python.training.checkpoint_state_pb2",
]

PACKABLE = {
    F.TYPE_DOUBLE, F.TYPE_FLOAT, F.TYPE_INT64, F.TYPE_UINT64, F.TYPE_INT32, F.TYPE_FIXED64,
    F.TYPE_FIXED32, F.TYPE_BOOL, F.TYPE_UINT32, F.TYPE_ENUM, F.TYPE_SFIXED32, F.TYPE_SFIXED64,
    F.TYPE_SINT32, F.TYPE_SINT64,
}
LABELS = {F.LABEL_OPTIONAL: "optional", F.LABEL_REQUIRED: "required", F.LABEL_REPEATED: "repeated"}
TYPES = {v: k[len("TYPE_"):].lower() for k, v in F.Type.items()}


def syntax_of(fd):
    return fd.syntax or "proto2"


def effective_packed(f, syntax):
    if f.label != F.LABEL_REPEATED or f.type not in PACKABLE:
        return False
    if f.options.HasField("packed"):
        return f.options.packed
    return syntax == "proto3"


def field_props(f, msg, syntax):
    oneof = msg.oneof_decl[f.oneof_index].name if f.HasField("oneof_index") else None
    return {
        "name": f.name,
        "label": LABELS.get(f.label, f.label),
        "type": TYPES.get(f.type, f.type),
        "type_name": f.type_name,
        "default_value": f.default_value if f.HasField("default_value") else None,
        "packed option": f.options.packed if f.options.HasField("packed") else None,
        "effective packed": effective_packed(f, syntax),
        "oneof": oneof,
        "proto3_optional": f.proto3_optional,
        "deprecated": f.options.deprecated,
    }


class Checker:
    def __init__(self):
        self.diffs = []
        self.messages = 0
        self.enums = 0
        self.fields = 0

    def diff(self, where, what):
        self.diffs.append(f"{where}: {what}")

    def enum(self, where, tf, ours):
        self.enums += 1
        tn = {v.name: v.number for v in tf.value}
        on = {v.name: v.number for v in ours.value}
        for name, num in tn.items():
            if name not in on:
                self.diff(where, f"enum value {name} = {num} missing in ours")
            elif on[name] != num:
                self.diff(where, f"enum value {name}: TF number {num}, ours {on[name]}")
        for name, num in on.items():
            if name not in tn:
                self.diff(where, f"enum value {name} = {num} not in TF")
        if [v.name for v in tf.value][:1] != [v.name for v in ours.value][:1]:
            self.diff(where, "first (default) enum value differs")
        if tf.options.allow_alias != ours.options.allow_alias:
            self.diff(where, "allow_alias differs")
        self.reserved(where, tf, ours)

    def reserved(self, where, tf, ours):
        tr = sorted((r.start, r.end) for r in tf.reserved_range)
        orr = sorted((r.start, r.end) for r in ours.reserved_range)
        if tr != orr:
            self.diff(where, f"reserved ranges: TF {tr}, ours {orr}")
        if sorted(tf.reserved_name) != sorted(ours.reserved_name):
            self.diff(where, f"reserved names: TF {sorted(tf.reserved_name)}, ours {sorted(ours.reserved_name)}")

    def children(self, where, kind, tf_items, our_items, fn):
        t = {x.name: x for x in tf_items}
        o = {x.name: x for x in our_items}
        for name in t:
            if name not in o:
                self.diff(where, f"{kind} {name} missing in ours")
            else:
                fn(f"{where}.{name}" if where else name, t[name], o[name])
        for name in o:
            if name not in t:
                self.diff(where, f"{kind} {name} not in TF")

    def message(self, where, tf, ours, syntax_tf, syntax_ours):
        self.messages += 1
        if tf.options.map_entry != ours.options.map_entry:
            self.diff(where, f"map_entry: TF {tf.options.map_entry}, ours {ours.options.map_entry}")
        tf_f = {f.number: f for f in tf.field}
        our_f = {f.number: f for f in ours.field}
        for num, f in tf_f.items():
            self.fields += 1
            if num not in our_f:
                self.diff(where, f"field {f.name} = {num} missing in ours")
                continue
            tp = field_props(f, tf, syntax_tf)
            op = field_props(our_f[num], ours, syntax_ours)
            for k in tp:
                if tp[k] != op[k]:
                    self.diff(f"{where}.{f.name} (= {num})", f"{k}: TF {tp[k]!r}, ours {op[k]!r}")
        for num, f in our_f.items():
            if num not in tf_f:
                self.diff(where, f"field {f.name} = {num} not in TF")
        if [o.name for o in tf.oneof_decl] != [o.name for o in ours.oneof_decl]:
            self.diff(where, f"oneofs: TF {[o.name for o in tf.oneof_decl]}, ours {[o.name for o in ours.oneof_decl]}")
        self.reserved(where, tf, ours)
        if len(tf.extension_range) != len(ours.extension_range):
            self.diff(where, "extension ranges differ")
        self.children(where, "nested message", tf.nested_type, ours.nested_type,
                      lambda w, a, b: self.message(w, a, b, syntax_tf, syntax_ours))
        self.children(where, "nested enum", tf.enum_type, ours.enum_type, self.enum)

    def file(self, tf, ours):
        where = tf.name
        if syntax_of(tf) != syntax_of(ours):
            self.diff(where, f"syntax: TF {syntax_of(tf)}, ours {syntax_of(ours)}")
        if tf.package != ours.package:
            self.diff(where, f"package: TF {tf.package!r}, ours {ours.package!r}")
        if sorted(tf.dependency) != sorted(ours.dependency):
            self.diff(where, f"imports: TF {sorted(tf.dependency)}, ours {sorted(ours.dependency)}")
        pkg = "." + tf.package if tf.package else ""
        st, so = syntax_of(tf), syntax_of(ours)
        self.children("", "message", tf.message_type, ours.message_type,
                      lambda w, a, b: self.message(pkg + "." + w if pkg else w, a, b, st, so))
        self.children("", "enum", tf.enum_type, ours.enum_type,
                      lambda w, a, b: self.enum(pkg + "." + w if pkg else w, a, b))
        if len(tf.extension) != len(ours.extension) or len(tf.service) != len(ours.service):
            self.diff(where, "extensions/services differ")


def load_pb2(name):
    """Imports a TensorFlow ``*_pb2`` module without running ``tensorflow/__init__.py`` (slow,
    noisy, loads the runtime): the parent packages are stubbed with their real ``__path__``."""
    parts = name.split(".")
    for i in range(1, len(parts)):
        pkg = ".".join(parts[:i])
        if pkg in sys.modules:
            continue
        if i == 1:
            spec = importlib.util.find_spec(pkg)
            if spec is None:
                raise SystemExit("check_proto_schema: TensorFlow is not installed in this Python")
            path = list(spec.submodule_search_locations)
        else:
            path = [os.path.join(p, parts[i - 1]) for p in sys.modules[".".join(parts[:i - 1])].__path__]
        mod = types.ModuleType(pkg)
        mod.__path__ = path
        sys.modules[pkg] = mod
    return importlib.import_module(name)


def tf_version():
    from importlib import metadata
    for dist in ("tensorflow", "tensorflow-cpu", "tf-nightly", "tensorflow-intel"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return "(unknown version)"


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    ours = descriptor_pb2.FileDescriptorSet.FromString(open(argv[1], "rb").read())
    ours_by_name = {f.name: f for f in ours.file}
    c = Checker()
    covered = set()
    for mod in MODULES:
        tf = descriptor_pb2.FileDescriptorProto.FromString(
            load_pb2(mod).DESCRIPTOR.serialized_pb)
        covered.add(tf.name)
        if tf.name not in ours_by_name:
            c.diff(tf.name, "file missing in ours")
            continue
        c.file(tf, ours_by_name[tf.name])
    for name in ours_by_name:
        if name not in covered and not name.startswith("google/protobuf/"):
            c.diff(name, "file not among TF's checked files")
    for d in c.diffs:
        print(d)
    print(f"proto schema vs TensorFlow {tf_version()}: {len(covered)} files, {c.messages} messages, {c.enums} enums, "
          f"{c.fields} fields, {len(c.diffs)} differences")
    return 1 if c.diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
