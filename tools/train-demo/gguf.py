"""Minimal GGUF (v3) writer and reader: the subset TinyScout needs (scalars, strings, arrays; F32 / BF16 tensors)."""
import struct

import numpy as np

T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR, T_U64, T_I64, T_F64 = range(13)
GGML_F32, GGML_F16, GGML_BF16 = 0, 1, 30
ALIGN = 32


def _str(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def _scalar(t, v):
    fmt = {T_U8: "B", T_I8: "b", T_U16: "H", T_I16: "h", T_U32: "I", T_I32: "i", T_F32: "f", T_BOOL: "?",
           T_U64: "Q", T_I64: "q", T_F64: "d"}[t]
    return struct.pack("<" + fmt, v)


def _value(v):
    """Python value -> (type, bytes). int -> U32 (I32 if negative), float -> F32, lists by their first element."""
    if isinstance(v, tuple):  # (type, value) explicit
        t, x = v
        if t == T_ARR:
            et, items = x
            return T_ARR, struct.pack("<IQ", et, len(items)) + b"".join(_str(i) if et == T_STR else _scalar(et, i) for i in items)
        return t, (_str(x) if t == T_STR else _scalar(t, x))
    if isinstance(v, bool):
        return T_BOOL, _scalar(T_BOOL, v)
    if isinstance(v, int):
        return (T_U32, _scalar(T_U32, v)) if v >= 0 else (T_I32, _scalar(T_I32, v))
    if isinstance(v, float):
        return T_F32, _scalar(T_F32, v)
    if isinstance(v, str):
        return T_STR, _str(v)
    if isinstance(v, list):
        x = v[0]
        et = T_STR if isinstance(x, str) else T_F32 if isinstance(x, float) else T_I32
        return _value((T_ARR, (et, v)))
    raise TypeError(v)


def bf16_bits(a):
    """float32 array -> uint16 bfloat16 bits, round to nearest even."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def write_gguf(path, kv, tensors):
    """kv: dict key -> value; tensors: list of (name, np.ndarray in PyTorch shape, ggml type)."""
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv))
    for k, v in kv.items():
        t, b = _value(v)
        head += _str(k) + struct.pack("<I", t) + b
    blobs, off = [], 0
    for name, arr, gt in tensors:
        data = (bf16_bits(arr) if gt == GGML_BF16 else np.ascontiguousarray(arr, dtype=np.float32)).tobytes()
        ne = list(reversed(arr.shape))
        head += _str(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne) + struct.pack("<IQ", gt, off)
        pad = (-len(data)) % ALIGN
        blobs.append(data + b"\0" * pad)
        off += len(data) + pad
    head += b"\0" * ((-len(head)) % ALIGN)
    with open(path, "wb") as f:
        f.write(head)
        for b in blobs:
            f.write(b)


def read_gguf(path):
    """-> (kv dict, {name: (ne, type, offset)}) (metadata only)."""
    d = open(path, "rb").read()
    o = 0

    def rd(fmt):
        nonlocal o
        v = struct.unpack_from("<" + fmt, d, o)
        o += struct.calcsize("<" + fmt)
        return v[0]

    def rs():
        nonlocal o
        n = rd("Q")
        s = d[o:o + n].decode()
        o += n
        return s

    def rv(t):
        if t == T_STR:
            return rs()
        if t == T_ARR:
            et, n = rd("I"), rd("Q")
            return [rv(et) for _ in range(n)]
        return rd({T_U8: "B", T_I8: "b", T_U16: "H", T_I16: "h", T_U32: "I", T_I32: "i", T_F32: "f", T_BOOL: "?",
                   T_U64: "Q", T_I64: "q", T_F64: "d"}[t])

    assert d[:4] == b"GGUF"
    o = 4
    _, nt, nkv = rd("I"), rd("Q"), rd("Q")
    kv = {}
    for _ in range(nkv):
        k = rs()
        t = rd("I")
        kv[k] = (t, rv(t))
    ts = {}
    for _ in range(nt):
        name = rs()
        nd = rd("I")
        ne = [rd("Q") for _ in range(nd)]
        ts[name] = (ne, rd("I"), rd("Q"))
    return kv, ts
