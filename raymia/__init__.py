"""raymia: membership inference attacks and defenses as experiments at scale, on Ray."""
__version__ = "0.1.0"

from raymia.config import (ConfigError, DataConfig, Experiment, ModelConfig,  # noqa: E402
                           Resources, ShadowConfig, SplitConfig, Sweep, TrainConfig)
from raymia.defenses import L2, LabelSmoothing, NoDefense  # noqa: E402
from raymia.results import read_results  # noqa: E402

__all__ = ["ConfigError", "DataConfig", "Experiment", "L2", "LabelSmoothing", "ModelConfig",
           "NoDefense", "Resources", "ShadowConfig", "SplitConfig", "Sweep", "TrainConfig",
           "read_results"]
