#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""NumPy interop of npypack/npyunpack, both ways, through gst-launch-1.0.

  npy_interop.py pack       pointsrc ! npypack files load in numpy, byte-identical to numpy.save
  npy_interop.py unpack     numpy.save files (every accepted dtype/shape/version) come out right
  npy_interop.py malformed  each malformed case warns with its reason; the pipeline reaches EOS

Needs /usr/bin/python3 with numpy, gst-launch-1.0, and GST_PLUGIN_PATH pointing at the build.
"""
import io
import os
import subprocess
import sys
import tempfile

import numpy as np

GST_LAUNCH = os.environ.get("GST_LAUNCH", "gst-launch-1.0")


def launch(description, timeout=120):
    """Runs a pipeline; returns its combined output. Fails unless it reached EOS and exited 0."""
    cmd = [GST_LAUNCH, "-e"] + description.split()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                       text=True, errors="replace")
    out = p.stdout
    if p.returncode != 0 or "Got EOS from element" not in out:
        sys.exit("pipeline failed (exit %d): %s\n%s" % (p.returncode, " ".join(cmd), out))
    return out


def saved_bytes(arr, version=None):
    b = io.BytesIO()
    if version is None:
        np.save(b, arr)
    else:
        np.lib.format.write_array(b, arr, version=version)
    return b.getvalue()


def counter(i, points):
    """pointsrc pattern=counter: float(((i*points + r)*3 + c) mod 2^24)."""
    n = (np.uint64(i) * np.uint64(points) * np.uint64(3)) + np.arange(points * 3, dtype=np.uint64)
    return (n % np.uint64(1 << 24)).astype(np.float32).reshape(points, 3)


def test_pack(tmp):
    checked = 0
    for points, buffers in [(0, 2), (1, 3), (5, 4), (1000, 3), (1_000_000, 2), (6_000_000, 1)]:
        pattern = os.path.join(tmp, "pack-%d-%%05d.npy" % points)
        launch("pointsrc rate=0 pattern=counter points=%d num-buffers=%d ! npypack ! "
               "multifilesink location=%s" % (points, buffers, pattern))
        for i in range(buffers):
            path = pattern % i
            arr = np.load(path)
            expect = counter(i, points)
            assert arr.dtype == np.float32 and arr.shape == (points, 3), (path, arr.dtype, arr.shape)
            assert np.array_equal(arr, expect), path
            with open(path, "rb") as f:
                data = f.read()
            assert data == saved_bytes(expect), "%s differs from numpy.save's bytes" % path
            checked += 1
        if not os.path.exists(pattern % (buffers - 1)) or os.path.exists(pattern % buffers):
            sys.exit("expected exactly %d files for points=%d" % (buffers, points))
    # random pattern: same seed, same arrays; loadable as well
    for run in range(2):
        launch("pointsrc rate=0 pattern=sphere seed=9 points=64 num-buffers=2 ! npypack ! "
               "multifilesink location=%s" % os.path.join(tmp, "sphere%d-%%05d.npy" % run))
    for i in range(2):
        a = np.load(os.path.join(tmp, "sphere0-%05d.npy" % i))
        b = np.load(os.path.join(tmp, "sphere1-%05d.npy" % i))
        assert np.array_equal(a, b)
        assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    print("pack: %d buffers load in numpy, identical to numpy.save" % checked)


def unpack_cases():
    rng = np.random.default_rng(1)
    cases = []
    for dtype in ["<f4", "<f8", "<i4", "<i8"]:
        for shape in [(0, 3), (1, 1), (7, 5), (3,), (1,), (200, 3)]:
            if np.dtype(dtype).kind == "f":
                arr = rng.standard_normal(shape).astype(dtype)
            else:
                arr = rng.integers(-1_000_000, 1_000_000, size=shape).astype(dtype)
            cases.append((arr, None))
    cases.append((rng.standard_normal((1_000_000, 3)).astype("<f4"), None))   # 12 MB
    cases.append((rng.standard_normal((500_000, 3)).astype("<f8"), None))     # 12 MB, converted
    cases.append((np.arange(12, dtype="<f4").reshape(4, 3), (2, 0)))
    cases.append((np.arange(12, dtype="<f8").reshape(3, 4), (3, 0)))
    cases.append((np.arange(6, dtype="<i8"), (2, 0)))
    return cases


def expected_points(arr):
    return arr.astype(np.float32).reshape(-1 if arr.ndim == 2 else 1, arr.shape[-1])


def test_unpack(tmp):
    cases = unpack_cases()
    for k, (arr, version) in enumerate(cases):
        with open(os.path.join(tmp, "in-%05d.npy" % k), "wb") as f:
            f.write(saved_bytes(arr, version))
    launch("multifilesrc location=%s caps=application/x-npy ! npyunpack ! npypack ! "
           "multifilesink location=%s" % (os.path.join(tmp, "in-%05d.npy"), os.path.join(tmp, "out-%05d.npy")))
    for k, (arr, version) in enumerate(cases):
        out = np.load(os.path.join(tmp, "out-%05d.npy" % k))
        expect = expected_points(arr)
        assert out.dtype == np.float32 and out.shape == expect.shape, (k, arr.dtype, arr.shape, out.shape)
        assert np.array_equal(out, expect), (k, arr.dtype, arr.shape)
    assert not os.path.exists(os.path.join(tmp, "out-%05d.npy" % len(cases)))
    print("unpack: %d numpy.save files (f4/f8/i4/i8, 1-D/2-D, 0 rows, 12 MB, v1/v2/v3) read back"
          % len(cases))


def header_with(dict_text, payload, major=1):
    pre = 10 if major == 1 else 12
    h = dict_text.encode()
    h += b" " * (-(pre + len(h) + 1) % 64) + b"\n"
    size = len(h).to_bytes(2 if major == 1 else 4, "little")
    return b"\x93NUMPY" + bytes([major, 0]) + size + h + payload


def malformed_cases():
    good = saved_bytes(np.arange(6, dtype="<f4").reshape(2, 3))
    payload = np.arange(6, dtype="<f4").tobytes()
    d = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }"
    fortran = saved_bytes(np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3)))
    big = saved_bytes(np.arange(6, dtype=">f4").reshape(2, 3))
    return [
        ("bad magic", b"PK\x03\x04" + good[4:]),
        ("unknown format version", good[:6] + b"\x07\x00" + good[8:]),
        ("truncated header", good[:9]),
        ("truncated header", b""),
        ("oversized header", b"\x93NUMPY\x02\x00" + (1 << 20).to_bytes(4, "little") + b" " * 100),
        ("header length past end of buffer", good[:8] + (4000).to_bytes(2, "little") + good[10:60]),
        ("unparsable header dict", header_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3", payload)),
        ("unparsable header dict", header_with("import os", payload)),
        ("fortran_order is True", fortran),
        ("big-endian dtype", big),
        ("unsupported dtype", saved_bytes(np.arange(6, dtype="<u2").reshape(2, 3))),
        ("unsupported dtype", saved_bytes(np.zeros(2, dtype=[("x", "<f4"), ("y", "<f4")]))),
        ("unsupported shape", saved_bytes(np.zeros((2, 1, 3), dtype="<f4"))),
        ("shape does not match payload", header_with(d % ("<f4", "False", "(3, 3)"), payload)),
        ("shape does not match payload", good + b"\x00" * 4),
        ("shape product overflows", header_with(d % ("<f8", "False", "(4611686018427387904, 4)"), payload)),
    ], good


def test_malformed(tmp):
    cases, good = malformed_cases()
    files = []
    for reason, data in cases:
        files.append(data)
        files.append(good)  # each bad buffer is followed by a good one, which must come through
    for k, data in enumerate(files):
        with open(os.path.join(tmp, "m-%05d.npy" % k), "wb") as f:
            f.write(data)
    out = launch("multifilesrc location=%s caps=application/x-npy ! npyunpack ! npypack ! "
                 "multifilesink location=%s" % (os.path.join(tmp, "m-%05d.npy"),
                                                os.path.join(tmp, "mo-%05d.npy")))
    warnings = [line.split("Dropped a malformed .npy buffer: ", 1)[1].strip()
                for line in out.splitlines() if "Dropped a malformed .npy buffer: " in line]
    expected = [reason for reason, _ in cases]
    if warnings != expected:
        sys.exit("warnings differ:\n got      %s\n expected %s\n%s" % (warnings, expected, out))
    expect = np.arange(6, dtype=np.float32).reshape(2, 3)
    for k in range(len(cases)):
        assert np.array_equal(np.load(os.path.join(tmp, "mo-%05d.npy" % k)), expect)
    assert not os.path.exists(os.path.join(tmp, "mo-%05d.npy" % len(cases)))
    print("malformed: %d cases each warned with its reason; %d good buffers passed; EOS reached"
          % (len(cases), len(cases)))


def main():
    tests = {"pack": test_pack, "unpack": test_unpack, "malformed": test_malformed}
    which = sys.argv[1:] or list(tests)
    for name in which:
        with tempfile.TemporaryDirectory(prefix="pointcast-npy-") as tmp:
            tests[name](tmp)


if __name__ == "__main__":
    main()
