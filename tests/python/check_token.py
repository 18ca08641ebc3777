"""python-blosc2's C2Array against a subscriber with auth_tokens: with
auth_token="c2subauth=TOKEN" it reads; without, the open fails with 401.

usage: check_token.py URLBASE PATH TOKEN"""
import sys

import blosc2
import httpx
import numpy as np

urlbase, path, token = sys.argv[1:4]
c2 = blosc2.C2Array(path, urlbase=urlbase, auth_token=f"c2subauth={token}")
assert np.array_equal(c2[3:5, 1:4], np.arange(200, dtype="u2").reshape(10, 20)[3:5, 1:4])
print("ok with token")
try:
    blosc2.C2Array(path, urlbase=urlbase)
    raise AssertionError("opened without a token")
except httpx.HTTPStatusError as e:
    assert e.response.status_code == 401, e.response.status_code
print("ok 401 without")
