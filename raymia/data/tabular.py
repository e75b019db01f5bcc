"""Purchase100 and Texas100 from local files, in the formats their users have.

Looked for under `data.root`, else `$RAYMIA_DATA` (directly or in a
subfolder named after the dataset), first match wins:
- `<name>.npz` with arrays `features` (n, d) and `labels` ((n,) class ids from
  0, or (n, C) one-hot), the preprocessed release the MIA literature shares;
- the raw comma-separated release, label first, classes numbered from 1:
  `dataset_purchase` / `dataset_texas`;
- Texas only: the two-file release `texas/100/feats` and `texas/100/labels`
  (comma-separated features; one label per line, numbered from 1).
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from raymia.data.dataset import Dataset, DataError, checked

N_CLASSES = 100


def data_root(cfg) -> Path:
    root = cfg.root or os.environ.get("RAYMIA_DATA")
    if not root:
        raise DataError("data.root", f"{cfg.name} reads local files: set data.root or RAYMIA_DATA")
    return Path(root).expanduser()


def _read_csv(path: Path) -> np.ndarray:
    import pandas as pd  # here: training workers import this module, never read a CSV

    if not path.is_file():
        raise DataError(str(path), "file is missing")
    try:
        return pd.read_csv(path, header=None).to_numpy()
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise DataError(str(path), f"not a comma-separated numeric table ({str(e).splitlines()[0]})")


def _numeric(table: np.ndarray, path: Path) -> np.ndarray:
    if not np.issubdtype(table.dtype, np.number):
        raise DataError(str(path), "holds non-numeric values")
    return table


def _from_npz(path: Path, name: str) -> Dataset:
    try:
        arrays = np.load(path, allow_pickle=False)
        keys = set(arrays.files)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile):
        raise DataError(str(path), "not a readable .npz file (truncated or not a zip archive)"
                        ) from None
    if not {"features", "labels"} <= keys:
        raise DataError(str(path), f"needs arrays 'features' and 'labels', has {sorted(keys)}")
    try:
        x, labels = arrays["features"], arrays["labels"]
    except ValueError:  # object arrays: raymia never unpickles a data file
        raise DataError(str(path), "holds object (pickled) arrays; save numeric arrays "
                                   "(features as numbers, labels as integers)") from None
    except (OSError, EOFError, zipfile.BadZipFile):
        raise DataError(str(path), "not a readable .npz file (truncated)") from None
    if labels.ndim == 2:  # one-hot
        if labels.shape[1] != N_CLASSES or not np.all(labels.sum(1) == 1):
            raise DataError(str(path), f"2-D labels must be one-hot over {N_CLASSES} classes")
        labels = labels.argmax(1)
    return checked(name, x, labels, N_CLASSES, "tabular", str(path))


def _from_label_first_csv(path: Path, name: str) -> Dataset:
    table = _numeric(_read_csv(path), path)
    if table.ndim != 2 or table.shape[1] < 2:
        raise DataError(str(path), "needs a label column followed by feature columns")
    return checked(name, table[:, 1:], table[:, 0] - 1, N_CLASSES, "tabular", str(path))


def _from_texas_pair(folder: Path, name: str) -> Dataset:
    feats, labels = folder / "feats", folder / "labels"
    x = _numeric(_read_csv(feats), feats)
    y = _numeric(_read_csv(labels), labels)
    if y.ndim != 2 or y.shape[1] != 1:
        raise DataError(str(labels), f"needs one label per line, got {y.shape[1]} columns")
    if len(x) != len(y):
        raise DataError(str(labels), f"{len(y)} labels for {len(x)} rows of {feats}")
    return checked(name, x, y[:, 0] - 1, N_CLASSES, "tabular", str(labels))


def _load(cfg, name: str, raw: str, extra=()) -> Dataset:
    root = data_root(cfg)
    candidates = [(d / f"{name}.npz", _from_npz) for d in (root, root / name)]
    candidates += [(d / raw, _from_label_first_csv) for d in (root, root / name)]
    candidates += list(extra)
    for path, reader in candidates:
        if path.exists():
            return reader(path, name)
    tried = ", ".join(str(p) for p, _ in candidates)
    raise DataError("data.root", f"no {name} files found; looked for {tried}")


def load_purchase100(cfg) -> Dataset:
    return _load(cfg, "purchase100", "dataset_purchase")


def load_texas100(cfg) -> Dataset:
    root = data_root(cfg)
    pairs = [(d / "texas" / "100", _from_texas_pair) for d in (root, root / "texas100")]
    return _load(cfg, "texas100", "dataset_texas", pairs)
