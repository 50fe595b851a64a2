"""Rollback backups copy what a call can change, keep the rest by reference, and restore it."""

import os

import numpy as np
import pytest
import torch

from continual.rollback import Backup
from continual.state import read_only


def _state():
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    model[0].requires_grad_(False)  # a frozen block
    return model, {
        "model": model.state_dict(keep_vars=True),
        "store": read_only(torch.ones(1000, dtype=torch.uint8)),
        "index": read_only(np.arange(100)),
        "counts": np.zeros(5),
        "graph": torch.eye(3).to_sparse_csr(),
    }


def test_memory_backup_copies_only_what_can_change():
    model, state = _state()
    backup = Backup(state)
    batch_norm = model[1]
    trainable = sum(p.numel() * 4 for p in batch_norm.parameters())  # weight and bias
    buffers = sum(b.numel() * b.element_size() for b in batch_norm.buffers())
    graph = 4 * 8 + 3 * 8 + 3 * 4  # crow and column indices (int64), values (float32)
    assert backup.nbytes == trainable + buffers + 5 * 8 + graph
    restored = backup.state()
    assert restored["model"]["0.weight"] is state["model"]["0.weight"]  # frozen: a reference
    assert restored["store"] is state["store"] and restored["index"] is state["index"]
    assert restored["counts"] is not state["counts"]


@pytest.mark.parametrize("mode", ["memory", "disk"])
def test_restore_gives_the_values_from_before_the_call(mode):
    model, state = _state()
    expected = {k: v.detach().clone() for k, v in model.state_dict().items()}
    backup = Backup(state, mode)
    with torch.no_grad():
        model[1].weight.add_(1.0)
        model[1].running_mean.add_(5.0)
    state["counts"][:] = 7.0
    restored = backup.state()
    model.load_state_dict(restored["model"])
    for name, value in model.state_dict().items():
        assert torch.equal(value, expected[name]), name
    assert restored["counts"].tolist() == [0.0] * 5
    assert torch.equal(restored["graph"].to_dense(), torch.eye(3))
    backup.release()


def test_disk_backup_holds_nothing_in_memory_and_deletes_its_file():
    _, state = _state()
    backup = Backup(state, "disk")
    assert backup.nbytes == 0 and backup.disk_bytes > 0
    path = backup._path
    assert os.path.exists(path)
    backup.release()
    assert not os.path.exists(path)


def test_a_reference_modified_in_place_is_detected_not_silently_restored():
    _, state = _state()
    backup = Backup(state)
    state["store"].add_(1)  # breaks the read-only promise
    with pytest.raises(RuntimeError, match=r"modified in place.*store"):
        backup.state()


def test_bad_mode_is_named():
    with pytest.raises(ValueError, match="mode must be 'memory' or 'disk', got 'off'"):
        Backup({}, "off")
