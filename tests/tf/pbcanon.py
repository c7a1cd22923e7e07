"""Canonical ("deterministic") protobuf serialization for the TF fixtures.

The Rust tools write maps sorted by key, like TensorFlow's C++
``SerializeToStringDeterministic``.  Python's upb runtime (the one TF 2.21 uses)
does not sort map keys even with ``deterministic=True``, so files
written by TF from Python are message-equal to, but not byte-equal with, the
canonical form.  This module provides two independent implementations of the
canonical form, so that they can check each other:

``encode(msg)``
    Walks a decoded message (any runtime: upb, cpp or pure python) through its
    descriptor and writes it from scratch: fields in field-number order,
    repeated scalars packed where the schema packs them, map entries sorted by
    key (strings bytewise, integers numerically, false < true), and -- as the
    C++ and upb runtimes do -- every map entry carrying both its key (field 1)
    and its value (field 2) even when they are default values.

``wire_canonical(data, descriptor)``
    Works on raw wire bytes without decoding them into a message: it reorders
    the fields of every (sub)message into field-number order and sorts map
    entries, re-packing packable repeated scalars, and otherwise keeps each
    field's bytes exactly as written.  Applied to the bytes TF/upb wrote it
    therefore yields "TF's own encoding, only reordered".

``map_entry_defaults=False`` switches both to the style of prost (Rust): a map
entry's key / value is omitted when it is the default (``arg_attr {key: 0 ...}``
is then written without ``08 00``).  That style is *not* what C++, upb or the
pure-python runtime (protobuf 7.36, ``PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=
python``, ``deterministic=True``) write; the fixtures use the C++ style.

The module needs only ``google.protobuf``; it does not import TensorFlow.
"""

from __future__ import annotations

import struct

from google.protobuf import descriptor as _d

FD = _d.FieldDescriptor

_VARINT_TYPES = {
    FD.TYPE_INT32, FD.TYPE_INT64, FD.TYPE_UINT32, FD.TYPE_UINT64,
    FD.TYPE_BOOL, FD.TYPE_ENUM, FD.TYPE_SINT32, FD.TYPE_SINT64,
}
_FIXED32_TYPES = {FD.TYPE_FIXED32, FD.TYPE_SFIXED32, FD.TYPE_FLOAT}
_FIXED64_TYPES = {FD.TYPE_FIXED64, FD.TYPE_SFIXED64, FD.TYPE_DOUBLE}
_LEN_TYPES = {FD.TYPE_STRING, FD.TYPE_BYTES, FD.TYPE_MESSAGE}

WT_VARINT, WT_I64, WT_LEN, WT_SGROUP, WT_EGROUP, WT_I32 = 0, 1, 2, 3, 4, 5


def _wire_type(fd) -> int:
    t = fd.type
    if t in _VARINT_TYPES:
        return WT_VARINT
    if t in _FIXED32_TYPES:
        return WT_I32
    if t in _FIXED64_TYPES:
        return WT_I64
    if t in _LEN_TYPES:
        return WT_LEN
    raise ValueError(f"unsupported field type {t} ({fd.full_name})")


def _is_packable(fd) -> bool:
    return fd.type not in _LEN_TYPES and fd.type != FD.TYPE_GROUP


def _is_packed(fd) -> bool:
    return bool(fd.is_repeated and _is_packable(fd) and fd.is_packed)


def _is_map(fd) -> bool:
    return (fd.type == FD.TYPE_MESSAGE and fd.is_repeated
            and fd.message_type.GetOptions().map_entry)


# ----------------------------------------------------------------------------
# primitive writers

def _varint(v: int) -> bytes:
    if v < 0:
        v += 1 << 64
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _tag(num: int, wt: int) -> bytes:
    return _varint((num << 3) | wt)


def _zigzag(v: int, bits: int) -> int:
    return ((v << 1) ^ (v >> (bits - 1))) & ((1 << bits) - 1)


