"""A model trained elsewhere, audited as it is (config: `Experiment.target`).

The user gives the weights of a model the registry can build (its
`state_dict`) and the sample ids it trained on. The weights are read without
unpickling anything: `torch.load(weights_only=True)` admits tensors and plain
containers only, and a `.safetensors` file holds tensors only; a whole model
saved with `torch.save(model)`, or any other pickle, is refused. The model is
built from `Experiment.model` and must take the weights exactly (strict
`load_state_dict`). Every check runs before anything trains, with a one-line
error naming the file.

The audit set is the known members and as many non-members, drawn from the
given non-members or every other example (raymia.data.splits); the reference
models train with the experiment's recipe on as many examples as the target did.
"""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
import torch

from raymia.config import ConfigError, Experiment, ModelConfig
from raymia.data import Dataset

#: containers a checkpoint may wrap its state_dict in
WRAPPERS = ("state_dict", "model_state_dict", "model")


def load_weights(path: str) -> dict[str, np.ndarray]:
    """The state_dict in `path` as numpy arrays (they travel to job workers as such)."""
    where = "target.weights"
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(where, f"{path}: no such file")
    if file.suffix == ".safetensors":
        state = _safetensors(file, where)
    else:
        state = _torch_file(file, where)
    if isinstance(state, dict) and len(state) == 1 and next(iter(state)) in WRAPPERS:
        state = next(iter(state.values()))
    if not isinstance(state, dict) or not state:
        raise ConfigError(where, f"{path}: holds {type(state).__name__}, not a state_dict "
                                 "(save model.state_dict())")
    bad = [k for k, v in state.items() if not isinstance(k, str) or not torch.is_tensor(v)]
    if bad:
        raise ConfigError(where, f"{path}: entry {bad[0]!r} is not a tensor; save "
                                 "model.state_dict()")
    if all(k.startswith("module.") for k in state):  # saved from DataParallel
        state = {k[len("module."):]: v for k, v in state.items()}
    return {k: v.detach().cpu().numpy() for k, v in state.items()}


def _torch_file(file: Path, where: str):
    if not zipfile.is_zipfile(file):  # what torch.save writes (since torch 1.6)
        raise ConfigError(where, f"{file}: not a torch checkpoint (torch.save's zip format) "
                                 "nor a .safetensors file")
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ConfigError(where, f"{file}: holds pickled objects, which raymia never loads "
                                 "(a whole model saved with torch.save(model)?); save "
                                 "model.state_dict() or a .safetensors file") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
        raise ConfigError(where, f"{file}: not a readable torch checkpoint ({first})") from None


def _safetensors(file: Path, where: str):
    try:
        from safetensors import SafetensorError
        from safetensors.torch import load_file
    except ImportError:
        raise ConfigError(where, f"{file}: reading .safetensors needs the safetensors "
                                 "package (pip install safetensors)") from None
    try:
        return load_file(str(file))
    except (SafetensorError, OSError, ValueError) as e:
        raise ConfigError(where, f"{file}: not a readable safetensors file ({e})") from None


def fit_weights(model_cfg: ModelConfig, data: Dataset, state: dict[str, np.ndarray]):
    """The model `model_cfg` builds for `data`, holding the weights `state`; a
    ConfigError when they do not fit it (keys or shapes)."""
    from raymia.models import build_model

    model = build_model(model_cfg, data.input_shape, data.n_classes)
    try:
        model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
    except RuntimeError as e:
        raise ConfigError("target.weights", f"do not fit model {model_cfg.name} on "
                          f"{data.name} (inputs {data.input_shape}, {data.n_classes} classes): "
                          f"{_mismatch(model.state_dict(), state, e)}") from None
    return model


