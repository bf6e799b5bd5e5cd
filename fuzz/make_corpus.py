#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Writes the seed corpus (fuzz/corpus/) from numpy.save output plus a few malformed headers."""
import io
import os
import sys

import numpy as np

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
os.makedirs(out, exist_ok=True)


def save(name, arr, version=None):
    b = io.BytesIO()
    if version:
        np.lib.format.write_array(b, arr, version=version)
    else:
        np.save(b, arr)
    with open(os.path.join(out, name), "wb") as f:
        f.write(b.getvalue())


save("f4-2d", np.arange(6, dtype="<f4").reshape(2, 3))
save("f4-0rows", np.zeros((0, 3), dtype="<f4"))
save("f8-1d", np.arange(4, dtype="<f8"))
save("i4-2d", np.arange(6, dtype="<i4").reshape(3, 2))
save("i8-1d", np.arange(3, dtype="<i8"))
save("f4-v2", np.arange(3, dtype="<f4"), (2, 0))
save("f8-v3", np.arange(2, dtype="<f8").reshape(1, 2), (3, 0))
save("fortran", np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3)))
save("big-endian", np.arange(3, dtype=">f4"))
save("3d", np.zeros((1, 1, 2), dtype="<f4"))
save("structured", np.zeros(1, dtype=[("x", "<f4")]))
with open(os.path.join(out, "bad-dict"), "wb") as f:
    f.write(b"\x93NUMPY\x01\x00\x10\x00{'descr': ('<f"+ b"\n")
