"""A labelled grid of images (a sweep, a comparison) with the label under each cell."""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size only
        return ImageFont.load_default()


def labelled_grid(images: np.ndarray, labels: list[str], columns: int = 0, font_size: int = 0,
                  padding: int = 4) -> np.ndarray:
    """``images`` [N, H, W, 3] float in 0..1 -> one [H', W', 3] grid with ``labels`` under the cells
    (a label's lines, e.g. a preset name over its AUs, stay lines)."""
    n, h, w = images.shape[:3]
    if len(labels) != n:
        raise ValueError(f"{n} images but {len(labels)} labels")
    columns = min(columns or 6, n)  # never wider than the images
    rows = math.ceil(n / columns)
    font_size = font_size or max(10, min(32, w // 14))
    font = _font(font_size)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    lines = [[line for part in label.split("\n") for line in _wrap(probe, part, font, w)] for label in labels]
    line_h = font_size + 2
    label_h = max(len(ls) for ls in lines) * line_h + 2 * padding
    cell_h = h + label_h
    grid = Image.new("RGB", (columns * w + (columns + 1) * padding, rows * cell_h + (rows + 1) * padding), "white")
    draw = ImageDraw.Draw(grid)
    for i in range(n):
        r, c = divmod(i, columns)
        x = padding + c * (w + padding)
        y = padding + r * (cell_h + padding)
        cell = np.clip(images[i][..., :3] * 255.0 + 0.5, 0, 255).astype(np.uint8)
        grid.paste(Image.fromarray(cell), (x, y))
        for j, line in enumerate(lines[i]):
            tw = draw.textlength(line, font=font)
            draw.text((x + (w - tw) / 2, y + h + padding + j * line_h), line, fill="black", font=font)
    return np.asarray(grid, dtype=np.float32) / 255.0


def _wrap(draw, text: str, font, width: int) -> list[str]:
    """Break at ' + ' (AU terms) or spaces so every line fits the cell width."""
    words = text.replace(" + ", " +\u00a0").split(" ")
    lines, line = [], ""
    for word in words:
        candidate = f"{line} {word}".strip()
        if line and draw.textlength(candidate.replace("\u00a0", " "), font=font) > width:
            lines.append(line.replace("\u00a0", " "))
            line = word
        else:
            line = candidate
    lines.append(line.replace("\u00a0", " "))
    return lines
