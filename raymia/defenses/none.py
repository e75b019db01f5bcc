from __future__ import annotations

from dataclasses import dataclass

from raymia.defenses.base import Defense
from raymia.registry import DEFENSES


@DEFENSES.register
@dataclass(frozen=True)
class NoDefense(Defense):
    """The undefended baseline: training exactly as configured."""

    name = "none"
    stacks = True
