"""Precision: autocast, the gradient scaler, and what mixed precision keeps."""

import pytest
import torch

from continual import nbytes
from continual.precision import Precision

CPU = torch.device("cpu")


def test_full_precision_changes_nothing():
    precision = Precision("32", CPU)
    with precision.autocast():
        out = torch.nn.Linear(3, 2)(torch.ones(1, 3))
    assert out.dtype == torch.float32
    assert precision.scaler is None and nbytes(precision) == 0 and precision.state_dict() == {}


def test_the_16_bit_scaler_skips_a_step_whose_gradients_overflowed():
    layer = torch.nn.Linear(2, 1)
    before = layer.weight.detach().clone()
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    precision = Precision("16-mixed", CPU)
    with precision.autocast():
        loss = layer(torch.full((1, 2), 6e4)).sum() * 1e4  # overflows float16 once scaled
    precision.backward(loss)
    precision.step(optimizer)
    assert torch.equal(layer.weight, before)  # skipped, and the scale backed off
    assert precision.scaler.get_scale() < 2.0**16
    assert nbytes(precision) == precision.planned_nbytes() == 8


def test_an_unknown_precision_is_named():
    with pytest.raises(ValueError, match=r"precision must be one of .* got 'fp8'"):
        Precision("fp8", CPU)
