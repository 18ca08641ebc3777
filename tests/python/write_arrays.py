"""Writes Blosc2 datasets with python-blosc2 for cat2's interop tests.

usage: write_arrays.py OUTDIR

For each dataset NAME it writes NAME.b2nd or NAME.b2frame, NAME.raw (the whole data, C order)
and NAME.json (the metadata python-blosc2 reports, and a few slices with their raw results).
"""
import json
import sys
from pathlib import Path

import blosc2
import numpy as np

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(42)

C = blosc2.Codec
F = blosc2.Filter

def arr(dtype, shape):
    n = int(np.prod(shape)) if shape else 1
    dt = np.dtype(dtype)
    if dt.kind == "b":
        a = rng.integers(0, 2, n).astype(bool)
    elif dt.kind == "S":
        a = np.array([(b"s%d" % i)[: dt.itemsize] for i in range(n)], dtype=dt)
    elif dt.kind == "U":
        a = np.array(["\u00e9%d" % i for i in range(n)], dtype=dt)
    elif dt.kind == "V":
        a = np.zeros(n, dtype=dt)
        for name in dt.names:
            f = dt[name]
            if f.kind == "S":
                a[name] = [b"x%d" % i for i in range(n)]
            elif f.kind == "b":
                a[name] = rng.integers(0, 2, n).astype(bool)
            else:
                a[name] = (np.arange(n) * 3 + 1).astype(f)
    elif dt.kind == "c":
        a = (np.arange(n) + 1j * np.arange(n)[::-1]).astype(dt)
    else:
        a = (np.arange(n) % 120).astype(dt)
    return a.reshape(shape)

STRUCT = [("a", "<i4"), ("b", "<f8"), ("c", "S10"), ("d", "?")]
cases = [
    ("i1", "int8", (37,), (10,), (4,), C.ZSTD, F.SHUFFLE, {}),
    ("i2", "int16", (5, 7), (3, 4), (2, 3), C.LZ4, F.BITSHUFFLE, {"unit": "m", "n": 3}),
    ("i4", "int32", (4, 5, 6), (3, 3, 3), (2, 2, 3), C.BLOSCLZ, F.SHUFFLE, {}),
    ("i8", "int64", (100,), (30,), (7,), C.ZLIB, F.DELTA, {}),
    ("u1", "uint8", (9, 9), (4, 4), (4, 4), C.LZ4HC, F.NOFILTER, {}),
    ("u2", "uint16", (10, 20), (5, 5), (2, 3), C.ZSTD, F.SHUFFLE, {}),
    ("u4", "uint32", (2, 3, 4, 5), (1, 2, 3, 4), (1, 2, 2, 2), C.ZSTD, F.BITSHUFFLE, {}),
    ("u8", "uint64", (33,), (8,), (8,), C.BLOSCLZ, F.NOFILTER, {}),
    ("f4", "float32", (17, 3), (5, 2), (5, 1), C.LZ4, F.SHUFFLE, {"desc": "floats", "list": [1, 2.5, "x"]}),
    ("f8", "float64", (6, 6, 6), (4, 4, 4), (2, 2, 2), C.ZSTD, F.SHUFFLE, {}),
    ("c16", "complex128", (7, 3), (3, 3), (3, 2), C.ZLIB, F.SHUFFLE, {}),
    ("b1", "bool", (50,), (16,), (5,), C.ZSTD, F.SHUFFLE, {}),
    ("s5", "S5", (23,), (10,), (5,), C.LZ4, F.SHUFFLE, {}),
    ("u4str", "<U4", (3, 8), (2, 5), (1, 5), C.ZSTD, F.SHUFFLE, {"a": 1, "b": "foo", "c": 123.456}),
    ("struct", STRUCT, (30,), (8,), (4,), C.ZSTD, F.SHUFFLE, {}),
    ("scalar", "float64", (), (), (), C.ZSTD, F.SHUFFLE, {"k": None}),
    ("empty", "int32", (0, 20), (0, 20), (0, 20), C.ZSTD, F.SHUFFLE, {}),
    ("d8", "int8", (2, 2, 2, 2, 2, 2, 2, 3), (1, 2, 1, 2, 1, 2, 1, 2), (1, 1, 1, 2, 1, 1, 1, 2), C.ZSTD, F.SHUFFLE, {}),
]

