"""Checkpoints: one safetensors file, no pickle, clear errors for every broken file."""

import json
import struct

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from sklearn.datasets import load_digits

from continual import load, save
from continual.checkpoint import FORMAT_VERSION
from continual.checks import assert_same_state
from strategies import ReplayClassifier


@pytest.fixture(scope="module")
def fitted():
    X, y = load_digits(return_X_y=True)
    clf = ReplayClassifier(budget="60 KB", hidden_sizes=(16,), epochs=1, random_state=0)
    return clf.partial_fit(X[y < 5].astype(np.uint8), y[y < 5], classes=range(10))


@pytest.fixture()
def path(fitted, tmp_path):
    return save(fitted, tmp_path / "replay.safetensors")


def _header(path):
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    return raw, length, json.loads(raw[8 : 8 + length])


def test_one_safetensors_file_with_json_metadata_and_no_pickle(fitted, path):
    raw, _, header = _header(path)
    meta = json.loads(header["__metadata__"]["continual-budget"])
    assert meta["format"] == "continual-budget" and meta["format_version"] == FORMAT_VERSION
    assert meta["class"] == "strategies.classifiers.ReplayClassifier"
    assert meta["params"]["hidden_sizes"] == {"$tuple": [16]}
    assert len(meta["state"]["accountant"]["history"]) == 1  # the accountant's history
    assert b"\x80\x04" not in raw[:16] and b"pickle" not in raw  # not a pickle stream
    tensors = [k for k in header if k != "__metadata__"]
    assert any(k.endswith("plugins/0/store/x") for k in tensors)  # the exemplars
    assert any("generator" in k for k in tensors)  # the generator states


def test_load_restores_class_parameters_and_state(fitted, path):
    copy = load(path)
    assert type(copy) is ReplayClassifier and copy.get_params() == fitted.get_params()
    assert_same_state(copy, fitted)
    assert copy.accountant_.timeline() == fitted.accountant_.timeline()


def test_an_unfitted_estimator_round_trips_its_parameters(tmp_path):
    estimator = ReplayClassifier(budget="1 MB", optimizer=torch.optim.AdamW, hidden_sizes=(8, 4))
    copy = load(save(estimator, tmp_path / "unfitted.safetensors"))
    assert copy.get_params() == estimator.get_params()
    assert not hasattr(copy, "accountant_")


def test_a_lambda_parameter_cannot_be_saved(tmp_path):
    estimator = ReplayClassifier(optimizer=lambda params: torch.optim.SGD(params, lr=0.1))
    with pytest.raises(ValueError, match=r"parameter optimizer=.* cannot be saved"):
        save(estimator, tmp_path / "lambda.safetensors")


def _write(path, data):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("breaking", "match"),
    [
        (lambda raw, n: raw[: len(raw) // 2], "not a readable safetensors file"),
        (lambda raw, n: raw[:5], "not a readable safetensors file"),
        (lambda raw, n: b"\x80\x04\x95 pickled bytes", "not a readable safetensors file"),
        (lambda raw, n: raw[:-1] + bytes([raw[-1] ^ 0xFF]), "does not match its digest"),
    ],
    ids=["truncated", "header-only", "foreign-bytes", "flipped-data-byte"],
)
def test_broken_files_raise_value_error_naming_the_file(path, breaking, match):
    raw, length, _ = _header(path)
    broken = _write(path.with_name("broken.safetensors"), breaking(raw, length))
    with pytest.raises(ValueError, match=match) as error:
        load(broken)
    assert str(broken) in str(error.value)


def test_a_foreign_safetensors_file_is_named(tmp_path):
    path = tmp_path / "weights.safetensors"
    save_file({"weight": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="not a continual-budget checkpoint") as error:
        load(path)
    assert str(path) in str(error.value)


def _rewrite_metadata(path, edit):
    _, _, header = _header(path)
    meta = json.loads(header["__metadata__"]["continual-budget"])
    edit(meta)
    with safe_open(path, "pt") as handle:
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    out = path.with_name("edited.safetensors")
    save_file(tensors, out, metadata={"continual-budget": json.dumps(meta)})
    return out


def test_a_newer_format_version_is_refused(path):
    newer = _rewrite_metadata(path, lambda meta: meta.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(ValueError, match="format version 2 is newer"):
        load(newer)


@pytest.mark.parametrize(
    ("name", "match"),
    [("strategies.classifiers.NoSuchClass", "unknown class"), ("torch.nn.Linear", "not a Budg")],
)
def test_a_class_that_is_not_an_estimator_is_refused(path, name, match):
    edited = _rewrite_metadata(path, lambda meta: meta.update({"class": name}))
    with pytest.raises(ValueError, match=match):
        load(edited)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ValueError, match="no such checkpoint file"):
        load(tmp_path / "absent.safetensors")
