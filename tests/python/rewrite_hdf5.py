"""rewrite_hdf5.py write FILE       writes FILE: "gz" (gzip chunks) and "b2" (Blosc2 chunks),
                                    both float64 200x300 in (50, 60) chunks, values = index
   rewrite_hdf5.py inplace FILE N   rewrites both datasets in place ("r+") N times with other
                                    values (+1, +2, ...), flushing after each rewrite
   rewrite_hdf5.py rename FILE      writes a new version next to FILE and renames it over FILE
   rewrite_hdf5.py corrupt FILE     overwrites the middle of the stored bytes of the chunk at
                                    (0, 60) of both datasets (chunk 1 in C order) with garbage
"""

import os
import sys

import h5py
import hdf5plugin
import numpy as np

mode, path = sys.argv[1], sys.argv[2]
base = np.arange(200 * 300, dtype="f8").reshape(200, 300)


def write(p, values):
    with h5py.File(p, "w") as f:
        f.create_dataset("gz", data=values, chunks=(50, 60), compression="gzip")
        f.create_dataset("b2", data=values, chunks=(50, 60), **hdf5plugin.Blosc2())


if mode == "write":
    write(path, base)
elif mode == "inplace":
    for i in range(1, int(sys.argv[3]) + 1):
        with h5py.File(path, "r+", locking=False) as f:
            # Half the chunks change size (all-equal values compress far better).
            new = base + i if i % 2 else np.full_like(base, float(i))
            f["gz"][...] = new
            f["b2"][...] = new
            f.flush()
elif mode == "corrupt":
    with h5py.File(path, "r") as f:
        spots = [f[name].id.get_chunk_info_by_coord((0, 60)) for name in ("gz", "b2")]
    with open(path, "r+b") as raw:
        for info in spots:
            raw.seek(info.byte_offset + info.size // 2)
            raw.write(bytes(range(7, 255, 3)))
elif mode == "rename":
    tmp = path + ".new"
    write(tmp, base * 2)
    os.replace(tmp, path)
