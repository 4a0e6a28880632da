"""How a Rich table fits the width: titles broken between their parts, a layout chosen among several (Fit),
a table as one block per row (stacked), footer lines broken between words.

Every table fits 80 columns: numbers never wrap, titles break between their parts.
"""

import textwrap

from rich import box
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from .console import PIPE_WIDTH

TITLE_WIDTH = 76  # a title longer than this breaks between its parts
COMPACT = dict(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 0, 0, 1))  # wide tables at 80 columns


def wrap_title(*parts: str, first_sep: str = " — ") -> str:
    """Title parts joined by ', ' (the first by first_sep) into lines of at most TITLE_WIDTH
    characters, broken only between parts."""
    lines = [parts[0]]
    for i, part in enumerate(parts[1:]):
        sep = first_sep if i == 0 else ", "
        if len(lines[-1]) + len(sep) + len(part) <= TITLE_WIDTH:
            lines[-1] += sep + part
        else:
            lines[-1] += sep.rstrip()
            lines.append(part)
    return "\n".join(lines)


def titled_table(title: str, **kwargs) -> Table:
    """A left-titled table at least as wide as the longest line of its title, up to PIPE_WIDTH (so the title
    does not wrap, and a longer one does not make the table too wide for the layouts of Fit)."""
    plain = Text.from_markup(title).plain
    return Table(
        title=title,
        title_justify="left",
        min_width=min(PIPE_WIDTH, max(len(line) for line in plain.splitlines())),
        **kwargs,
    )


def number_column(table: Table, header: str, **kwargs) -> None:
    """A right-justified column of numbers, never wrapped (nor is its header: break a long one with \\n)."""
    table.add_column(header, justify="right", no_wrap=True, **kwargs)


class Fit:
    """The first of several layouts of the same content that fits the width (the last one otherwise)."""

    def __init__(self, *layouts):
        self.layouts = layouts

    def _pick(self, console, options):
        unbounded = options.update_width(10_000)
        for layout in self.layouts:
            if Measurement.get(console, unbounded, layout).maximum <= options.max_width:
                return layout
        return self.layouts[-1]

    def __rich_console__(self, console, options):
        yield self._pick(console, options)

    def __rich_measure__(self, console, options):
        return Measurement.get(console, options, self._pick(console, options))


def stacked_table(t: Table, label) -> Table:
    """Table `t` as one block per row, for a width its columns do not fit: `label(cells)` (the row's cells,
    markup strings) names the row in bold, then each other column's "header value" on a line of its own."""
    s = Table(
        title=t.title,
        title_justify="left",
        caption=t.caption,
        caption_justify="left",
        show_header=False,
        box=None,
        padding=(0, 1, 0, 0),
        pad_edge=False,
        min_width=t.min_width,
    )  # the title unwrapped if it can
    s.add_column(no_wrap=True)
    s.add_column(overflow="fold")
    for i in range(t.row_count):
        cells = [c._cells[i] for c in t.columns]
        name, keys = label(cells)
        lines = [
            f"{str(c.header).replace(chr(10), ' ')} {str(cell).replace(chr(10), ' ')}"
            for j, (c, cell) in enumerate(zip(t.columns, cells))
            if j not in keys and str(cell).strip()
        ]
        s.add_row(f"[bold]{name}[/]", "\n".join(lines), end_section=True)
    return s


class Lines:
    """Footer lines; a long one breaks between words (at TITLE_WIDTH, or the narrower width it is printed at),
    its continuation indented."""

    def __init__(self, lines: list[str]):
        self.lines = lines

    def text(self, width: int = TITLE_WIDTH) -> Text:
        out = []
        for line in self.lines:
            lead = line[: len(line) - len(line.lstrip())]
            glued = line.replace(" = ", "\xa0=\xa0")  # "k = 2" stays on one line
            out += [
                part.replace("\xa0", " ")
                for part in textwrap.wrap(
                    glued,
                    max(width, len(lead) + 12),
                    subsequent_indent=lead + "  ",
                    break_long_words=False,
                    break_on_hyphens=False,
                )
            ] or [""]
        return Text("\n".join(out))

    def __rich_console__(self, console, options):
        yield self.text(min(options.max_width, TITLE_WIDTH))

    def __rich_measure__(self, console, options):
        return Measurement.get(console, options, self.text(min(options.max_width, TITLE_WIDTH)))
