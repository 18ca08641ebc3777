"""python-blosc2's C2Array against a cat2 subscriber (issue: today's clients).

usage: check_c2array.py write DIR          writes DIR/a.b2nd, DIR/b.b2nd (then publish DIR)
       check_c2array.py check URLBASE ROOT DIR
Each check prints one line; any mismatch raises (a non-zero exit fails the Rust test).
"""
import sys
from pathlib import Path

import blosc2
import blosc2.proxy_source
import httpx
import numpy as np


def write(d):
    d.mkdir(parents=True, exist_ok=True)
    a = np.arange(200, dtype="i8").reshape(10, 20)
    blosc2.asarray(a, urlpath=str(d / "a.b2nd"), mode="w", chunks=(4, 8), blocks=(2, 4))
    b = np.linspace(0, 10, 3000, dtype="f8")
    blosc2.asarray(b, urlpath=str(d / "b.b2nd"), mode="w", chunks=(500,), blocks=(100,))
    u = np.array(["h\u00e9", "x", "it's"], dtype="U4")
    # python-blosc2 4 shuffles strings by 4-byte characters, which cat2's c-blosc2 2.21
    # cannot undo: refused (never served wrong). Without shuffle, served.
    blosc2.asarray(u, urlpath=str(d / "u.b2nd"), mode="w")
    big = np.random.default_rng(3).random((1000, 1000)).astype("f4")
    blosc2.asarray(big, urlpath=str(d / "big.b2nd"), mode="w", chunks=(250, 250), blocks=(50, 50))
    plain = blosc2.CParams(filters=[blosc2.Filter.NOFILTER], filters_meta=[0])
    blosc2.asarray(u, urlpath=str(d / "u_plain.b2nd"), mode="w", cparams=plain)


def check(urlbase, root, d):
    local = {n: blosc2.open(str(d / f"{n}.b2nd")) for n in ("a", "b")}
    a, b = local["a"][:], local["b"][:]
    c2a = blosc2.C2Array(f"{root}/a.b2nd", urlbase=urlbase)
    c2b = blosc2.C2Array(f"{root}/b.b2nd", urlbase=urlbase)

    def same(what, got, want):
        got, want = np.asarray(got), np.asarray(want)
        assert got.shape == want.shape and got.dtype == want.dtype, (what, got.shape, want.shape)
        assert np.array_equal(got, want), (what, got, want)
        print(f"ok {what}")

    same("slice", c2a[3:5, 1:4], a[3:5, 1:4])
    u = blosc2.open(str(d / "u_plain.b2nd"))[:]
    c2u = blosc2.C2Array(f"{root}/u_plain.b2nd", urlbase=urlbase)
    same("unicode", c2u[:], u)
    same("unicode slice", c2u[1:3], u[1:3])
    try:
        blosc2.C2Array(f"{root}/u.b2nd", urlbase=urlbase)
        raise AssertionError("strings shuffled by characters were served")
    except (FileNotFoundError, httpx.HTTPStatusError):
        print("ok strings shuffled by characters refused")
    same("fancy rows", c2a[[9, 0, 5, 0]], a[[9, 0, 5, 0]])
    same("int and list", c2a[2, [3, 1]], a[2, [3, 1]])
    same("range and list", c2a[1:3, [19, 0]], a[1:3, [19, 0]])
    same("negative indices", c2a[[-1, -10]], a[[-1, -10]])
    many = np.random.default_rng(1).integers(0, 3000, 2000)
    same("long list (POST)", c2b[many], b[many])
    opened = blosc2.open(blosc2.URLPath(f"{root}/a.b2nd", urlbase))
    same("blosc2.open(URLPath)", opened[4:9, ::1], a[4:9])
    assert c2a.blocksize == local["a"].blocksize, (c2a.blocksize, local["a"].blocksize)
    print("ok blocksize")
    for n in range(local["a"].schunk.nchunks):
        got = c2a.get_chunk(n)
        assert got == local["a"].schunk.get_chunk(n), f"chunk {n}"
    print("ok get_chunk, every chunk as stored")
    proxy = blosc2.Proxy(c2a)
    same("Proxy", proxy[2:9, 3:17], a[2:9, 3:17])
    # A Proxy of a larger, incompressible array (python-blosc2 may read it through HTTP
    # ranges of the cached frame, or whole chunks).
    def answers(code):
        text = httpx.get(f"{urlbase}metrics").text
        return sum(float(l.split()[-1]) for l in text.splitlines()
                   if l.startswith("cat2_sub_http_responses") and f'code="{code}"' in l)
    big = blosc2.open(str(d / "big.b2nd"))[:]
    bproxy = blosc2.Proxy(blosc2.C2Array(f"{root}/big.b2nd", urlbase=urlbase))
    same("Proxy, larger array", bproxy[100:120, 130:900], big[100:120, 130:900])
    # Blocks over byte ranges whatever the sizes (as python-blosc2's own tests force it):
    # several ranges per request, answered 206 multipart/byteranges.

    blosc2.proxy_source.BLOCK_MIN_CBYTES = 0
    before = answers("206")
    rproxy = blosc2.Proxy(blosc2.C2Array(f"{root}/big.b2nd", urlbase=urlbase))
    # A column: blocks 2, 7, 12, … of each chunk, apart in the file (several spans each).
    same("Proxy reading blocks over ranges", rproxy[10:990, 600:610], big[10:990, 600:610])
    # (header and index probes are 2 single ranges; the blocks add multipart answers)
    assert answers("206") - before > 2, "blocks were not read over ranges"
    print(f"ok {answers('206') - before:.0f} ranged answers")
    expr = blosc2.lazyexpr("x * 2 + y", operands={"x": c2a, "y": c2a})
    same("lazy expression", expr[:], a * 2 + a)
    same("lazy reduction", np.float64(blosc2.sum(c2b)), np.float64(b.sum()))

    # What cat2 does not implement is refused, naming it, never answered otherwise.
    http = httpx.Client()
    for query, name in (("field=x", "field"), ("filter=x%3E1", "filter"), ("indices=%5B%5B1%5D%2C%5B2%5D%5D", "indices")):
        r = http.get(f"{urlbase}api/fetch/{root}/a.b2nd?{query}")
        assert r.status_code == 400 and name in r.json()["detail"], (query, r.status_code, r.text)
    print("ok refusals")
    mask = a % 7 == 0
    try:
        c2a[mask]
        raise AssertionError("a 2-d mask (two index lists) was answered")
    except httpx.HTTPStatusError as e:
        assert e.response.status_code == 400
    print("ok 2-d mask refused")


if sys.argv[1] == "write":
    write(Path(sys.argv[2]))
else:
    check(sys.argv[2], sys.argv[3], Path(sys.argv[4]))
