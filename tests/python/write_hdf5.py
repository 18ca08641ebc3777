"""Writes DIR/cases.h5 with h5py (and hdf5plugin for Blosc2 chunks): one dataset per case
cat2's HDF5 roots handle, plus cases they must skip. Writes DIR/expected.json: the datasets
in the order Caterva2 0.2.0 lists them, each with the dtype, shape and chunks it must be served
with, its items as h5py reads them (DIR/<n>.raw, C order, in the served dtype), and its
attributes packed as 0.2.0 packs them (msgpack of the values h5py reads, made plain).
"""

import json
import sys
from pathlib import Path

import h5py
import hdf5plugin
import msgpack
import numpy as np
import numpy.lib.recfunctions as rfn

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(7)
B2 = hdf5plugin.Blosc2


def plain(obj):
    """What 0.2.0 hands msgpack for values it cannot pack itself."""
    if isinstance(obj, tuple):
        return ["__tuple__", *obj]
    if isinstance(obj, h5py.Empty):
        if obj.dtype.kind not in "SU":
            return None
        obj = obj.dtype.type()
    if isinstance(obj, (np.generic, np.ndarray)):
        return obj.tolist()
    return obj


def packed_attrs(ds):
    res = {}
    for name, value in ds.attrs.items():
        try:
            res[name] = msgpack.packb(value, default=plain, strict_types=True).hex()
        except Exception:
            pass  # 0.2.0 skips what it cannot pack
    return res


