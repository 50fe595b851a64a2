"""Training precision: full float32, or mixed precision through ``torch.autocast``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

__all__ = ["PRECISIONS", "Precision"]

PRECISIONS = ("32", "bf16-mixed", "16-mixed")


class Precision:
    """How the forward pass, the backward pass and the optimizer step run.

    - ``"32"``: everything in float32.
    - ``"bf16-mixed"``: the forward pass and the loss under ``torch.autocast`` with bfloat16
      (matrix products and convolutions in bfloat16, reductions in float32). bfloat16 has
      float32's range, so gradients need no scaling. Works on the CPU and on CUDA.
    - ``"16-mixed"``: the same with float16, plus a :class:`torch.amp.GradScaler` that
      scales the loss so that small gradients do not underflow, and skips steps whose
      gradients overflowed.

    Weights, gradients and optimizer state stay float32 in every mode, so the optimizer
    state is the same size. What mixed precision keeps beyond that is the gradient scaler's
    state (a float32 scale and an int32 growth counter per device): :meth:`memory_items`
    returns it, and the learner charges it with the optimizer. Autocast's float16 copies of
    the weights live only during a forward pass, like activations, and are not stored.

    Parameters
    ----------
    precision
        ``"32"``, ``"bf16-mixed"`` or ``"16-mixed"``.
    device
        The device training runs on.

    Examples
    --------
    >>> import torch
    >>> from continual.precision import Precision
    >>> layer = torch.nn.Linear(4, 2)
    >>> precision = Precision("bf16-mixed", torch.device("cpu"))
    >>> with precision.autocast():
    ...     out = layer(torch.ones(3, 4))
    >>> out.dtype, layer.weight.dtype
    (torch.bfloat16, torch.float32)
    >>> Precision("32", torch.device("cpu")).planned_nbytes()
    0
    """

    def __init__(self, precision: str, device: torch.device) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.precision = precision
        self.device = device
        dtypes = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}
        self.dtype: torch.dtype | None = dtypes.get(precision)
        self.scaler: torch.amp.GradScaler | None = None
        if precision == "16-mixed":
            self.scaler = torch.amp.GradScaler(device.type)

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """The context the forward pass and the loss run in."""
        if self.dtype is None:
            yield
            return
        with torch.autocast(device_type=self.device.type, dtype=self.dtype):
            yield

    def backward(self, loss: torch.Tensor) -> None:
        """Backpropagate ``loss`` (scaled under ``"16-mixed"``)."""
        if self.scaler is None:
            loss.backward()
        else:
            self.scaler.scale(loss).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Bring the gradients back to their true scale before anything reads them
        (gradient clipping, an ``after_backward`` plugin). A no-op without a scaler."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """Take the optimizer step (skipped by the scaler when gradients overflowed)."""
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler.step(optimizer)
        self.scaler.update()

    def planned_nbytes(self) -> int:
        """Bytes the scaler will keep once it has stepped: a float32 scale and an int32
        growth counter (0 without a scaler)."""
        return 0 if self.scaler is None else 8

    def memory_items(self) -> dict[str, Any]:
        """The scaler's state tensors, once they exist."""
        if self.scaler is None:
            return {}
        items = {"scale": self.scaler._scale, "growth": self.scaler._growth_tracker}
        return {name: value for name, value in items.items() if value is not None}

    def state_dict(self) -> dict[str, Any]:
        """The scaler's state (its scale and counters), or an empty dict."""
        return {} if self.scaler is None else dict(self.scaler.state_dict())

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
