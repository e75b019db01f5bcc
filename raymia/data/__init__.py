"""Dataset registry: name -> loader(DataConfig) -> Dataset."""
from __future__ import annotations

from raymia import registry
from raymia.data import cifar, digits, files, synthetic, tabular
from raymia.data.dataset import Dataset, DataError

DATASETS = registry.DATASETS
for _name, _load in {"digits": digits.load, "purchase100": tabular.load_purchase100,
                     "texas100": tabular.load_texas100, "cifar10": cifar.load,
                     "cifar100": cifar.load, "synthetic": synthetic.load,
                     "files": files.load}.items():
    DATASETS.register(_name, _load)


def load_dataset(cfg) -> Dataset:
    """Load the dataset a DataConfig names; bad files raise DataError naming the file."""
    return DATASETS[cfg.name](cfg)


__all__ = ["DATASETS", "Dataset", "DataError", "load_dataset"]