# A userblock (as MATLAB v7.3 files have) shifts every address in the file.
with h5py.File(out / "cases.h5", "w", userblock_size=512) as f:
    g = f.create_group("ints")
    for t in ["i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8"]:
        a = rng.integers(np.iinfo(t).min, np.iinfo(t).max, size=(37, 23), dtype=t, endpoint=True)
        g.create_dataset(t, data=a, chunks=(8, 7), compression="gzip", shuffle=True)
    f.create_dataset("ints/be_i4", data=np.arange(135).reshape(15, 9) - 60, dtype=">i4")
    fl = f.create_group("floats")
    fl.create_dataset("f2", data=rng.standard_normal(101).astype("f2"))
    fl.create_dataset("f4_lzf", data=rng.standard_normal((64, 50)).astype("f4"), chunks=(20, 16), compression="lzf")
    fl.create_dataset("f8_fletcher", data=rng.standard_normal((33, 40)), chunks=(10, 9),
                      compression="gzip", compression_opts=1, shuffle=True, fletcher32=True)
    if h5py.h5z.filter_avail(h5py.h5z.FILTER_SZIP):
        fl.create_dataset("i4_szip", data=np.arange(5000, dtype="i4").reshape(50, 100), chunks=(16, 32),
                          compression="szip")
    c = rng.standard_normal((10, 10)) + 1j * rng.standard_normal((10, 10))
    f.create_dataset("complex/c8", data=c.astype("c8"), chunks=(3, 3))
    f.create_dataset("complex/c16", data=c)
    f.create_dataset("bool", data=rng.integers(0, 2, 100).astype(bool), chunks=(16,))
    f.create_dataset("enum", data=np.arange(50, dtype="i2") % 3,
                     dtype=h5py.enum_dtype({"RED": 0, "GREEN": 1, "BLUE": 2}, basetype="i2"))
    f.create_dataset("strings/S5", data=np.array([b"ab", b"hello", b"", b"x\x00y"] * 5, dtype="S5"),
                     chunks=(6,))
    f.create_dataset("scalars/f", data=np.float32(2.5))
    f.create_dataset("scalars/S", data=np.bytes_(b"cat2!"))
    # Compact: the data lives in the object header.
    space = h5py.h5s.create_simple((10,))
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.COMPACT)
    ds = h5py.h5d.create(f.id, b"compact", h5py.h5t.STD_I32LE, space, dcpl=dcpl)
    ds.write(h5py.h5s.ALL, h5py.h5s.ALL, np.arange(10, dtype="<i4") * 3)
    # Sparse: only some chunks written; the others hold the fill value.
    sp = f.create_dataset("sparse/filled", shape=(100, 100), dtype="i4", chunks=(10, 10), fillvalue=-7)
    sp[15:25, 40:45] = 1
    sp[90:, 90:] = 2
    # The same with gzip + shuffle (decoded by cat2 itself, not libhdf5), edge chunks too.
    sg = f.create_dataset("sparse/gzip", shape=(95, 97), dtype="f4", chunks=(10, 10), fillvalue=-1.5,
                          compression="gzip", shuffle=True)
    sg[15:25, 40:45] = 1.25
    sg[88:, 90:] = np.arange(49, dtype="f4").reshape(7, 7)
    sb = f.create_dataset("sparse/blosc2", shape=(40, 40), dtype="f8", chunks=(10, 10), fillvalue=0.5, **B2())
    sb[0:10, 30:40] = 3.0
    sb[25:35, 5:15] = np.arange(100.0).reshape(10, 10)
    f.create_dataset("blosc2/nd", data=rng.standard_normal((30, 17, 5)).astype("f4"), chunks=(8, 6, 5),
                     **B2(cname="zstd", clevel=5, filters=B2.SHUFFLE))
    # All-zero chunks: c-blosc2 stores them as a mark, no bytes.
    z = np.zeros((20, 20), dtype="f8")
    z[10:, 10:] = 1.0
    f.create_dataset("blosc2/zeros", data=z, chunks=(10, 10), **B2())
    # Chunks big enough for several Blosc2 blocks each (small reads cut single blocks).
    f.create_dataset("blosc2/blocks", data=rng.standard_normal((40, 128, 128)).astype("f4"),
                     chunks=(20, 128, 128), **B2(cname="lz4", filters=B2.SHUFFLE))
    f.create_dataset("blosc2/d1", data=np.arange(1000, dtype="i8") * 7, chunks=(300,), **B2(cname="lz4"))
    f.create_dataset("blosc2/bitshuffle", data=np.arange(4096, dtype="u2").reshape(64, 64), chunks=(32, 32),
                     **B2(cname="blosclz", filters=B2.BITSHUFFLE))
    # Contiguous, big enough for several chosen chunks with edges.
    f.create_dataset("contiguous", data=rng.standard_normal((1500, 700)))
    a = f.create_dataset("withattrs", data=np.arange(6, dtype="i4"))
    for k, v in {"int": 42, "neg": np.int8(-5), "u64": np.uint64(2**63 + 5), "f32": np.float32(0.25),
                 "f64": -1.5e300, "flag": np.bool_(True), "text": "héllo", "bytes_": np.bytes_(b"raw"),
                 "strings": np.array([b"a", b"bc"]), "floats": np.linspace(0, 1, 5),
                 "pair": np.array((1, 2.5), dtype=[("a", "i4"), ("b", "f8")])[()],
                 "complex": np.complex64(1 + 2j), "nil_f": h5py.Empty("f4"),
                 "pairs": np.array([(1, 2.5), (3, 4.5)], dtype=[("a", "i4"), ("b", "f8")]),
                 "nil_s": h5py.Empty("S3"), "one": np.array([7])}.items():
        a.attrs[k] = v
    u = f.create_group("unsupported")
    u.create_dataset("vlstring", data=["a", "bc"], dtype=h5py.string_dtype())
    # Compounds: served as NumPy structured dtypes, packed in offset order.
    n = 57
    packed_dt = np.dtype([("x", "<i4"), ("y", "<f8")])
    cp = np.zeros(n, dtype=packed_dt)
    cp["x"], cp["y"] = np.arange(n) - 20, rng.standard_normal(n)
    f.create_dataset("compound/packed", data=cp, chunks=(10,), compression="gzip")
    padded_dt = np.dtype([("a", "u1"), ("b", "<f8"), ("c", ">i2")], align=True)
    pd = np.zeros((9, 7), dtype=padded_dt)
    pd["a"], pd["b"], pd["c"] = 3, rng.standard_normal((9, 7)), -np.arange(63).reshape(9, 7)
    f.create_dataset("compound/padded", data=pd, chunks=(4, 3))
    nested_dt = np.dtype([("p", [("a", "<i2"), ("b", ">f4")]), ("m", "<f8", (2, 3)), ("s", "S4"),
                          ("c", "<c16"), ("ok", "?")])
    nd = np.zeros(12, dtype=nested_dt)
    nd["p"]["a"], nd["p"]["b"] = np.arange(12), np.arange(12) / 4
    nd["m"] = rng.standard_normal((12, 2, 3))
    nd["s"], nd["c"], nd["ok"] = b"ab", np.arange(12) * (1 + 2j), np.arange(12) % 2 == 0
    f.create_dataset("compound/nested", data=nd)
    f.create_dataset("compound/blosc2", data=cp, chunks=(16,), **B2(cname="zstd"))
    u.create_dataset("compound-b2-padded", data=pd, chunks=(4, 3), **B2())
    u.create_dataset("subarray", shape=(3,), dtype=np.dtype(("f4", (2,))))
    u.create_dataset("null", data=h5py.Empty("i4"))
    u["ext"] = h5py.ExternalLink("elsewhere.h5", "/data")
    u["dangling"] = h5py.SoftLink("/no/such/thing")
    # Soft links: followed once, within this file.
    f["links/to-bool"] = h5py.SoftLink("/bool")
    f["links/rel-bool"] = h5py.SoftLink("to-bool")  # relative, through another soft link
    f["links/grp"] = h5py.SoftLink("/complex")
    f["links/grp-again"] = h5py.SoftLink("/complex")  # already listed through links/grp
    f["links/loop/self"] = h5py.SoftLink("/links/loop")
    f["links/loop/up"] = h5py.SoftLink("/links")
    f["links/via-ext"] = h5py.SoftLink("/unsupported/ext/data")

