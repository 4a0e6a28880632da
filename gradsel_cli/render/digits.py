"""Digit pictures (the paper's Figure 2): MNIST images as half blocks in grey levels, or ASCII shades without
colour, with each method's prediction below.
"""

import math

import numpy as np
from rich.measure import Measurement
from rich.style import Style
from rich.text import Text

from ..text import strip_control
from .layout import wrap_title

HALF_BLOCK = "▀"  # upper half block: its foreground is the upper pixel, its background the lower one

SHADES = " .:-=+*#%@"  # without colour: one character per pair of pixels, darkest to brightest (ASCII)


def _grey(value) -> str:
    v = int(value)
    return f"rgb({v},{v},{v})"


def digit(image) -> Text:
    """An image (h, w) of uint8 grey levels as h/2 lines of w half blocks: each character shows the
    pixel of an even row as its foreground colour and the pixel below it as its background colour
    (an odd last row is paired with black, the MNIST background)."""
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"a digit image must be 2-D, got shape {image.shape}")
    if image.shape[0] % 2:
        image = np.vstack([image, np.zeros((1, image.shape[1]), dtype=image.dtype)])
    text = Text(no_wrap=True, overflow="crop")
    for r in range(0, image.shape[0], 2):
        if r:
            text.append("\n")
        for top, bottom in zip(image[r], image[r + 1]):
            text.append(HALF_BLOCK, Style(color=_grey(top), bgcolor=_grey(bottom)))
    return text


def shaded_digit(image) -> Text:
    """The same picture as `digit` without colour: each character is the shade (SHADES) of the mean of
    the pixel of an even row and the one below it."""
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"a digit image must be 2-D, got shape {image.shape}")
    if image.shape[0] % 2:
        image = np.vstack([image, np.zeros((1, image.shape[1]), dtype=image.dtype)])
    pairs = (image[0::2].astype(np.float64) + image[1::2]) / 2  # (h/2, w) grey levels 0-255
    levels = np.minimum((pairs * len(SHADES) / 256).astype(int), len(SHADES) - 1)
    return Text("\n".join("".join(SHADES[v] for v in row) for row in levels), no_wrap=True, overflow="crop")


class DigitPicture:
    """A digit as half blocks in grey levels on a console with colour, else in ASCII shades (a file, a pipe,
    NO_COLOR): half blocks without their colours would be a solid rectangle."""

    def __init__(self, image):
        self.image = np.asarray(image)
        self.text = digit(self.image)  # checks the image

    def _shown(self, console) -> Text:
        return self.text if console.color_system and not console.no_color else shaded_digit(self.image)

    def __rich_console__(self, console, options):
        yield self._shown(console)

    def __rich_measure__(self, console, options):
        return Measurement.get(console, options, self._shown(console))


def digit_caption(index: int, label: int, predictions: dict[str, int], width: int = 28) -> Text:
    """'#index true L' and one line per method with its prediction: green when right, red when wrong;
    when the methods disagree the first line says so and the predictions are bold."""
    differ = len(set(predictions.values())) > 1
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"#{index} true {label}", style="bold")
    if differ:
        text.append("  differ", style="bold black on yellow")
    for m, p in predictions.items():
        colour = "green" if p == label else "red"
        text.append(
            f"\n{strip_control(m)[: width - 3]:<{width - 2}}{p if p >= 0 else '-'}",
            style=f"{colour} bold" if differ else colour,
        )
    return text


def digits_grid(images, labels, indices, predictions: dict, title: str):
    """The chosen test images side by side as half-block pictures with their captions."""
    from rich.columns import Columns
    from rich.console import Group

    cells = []
    for i in indices:
        side = math.isqrt(np.asarray(images[i]).size)
        cells.append(
            Group(
                DigitPicture(np.asarray(images[i]).reshape(side, side)),
                digit_caption(int(i), int(labels[i]), {m: int(p[i]) for m, p in predictions.items()}, width=side),
            )
        )
    return Group(
        Text(wrap_title(*strip_control(title).split(", "), first_sep=", "), style="bold"),
        Columns(cells, padding=(1, 2)),
    )
