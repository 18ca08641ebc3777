"""Writes DIR/<name>.b2nd arrays and DIR/expected.json {name: str(numpy array)}: what
`cat2cli show` must print for each (NumPy's text form, as Caterva2's cat2cli prints)."""
import json
import sys
from pathlib import Path

import blosc2
import numpy as np

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
cases = {
    "ints": np.array([[-5, 12, 300], [7, -1000, 0]], dtype="i4"),
    "u8": np.arange(40, dtype="u1").reshape(4, 10),
    "bools": np.array([True, False, True]),
    "f4": np.array([0.1, 0.25, np.nan, np.inf, -2.5], dtype="f4"),
    "f8_exp": np.array([1e-5, 1.0, 12345.678, 1e10]),
    "f8_neg": np.array([[-1.5, 2.0], [3.25, -0.125]]),
    "f8_long": np.linspace(0, 1, 7) / 3,
    "f2": np.array([1.0, -2.5, 65504.0], dtype="f2"),
    "summary_1d": np.arange(2000, dtype="i8"),
    "summary_2d": np.arange(2500, dtype="f4").reshape(50, 50) / 7,
    "c8": (np.arange(6, dtype="f4") - 2.5).astype("c8") * (1 - 0.5j),
    "bytes": np.array([b"ab", b"it's", b'q"', b"\x01\xff"], dtype="S4"),
    "unicode": np.array(["h\u00e9", "x", "it's"], dtype="U4"),
    "record": np.array([(1, b"xy", True), (-20, b"abc", False)],
                       dtype=[("a", "<i4"), ("b", "S3"), ("c", "?")]),
    "scalar_f8": np.array(123.456),
    "scalar_i8": np.array(-7, dtype="i8"),
    "scalar_c16": np.array(1.5 - 2j),
    "wide_f8": np.arange(30.0) * 1001.5,
}
expected = {}
for name, a in cases.items():
    # Strings unshuffled: python-blosc2 4 shuffles them by characters, which cat2 refuses.
    kw = {"cparams": blosc2.CParams(filters=[blosc2.Filter.NOFILTER], filters_meta=[0])} \
        if a.dtype.kind == "U" else {}
    blosc2.asarray(np.ascontiguousarray(a), urlpath=str(out / f"{name}.b2nd"), mode="w", **kw)
    # cat2 and Caterva2 serve a 0-d dataset's whole fetch as one item (checked against
    # Caterva2 0.2.0's own cat2cli in scripts/compat).
    expected[name] = str(np.atleast_1d(a))
(out / "expected.json").write_text(json.dumps(expected, indent=1))
