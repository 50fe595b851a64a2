"""Samples of a torch ``Dataset`` read on demand: the input half of a lazy payload."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from continual.distributed import local_rows

__all__ = ["LazySamples", "dataset_labels"]


class LazySamples:
    """The inputs of some rows of a torch ``Dataset``, read only when asked.

    A lazy payload is ``(LazySamples, y)``: the rows' labels are an array held in memory, their
    inputs stay in the data set (on disk, for an ``ImageFolder`` or ``CIFAR100``) until a
    training batch, a prediction or an exemplar store reads them. Indexing returns another
    ``LazySamples`` over a subset of the rows and reads nothing.

    ``dataset[i]`` must return a tensor or an array, or a tuple whose first item is one (the
    ``(image, target)`` of torchvision data sets, whose target is ignored): give an image data
    set a transform such as ``PILToTensor()`` (uint8, 1 byte per value when stored) or
    ``ToTensor()`` (float32, 4 bytes). Rows read together must share dtype and shape.

    Parameters
    ----------
    dataset
        A map-style torch ``Dataset`` (``__getitem__`` and ``__len__``).
    indices
        Positions in ``dataset`` of the rows, in order; None takes every row.

    Examples
    --------
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> from continual.samples import LazySamples
    >>> dataset = TensorDataset(torch.arange(12, dtype=torch.uint8).reshape(6, 2),
    ...                         torch.tensor([0, 1, 0, 1, 0, 1]))
    >>> odd = LazySamples(dataset, [1, 3, 5])
    >>> len(odd), odd[1:].indices.tolist()
    (3, [3, 5])
    >>> odd.read([2, 0])
    tensor([[10, 11],
            [ 2,  3]], dtype=torch.uint8)
    >>> batches = odd.loader(2, labels=torch.tensor([1, 1, 1]),
    ...                      generator=torch.Generator().manual_seed(0))
    >>> [(x.shape[0], y.tolist()) for x, y in batches]
    [(2, [1, 1]), (1, [1])]
    """

    def __init__(self, dataset: Any, indices: Any = None) -> None:
        if not isinstance(dataset, Dataset) or not hasattr(dataset, "__len__"):
            raise TypeError(
                "dataset must be a map-style torch.utils.data.Dataset with __len__, got "
                f"{type(dataset).__name__}"
            )
        size = len(dataset)
        if indices is None:
            rows = np.arange(size, dtype=np.int64)
        else:
            rows = np.asarray(indices)
            if rows.ndim != 1 or (rows.size and not np.issubdtype(rows.dtype, np.integer)):
                raise ValueError(
                    f"indices must be a 1-D array of integer positions in dataset, got "
                    f"{_brief(indices)}"
                )
            rows = rows.astype(np.int64)
            if rows.size and (rows.min() < 0 or rows.max() >= size):
                raise ValueError(
                    f"indices must lie in [0, {size - 1}] (dataset has {size} rows), got "
                    f"values from {rows.min()} to {rows.max()}"
                )
        rows.flags.writeable = False
        self.dataset = dataset
        self.indices = rows
        self._spec: tuple[torch.dtype, tuple[int, ...]] | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, key: Any) -> LazySamples:
        """The rows ``key`` (a slice, integer positions or a boolean mask), reading nothing."""
        if isinstance(key, numbers.Integral):
            raise TypeError(
                "LazySamples[key] selects rows and needs a slice, an integer array or a "
                f"boolean mask, got the int {key!r}; use read([{key!r}]) to read one sample"
            )
        if isinstance(key, torch.Tensor):
            key = key.cpu().numpy()
        return LazySamples(self.dataset, self.indices[key])

    @property
    def sample_dtype(self) -> torch.dtype:
        """dtype of one sample (the first row is read once to find it)."""
        return self._probe()[0]

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample (the first row is read once to find it)."""
        return self._probe()[1]

    def read(self, rows: Sequence[int] | np.ndarray | torch.Tensor | None = None) -> torch.Tensor:
        """The inputs of positions ``rows`` (all when None) stacked into one CPU tensor.

        Reads exactly those rows of the data set, in that order.
        """
        positions = np.arange(len(self)) if rows is None else np.asarray(rows, dtype=np.int64)
        if positions.ndim != 1:
            raise ValueError(f"rows must be 1-D positions, got shape {positions.shape}")
        if not len(positions):
            dtype, shape = self._probe() if len(self) else (torch.float32, ())
            return torch.empty((0, *shape), dtype=dtype)
        return torch.stack([self._input(int(p)) for p in positions])

    def loader(
        self,
        batch_size: int,
        *,
        labels: torch.Tensor | np.ndarray | None = None,
        generator: torch.Generator | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        local: bool = False,
    ) -> DataLoader:
        """A ``DataLoader`` of batches of these rows: inputs, or ``(inputs, labels)``.

        Parameters
        ----------
        batch_size
            Rows per batch (the last one may be smaller).
        labels
            One label per row; with them the batches are ``(x, y)`` pairs.
        generator
            With a generator the rows are shuffled by ``torch.randperm(len(self),
            generator=generator)`` and cut in order into batches, exactly as
            :func:`continual.learner.array_batches` cuts an array (the same generator gives
            the same batches). Without one the rows come in order.
        num_workers, pin_memory
            As in ``torch.utils.data.DataLoader``. With workers, their seed is drawn from
            ``generator`` (so that random transforms are reproducible too).
        local
            Cut ``batch_size`` rows as above, then keep this rank's part of each batch
            (:func:`continual.distributed.local_rows`): under data-parallel training each
            rank reads only the rows it trains on.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
            raise TypeError(f"batch_size must be a positive int, got {batch_size!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if labels is not None:
            labels = torch.as_tensor(labels)
            if labels.shape != (len(self),):
                raise ValueError(
                    f"labels must be 1-D with one label per row ({len(self)}), got shape "
                    f"{tuple(labels.shape)}"
                )
        if generator is None:
            order = torch.arange(len(self))
        else:
            order = torch.randperm(len(self), generator=generator)
        chunks = order.split(int(batch_size))
        if local:
            chunks = [part for part in map(local_rows, chunks) if len(part)]
        batches = [chunk.tolist() for chunk in chunks]
        # the loader draws its workers' base seed from its generator on every iteration:
        # give it its own, so that the global torch generator is neither read nor changed
        seed = 0
        if num_workers and generator is not None:
            seed = int(torch.randint(2**62, (), generator=generator))
        return DataLoader(
            _Rows(self, labels),
            batch_sampler=batches,
            num_workers=num_workers,
            pin_memory=pin_memory,
            generator=torch.Generator().manual_seed(seed),
        )

    def __repr__(self) -> str:
        return f"LazySamples(dataset={type(self.dataset).__name__}, n={len(self)})"

    # ----------------------------------------------------------------- internals
    def _input(self, position: int) -> torch.Tensor:
        index = int(self.indices[position])
        item = self.dataset[index]
        sample = item[0] if isinstance(item, (tuple, list)) else item
        if isinstance(sample, torch.Tensor):
            return sample
        if isinstance(sample, np.ndarray):
            return torch.from_numpy(np.require(sample, requirements="W"))
        raise TypeError(
            f"dataset[{index}] must give a tensor or an array (or a tuple whose first item is "
            f"one), got {type(sample).__name__}; give the data set a transform such as "
            "torchvision.transforms.PILToTensor() (uint8) or ToTensor() (float32)"
        )

    def _probe(self) -> tuple[torch.dtype, tuple[int, ...]]:
        if self._spec is None:
            if not len(self):
                raise ValueError("an empty LazySamples has no sample to read a dtype from")
            first = self._input(0)
            self._spec = (first.dtype, tuple(first.shape))
        return self._spec


class _Rows(Dataset):
    """Position ``i`` of a :class:`LazySamples` (with its label): what the loader reads."""

    def __init__(self, samples: LazySamples, labels: torch.Tensor | None) -> None:
        self.samples = samples
        self.labels = labels

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, position: int) -> Any:
        x = self.samples._input(position)
        return x if self.labels is None else (x, self.labels[position])


def dataset_labels(dataset: Any, y: Any = None, *, name: str = "data") -> np.ndarray:
    """The labels of every row of ``dataset``: ``y`` when given, else ``dataset.targets``.

    ``dataset`` is a torch ``Dataset`` or a :class:`LazySamples` (its rows' targets). Reads
    no sample. ``name`` is the argument the data set came in, for error messages.

    Examples
    --------
    >>> import torch
    >>> from torch.utils.data import Dataset
    >>> from continual.samples import LazySamples, dataset_labels
    >>> class Squares(Dataset):
    ...     targets = [0, 1, 1]
    ...     def __len__(self):
    ...         return 3
    ...     def __getitem__(self, i):
    ...         return torch.full((2,), i * i)
    >>> dataset_labels(Squares())
    array([0, 1, 1])
    >>> dataset_labels(Squares(), y=[2, 2, 0])
    array([2, 2, 0])
    >>> dataset_labels(LazySamples(Squares(), [2, 0]))
    array([1, 0])
    """
    if y is not None:
        labels = _numpy(y)
        if labels.ndim != 1 or len(labels) != len(dataset):
            raise ValueError(
                f"y must hold one label per row of {name} ({len(dataset)} rows), got shape "
                f"{labels.shape}"
            )
        return labels
    rows = dataset if isinstance(dataset, LazySamples) else None
    source = dataset.dataset if rows is not None else dataset
    targets = getattr(source, "targets", None)
    if targets is None:
        raise ValueError(
            f"{name} is a {type(source).__name__} without a `targets` attribute and y is "
            "None; pass y, one label per row of the data set"
        )
    labels = _numpy(targets)
    if labels.ndim != 1 or len(labels) != len(source):
        raise ValueError(
            f"{name}'s targets must hold one label per row of the data set ({len(source)} "
            f"rows), got shape {labels.shape}"
        )
    return labels if rows is None else labels[rows.indices]


def _numpy(labels: Any) -> np.ndarray:
    if isinstance(labels, torch.Tensor):
        return labels.detach().cpu().numpy()
    return np.asarray(labels)


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
