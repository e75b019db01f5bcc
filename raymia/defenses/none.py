from __future__ import annotations

from dataclasses import dataclass

from raymia.defenses.base import Defense


@dataclass(frozen=True)
class NoDefense(Defense):
    """The undefended baseline: training exactly as configured."""

    name = "none"