def _scalar_payload(fd, v) -> bytes:
    """Encoding of one scalar value without its tag."""
    t = fd.type
    if t in (FD.TYPE_INT32, FD.TYPE_INT64, FD.TYPE_UINT32, FD.TYPE_UINT64, FD.TYPE_ENUM):
        return _varint(int(v))
    if t == FD.TYPE_BOOL:
        return b"\x01" if v else b"\x00"
    if t == FD.TYPE_SINT32:
        return _varint(_zigzag(int(v), 32))
    if t == FD.TYPE_SINT64:
        return _varint(_zigzag(int(v), 64))
    if t == FD.TYPE_FIXED32:
        return struct.pack("<I", v)
    if t == FD.TYPE_SFIXED32:
        return struct.pack("<i", v)
    if t == FD.TYPE_FLOAT:
        return struct.pack("<f", v)
    if t == FD.TYPE_FIXED64:
        return struct.pack("<Q", v)
    if t == FD.TYPE_SFIXED64:
        return struct.pack("<q", v)
    if t == FD.TYPE_DOUBLE:
        return struct.pack("<d", v)
    if t == FD.TYPE_STRING:
        b = v.encode("utf-8") if isinstance(v, str) else bytes(v)
        return _varint(len(b)) + b
    if t == FD.TYPE_BYTES:
        b = bytes(v)
        return _varint(len(b)) + b
    raise ValueError(f"not a scalar: {fd.full_name}")


def _default_of(fd):
    t = fd.type
    if t == FD.TYPE_STRING:
        return ""
    if t == FD.TYPE_BYTES:
        return b""
    if t == FD.TYPE_BOOL:
        return False
    if t in (FD.TYPE_FLOAT, FD.TYPE_DOUBLE):
        return 0.0
    return 0


def _map_sort_key(fd_key, k):
    if fd_key.type == FD.TYPE_STRING:
        return k.encode("utf-8") if isinstance(k, str) else bytes(k)
    if fd_key.type == FD.TYPE_BYTES:
        return bytes(k)
    return k  # ints / bools compare numerically (False < True)


# ----------------------------------------------------------------------------
# A. encoder from a decoded message

def encode(msg, map_entry_defaults: bool = True) -> bytes:
    """Canonical bytes of ``msg`` (see module docstring)."""
    out = bytearray()
    _encode_into(msg, out, map_entry_defaults)
    return bytes(out)


def _encode_into(msg, out: bytearray, med: bool) -> None:
    fields = sorted(msg.ListFields(), key=lambda fv: fv[0].number)
    for fd, value in fields:
        num = fd.number
        if _is_map(fd):
            entry = fd.message_type
            kfd = entry.fields_by_number[1]
            vfd = entry.fields_by_number[2]
            for k in sorted(value.keys(), key=lambda k: _map_sort_key(kfd, k)):
                v = value[k]
                body = bytearray()
                if med or k != _default_of(kfd):
                    body += _tag(1, _wire_type(kfd)) + _scalar_payload(kfd, k)
                if vfd.type == FD.TYPE_MESSAGE:
                    sub = encode(v, med)
                    if med or sub:
                        body += _tag(2, WT_LEN) + _varint(len(sub)) + sub
                elif med or v != _default_of(vfd):
                    body += _tag(2, _wire_type(vfd)) + _scalar_payload(vfd, v)
                out += _tag(num, WT_LEN) + _varint(len(body)) + body
        elif fd.is_repeated:
            if fd.type == FD.TYPE_MESSAGE:
                for v in value:
                    sub = encode(v, med)
                    out += _tag(num, WT_LEN) + _varint(len(sub)) + sub
            elif _is_packed(fd):
                if len(value):
                    body = b"".join(_scalar_payload(fd, v) for v in value)
                    out += _tag(num, WT_LEN) + _varint(len(body)) + body
            else:
                wt = _wire_type(fd)
                for v in value:
                    out += _tag(num, wt) + _scalar_payload(fd, v)
        elif fd.type == FD.TYPE_MESSAGE:
            sub = encode(value, med)
            out += _tag(num, WT_LEN) + _varint(len(sub)) + sub
        elif fd.type == FD.TYPE_GROUP:
            raise ValueError(f"groups are not supported ({fd.full_name})")
        else:
            out += _tag(num, _wire_type(fd)) + _scalar_payload(fd, value)
    try:  # unknown fields: keep verbatim after the known ones (as C++ does)
        from google.protobuf import unknown_fields
        unk = unknown_fields.UnknownFieldSet(msg)
        if len(unk):
            raise ValueError(f"{msg.DESCRIPTOR.full_name} has unknown fields; "
                             "cannot canonicalize it from a decoded message")
    except ImportError:  # pragma: no cover
        pass


