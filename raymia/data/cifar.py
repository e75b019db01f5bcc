"""CIFAR-10/100 through torchvision from a local root; never downloads.

The root (data.root or $RAYMIA_DATA) must hold the python release as
torchvision expects it: `cifar-10-batches-py/` or `cifar-100-python/`.
Train and test parts are concatenated (50k + 10k); splits.py decides
membership. Pixels are scaled to [0, 1], channels first."""
from __future__ import annotations

import numpy as np

from raymia.data.dataset import Dataset, DataError, checked
from raymia.data.tabular import data_root

FOLDERS = {"cifar10": ("CIFAR10", "cifar-10-batches-py", 10),
           "cifar100": ("CIFAR100", "cifar-100-python", 100)}


def load(cfg) -> Dataset:
    import torchvision.datasets as tvd

    cls_name, folder, n_classes = FOLDERS[cfg.name]
    root = data_root(cfg)
    parts = []
    for train in (True, False):
        try:
            part = getattr(tvd, cls_name)(root=str(root), train=train, download=False)
        except RuntimeError:  # torchvision's "not found or corrupted" (it suggests a download)
            raise DataError(str(root / folder), f"{cfg.name} not found or corrupted; put the "
                            f"python release's '{folder}' folder under {root} (raymia never "
                            "downloads)") from None
        parts.append(part)
    x = np.concatenate([p.data for p in parts])  # (n, 32, 32, 3) uint8
    y = np.concatenate([np.asarray(p.targets) for p in parts])
    x = x.transpose(0, 3, 1, 2).astype(np.float32) / 255.0  # (n, 3, 32, 32)
    return checked(cfg.name, x, y, n_classes, "image", str(root / folder))