def _mismatch(own: dict, given: dict, error: RuntimeError) -> str:
    missing, unexpected = sorted(set(own) - set(given)), sorted(set(given) - set(own))
    if missing or unexpected:
        parts = [f"{label} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                 for label, keys in (("missing", missing), ("unexpected", unexpected)) if keys]
        return "; ".join(parts)
    for k, v in own.items():
        if tuple(v.shape) != tuple(given[k].shape):
            return f"{k} is {tuple(given[k].shape)} in the file, {tuple(v.shape)} in the model"
    return (str(error).strip().splitlines() or ["mismatch"])[0][:200]


def read_ids(path: str, n_examples: int, where: str) -> np.ndarray:
    """Sorted sample ids from `path`: a `.npy` of integer ids or a boolean mask of
    length `n_examples`, or a text file of integer ids (one per line, or
    separated by commas or spaces). Ids must be distinct and in [0, n_examples)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(where, f"{path}: no such file")
    if file.suffix == ".npy":
        try:
            ids = np.load(file, allow_pickle=False)
        except ValueError:
            raise ConfigError(where, f"{path}: holds object (pickled) arrays; save integer "
                                     "ids or a boolean mask") from None
        except (OSError, EOFError) as e:
            raise ConfigError(where, f"{path}: not a readable .npy file ({e})") from None
    else:
        text = file.read_text().replace(",", " ").split()
        try:
            ids = np.array([int(t) for t in text], np.int64)
        except ValueError:
            bad = next(t for t in text if not t.lstrip("-").isdigit())
            raise ConfigError(where, f"{path}: {bad!r} is not an integer sample id") from None
    ids = np.asarray(ids).ravel() if np.ndim(ids) == 2 and 1 in np.shape(ids) else np.asarray(ids)
    if ids.ndim != 1:
        raise ConfigError(where, f"{path}: needs 1-D ids or a mask, got shape {ids.shape}")
    if ids.dtype == bool:
        if len(ids) != n_examples:
            raise ConfigError(where, f"{path}: a mask of {len(ids)} entries for a dataset of "
                                     f"{n_examples} examples")
        ids = np.flatnonzero(ids)
    elif not np.issubdtype(ids.dtype, np.integer):
        raise ConfigError(where, f"{path}: needs integer sample ids or a boolean mask, got "
                                 f"{ids.dtype}")
    ids = ids.astype(np.int64)
    if len(ids) == 0:
        raise ConfigError(where, f"{path}: names no sample id")
    outside = ids[(ids < 0) | (ids >= n_examples)]
    if len(outside):
        raise ConfigError(where, f"{path}: sample id {outside[0]} is outside the dataset's "
                                 f"{n_examples} examples (ids 0..{n_examples - 1})")
    unique = np.unique(ids)
    if len(unique) != len(ids):
        raise ConfigError(where, f"{path}: {len(ids) - len(unique)} sample ids are repeated")
    return unique


def known_ids(exp: Experiment, n_examples: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(the target's members, the known non-members or None) of a given target."""
    members = read_ids(exp.target.members, n_examples, "target.members")
    if exp.target.nonmembers is None:
        return members, None
    nonmembers = read_ids(exp.target.nonmembers, n_examples, "target.nonmembers")
    both = np.intersect1d(members, nonmembers)
    if len(both):
        raise ConfigError("target.nonmembers", f"{exp.target.nonmembers}: sample id {both[0]} "
                          f"is also among the members ({len(both)} ids are in both files)")
    return members, nonmembers


def load_target(exp: Experiment, data: Dataset) -> tuple[tuple, dict] | None:
    """A given target's (known_ids, weights), after every check (its files are
    those the config was made from, its ids lie in the data, its weights fit
    the model); None when raymia trains the target."""
    if not exp.target.given:
        return None
    if exp.target.files_digest() != exp.target.digest:
        raise ConfigError("target", f"{exp.target.weights} or its id files changed (or went "
                                    "missing) since the config was made")
    known = known_ids(exp, len(data))
    weights = load_weights(exp.target.weights)
    fit_weights(exp.model, data, weights)
    return known, weights
