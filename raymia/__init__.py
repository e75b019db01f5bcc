"""raymia: membership inference attacks and defenses as experiments at scale, on Ray.

`from raymia import Experiment, DPSGD, ...` imports the module that defines the
name on first access (PEP 562), and `raymia.<submodule>` imports that
submodule: importing raymia itself imports nothing else. A training worker
then loads torch and its model, not the attacks' scikit-learn and SciPy or
the result tables' pandas and pyarrow. The registries (raymia.registry)
fill themselves with the built-in datasets, models, attacks and defenses the
first time they are read, so a config is validated against every name."""
from __future__ import annotations

import importlib
import importlib.util

#: public name -> the module that defines it
_EXPORTS = {
    **dict.fromkeys(["ConfigError", "DataConfig", "EvaluationConfig", "Experiment", "ModelConfig",
                     "QueryConfig", "ReferenceConfig", "Resources", "ShadowConfig",
                     "SplitConfig", "Sweep", "Target", "TrainConfig"], "raymia.config"),
    **dict.fromkeys(["DPSGD", "L2", "AdvReg", "EarlyStopping", "LabelSmoothing", "MixupMMD",
                     "NoDefense"], "raymia.defenses"),
    **dict.fromkeys(["LabelOnly", "Laplace", "MemGuard", "NoOutput", "Rounding", "Temperature",
                     "TopK"], "raymia.outputs"),
    "read_results": "raymia.results",
    "Selena": "raymia.selena",
    "__version__": "raymia.version",
}

__all__ = ["DPSGD", "AdvReg", "ConfigError", "DataConfig", "EarlyStopping", "EvaluationConfig",
           "Experiment", "L2", "LabelOnly", "LabelSmoothing", "Laplace", "MemGuard", "MixupMMD",
           "ModelConfig", "NoDefense", "NoOutput", "QueryConfig", "ReferenceConfig", "Resources",
           "Rounding", "Selena", "ShadowConfig", "SplitConfig", "Sweep", "Target", "Temperature",
           "TopK", "TrainConfig", "__version__", "read_results"]


def __getattr__(name: str):
    """A public name from its module, or a submodule (`raymia.attacks`), imported
    on first access and kept here."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif not name.startswith("__") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
