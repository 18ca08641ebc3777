"""Checks cat2import / cat2export results with h5py, hdf5plugin and python-blosc2.

  check_h5_tools.py export H5 ROOT   every entry of ROOT is a dataset of H5 with equal values
  check_h5_tools.py import H5 ROOT   every .b2nd of ROOT opens in python-blosc2 equal to H5's

Prints one line per entry checked; exits non-zero on the first difference.
"""

import sys
from pathlib import Path

import blosc2
import h5py
import hdf5plugin  # noqa: F401  (Blosc2 filter for h5py)
import numpy as np
import numpy.lib.recfunctions as rfn

mode, h5, root = sys.argv[1], sys.argv[2], Path(sys.argv[3])
f = h5py.File(h5, "r")
checked = 0
if mode == "export":
    for p in sorted(root.rglob("*")):
        if p.is_dir() or p.name.startswith("."):
            continue
        rel = p.relative_to(root).as_posix()
        if p.suffix == ".b2nd":
            arr = blosc2.open(str(p))
            want = arr[()]
            got = f[rel[: -len(".b2nd")]][()]
            if want.dtype.kind == "U":
                got = np.char.decode(np.asarray(got), "utf-8")
            assert np.array_equal(np.asarray(got), want), rel
            for k, v in arr.schunk.vlmeta.getall().items():
                attrs = f[rel[: -len(".b2nd")]].attrs
                tuples = isinstance(v, list) and any(
                    isinstance(x, tuple) or (isinstance(x, list) and x[:1] == ["__tuple__"]) for x in v)
                if v is None or tuples:
                    # nil and lists of tuples / ragged lists have no HDF5 attribute form
                    assert k not in attrs, (rel, k)
                    continue
                a = attrs[k]
                # h5py stores bytes as variable-length ASCII and reads them back as str.
                v = v.decode() if isinstance(v, bytes) else v
                v = [x.decode() if isinstance(x, bytes) else x for x in v] if isinstance(v, list) else v
                a = [x.decode() if isinstance(x, bytes) else x for x in a.tolist()] if isinstance(a, np.ndarray) and a.dtype.kind in "OS" else a
                assert (a == v) if not isinstance(a, np.ndarray) else a.tolist() == v, (rel, k)
        elif p.suffix in (".b2frame", ".b2"):
            got = f[rel.rsplit(".", 1)[0]][()]
            assert got.tobytes() == blosc2.open(str(p))[:], rel
        else:
            assert f[rel][()].tobytes() == p.read_bytes(), rel
        checked += 1
        print("ok", rel)
else:
    for p in sorted(root.rglob("*.b2nd")):
        rel = p.relative_to(root).as_posix()[: -len(".b2nd")]
        got = blosc2.open(str(p))[()]
        want = f[rel][()]
        if got.dtype.names:
            # Compounds are packed in offset order: compared field by field, by name.
            assert set(got.dtype.names) == set(f[rel].dtype.names), (rel, got.dtype)
            packed = np.zeros(np.shape(want), dtype=got.dtype)
            rfn.assign_fields_by_name(packed, np.asarray(want))
            assert packed.tobytes() == np.ascontiguousarray(got).tobytes(), rel
        else:
            assert np.array_equal(np.asarray(got), np.asarray(want).astype(got.dtype)), rel
            assert got.dtype == f[rel].dtype or f[rel].dtype.kind == "b", (rel, got.dtype)
        checked += 1
        print("ok", rel)
assert checked > 0, "nothing checked"
