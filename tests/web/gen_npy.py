# SPDX-License-Identifier: LGPL-2.1-or-later
"""Writes .npy files with numpy for the npy.js unit tests, plus manifest.json describing each:
shape, descr and the values (C order, as floats/ints; NaN/inf as strings)."""
import io
import json
import math
import os
import sys

import numpy as np
from numpy.lib import format as npformat

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(7)
cases = {}


def enc(v):
    v = v.item() if hasattr(v, "item") else v
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def add(name, arr, writer=None):
    path = os.path.join(out, name + ".npy")
    if writer is None:
        np.save(path, arr)
    else:
        with open(path, "wb") as f:
            writer(f, arr)
    c = np.ascontiguousarray(arr)
    cases[name] = {"shape": list(arr.shape), "descr": arr.dtype.str,
                   "values": [enc(v) for v in c.reshape(-1)]}


add("points_f4", rng.standard_normal((100, 3)).astype("<f4"))
add("points_f8", rng.standard_normal((7, 3)))
add("ints_i4", np.arange(-6, 6, dtype="<i4").reshape(4, 3))
add("ints_i8", np.array([[-(2**40), 0, 2**40], [1, -1, 3]], dtype="<i8"))
add("vector_f4", np.linspace(0, 1, 11, dtype="<f4"))
add("empty_f4", np.zeros((0, 3), dtype="<f4"))
add("scalar_f8", np.array(3.25))
add("bool", np.array([True, False, True]))
add("u1", np.arange(250, 256, dtype=np.uint8))
add("i1", np.arange(-3, 3, dtype=np.int8))
add("i2", np.array([[-300, 300]], dtype="<i2"))
add("u2", np.array([65535, 1], dtype="<u2"))
add("u4", np.array([4000000000, 7], dtype="<u4"))
add("u8", np.array([2**63 + 5, 9], dtype="<u8"))
add("f2", np.array([0.5, -2.0, 65504.0, 1e-7], dtype="<f2"))
add("big_f4", np.arange(6, dtype=">f4").reshape(2, 3))
add("big_i8", np.array([-5, 2**35], dtype=">i8"))
add("big_f8", np.array([[1.5, -2.25]], dtype=">f8"))
add("fortran_f4", np.asfortranarray(np.arange(12, dtype="<f4").reshape(3, 4)))
add("special_f8", np.array([np.nan, np.inf, -np.inf, -0.0]))
add("v2_f4", rng.standard_normal((5, 3)).astype("<f4"),
    lambda f, a: npformat.write_array(f, a, version=(2, 0)))
add("v3_f4", np.arange(9, dtype="<f4").reshape(3, 3),
    lambda f, a: npformat.write_array(f, a, version=(3, 0)))
# A large (N, 3) cloud, as a points sender of 200k rows would send.
add("large_f4", rng.standard_normal((200000, 3)).astype("<f4"))

# Files that must be refused, with a fragment of the expected error message.
bad = {}


def add_bad(name, data, reason):
    with open(os.path.join(out, name + ".npy"), "wb") as f:
        f.write(data)
    bad[name] = reason


buf = io.BytesIO()
np.save(buf, np.arange(12, dtype="<f4").reshape(3, 4))
good = buf.getvalue()
add_bad("bad_magic", b"\x93NUMPX" + good[6:], "bad magic")
add_bad("bad_version", good[:6] + b"\x09\x00" + good[8:], "version 9.0")
add_bad("truncated", good[:-5], "truncated")
add_bad("trailing", good + b"\x00" * 4, "unexpected bytes")
add_bad("too_short", good[:7], "too short")
add_bad("header_past_end", good[:8] + b"\xff\x7f" + good[10:40], "runs past the end")
buf = io.BytesIO()
np.save(buf, np.zeros((2, 2, 2), dtype="<f4"))
add_bad("three_d", buf.getvalue(), "3-D arrays are not supported")
buf = io.BytesIO()
np.save(buf, np.array([1, "a", None], dtype=object), allow_pickle=True)
add_bad("object", buf.getvalue(), "object arrays")
buf = io.BytesIO()
np.save(buf, np.zeros(2, dtype=[("x", "<f4"), ("y", "<f4")]))
add_bad("structured", buf.getvalue(), "structured arrays")
buf = io.BytesIO()
np.save(buf, np.array(["ab", "cd"]))
add_bad("unicode", buf.getvalue(), "unsupported dtype '<U2'")
buf = io.BytesIO()
np.save(buf, np.array([1 + 2j], dtype="<c8"))
add_bad("complex", buf.getvalue(), "unsupported dtype '<c8'")
hdr = good[10:10 + int.from_bytes(good[8:10], "little")].replace(b"'shape'", b"'shapf'")
add_bad("missing_shape", good[:10] + hdr + good[10 + len(hdr):], "missing 'shape'")
hdr = good[10:10 + int.from_bytes(good[8:10], "little")].replace(b"{", b"[", 1)
add_bad("garbled_header", good[:10] + hdr + good[10 + len(hdr):], "bad header")

with open(os.path.join(out, "manifest.json"), "w") as f:
    json.dump({"good": cases, "bad": bad}, f)
