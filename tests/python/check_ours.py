"""Checks, with python-blosc2, files and buffers that cat2 wrote.

usage: check_ours.py DIR

DIR/manifest.json lists entries {"file", "how", "expect_raw", "dtype", "shape"}:
  how = "open"   -> blosc2.open(file)[()] (arrays) or [:] (super-chunks)
        "cframe" -> ndarray_from_cframe(bytes)
        "schunk_cframe" -> schunk_from_cframe(bytes)[:]
        "chunk"  -> blosc2.decompress2(bytes)
Each result is compared with the raw bytes in expect_raw (and dtype/shape for arrays).
Exits 1 on the first mismatch.
"""
import json
import sys
from pathlib import Path

import blosc2
import numpy as np

d = Path(sys.argv[1])
manifest = json.loads((d / "manifest.json").read_text())
for e in manifest:
    f = d / e["file"]
    want = (d / e["expect_raw"]).read_bytes()
    how = e["how"]
    if how == "open":
        o = blosc2.open(str(f))
        if isinstance(o, blosc2.NDArray):
            got = o[()]
        else:
            got = o[:]
    elif how == "cframe":
        got = blosc2.ndarray_from_cframe(f.read_bytes())[()]
    elif how == "schunk_cframe":
        got = blosc2.schunk_from_cframe(f.read_bytes())[:]
    elif how == "chunk":
        got = blosc2.decompress2(f.read_bytes())
    else:
        raise SystemExit(f"unknown how {how}")
    if isinstance(got, np.ndarray):
        if "dtype" in e and str(got.dtype) != e["dtype"]:
            raise SystemExit(f"{e['file']}: dtype {got.dtype} != {e['dtype']}")
        if "shape" in e and list(got.shape) != e["shape"]:
            raise SystemExit(f"{e['file']}: shape {got.shape} != {e['shape']}")
        got = np.ascontiguousarray(got).tobytes()
    if bytes(got) != want:
        raise SystemExit(f"{e['file']} ({how}): data differs ({len(got)} vs {len(want)} bytes)")
    if "vlmeta" in e:
        o = blosc2.open(str(f))
        sc = o.schunk if isinstance(o, blosc2.NDArray) else o
        vl = {k: v for k, v in sc.vlmeta.getall().items()}
        if vl != e["vlmeta"]:
            raise SystemExit(f"{e['file']}: vlmeta {vl} != {e['vlmeta']}")
print("ok", len(manifest))
