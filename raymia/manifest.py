"""What a results directory holds: `manifest.json`, sweep name -> its trial ids.

A sweep claims its directory before its first trial runs. A directory that
holds trials the sweep would not write (another sweep's, or an earlier
configuration's whose trial ids changed) is refused unless the sweep is told
to share it, so no table silently mixes two experiments.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from raymia.errors import ConfigError
from raymia.results import TABLES

MANIFEST = "manifest.json"


def read_manifest(results_dir: Path) -> dict[str, list[str]]:
    """sweep name -> trial ids ({} for a directory without a manifest)."""
    path = Path(results_dir) / MANIFEST
    if not path.exists():
        return {}
    try:
        sweeps = json.loads(path.read_text())["sweeps"]
        if not isinstance(sweeps, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise ConfigError(str(path), "is not a raymia manifest; remove it or give another "
                                     "--results") from None
    return sweeps


def held_trials(results_dir: Path) -> set[str]:
    """Trial ids with a part in any table of the directory (finished or not)."""
    held = set()
    for table in TABLES:
        folder = Path(results_dir) / table
        if folder.is_dir():
            held.update(p.name.removesuffix(".parquet") for p in folder.glob("*.parquet"))
    return held


def check_claim(results_dir: Path, sweep: str, trial_ids: list[str],
                share: bool = False) -> dict[str, list[str]]:
    """The manifest `claim` would write; a ConfigError when the directory holds
    trials or a sweep that are not this one's and `share` is not set."""
    recorded = read_manifest(results_dir)
    ours = set(trial_ids)
    if not share:
        others = sorted(name for name in recorded if name != sweep)
        foreign = held_trials(results_dir) - ours
        if others or foreign:
            whose = (f"sweep {', '.join(others)}" if others else
                     "an earlier configuration of this sweep" if sweep in recorded else
                     "no recorded sweep")
            raise ConfigError("--results", f"{results_dir} holds {len(foreign)} trials this "
                                           f"sweep does not have ({whose}); give another "
                                           "--results, remove them, or pass --share to keep "
                                           "them side by side")
        recorded = {}
    return {**recorded, sweep: sorted(ours | set(recorded.get(sweep, ())))}


def claim(results_dir: Path, sweep: str, trial_ids: list[str], share: bool = False) -> None:
    """Record that `sweep` writes `trial_ids` into `results_dir` (check_claim first)."""
    recorded = check_claim(results_dir, sweep, trial_ids, share)
    Path(results_dir).mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".manifest.", dir=results_dir)
    with os.fdopen(fd, "w") as f:
        json.dump({"sweeps": recorded}, f, indent=1)
    os.replace(tmp, Path(results_dir) / MANIFEST)
