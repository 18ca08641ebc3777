"""Modifies FILE (written by write_hdf5.py) in place with h5py: one item of `ints/i4`, and
nothing else, as a user updating one dataset of a shared file would."""

import sys

import h5py

with h5py.File(sys.argv[1], "r+") as f:
    f["ints/i4"][0, 0] = 12345
