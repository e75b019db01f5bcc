"""raymia: membership inference attacks and defenses as experiments at scale, on Ray."""
from raymia.version import __version__  # noqa: F401

from raymia.config import (ConfigError, DataConfig, EvaluationConfig, Experiment, ModelConfig,  # noqa: E402
                           QueryConfig, ReferenceConfig, Resources, ShadowConfig, SplitConfig, Sweep,
                           TrainConfig)
from raymia.defenses import (DPSGD, L2, AdvReg, EarlyStopping, LabelOnly,  # noqa: E402
                             LabelSmoothing, Laplace, MemGuard, MixupMMD, NoDefense, NoOutput,
                             Rounding, Temperature, TopK)
from raymia.results import read_results  # noqa: E402
from raymia.selena import Selena  # noqa: E402

__all__ = ["DPSGD", "AdvReg", "ConfigError", "DataConfig", "EarlyStopping", "EvaluationConfig", "Experiment", "L2",
           "LabelOnly", "LabelSmoothing", "Laplace", "MemGuard", "MixupMMD", "ModelConfig",
           "NoDefense", "NoOutput", "QueryConfig", "ReferenceConfig", "Rounding", "Selena", "Temperature", "TopK",
           "Resources", "ShadowConfig", "SplitConfig", "Sweep", "TrainConfig",
           "read_results"]
