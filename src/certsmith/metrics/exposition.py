"""The Prometheus text format (0.0.4), for the lines certsmith writes itself rather than through the client library.

Per-certificate series come to hundreds of thousands of samples; building a ``Sample`` object for each and having
``generate_latest`` format it costs several times what writing the line does, so those lines are written here with
the same escaping rules: a label value escapes backslash, double quote and line feed; HELP text backslash and
line feed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

__all__ = ["CONTENT_TYPE", "family_header", "gauge_family", "label_value", "labels", "number"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def label_value(text: str) -> str:
    """A label value as the text format writes it between double quotes."""
    if "\\" in text or '"' in text or "\n" in text:
        return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return text


def labels(pairs: Iterable[tuple[str, str]]) -> str:
    """``{name="value",...}`` with every value escaped; empty for no labels."""
    inner = ",".join(f'{name}="{label_value(value)}"' for name, value in pairs)
    return "{" + inner + "}" if inner else ""


def family_header(name: str, help_text: str, kind: str) -> str:
    """The ``# HELP`` and ``# TYPE`` lines of a metric family."""
    escaped = help_text.replace("\\", "\\\\").replace("\n", "\\n")
    return f"# HELP {name} {escaped}\n# TYPE {name} {kind}\n"


def number(value: float) -> str:
    """A sample value: integers without a fraction, +Inf / -Inf / NaN spelled as Prometheus does."""
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def gauge_family(name: str, help_text: str, label_names: Sequence[str],
                 samples: Iterable[tuple[Sequence[str], float]]) -> str:
    """A gauge family's text: its header, then one line per (label values, value)."""
    lines = [family_header(name, help_text, "gauge")]
    lines.extend(f"{name}{labels(zip(label_names, values, strict=True))} {number(value)}\n" for values, value in samples)
    return "".join(lines)