# ----------------------------------------------------------------------------
# B. canonicalizer on raw wire bytes

def _read_varint(data, pos):
    result = 0
    shift = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ValueError("varint too long")


def parse_wire(data: bytes):
    """Split a message into [(field_number, wire_type, value, raw_bytes)].

    value is an int for varints, the payload bytes for LEN/I32/I64."""
    pos = 0
    n = len(data)
    out = []
    mv = memoryview(data)
    while pos < n:
        start = pos
        key, pos = _read_varint(data, pos)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise ValueError("field number 0")
        if wt == WT_VARINT:
            val, pos = _read_varint(data, pos)
        elif wt == WT_I64:
            val = bytes(mv[pos:pos + 8])
            pos += 8
        elif wt == WT_I32:
            val = bytes(mv[pos:pos + 4])
            pos += 4
        elif wt == WT_LEN:
            ln, pos = _read_varint(data, pos)
            val = bytes(mv[pos:pos + ln])
            pos += ln
        else:
            raise ValueError(f"unsupported wire type {wt}")
        if pos > n:
            raise ValueError("truncated message")
        out.append((num, wt, val, bytes(mv[start:pos])))
    return out


def _unpack_packed(fd, payload: bytes):
    """Split a packed payload into the encodings of its elements."""
    items = []
    pos = 0
    wt = _wire_type(fd)
    while pos < len(payload):
        if wt == WT_VARINT:
            s = pos
            _, pos = _read_varint(payload, pos)
            items.append(payload[s:pos])
        elif wt == WT_I32:
            items.append(payload[pos:pos + 4])
            pos += 4
        else:
            items.append(payload[pos:pos + 8])
            pos += 8
    if pos != len(payload):
        raise ValueError(f"bad packed payload for {fd.full_name}")
    return items


def _scalar_elem_bytes(fd, wt, val) -> bytes:
    if wt == WT_VARINT:
        return _varint(val)
    return val


def _decode_key(fd, wt, val):
    t = fd.type
    if t in (FD.TYPE_STRING, FD.TYPE_BYTES):
        return val
    if t == FD.TYPE_BOOL:
        return bool(val)
    if t in (FD.TYPE_INT32, FD.TYPE_INT64):
        return val - (1 << 64) if val >= 1 << 63 else val
    if t in (FD.TYPE_UINT32, FD.TYPE_UINT64):
        return val
    if t in (FD.TYPE_SINT32, FD.TYPE_SINT64):
        return (val >> 1) ^ -(val & 1)
    if t == FD.TYPE_FIXED32:
        return struct.unpack("<I", val)[0]
    if t == FD.TYPE_SFIXED32:
        return struct.unpack("<i", val)[0]
    if t == FD.TYPE_FIXED64:
        return struct.unpack("<Q", val)[0]
    if t == FD.TYPE_SFIXED64:
        return struct.unpack("<q", val)[0]
    raise ValueError(f"bad map key type {fd.full_name}")


def wire_canonical(data: bytes, desc, map_entry_defaults: bool = True) -> bytes:
    """Canonical form of the serialized message ``data`` of type ``desc``."""
    return _wire_canon(bytes(data), desc, map_entry_defaults, is_map_entry=False)


