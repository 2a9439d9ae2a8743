"""A braille-dot canvas: 2x4 dots per character cell, for plots in a terminal.

Pure (no Textual): the console's sky plot and time plots draw on it and render it to
Rich Text. Coordinates are dots, (0, 0) at the top left; a cell's dots map to the
Unicode braille block U+2800 + bits.
"""

from __future__ import annotations

import math

from rich.text import Text

# dot (column, row) within a cell -> its bit in the braille pattern
_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))


class Canvas:
    """`width` x `height` character cells, i.e. 2*width x 4*height dots."""

    def __init__(self, width: int, height: int) -> None:
        self.width = max(1, width)
        self.height = max(1, height)
        self._cells = [[0] * self.width for _ in range(self.height)]
        self._styles: list[list[str]] = [[""] * self.width for _ in range(self.height)]
        self._text: dict[tuple[int, int], tuple[str, str]] = {}

    @property
    def dots_x(self) -> int:
        return 2 * self.width

    @property
    def dots_y(self) -> int:
        return 4 * self.height

    def set(self, x: float, y: float, style: str = "") -> None:
        """Light the dot at (x, y) (rounded; outside the canvas is ignored)."""
        xi, yi = round(x), round(y)
        if not (0 <= xi < self.dots_x and 0 <= yi < self.dots_y):
            return
        row, col = yi // 4, xi // 2
        self._cells[row][col] |= _BITS[yi % 4][xi % 2]
        if style:
            self._styles[row][col] = style

    def line(self, x0: float, y0: float, x1: float, y1: float, style: str = "") -> None:
        """A straight line of dots from (x0, y0) to (x1, y1)."""
        steps = max(1, math.ceil(max(abs(x1 - x0), abs(y1 - y0))))
        for i in range(steps + 1):
            f = i / steps
            self.set(x0 + (x1 - x0) * f, y0 + (y1 - y0) * f, style)

    def text(self, col: int, row: int, label: str, style: str = "") -> None:
        """Write `label` over the cells from (col, row) (cell coordinates)."""
        for i, ch in enumerate(label):
            if 0 <= col + i < self.width and 0 <= row < self.height:
                self._text[(col + i, row)] = (ch, style)

    def lines(self) -> list[str]:
        """The canvas as plain strings (labels included), one per row."""
        out = []
        for r in range(self.height):
            chars = []
            for c in range(self.width):
                label = self._text.get((c, r))
                chars.append(label[0] if label else chr(0x2800 + self._cells[r][c]))
            out.append("".join(chars))
        return out

    def render(self, default_style: str = "") -> Text:
        """The canvas as Rich Text with each cell's style."""
        text = Text()
        for r in range(self.height):
            for c in range(self.width):
                label = self._text.get((c, r))
                if label:
                    text.append(label[0], label[1] or default_style)
                else:
                    text.append(
                        chr(0x2800 + self._cells[r][c]), self._styles[r][c] or default_style
                    )
            if r < self.height - 1:
                text.append("\n")
        return text
