"""`files`: a dataset of the user's own, read from `data.path`.

The format follows from what the path is:
- a `.npz` file with arrays `x` and `y` (or `features` and `labels`);
- a folder holding `x.npy` and `y.npy` (or `features.npy` and `labels.npy`);
- a `.csv` file with a header row: the column `data.label_column` holds the
  labels (class ids, or strings numbered in their sorted order), every other
  column is a numeric feature;
- a folder in torchvision's ImageFolder layout, `<path>/<class>/<image>`: RGB
  images, all of one size, scaled to [0, 1]; classes in sorted folder order.

Features are (n, d) (tabular) or (n, C, H, W) (images); array labels are
class ids from 0, (n,), or one-hot, (n, C). The number of classes is max
label + 1 (the number of class folders for images). Arrays are read with
`allow_pickle=False`: raymia never unpickles a data file. Like `data.root`,
the path must be readable on every node trials run on (a shared filesystem,
or the same copy on each node).
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from raymia.data.dataset import Dataset, DataError, checked

NAME = "files"
#: the array names accepted, in the order they are looked for
ARRAY_NAMES = (("x", "y"), ("features", "labels"))
FORMATS = ("a .npz file with arrays x and y (or features and labels)",
           "a folder with x.npy and y.npy (or features.npy and labels.npy)",
           "a .csv file with a header row and a label column",
           "a folder of class folders of images (torchvision's ImageFolder layout)")


def load(cfg) -> Dataset:
    """The registered loader: the dataset at `cfg.path`, in whichever format it is."""
    if not cfg.path:
        raise DataError("data.path", "files reads your own data: set data.path")
    path = Path(cfg.path).expanduser()
    if not path.exists():
        raise DataError(str(path), "no such file or folder (data.path)")
    if path.is_file() and path.suffix.lower() == ".npz":
        return load_npz(path)
    if path.is_file() and path.suffix.lower() == ".csv":
        return load_csv(path, cfg.label_column)
    if path.is_dir():
        if any((path / f"{name}.npy").exists() for pair in ARRAY_NAMES for name in pair):
            return load_npy_folder(path)
        if any(child.is_dir() for child in path.iterdir()):
            return load_image_folder(path)
        raise DataError(str(path), f"a folder with no .npy arrays and no class folders of "
                                   f"images; accepted: {'; '.join(FORMATS)}")
    raise DataError(str(path), f"unknown format; accepted: {'; '.join(FORMATS)}")


def load_npz(path: Path) -> Dataset:
    """Arrays `x` and `y` (or `features` and `labels`) of a .npz file."""
    arrays = _read(lambda: np.load(path, allow_pickle=False), path)
    if not isinstance(arrays, np.lib.npyio.NpzFile):
        raise DataError(str(path), "holds a single .npy array, not a .npz archive of x and y")
    with arrays:
        pair = next((p for p in ARRAY_NAMES if set(p) <= set(arrays.files)), None)
        if pair is None:
            raise DataError(str(path), f"needs arrays x and y (or features and labels), "
                                       f"has {sorted(arrays.files)}")
        x, y = (_read(lambda k=k: arrays[k], path) for k in pair)
    return from_arrays(x, y, str(path))


def load_npy_folder(folder: Path) -> Dataset:
    """`x.npy` and `y.npy` (or `features.npy` and `labels.npy`) of a folder."""
    for pair in ARRAY_NAMES:
        files = [folder / f"{name}.npy" for name in pair]
        if any(f.exists() for f in files):
            missing = [f.name for f in files if not f.is_file()]
            if missing:
                there = sorted(p.name for p in folder.iterdir())
                raise DataError(str(folder), f"needs {files[0].name} and {files[1].name}, "
                                             f"{missing[0]} is missing; holds {there}")
            x, y = (_read(lambda f=f: np.load(f, allow_pickle=False), f) for f in files)
            return from_arrays(x, y, str(folder))
    raise DataError(str(folder), "holds no x.npy/y.npy or features.npy/labels.npy")


def _read(load_array, path: Path) -> np.ndarray:
    """`load_array()`, its errors as one-line DataErrors naming `path`."""
    try:
        return load_array()
    except ValueError as e:
        if "Object arrays" in str(e):
            raise DataError(str(path), "holds object (pickled) arrays; save numeric arrays "
                                       "(features as numbers, labels as integers)") from None
        if "pickle" in str(e):
            raise DataError(str(path), "not a .npy/.npz array file (no numpy header; "
                                       "raymia never unpickles a data file)") from None
        raise DataError(str(path), f"not a readable array file ({str(e).splitlines()[0]})"
                        ) from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(str(path), f"not a readable array file (truncated or corrupt: "
                                   f"{type(e).__name__})") from None


def from_arrays(x, y, source: str) -> Dataset:
    """A `files` dataset from features (n, d) or (n, C, H, W) and labels (n,) or
    one-hot (n, C); errors name `source`."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim not in (2, 4):
        raise DataError(source, f"features must be (n, d) or (n, C, H, W), got shape {x.shape}")
    n_classes = None
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    elif y.ndim == 2:
        if not (np.isin(y, (0, 1)).all() and (y.sum(1) == 1).all()):
            raise DataError(source, f"2-D labels {y.shape} must be one-hot (one 1 per row)")
        y, n_classes = y.argmax(1), y.shape[1]
    return _checked(x, y, n_classes, "image" if x.ndim == 4 else "tabular", source)


