"""Writes DIR/filters.h5: a dataset whose filter (hdf5plugin's Bitshuffle, 32008) this
process's libhdf5 has but cat2's does not, beside a plain one."""

import sys
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
with h5py.File(out / "filters.h5", "w") as f:
    f.create_dataset("plain", data=np.arange(1000, dtype="i4"), chunks=(100,))
    f.create_dataset("bitshuffled", data=np.arange(1000, dtype="i4"), chunks=(100,),
                     **hdf5plugin.Bitshuffle())