def _wire_canon(data: bytes, desc, med: bool, is_map_entry: bool) -> bytes:
    fields = parse_wire(data)
    by_num: dict[int, list] = {}
    unknown = []
    for f in fields:
        if f[0] in desc.fields_by_number:
            by_num.setdefault(f[0], []).append(f)
        else:
            unknown.append(f[3])
    out = bytearray()
    if is_map_entry:
        # a map entry: key (1) then value (2); duplicates: last one wins
        for num in (1, 2):
            fd = desc.fields_by_number[num]
            occ = by_num.get(num, [])
            if fd.type == FD.TYPE_MESSAGE:
                payload = occ[-1][2] if occ else b""
                sub = _wire_canon(payload, fd.message_type, med, False)
                if med or sub:
                    out += _tag(num, WT_LEN) + _varint(len(sub)) + sub
            else:
                if occ:
                    _, wt, val, _raw = occ[-1]
                    enc = _tag(num, wt) + (_varint(val) if wt == WT_VARINT else
                                           (_varint(len(val)) + val if wt == WT_LEN else val))
                    is_default = (val == 0 if wt == WT_VARINT else
                                  (val == b"" if wt == WT_LEN else not any(val)))
                    if med or not is_default:
                        out += enc
                elif med:
                    out += _tag(num, _wire_type(fd)) + _scalar_payload(fd, _default_of(fd))
        return bytes(out)
    for num in sorted(by_num):
        fd = desc.fields_by_number[num]
        occ = by_num[num]
        if _is_map(fd):
            entry_desc = fd.message_type
            kfd = entry_desc.fields_by_number[1]
            entries = {}
            for (_n, wt, val, _raw) in occ:
                if wt != WT_LEN:
                    raise ValueError(f"map field {fd.full_name} with wire type {wt}")
                canon = _wire_canon(val, entry_desc, med, True)
                kocc = [f for f in parse_wire(val) if f[0] == 1]
                if kocc:
                    k = _decode_key(kfd, kocc[-1][1], kocc[-1][2])
                else:
                    d = _default_of(kfd)
                    k = d.encode() if isinstance(d, str) else d
                entries[k] = canon  # last duplicate wins, like every runtime
            for k in sorted(entries):
                e = entries[k]
                out += _tag(num, WT_LEN) + _varint(len(e)) + e
        elif fd.type == FD.TYPE_MESSAGE:
            for (_n, wt, val, _raw) in occ:
                if wt != WT_LEN:
                    raise ValueError(f"message field {fd.full_name} with wire type {wt}")
                sub = _wire_canon(val, fd.message_type, med, False)
                out += _tag(num, WT_LEN) + _varint(len(sub)) + sub
            if not fd.is_repeated and len(occ) > 1:
                raise ValueError(f"singular message {fd.full_name} occurs {len(occ)} times")
        elif fd.is_repeated and _is_packable(fd):
            elems = []
            for (_n, wt, val, _raw) in occ:
                if wt == WT_LEN:
                    elems.extend(_unpack_packed(fd, val))
                else:
                    elems.append(_scalar_elem_bytes(fd, wt, val))
            if _is_packed(fd):
                if elems:
                    body = b"".join(elems)
                    out += _tag(num, WT_LEN) + _varint(len(body)) + body
            else:
                wt = _wire_type(fd)
                for e in elems:
                    out += _tag(num, wt) + e
        else:
            if not fd.is_repeated and len(occ) > 1:
                occ = occ[-1:]
            for f in occ:
                out += f[3]
    for raw in unknown:
        out += raw
    return bytes(out)


# ----------------------------------------------------------------------------
# helpers

def message_class_for(path: str):
    """The TF message class for a fixture protobuf file, by file name."""
    import os
    base = os.path.basename(path)
    if base == "saved_model.pb":
        from tensorflow.core.protobuf import saved_model_pb2
        return saved_model_pb2.SavedModel
    if base == "fingerprint.pb":
        from tensorflow.core.protobuf import fingerprint_pb2
        return fingerprint_pb2.FingerprintDef
    if base.endswith(".meta"):
        from tensorflow.core.protobuf import meta_graph_pb2
        return meta_graph_pb2.MetaGraphDef
    if base.endswith(".pb"):
        from tensorflow.core.framework import graph_pb2
        return graph_pb2.GraphDef
    raise ValueError(f"not a fixture protobuf file: {path}")


