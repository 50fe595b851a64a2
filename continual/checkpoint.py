"""Checkpoints: one safetensors file per estimator, with JSON metadata in its header. No pickle.

The file holds every tensor and array of the estimator's state (weights, optimizer state,
exemplar and replay stores, prompt pools, embedding tables, masks, generator states) and, in
the header's metadata under ``"continual-budget"``, a JSON document: the format and its
version, the estimator's class and parameters, the skeleton of its state (see
:mod:`continual.state`), the accountant's history, and a SHA-256 digest of the tensor data.
:func:`load` rebuilds the estimator from its parameters and restores the state; a truncated,
corrupted or foreign file, or one written by a newer format, raises ``ValueError`` naming the
file and the problem.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from continual.distributed import gather_to_writer, merge_shards
from continual.estimator import BudgetedEstimator
from continual.state import flatten, pack, unflatten

__all__ = ["FORMAT", "FORMAT_VERSION", "load", "save"]

FORMAT = "continual-budget"
FORMAT_VERSION = 1
_KEY = "continual-budget"


def save(estimator: BudgetedEstimator, path: str | os.PathLike[str]) -> Path:
    """Write ``estimator`` (fitted or not) to one safetensors file at ``path``.

    Parameters
    ----------
    estimator
        Any :class:`~continual.estimator.BudgetedEstimator`.
    path
        The file to write (conventionally ``*.safetensors``); its folder must exist.

    Under data-parallel training every rank calls it: rank 0 gathers every rank's state and
    writes one file, with the union of the ranks' store shards
    (:func:`~continual.distributed.merge_shards`); the others write nothing. :func:`load`
    resumes it at any world size.

    Returns
    -------
    Path
        The path written.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from continual import load, save
    >>> from strategies import ReplayClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = ReplayClassifier(budget="150 KB", epochs=2, input_scale=1 / 16, random_state=0)
    >>> clf = clf.partial_fit(X[y < 5].astype(np.uint8), y[y < 5], classes=range(10))
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = save(clf, f"{folder}/replay.safetensors")
    ...     copy = load(path)
    >>> bool((copy.predict(X) == clf.predict(X)).all()), copy.n_partial_fits_
    (True, 1)
    """
    if not isinstance(estimator, BudgetedEstimator):
        raise TypeError(f"estimator must be a BudgetedEstimator, got {type(estimator).__name__}")
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"path {str(path)!r} is in folder {str(path.parent)!r}, which does not exist"
        )
    fitted = hasattr(estimator, "accountant_")
    states = gather_to_writer(estimator.get_state() if fitted else None)
    if states is None:  # another rank writes
        return path
    leaves, skeleton = flatten(merge_shards(states)) if fitted else ({}, None)
    tensors = pack(leaves)
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "class": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        "params": _encode_params(estimator.get_params(deep=False)),
        "state": skeleton,
        "sha256": _digest(tensors),
        "torch": torch.__version__,
    }
    save_file(tensors, path, metadata={_KEY: json.dumps(header)})
    return path


def load(path: str | os.PathLike[str], *, device: str | None = None) -> BudgetedEstimator:
    """Read an estimator written by :func:`save`.

    ``device`` replaces the saved ``device`` parameter: a run saved on a GPU resumes on
    the CPU with ``device="cpu"``, and the other way round. The state's tensors are stored
    on the CPU and copied to the estimator's device as they are restored. Under
    data-parallel training every rank loads the file and keeps its share of the stored
    exemplars, whatever the world size that wrote it.

    Raises
    ------
    ValueError
        If ``path`` is not a readable safetensors file, is not a continual-budget checkpoint,
        was written by a newer format version, or its tensors do not match its digest.
    """
    path = Path(path)
    header, tensors = _read(path)
    version = header.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{path}: checkpoint format version {version!r} is newer than this library's "
            f"{FORMAT_VERSION}; upgrade continual-budget to read it"
        )
    if _digest(tensors) != header.get("sha256"):
        raise ValueError(f"{path}: the tensor data does not match its digest (corrupted file)")
    cls = _estimator_class(path, header.get("class"))
    try:
        params = _decode_params(header.get("params", {}))
        if device is not None:
            params["device"] = device
        estimator = cls(**params)
        if header.get("state") is not None:
            estimator.set_state(unflatten(tensors, header["state"]))
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise ValueError(f"{path}: the checkpoint's state cannot be restored: {error}") from error
    return estimator


def _read(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    try:
        with safe_open(path, framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except FileNotFoundError:
        raise ValueError(f"{path}: no such checkpoint file") from None
    except (SafetensorError, OSError, RuntimeError) as error:
        raise ValueError(f"{path}: not a readable safetensors file ({error})") from error
    if _KEY not in metadata:
        raise ValueError(
            f"{path}: a safetensors file, but not a continual-budget checkpoint (no "
            f"{_KEY!r} metadata)"
        )
    try:
        header = json.loads(metadata[_KEY])
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: the checkpoint's metadata is not valid JSON ({error})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{path}: the checkpoint's metadata does not name the {FORMAT} format")
    return header, tensors


def _digest(tensors: Mapping[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for key in sorted(tensors):
        tensor = tensors[key]
        digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).contiguous().view(torch.uint8).numpy())
    return digest.hexdigest()


def _estimator_class(path: Path, name: Any) -> type[BudgetedEstimator]:
    module_name, _, qualname = str(name).rpartition(".")
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError, ValueError):
        raise ValueError(f"{path}: the checkpoint names an unknown class {name!r}") from None
    if not (isinstance(target, type) and issubclass(target, BudgetedEstimator)):
        raise ValueError(f"{path}: the checkpoint's class {name!r} is not a BudgetedEstimator")
    return target


def _encode_params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _encode(name, value) for name, value in params.items()}


def _encode(name: str, value: Any) -> Any:
    if value is None or isinstance(value, (bool, str, int, float)):
        return value
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        return value.item()  # numpy and torch scalars
    if isinstance(value, (list, tuple)):
        items = [_encode(name, item) for item in value]
        return {"$tuple": items} if isinstance(value, tuple) else items
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"$dict": {k: _encode(name, v) for k, v in value.items()}}
    if isinstance(value, type) or callable(value):
        module, qualname = getattr(value, "__module__", None), getattr(value, "__qualname__", "<")
        reference = f"{module}:{qualname}"
        if module is None or "<" in reference:
            raise ValueError(
                f"parameter {name}={value!r} cannot be saved: only module-level functions and "
                "classes have an importable name (not lambdas, local functions or partials)"
            )
        return {"$import": reference}
    raise ValueError(f"parameter {name}={value!r} cannot be saved in a checkpoint")


def _decode_params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _decode(value) for name, value in params.items()}


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(item) for item in value]
    if not isinstance(value, dict):
        return value
    if "$tuple" in value:
        return tuple(_decode(item) for item in value["$tuple"])
    if "$dict" in value:
        return {k: _decode(v) for k, v in value["$dict"].items()}
    if "$import" in value:
        module_name, _, qualname = value["$import"].partition(":")
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
        return target
    raise ValueError(f"unknown parameter encoding {value!r}")