# Bigger chunks of many blocks (cat2 reads single blocks of them): split streams, bitshuffle,
# no filter, delta (blocks depend on the first), random data, and memcpyed chunks (clevel 0).
# Extra fields: clevel, random data.
cases += [
    ("big_f4", "float32", (200, 300), (100, 300), (10, 300), C.LZ4, F.SHUFFLE, {}, 5, False),
    ("big_i8", "int64", (50000,), (20000,), (2048,), C.BLOSCLZ, F.BITSHUFFLE, {}, 5, False),
    ("big_u2", "uint16", (300, 300), (150, 150), (30, 150), C.ZLIB, F.NOFILTER, {}, 5, False),
    ("big_i4d", "int32", (40000,), (16384,), (1024,), C.ZSTD, F.DELTA, {}, 5, False),
    ("big_rand", "float64", (100, 1000), (50, 1000), (5, 1000), C.ZSTD, F.SHUFFLE, {}, 1, True),
    ("big_memcpy", "float64", (100, 1000), (50, 1000), (5, 1000), C.ZSTD, F.SHUFFLE, {}, 0, True),
]

SLICES = ["", "0", "-1", "1:3", ":2", "1:", "0, 1:3", " :2, :8", "1:5:1", "-2:"]

def slice_tuple(s):
    parts = [p.strip() for p in s.split(",")] if s.strip() else []
    out = []
    for p in parts:
        if ":" in p:
            out.append(slice(*[int(x) if x.strip() else None for x in p.split(":")]))
        else:
            out.append(int(p))
    return tuple(out)

for name, dtype, shape, chunks, blocks, codec, filt, vlmeta, *extra in cases:
    clevel, random = extra if extra else (5, False)
    a = rng.random(shape).astype(dtype) if random else arr(dtype, shape)
    cparams = blosc2.CParams(codec=codec, clevel=clevel, filters=[filt], filters_meta=[0])
    b = blosc2.asarray(a, chunks=chunks, blocks=blocks, cparams=cparams, urlpath=str(out / f"{name}.b2nd"), mode="w")
    for k, v in vlmeta.items():
        b.schunk.vlmeta[k] = v
    (out / f"{name}.raw").write_bytes(np.ascontiguousarray(a).tobytes())
    sc = b.schunk
    slices = []
    for s in SLICES:
        try:
            r = a[slice_tuple(s)]
        except IndexError:
            continue
        r = np.asarray(r, dtype=a.dtype)
        slices.append({"slice": s, "shape": list(r.shape), "raw": np.ascontiguousarray(r).tobytes().hex()})
    meta = {
        "kind": "array",
        "shape": list(b.shape), "chunks": list(b.chunks), "blocks": list(b.blocks), "dtype": str(b.dtype),
        "nbytes": sc.nbytes, "cbytes": sc.cbytes, "nchunks": sc.nchunks, "chunksize": sc.chunksize,
        "codec": int(sc.cparams.codec.value), "filters": [int(f.value) for f in sc.cparams.filters],
        "filters_meta": list(sc.cparams.filters_meta), "typesize": sc.cparams.typesize,
        "blocksize": sc.cparams.blocksize, "vlmeta": {k: v for k, v in sc.vlmeta.getall().items()},
        "slices": slices,
    }
    (out / f"{name}.json").write_text(json.dumps(meta))

# A super-chunk of int32 items whose last chunk is short, with vlmeta.
data = np.arange(1000, dtype="<i4").tobytes()
sc = blosc2.SChunk(chunksize=4 * 96, data=data, cparams=blosc2.CParams(typesize=4, codec=C.LZ4, clevel=3),
                   urlpath=str(out / "frame.b2frame"), mode="w")
sc.vlmeta["origin"] = "python"
(out / "frame.raw").write_bytes(data)
(out / "frame.json").write_text(json.dumps({
    "kind": "frame", "nbytes": sc.nbytes, "cbytes": sc.cbytes, "nchunks": sc.nchunks, "chunksize": sc.chunksize,
    "codec": int(sc.cparams.codec.value), "typesize": sc.cparams.typesize, "vlmeta": {"origin": "python"},
}))
# An uninitialised array (every chunk special UNINIT), as Caterva2's subscriber creates.
blosc2.uninit((50, 7), dtype="float32", chunks=(20, 7), blocks=(5, 7), urlpath=str(out / "uninit.b2nd.x"), mode="w")
print("ok", len(cases) + 1)
