"""A video file for Chromium's fake camera that shows a QR code, for the scanner's browser tests.

Chromium with `--use-fake-device-for-media-stream --use-file-for-fake-video-capture=<file>.y4m`
gives every page that asks for the camera this file as its video, looped. Y4M (YUV4MPEG2) is
the simplest format it reads: a text header, then per frame `FRAME\\n` and the raw planes of
4:2:0 YUV (a full-size luma plane, two quarter-size chroma planes). A QR code needs luma only;
the chroma planes are neutral grey.
"""

from __future__ import annotations

from pathlib import Path

import segno

WIDTH, HEIGHT = 640, 480
BLACK, WHITE, NEUTRAL = 16, 235, 128  # video levels (BT.601 limited range)


def qr_video(path: Path, payload: str, frames: int = 10, scale: int = 8) -> Path:
    """Write a y4m file of `frames` identical frames: the QR code of `payload` (with its quiet
    zone) in the middle of a white 640x480 picture, `scale` pixels a module."""
    matrix = [list(row) for row in segno.make_qr(payload, error="m").matrix_iter(border=4)]
    side = len(matrix) * scale
    assert side <= HEIGHT, f"{payload!r} gives a code too large for the frame"
    left, top = (WIDTH - side) // 2, (HEIGHT - side) // 2
    luma = bytearray([WHITE]) * (WIDTH * HEIGHT)
    for y in range(side):
        row = matrix[y // scale]
        offset = (top + y) * WIDTH + left
        luma[offset:offset + side] = bytes(BLACK if row[x // scale] else WHITE
                                           for x in range(side))
    chroma = bytes([NEUTRAL]) * (WIDTH // 2 * HEIGHT // 2 * 2)
    frame = b"FRAME\n" + bytes(luma) + chroma
    header = f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F10:1 Ip A1:1 C420jpeg\n".encode()
    path.write_bytes(header + frame * frames)
    return path
