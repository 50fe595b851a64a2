"""Experience and Stream: the units a continual learner consumes.

An :class:`Experience` is one unit of a stream (a task, a time window, a block of interactions, an
episode). A :class:`Stream` is an ordered, re-iterable sequence of experiences with a name and the
seed that produced it.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, overload


def _describe(payload: Any) -> str:
    """Describe a payload briefly: arrays by shape and dtype, tuples element-wise."""
    if isinstance(payload, tuple):
        inner = ", ".join(_describe(item) for item in payload)
        return f"({inner},)" if len(payload) == 1 else f"({inner})"
    shape, dtype = getattr(payload, "shape", None), getattr(payload, "dtype", None)
    if shape is not None and dtype is not None:
        return f"{type(payload).__name__}(shape={tuple(shape)}, dtype={dtype})"
    return repr(payload)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Experience:
    """One unit of a stream: a task, a time window, a block of interactions or an episode.

    Experiences compare by identity: payloads hold arrays, whose element-wise ``==`` has no
    single truth value.

    Parameters
    ----------
    index
        Position of the experience in its stream, counted from 0.
    train
        The training payload; for classification a tuple ``(X, y)`` of numpy arrays, or of
        a :class:`~continual.samples.LazySamples` (rows of a torch ``Dataset``, read on
        demand) and an array of labels.
    test
        The test payload in the same format as ``train``, or None.
    metadata
        Free-form description of the experience, for example ``{"classes": (3, 7)}``.

    Examples
    --------
    >>> import numpy as np
    >>> X, y = np.zeros((4, 2), dtype=np.uint8), np.array([3, 7, 7, 3])
    >>> exp = Experience(0, (X, y), metadata={"classes": (3, 7)})
    >>> exp.classes
    (3, 7)
    >>> exp
    Experience(index=0, train=(ndarray(shape=(4, 2), dtype=uint8),
                               ndarray(shape=(4,), dtype=int64)), test=None,
               metadata={'classes': (3, 7)})
    """

    index: int
    train: Any
    test: Any | None = None
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.index, bool) or not isinstance(self.index, numbers.Integral):
            raise TypeError(f"index must be an int, got {type(self.index).__name__}")
        if self.index < 0:
            raise ValueError(f"index must be a non-negative int, got {self.index}")
        if not isinstance(self.metadata, Mapping):
            raise TypeError(f"metadata must be a mapping, got {type(self.metadata).__name__}")

    @property
    def classes(self) -> Any:
        """The classes of this experience, ``metadata["classes"]``, or None when absent."""
        return self.metadata.get("classes")

    def __repr__(self) -> str:
        return (
            f"Experience(index={self.index}, train={_describe(self.train)}, "
            f"test={_describe(self.test)}, metadata={dict(self.metadata)!r})"
        )


class Stream(Sequence[Experience]):
    """An ordered, re-iterable sequence of experiences.

    Iterating a stream always yields the same experiences in the same order. The experiences'
    ``index`` fields must be ``0, 1, ..., n - 1`` in order. Slicing returns a new stream with the
    same name and seed whose experiences are re-indexed from 0 (payloads and metadata are shared).

    Parameters
    ----------
    experiences
        The experiences, in order. Any iterable; it is read once into a tuple.
    name
        A short name for reports, for example ``"split_digits"``.
    seed
        The seed the stream was generated from, or None when no randomness was involved.

    Examples
    --------
    >>> import numpy as np
    >>> exps = [Experience(i, (np.full((2, 1), i), np.array([i, i]))) for i in range(3)]
    >>> stream = Stream(exps, name="toy", seed=0)
    >>> stream
    Stream(name='toy', n_experiences=3, seed=0)
    >>> [exp.index for exp in stream]
    [0, 1, 2]
    >>> stream[-1].train[1]
    array([2, 2])
    >>> tail = stream[1:]
    >>> tail, [exp.index for exp in tail], tail[0].train[1]
    (Stream(name='toy', n_experiences=2, seed=0), [0, 1], array([1, 1]))
    """

    def __init__(
        self, experiences: Iterable[Experience], *, name: str = "stream", seed: Any = None
    ) -> None:
        self.experiences = tuple(experiences)
        self.name = name
        self.seed = seed
        self._validate()

    def _validate(self) -> None:
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a str, got {type(self.name).__name__}")
        for position, exp in enumerate(self.experiences):
            if not isinstance(exp, Experience):
                raise TypeError(
                    f"experiences must contain Experience objects, got {type(exp).__name__} "
                    f"at position {position}"
                )
            if exp.index != position:
                raise ValueError(
                    f"experiences must have indices 0..{len(self.experiences) - 1} in order, "
                    f"got index {exp.index} at position {position}"
                )

    def __len__(self) -> int:
        return len(self.experiences)

    @overload
    def __getitem__(self, key: int) -> Experience: ...

    @overload
    def __getitem__(self, key: slice) -> Stream: ...

    def __getitem__(self, key: int | slice) -> Experience | Stream:
        if isinstance(key, slice):
            chosen = self.experiences[key]
            renumbered = (dataclasses.replace(exp, index=i) for i, exp in enumerate(chosen))
            return Stream(renumbered, name=self.name, seed=self.seed)
        if isinstance(key, bool) or not isinstance(key, numbers.Integral):
            raise TypeError(f"Stream indices must be int or slice, got {type(key).__name__}")
        return self.experiences[int(key)]

    def __iter__(self) -> Iterator[Experience]:
        return iter(self.experiences)

    @property
    def classes(self) -> list[Any] | None:
        """Per-experience classes from the metadata, or None if any experience has none."""
        classes = [exp.classes for exp in self.experiences]
        if not classes or any(c is None for c in classes):
            return None
        return classes

    def __repr__(self) -> str:
        return f"Stream(name={self.name!r}, n_experiences={len(self)}, seed={self.seed!r})"
