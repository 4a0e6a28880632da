"""Small text helpers every wing uses: the control-character filter and the JSON number.

At the bottom with config: it imports nothing of gradsel's.
"""

import math
import re

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0 and C1 controls and DEL: escape sequences, newlines, bells


def printable(text: str) -> str:
    """`text` with every control character (escape sequences included) shown as \\xNN: safe for a terminal."""
    return CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def strip_control(text: str) -> str:
    """`text` without its control characters (a label in a progress bar or a caption, where \\xNN would crowd)."""
    return CONTROL.sub("", text)


def json_number(x):
    """A number for JSON, which has no NaN or infinity: a non-finite number (or None) is null, others a float."""
    return None if x is None or not math.isfinite(x) else float(x)