expected = {"order": [], "skipped": [], "datasets": {}}


def packed(dt):
    """The dtype cat2 serves for an h5py file dtype: compounds packed in offset order."""
    if dt.subdtype is not None:
        base, shape = dt.subdtype
        return np.dtype((packed(base), shape))
    if dt.fields is None:
        return np.dtype(dt.str)  # without h5py's metadata
    items = sorted(dt.fields.items(), key=lambda kv: kv[1][1])
    return np.dtype([(name, packed(t[0])) for name, t in items])


def key(obj):
    info = h5py.h5o.get_info(obj.id)
    return (info.fileno, info.addr)


def emit(path, node):
    if path.startswith("unsupported/"):
        expected["skipped"].append(path)
        return
    path = path + ".b2nd"
    expected["order"].append(path)
    # Served in the file's own byte order (bool and enums as h5py maps them).
    ftype = node.id.get_type().dtype
    if node.dtype.kind == "b":
        served = np.dtype("|b1")
    elif h5py.check_enum_dtype(node.dtype) is not None:
        served = node.dtype
    else:
        served = packed(ftype)
    data = np.ascontiguousarray(node[()])
    if served.fields is not None:
        out_ = np.zeros(data.shape, dtype=served)
        rfn.assign_fields_by_name(out_, data)
        data = out_
    else:
        data = data.astype(served)
    fname = f"{len(expected['order'])}.raw"
    (out / fname).write_bytes(data.tobytes())
    expected["datasets"][path] = {
        "dtype": str(served.descr) if served.fields is not None else served.str,
        "shape": list(node.shape),
        "chunks": list(node.chunks) if node.chunks else None,
        "raw": fname,
        "vlmeta": packed_attrs(node),
    }


def walk(g, prefix, aliased, ancestors, seen, expanded):
    """cat2's listing: hard links by name, each object once (0.2.0); soft links followed once."""
    for name in g:
        path = prefix + name
        link = g.get(name, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            continue
        obj = g.get(name)
        if obj is None:
            continue  # dangling, or through an external link
        k = key(obj)
        if isinstance(link, h5py.SoftLink):
            if isinstance(obj, h5py.Dataset):
                emit(path, obj)
            elif k not in ancestors and k not in expanded:
                expanded.add(k)
                walk(obj, path + "/", True, ancestors + [k], seen, expanded)
            continue
        if not aliased:
            if k in seen:
                continue
            seen.add(k)
        if isinstance(obj, h5py.Dataset):
            emit(path, obj)
        elif k not in ancestors:
            walk(obj, path + "/", aliased, ancestors + [k], seen, expanded)


with h5py.File(out / "cases.h5", "r") as f:
    walk(f, "", False, [key(f)], {key(f)}, set())
(out / "expected.json").write_text(json.dumps(expected, indent=1))
print(len(expected["order"]), "datasets")
