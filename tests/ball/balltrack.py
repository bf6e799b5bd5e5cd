# SPDX-License-Identifier: LGPL-2.1-or-later
"""A ball tracker in Python (NumPy + OpenCV) written from the README's "Ball tracking" section
only: reads ballsrc's frame mark and finds the ball's centre. Used by the tests to prove that the
documented encoding is enough for a tracker in another language, and usable as the detection half
of an aiortc tracker."""
import numpy as np

CELL = 16
WORD_BITS = 40


def crc16_ccitt_false(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def mark_layout(width: int):
    """(cells_per_row, rows, copies, band_height) for a frame width."""
    per_row = width // CELL
    if per_row == 0:
        return 0, 0, 0, 0
    rows = -(-2 * WORD_BITS // per_row)
    return per_row, rows, rows * per_row // WORD_BITS, rows * CELL


def _word_frame(bits):
    word = 0
    for b in bits:
        word = (word << 1) | int(b)
    frame, crc = word >> 16, word & 0xFFFF
    return frame if crc16_ccitt_false(frame.to_bytes(3, "big")) == crc else None


def decode_mark(luma: np.ndarray):
    """Frame number from a luma image (H x W, uint8), or None."""
    h, w = luma.shape
    per_row, rows, copies, band = mark_layout(w)
    if copies == 0 or band > h:
        return None
    cells = luma[:band, :per_row * CELL].astype(np.float64)
    cells = cells.reshape(rows, CELL, per_row, CELL)[:, 4:12, :, 4:12].mean(axis=(1, 3)).reshape(-1)
    votes = {}
    for c in range(copies):
        means = cells[c * WORD_BITS:(c + 1) * WORD_BITS]
        if np.all((means < 100) | (means > 156)):
            f = _word_frame(means > 128)
            if f is not None:
                votes[f] = votes.get(f, 0) + 1
    if votes:
        best = max(votes, key=votes.get)
        return best if votes[best] * 2 > sum(votes.values()) else None
    soft = (cells[:copies * WORD_BITS].reshape(copies, WORD_BITS) - 128.0).sum(axis=0)
    if copies < 2 or np.any(np.abs(soft) < 20 * copies):
        return None
    return _word_frame(soft > 0)


def detect_ball(bgr: np.ndarray, band: int):
    """Centre (x, y) of the one ball below the mark band, or None: coarse search on every 4th
    pixel, then in the ball's box each pixel's fraction of ball colour and the weighted
    centroid."""
    top = band + 2
    img = bgr[top:]
    small = img[::4, ::4].astype(np.int16)
    bg = np.median(small.reshape(-1, 3), axis=0)
    diff = np.abs(small - bg).max(axis=2)
    m = diff.max()
    if m < 32:
        return None
    ys, xs = np.nonzero(diff > m / 2)
    y0, y1 = max(0, ys.min() * 4 - 8), min(img.shape[0], ys.max() * 4 + 12)
    x0, x1 = max(0, xs.min() * 4 - 8), min(img.shape[1], xs.max() * 4 + 12)
    roi = img[y0:y1, x0:x1].astype(np.float64)
    ball = roi[np.abs(roi - bg).max(axis=2) >= 0.75 * m].mean(axis=0)
    d = ball - bg
    a = np.clip((((roi - bg) @ d) / (d @ d) - 0.1) / 0.8, 0.0, 1.0)
    ry, rx = np.nonzero(a > 0)
    w = a[ry, rx]
    return float((w * rx).sum() / w.sum()) + x0, float((w * ry).sum() / w.sum()) + y0 + top
