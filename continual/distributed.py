"""Data-parallel training with ``torch.distributed``: which rows a rank owns, and the few
collectives ranks need to agree.

Nothing here starts processes or talks to other machines: ``torchrun`` (or
``continual-run trainer.nproc=N``) starts them and initialises the process group, and
``torch.distributed`` carries every message. When no process group is initialised, or it has
one process, every function is the single-process identity: a rank owns every row, and an
agreement is the local value. So library code calls them unconditionally.

The rules of data-parallel training here:

- **Training batches.** The learner reads global batches of ``batch_size * world_size`` rows
  in the single-process order, and each rank takes every ``world_size``-th row of a global
  batch, from its rank on (:func:`local_rows`). ``DistributedDataParallel`` averages the
  gradients with each rank's rows as weights (:func:`data_parallel`), so ``W`` ranks with
  batch ``b`` take the same steps as one process with batch ``W * b``, even when the last
  global batch does not split evenly.
- **Stores.** A store is filled from the rank's fixed shard of an experience
  (:func:`local_part`, rows ``rank::world_size``), with a byte capacity every rank agrees on
  (:func:`agree_min`): the global store is the union of the shards, and each rank's shard is
  charged to that rank's budget.
- **Budgets.** A budget that fails on one rank fails on every rank (:func:`failing_ranks`),
  so that no rank waits forever for a collective another rank will never reach.
- **Writing.** Only rank 0 writes files (:func:`is_writer`); :func:`gather_to_writer` brings
  every rank's state to it.

Examples
--------
>>> import numpy as np
>>> from continual.distributed import local_rows, rank, world_size
>>> rank(), world_size()  # no process group: one process owns everything
(0, 1)
>>> local_rows(np.arange(6)).tolist()
[0, 1, 2, 3, 4, 5]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

__all__ = [
    "SHARDS",
    "BatchRows",
    "agree_min",
    "backend_for",
    "data_parallel",
    "failing_ranks",
    "gather_to_all",
    "gather_to_writer",
    "is_distributed",
    "is_writer",
    "local_part",
    "local_rows",
    "local_share",
    "mean_over_ranks",
    "merge_shards",
    "rank",
    "sum_over_ranks",
    "world_size",
]


def is_distributed() -> bool:
    """Whether a process group of more than one process is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """The number of processes training together (1 without a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def is_writer() -> bool:
    """Whether this process writes logs, figures and checkpoints: rank 0, or the only one."""
    return rank() == 0


def backend_for(device: str | torch.device) -> str:
    """The ``torch.distributed`` backend for training on ``device``: nccl on CUDA, else gloo.

    Examples
    --------
    >>> from continual.distributed import backend_for
    >>> backend_for("cpu"), backend_for("cuda:0")
    ('gloo', 'nccl')
    """
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def local_rows(index: Any) -> Any:
    """The part of ``index`` (a 1-D tensor, array or sequence of rows) this rank owns:
    every ``world_size``-th entry from position ``rank``. Without a process group, ``index``.

    Examples
    --------
    >>> import torch
    >>> from continual.distributed import local_rows
    >>> local_rows(torch.tensor([7, 3, 5])).tolist()
    [7, 3, 5]
    """
    if not is_distributed():
        return index
    return index[rank() :: world_size()]


def local_part(payload: Any) -> Any:
    """This rank's fixed shard of an ``(X, y)`` payload: rows ``rank::world_size`` of both
    (the whole payload without a process group). A store filled from it holds this rank's
    part of the global store.

    ``X`` may be an array, a tensor or a :class:`~continual.samples.LazySamples`; a payload
    that is not a pair of row-indexable parts is returned whole.

    Examples
    --------
    >>> import numpy as np
    >>> from continual.distributed import local_part
    >>> X, y = local_part((np.zeros((4, 2)), np.arange(4)))
    >>> X.shape, y.tolist()
    ((4, 2), [0, 1, 2, 3])
    """
    if not is_distributed():
        return payload
    if not (isinstance(payload, tuple) and len(payload) == 2):
        return payload
    x, y = payload
    rows = np.arange(len(y))[rank() :: world_size()]
    return _rows(x, rows), _rows(y, rows)


def _rows(part: Any, rows: np.ndarray) -> Any:
    """Rows ``rows`` of a tensor, an array, a :class:`~continual.samples.LazySamples` (read
    nothing) or a list."""
    if isinstance(part, torch.Tensor):
        return part[torch.from_numpy(rows).to(part.device)]
    if isinstance(part, list):
        return [part[i] for i in rows]
    return part[rows]


def agree_min(value: int) -> int:
    """The smallest ``value`` over the ranks (an all-reduce); ``value`` alone without a group.

    Stores size themselves with it, so that every rank keeps the same number of samples.
    """
    if not is_distributed():
        return int(value)
    tensor = torch.tensor([int(value)], dtype=torch.int64, device=_collective_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return int(tensor.item())


def sum_over_ranks(values: Sequence[float] | torch.Tensor) -> Any:
    """Element-wise sums of ``values`` over the ranks (an all-reduce): a list of floats for a
    sequence, a tensor (of ``values``'s dtype, on its device) for a tensor. Without a group,
    the values themselves.

    Sharded evaluation adds the ranks' counts with it, and iCaRL its class-mean sums.

    Examples
    --------
    >>> import torch
    >>> from continual.distributed import sum_over_ranks
    >>> sum_over_ranks([3, 4.5]), sum_over_ranks(torch.ones(2)).tolist()
    ([3.0, 4.5], [1.0, 1.0])
    """
    if isinstance(values, torch.Tensor):
        if not is_distributed():
            return values
        tensor = values.detach().to(_collective_device(), copy=True)
        dist.all_reduce(tensor)
        return tensor.to(values.device)
    if not is_distributed():
        return [float(v) for v in values]
    return sum_over_ranks(torch.tensor(list(values), dtype=torch.float64)).tolist()


def mean_over_ranks(total: float, count: int) -> float:
    """``sum(total) / sum(count)`` over the ranks (NaN when every count is 0): a mean of
    which each rank computed its share, such as the correct predictions on its test rows.

    Examples
    --------
    >>> from continual.distributed import mean_over_ranks
    >>> mean_over_ranks(3, 4)
    0.75
    """
    summed, counted = sum_over_ranks([float(total), float(count)])
    return summed / counted if counted else float("nan")


def failing_ranks(failed: bool) -> list[int]:
    """The ranks where ``failed`` is true (an all-gather of one flag per rank).

    Every rank calls it at the same check, so that a failure on one rank is known on all of
    them and they stop together.

    Examples
    --------
    >>> from continual.distributed import failing_ranks
    >>> failing_ranks(True), failing_ranks(False)
    ([0], [])
    """
    if not is_distributed():
        return [0] if failed else []
    flags = torch.zeros(world_size(), dtype=torch.int64, device=_collective_device())
    flags[rank()] = int(bool(failed))
    dist.all_reduce(flags)
    return [r for r, flag in enumerate(flags.tolist()) if flag]


def gather_to_all(value: Any) -> list[Any]:
    """Every rank's ``value``, in rank order, on every rank (``torch.distributed``'s
    ``all_gather_object``); without a process group, ``[value]``.

    Examples
    --------
    >>> from continual.distributed import gather_to_all
    >>> gather_to_all({"model": 40})
    [{'model': 40}]
    """
    if not is_distributed():
        return [value]
    gathered: list[Any] = [None] * world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def gather_to_writer(value: Any) -> list[Any] | None:
    """Every rank's ``value``, in rank order, on the writer (rank 0); None on the others.

    Carried by ``torch.distributed.gather_object``; without a process group, ``[value]``.
    """
    if not is_distributed():
        return [value]
    gathered: list[Any] | None = [None] * world_size() if is_writer() else None
    dist.gather_object(value, gathered, dst=0)
    return gathered


#: The key of a state dict naming its entries that hold this rank's rows (an exemplar store's).
SHARDS = "shards"
UNION = "union_of_ranks"


def merge_shards(states: Sequence[Any]) -> Any:
    """One state from every rank's state (in rank order), for a checkpoint.

    What ranks hold alike (weights, counters) is taken from rank 0. A dict whose ``"shards"``
    entry names some of its keys (an exemplar store's ``x`` and ``y``) holds this rank's rows
    there: those are concatenated in rank order, and the dict records how many ranks they
    came from under ``"union_of_ranks"``, for :func:`local_share`.

    Examples
    --------
    >>> import torch
    >>> from continual.distributed import merge_shards
    >>> ranks = [{"x": torch.tensor([1, 2]), "n": 5, "shards": ["x"]},
    ...          {"x": torch.tensor([3]), "n": 5, "shards": ["x"]}]
    >>> merged = merge_shards(ranks)
    >>> merged["x"].tolist(), merged["n"], merged["union_of_ranks"]
    ([1, 2, 3], 5, 2)
    """
    first = states[0]
    if isinstance(first, dict):
        merged = {key: merge_shards([state[key] for state in states]) for key in first}
        for key in first.get(SHARDS, ()):
            parts = [state[key] for state in states if state[key] is not None]
            merged[key] = torch.cat([torch.as_tensor(part) for part in parts]) if parts else None
        if SHARDS in first:
            merged[UNION] = len(states)
        return merged
    if isinstance(first, (list, tuple)) and all(len(s) == len(first) for s in states):
        return type(first)(merge_shards(items) for items in zip(*states))
    return first


def local_share(state: dict[str, Any]) -> dict[str, Any]:
    """This rank's rows of a state that :func:`merge_shards` made a union (rows
    ``rank::world_size`` of each key named by ``"shards"``); any other state unchanged.

    A checkpoint written by ``W`` ranks resumes on ``W'``: each rank takes every ``W'``-th
    stored row, and one process takes them all.

    Examples
    --------
    >>> import torch
    >>> from continual.distributed import local_share
    >>> local_share({"x": torch.tensor([1, 2, 3]), "shards": ["x"], "union_of_ranks": 2})["x"]
    tensor([1, 2, 3])
    """
    if UNION not in state:
        return state
    shared = {key: value for key, value in state.items() if key != UNION}
    for key in state.get(SHARDS, ()):
        if shared[key] is not None:
            shared[key] = local_rows(shared[key])
    return shared


def data_parallel(model: nn.Module, rows: BatchRows | None = None) -> nn.Module:
    """``model`` wrapped in ``DistributedDataParallel`` (``model`` itself without a group).

    With ``rows``, the gradients are averaged with each rank's batch rows as weights (a
    communication hook adds the row count to each gradient bucket's all-reduce): ranks whose
    batches differ in size (the last rows of a global batch, replayed samples) then take
    exactly the step of one process on all their rows together. Without it, DDP's plain mean.

    The wrapper is made for one experience and dropped after it, so that its gradient buckets
    do not outlive the training that needs them. Buffers are broadcast from rank 0 at every
    forward (batch-norm statistics stay equal) unless the model holds a sparse buffer, which
    DDP cannot broadcast (LightGCN's graph: identical on every rank anyway). Frozen
    parameters (a grown network's old blocks) are not synchronised; every trainable one must
    take part in each step's loss.
    """
    if not is_distributed():
        return model
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    options: dict[str, Any] = {}
    if any(buffer.layout != torch.strided for buffer in model.buffers()):
        options["broadcast_buffers"] = False
    parallel = DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None, **options
    )
    if rows is not None:
        parallel.register_comm_hook(rows, _row_weighted_mean)
    return parallel


class BatchRows:
    """The rows of this rank's current batch: the weight of its gradient in the all-reduce.

    The state of the communication hook :func:`data_parallel` registers. The learner sets
    :attr:`rows` before each backward pass, and 0 once the rank has no batch left (a rank
    waiting in DDP's ``join`` then adds nothing).

    Examples
    --------
    >>> from continual.distributed import BatchRows
    >>> BatchRows().rows
    0.0
    """

    def __init__(self) -> None:
        self.rows = 0.0


def _row_weighted_mean(state, bucket):
    """DDP communication hook: the ranks' gradients averaged with their rows as weights, in
    one all-reduce (the rows travel appended to the bucket). ``state`` is a
    :class:`BatchRows`, ``bucket`` a ``torch.distributed.GradBucket``; returns a future of the
    averaged bucket. Unannotated: DDP rejects string annotations."""
    buffer = bucket.buffer()
    rows = torch.full((1,), float(state.rows), dtype=buffer.dtype, device=buffer.device)
    packed = torch.cat([buffer * float(state.rows), rows])
    reduced = dist.all_reduce(packed, async_op=True).get_future()

    def unpack(future):
        """The weighted mean, from the reduced bucket and rows."""
        total = future.value()[0]
        return total[:-1] / total[-1].clamp_min(1.0)

    return reduced.then(unpack)


def _collective_device() -> torch.device:
    """Where collective tensors live: the current CUDA device under nccl, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