# Serialized messages stored inside ``bytes`` fields.  TF1 MetaGraphDefs keep the
# v1 control-flow contexts in collection_def["cond_context"/"while_context"]
# .bytes_list as serialized CondContextDef / WhileContextDef, whose ValuesDef has a
# map<string,string> external_values; upb writes that map in a per-process random
# order, so these blobs are re-encoded canonically too.
EMBEDDED_COLLECTIONS = {
    "cond_context": "CondContextDef",
    "while_context": "WhileContextDef",
}


def _embedded_class(name):
    from tensorflow.core.protobuf import control_flow_pb2
    return getattr(control_flow_pb2, name)


def _meta_graphs(msg):
    name = msg.DESCRIPTOR.full_name
    if name == "tensorflow.MetaGraphDef":
        return [msg]
    if name == "tensorflow.SavedModel":
        return list(msg.meta_graphs)
    return []


def embedded_blobs(msg):
    """Yield (where, message class, container, index) of every embedded message blob."""
    for i, mg in enumerate(_meta_graphs(msg)):
        for key, cls_name in EMBEDDED_COLLECTIONS.items():
            if key in mg.collection_def and mg.collection_def[key].HasField("bytes_list"):
                vals = mg.collection_def[key].bytes_list.value
                for j in range(len(vals)):
                    yield (f"meta_graphs[{i}].collection_def[{key!r}].bytes_list.value[{j}]",
                           _embedded_class(cls_name), vals, j)


def normalize_embedded(msg, serializer=None) -> int:
    """Re-encode embedded message blobs of ``msg`` in place; returns how many changed."""
    serializer = serializer or encode
    changed = 0
    for _where, cls, vals, j in embedded_blobs(msg):
        inner = cls()
        inner.ParseFromString(vals[j])
        new = serializer(inner)
        if new != vals[j]:
            vals[j] = new
            changed += 1
    return changed


def embedded_equal(a, b) -> bool:
    """Message equality that compares embedded blobs as decoded messages."""
    import copy
    a2 = copy.deepcopy(a)
    b2 = copy.deepcopy(b)
    blobs_a = list(embedded_blobs(a2))
    blobs_b = list(embedded_blobs(b2))
    if len(blobs_a) != len(blobs_b):
        return False
    for (wa, cls, va, ja), (wb, _c, vb, jb) in zip(blobs_a, blobs_b):
        ma, mb = cls(), cls()
        ma.ParseFromString(va[ja])
        mb.ParseFromString(vb[jb])
        if wa != wb or ma != mb:
            return False
        va[ja] = b""
        vb[jb] = b""
    return a2 == b2


def is_canonical(data: bytes, msg_class) -> tuple[bool, str]:
    """Check ``data`` against both implementations; returns (ok, reason)."""
    m = msg_class()
    m.ParseFromString(data)
    a = encode(m)
    if a != data:
        return False, _first_diff("encode(parse(file))", a, data)
    b = wire_canonical(data, msg_class.DESCRIPTOR)
    if b != data:
        return False, _first_diff("wire_canonical(file)", b, data)
    for where, cls, vals, j in embedded_blobs(m):
        inner = cls()
        inner.ParseFromString(vals[j])
        if encode(inner) != vals[j]:
            return False, f"embedded {cls.DESCRIPTOR.name} at {where} is not canonical"
    return True, ""


def _first_diff(what, a: bytes, b: bytes) -> str:
    n = min(len(a), len(b))
    i = next((i for i in range(n) if a[i] != b[i]), n)
    return (f"{what} differs from the file at byte {i} "
            f"(lengths {len(a)} vs {len(b)}): {a[i:i+16].hex()} vs {b[i:i+16].hex()}")
