"""Full-ranking evaluation: Recall@K and NDCG@K with the training items masked."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from continual.validation import COUNT, check_params

__all__ = ["as_csr", "evaluate"]


def evaluate(
    user_emb: Any,
    item_emb: Any,
    train: Any,
    test: Any,
    k: int = 20,
    *,
    batch_size: int = 1024,
) -> dict[str, float | int]:
    """Rank every item for every user with test items; return Recall@k and NDCG@k.

    Scores are ``user_emb @ item_emb.T`` in float32, one matrix product per batch of users, on
    the device of the embeddings (tensors on an accelerator stay there; arrays and CPU tensors
    use numpy's BLAS). Each user's training items are set to ``-inf`` through the CSR indices
    of ``train`` (no loop per user), the top ``k`` is taken with :func:`torch.topk` on that
    device, and only the top-``k`` indices come back to the CPU, where hits are looked up in
    the sorted (user, item) keys of ``test``. Recall is hits / |test items| (the LightGCN
    definition); NDCG uses binary gains and the ideal DCG over ``min(k, |test items|)`` from
    a precomputed discount table. Both are averaged over users with at least one test item;
    the others are excluded and counted in ``n_users_without_test``.

    Parameters
    ----------
    user_emb, item_emb
        Arrays or tensors of shape (n_users, d) and (n_items, d).
    train, test
        :class:`~streams.interactions.Interactions` or scipy sparse user × item matrices.
    k
        Cut-off.
    batch_size
        Users per matrix product.

    Returns
    -------
    dict
        ``recall``, ``ndcg``, ``n_users_evaluated`` and ``n_users_without_test``.

    Raises
    ------
    ValueError
        Naming the argument: ``k`` or ``batch_size`` not an int >= 1, embeddings that are not
        2-D, not finite or of different widths, interactions beyond the embeddings.
    TypeError
        When ``train`` or ``test`` is neither interactions nor a sparse matrix.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from recsys.metrics import evaluate
    >>> users = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> items = np.array([[3.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    >>> train = sp.csr_matrix(np.array([[1, 0, 0], [0, 0, 0]]))
    >>> test = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 1]]))
    >>> evaluate(users, items, train, test, k=1)
    {'recall': 0.75, 'ndcg': 1.0, 'n_users_evaluated': 2, 'n_users_without_test': 0}
    """
    check_params(
        {"k": [COUNT], "batch_size": [COUNT]}, {"k": k, "batch_size": batch_size}, "evaluate"
    )
    users = _float32("user_emb", user_emb)
    items = _float32("item_emb", item_emb, users.device)
    if users.shape[1] != items.shape[1]:
        raise ValueError(
            f"user_emb and item_emb must share their width, got {users.shape[1]} and "
            f"{items.shape[1]}"
        )
    train_csr, test_csr = _aligned(as_csr(train, "train"), as_csr(test, "test"), users, items)
    n_test = np.diff(test_csr.indptr)
    evaluated = np.flatnonzero(n_test)
    k = min(int(k), items.shape[0])
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.concatenate([[1.0], np.cumsum(discount)])  # ideal[n] = IDCG with n relevant
    test_keys = _keys(test_csr)
    recall_sum = ndcg_sum = 0.0
    device = users.device
    on_cpu = device.type == "cpu"
    if on_cpu:
        users_np, items_t = users.numpy(), items.numpy().T  # numpy's BLAS: fastest here
    else:
        items_t = items.T
    for start in range(0, evaluated.size, batch_size):
        batch = evaluated[start : start + batch_size]
        if on_cpu:
            scores = torch.from_numpy(users_np[batch] @ items_t)
        else:
            scores = users[torch.from_numpy(batch).to(device)] @ items_t
        rows, cols = _train_entries(train_csr, batch)
        scores[rows.to(device), cols.to(device)] = -torch.inf
        top = torch.topk(scores, k, dim=1, sorted=True).indices.cpu().numpy()
        keys = batch[:, None].astype(np.int64) * test_csr.shape[1] + top
        position = np.minimum(np.searchsorted(test_keys, keys), test_keys.size - 1)
        hits = test_keys[position] == keys
        counts = n_test[batch]
        recall_sum += float((hits.sum(1) / counts).sum())
        ndcg_sum += float(((hits @ discount) / ideal[np.minimum(counts, k)]).sum())
    n = max(evaluated.size, 1)
    return {
        "recall": recall_sum / n,
        "ndcg": ndcg_sum / n,
        "n_users_evaluated": int(evaluated.size),
        "n_users_without_test": int(test_csr.shape[0] - evaluated.size),
    }


def as_csr(data: Any, name: str = "data") -> sp.csr_matrix:
    """A sorted, deduplicated float32 CSR user × item matrix.

    ``data`` is an interactions container (anything with a ``csr()`` method, such as
    ``streams.Interactions``) or a scipy sparse matrix.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from recsys.metrics import as_csr
    >>> as_csr(sp.coo_matrix(([1, 1], ([1, 1], [0, 0])), shape=(2, 2))).toarray().tolist()
    [[0.0, 0.0], [2.0, 0.0]]
    """
    if hasattr(data, "csr") and callable(data.csr):
        data = data.csr()
    if not sp.issparse(data):
        raise TypeError(
            f"{name} must be an interactions container (streams.Interactions) or a scipy "
            f"sparse user x item matrix, got {type(data).__name__}"
        )
    matrix = sp.csr_matrix(data, dtype=np.float32, copy=True)
    matrix.sum_duplicates()
    matrix.sort_indices()
    return matrix


def _float32(name: str, emb: Any, device: torch.device | None = None) -> torch.Tensor:
    """``emb`` as a 2-D float32 tensor on ``device`` (by default where a tensor is, else the
    CPU)."""
    tensor = emb.detach() if isinstance(emb, torch.Tensor) else torch.from_numpy(np.asarray(emb))
    if tensor.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n, d), got shape {tuple(tensor.shape)}")
    tensor = tensor.to(device=device, dtype=torch.float32).contiguous()
    finite = torch.isfinite(tensor)
    if not bool(finite.all()):
        row, column = (int(i) for i in torch.nonzero(~finite)[0])
        raise ValueError(
            f"{name} must be finite; got {float(tensor[row, column])} at row {row}, column {column}"
        )
    return tensor


def _aligned(
    train: sp.csr_matrix, test: sp.csr_matrix, users: torch.Tensor, items: torch.Tensor
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    n_users, n_items = users.shape[0], items.shape[0]
    for name, matrix in (("train", train), ("test", test)):
        if matrix.shape[0] > n_users or matrix.shape[1] > n_items:
            raise ValueError(
                f"{name} has shape {matrix.shape}, larger than the embeddings "
                f"({n_users} users, {n_items} items)"
            )
    shape = (n_users, n_items)
    return _resized(train, shape), _resized(test, shape)


def _resized(matrix: sp.csr_matrix, shape: tuple[int, int]) -> sp.csr_matrix:
    if matrix.shape == shape:
        return matrix
    matrix = matrix.copy()
    matrix.resize(shape)
    return matrix


def _keys(matrix: sp.csr_matrix) -> np.ndarray:
    """Sorted int64 keys user * n_items + item of the stored entries."""
    rows = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
    keys = rows * matrix.shape[1] + matrix.indices
    return keys if keys.size else np.array([-1], dtype=np.int64)


def _train_entries(train: sp.csr_matrix, batch: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(row in batch, item) of every training entry of the batch's users, without a Python loop."""
    starts, stops = train.indptr[batch], train.indptr[batch + 1]
    lengths = stops - starts
    rows = np.repeat(np.arange(batch.size), lengths)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    cols = train.indices[np.repeat(starts, lengths) + offsets]
    return torch.from_numpy(rows), torch.from_numpy(cols.astype(np.int64))