def _checked(x, y, n_classes, kind: str, source: str) -> Dataset:
    """`checked`, booleans read as 0/1, and at least two classes, numbered from 0."""
    x, y = (a.astype(np.int64) if a.dtype == bool else a for a in (np.asarray(x), np.asarray(y)))
    data = checked(NAME, x, y, n_classes, kind, source)
    if data.n_classes < 2:
        raise DataError(source, "labels name a single class; membership needs at least two")
    if data.n_classes > len(data):
        raise DataError(source, f"labels go up to {data.n_classes - 1} for {len(data)} examples; "
                                "labels must be class ids numbered from 0")
    return data


def load_csv(path: Path, label_column: str = "label") -> Dataset:
    """A .csv with a header row: `label_column` holds the labels, the other
    columns numeric features."""
    import pandas as pd  # here: training workers import this module, never read a CSV

    try:
        table = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(str(path), "is empty (needs a header row and data rows)") from None
    except (ValueError, pd.errors.ParserError) as e:
        raise DataError(str(path), f"not a readable CSV file ({str(e).strip().splitlines()[0]})"
                        ) from None
    if label_column not in table.columns:
        raise DataError(str(path), f"has no label column {label_column!r} (data.label_column); "
                                   f"columns: {', '.join(map(str, table.columns))}")
    if len(table) == 0:
        raise DataError(str(path), "holds a header but no rows")
    features = table.drop(columns=label_column)
    if features.shape[1] == 0:
        raise DataError(str(path), f"holds only the label column {label_column!r}, no features")
    for column in features.columns:
        values = features[column]
        if not pd.api.types.is_numeric_dtype(values):
            bad = values.notna() & pd.to_numeric(values, errors="coerce").isna()
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(str(path), f"feature column {column!r} is not numeric "
                                       f"({values.iloc[row]!r} in data row {row + 1})")
    labels = table[label_column]
    if labels.isna().any():
        row = int(np.flatnonzero(labels.isna().to_numpy())[0])
        raise DataError(str(path), f"label column {label_column!r} is empty in data row {row + 1}")
    if pd.api.types.is_numeric_dtype(labels):
        y = labels.to_numpy()
    else:  # names: class ids in sorted order of the distinct names
        y = np.unique(labels.astype(str).to_numpy(), return_inverse=True)[1]
    return _checked(features.to_numpy(dtype=np.float64), y, None, "tabular", str(path))


def load_image_folder(folder: Path) -> Dataset:
    """Images in torchvision's ImageFolder layout, as float32 (n, 3, H, W) in [0, 1]."""
    from torchvision.datasets import ImageFolder
    from torchvision.transforms.functional import pil_to_tensor

    try:
        images = ImageFolder(str(folder))
    except (FileNotFoundError, OSError) as e:
        raise DataError(str(folder), f"no images in the ImageFolder layout <class>/<image> "
                                     f"({str(e).strip().splitlines()[0]})") from None
    pixels, first = [], None
    for image_path, _ in images.samples:
        try:
            image = images.loader(image_path)  # PIL, converted to RGB
        except OSError as e:
            raise DataError(image_path, f"not a readable image ({str(e).splitlines()[0]})"
                            ) from None
        first = first or (image_path, image.size)
        if image.size != first[1]:
            raise DataError(image_path, f"is {image.size[0]}x{image.size[1]} but {first[0]} is "
                                        f"{first[1][0]}x{first[1][1]}; all images must have "
                                        "one size")
        pixels.append(pil_to_tensor(image).numpy())  # (3, H, W) uint8
    x = np.stack(pixels).astype(np.float32) / 255.0
    return _checked(x, np.asarray(images.targets), len(images.classes), "image", str(folder))
