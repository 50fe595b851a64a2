"""A boolean mask stored packed, one bit per entry."""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["BitMask"]


class BitMask:
    """A boolean mask of any shape stored as packed bits.

    The mask costs exactly ``ceil(n / 8)`` bytes for ``n`` entries: the bits live in a
    1-D ``torch.uint8`` tensor in C order, most significant bit first (the layout of
    :func:`numpy.packbits`). Build one with :meth:`from_bool`; the constructor only
    stores an already packed tensor and its shape.

    Parameters
    ----------
    packed
        1-D ``torch.uint8`` tensor holding ``ceil(prod(shape) / 8)`` bytes of packed bits.
        For exact accounting it should own its storage (not be a view of a larger tensor).
    shape
        Shape of the unpacked mask, a tuple of non-negative ints.

    Examples
    --------
    >>> import torch
    >>> from continual.bitmask import BitMask
    >>> mask = BitMask.from_bool(torch.tensor([[True, False, True], [False, False, True]]))
    >>> mask.shape, len(mask), mask.count(), mask.__nbytes__()
    ((2, 3), 6, 3, 1)
    >>> mask[2], mask[3]
    (True, False)
    >>> mask.to_bool()
    tensor([[ True, False,  True],
            [False, False,  True]])
    """

    def __init__(self, packed: torch.Tensor, shape: tuple[int, ...]) -> None:
        _check_shape(shape)
        if not isinstance(packed, torch.Tensor) or packed.dtype != torch.uint8 or packed.ndim != 1:
            raise TypeError(f"packed must be a 1-D torch.uint8 tensor, got {_describe(packed)}")
        expected = math.ceil(math.prod(shape) / 8)
        if packed.numel() != expected:
            raise ValueError(
                f"packed must hold ceil(prod(shape) / 8) = {expected} bytes for shape "
                f"{tuple(shape)}, got {packed.numel()}"
            )
        self.packed = packed
        self.shape = shape

    @classmethod
    def from_bool(cls, mask: torch.Tensor | np.ndarray | Sequence[bool]) -> BitMask:
        """Pack a boolean tensor or array of any shape.

        Parameters
        ----------
        mask
            Boolean ``torch.Tensor``, ``numpy.ndarray`` or nested sequence of bools.

        Returns
        -------
        BitMask
            The packed mask; its ``shape`` is the shape of ``mask``.

        Examples
        --------
        >>> import numpy as np
        >>> from continual.bitmask import BitMask
        >>> mask = BitMask.from_bool(np.ones((3, 5), dtype=bool))
        >>> mask.shape, mask.count(), mask.__nbytes__()
        ((3, 5), 15, 2)
        """
        is_tensor = isinstance(mask, torch.Tensor)
        array = mask.detach().cpu().numpy() if is_tensor else np.asarray(mask)
        if array.dtype != np.bool_:
            raise TypeError(f"mask must have a boolean dtype, got dtype {array.dtype}")
        packed = torch.from_numpy(np.packbits(array.reshape(-1)))
        return cls(packed, tuple(int(size) for size in array.shape))

    def to_bool(self) -> torch.Tensor:
        """Unpack into a CPU ``torch.bool`` tensor of the original shape.

        Examples
        --------
        >>> import torch
        >>> from continual.bitmask import BitMask
        >>> BitMask.from_bool(torch.tensor([False, True, True])).to_bool()
        tensor([False,  True,  True])
        """
        return torch.from_numpy(self._unpacked().astype(bool).reshape(self.shape))

    def count(self) -> int:
        """Number of ``True`` entries.

        Examples
        --------
        >>> import torch
        >>> from continual.bitmask import BitMask
        >>> BitMask.from_bool(torch.arange(20) % 3 == 0).count()
        7
        """
        return int(self._unpacked().sum())

    def memory_items(self) -> dict[str, object]:
        """The stored tensors: the packed bits.

        Examples
        --------
        >>> import torch
        >>> from continual.bitmask import BitMask
        >>> BitMask.from_bool(torch.zeros(9, dtype=torch.bool)).memory_items()
        {'packed': tensor([0, 0], dtype=torch.uint8)}
        """
        return {"packed": self.packed}

    def __nbytes__(self) -> int:
        """Bytes of storage held by the packed bits (``ceil(n / 8)`` when freshly packed)."""
        return self.packed.untyped_storage().nbytes()

    def __len__(self) -> int:
        """Number of entries of the unpacked mask."""
        return math.prod(self.shape)

    def __getitem__(self, index: int) -> bool:
        """Entry at a flat (C-order) index; negative indices count from the end."""
        try:
            position = operator.index(index)
        except TypeError:
            raise TypeError(
                f"index must be an int (a flat C-order index), got {type(index).__name__}"
            ) from None
        n = len(self)
        if not -n <= position < n:
            raise IndexError(f"index must lie in [{-n}, {n}), got {position}")
        position %= n
        byte = int(self.packed[position // 8])
        return bool((byte >> (7 - position % 8)) & 1)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BitMask):
            return NotImplemented
        return tuple(self.shape) == tuple(other.shape) and np.array_equal(
            self._unpacked(), other._unpacked()
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"BitMask(shape={tuple(self.shape)}, count={self.count()}, nbytes={len(self.packed)})"
        )

    def _unpacked(self) -> np.ndarray:
        return np.unpackbits(self.packed.detach().cpu().numpy(), count=len(self))


def _check_shape(shape: object) -> None:
    if not isinstance(shape, tuple) or not all(
        isinstance(size, int | np.integer) and not isinstance(size, bool) and size >= 0
        for size in shape
    ):
        raise TypeError(f"shape must be a tuple of non-negative ints, got {shape!r}")


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.ndim}-D tensor of dtype {value.dtype}"
    return type(value).__name__
