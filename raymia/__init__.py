"""raymia: membership inference attacks and defenses as experiments at scale, on Ray.

Importing raymia fills the registries (raymia.registry) with the built-in
datasets, models, attacks and defenses; the config checks names against them."""
from raymia import attacks, augment, data, models, selena  # noqa: F401  (registrations)
from raymia.config import (ConfigError, DataConfig, EvaluationConfig, Experiment, ModelConfig,
                           QueryConfig, ReferenceConfig, Resources, ShadowConfig, SplitConfig,
                           Sweep, Target, TrainConfig)
from raymia.data import ood  # noqa: F401  (registrations)
from raymia.defenses import DPSGD, L2, AdvReg, EarlyStopping, LabelSmoothing, MixupMMD, NoDefense
from raymia.outputs import LabelOnly, Laplace, MemGuard, NoOutput, Rounding, Temperature, TopK
from raymia.results import read_results
from raymia.selena import Selena
from raymia.version import __version__
from raymia import extensions  # noqa: E402,I001  (after every built-in registration)

extensions.note_builtins()

__all__ = ["DPSGD", "AdvReg", "ConfigError", "DataConfig", "EarlyStopping", "EvaluationConfig",
           "Experiment", "L2", "LabelOnly", "LabelSmoothing", "Laplace", "MemGuard", "MixupMMD",
           "ModelConfig", "NoDefense", "NoOutput", "QueryConfig", "ReferenceConfig", "Resources",
           "Rounding", "Selena", "ShadowConfig", "SplitConfig", "Sweep", "Target", "Temperature",
           "TopK", "TrainConfig", "__version__", "read_results"]
