import warnings

import numpy as np
import scipy.sparse as sp
import torch

from continual import MemoryAccountant, nbytes
from recsys.mappers import Full
from recsys.models import (
    LightGCN,
    _SymmetricProduct,
    adjacency_nbytes,
    index_dtype,
    normalized_adjacency,
)


def random_graph(n_users=30, n_items=45, density=0.1, seed=0):
    rng = np.random.default_rng(seed)
    return sp.csr_matrix((rng.random((n_users, n_items)) < density).astype(np.float32))


def test_adjacency_is_the_normalised_bipartite_graph_with_int32_indices():
    graph = random_graph()
    adjacency = normalized_adjacency(graph)
    assert adjacency.crow_indices().dtype == adjacency.col_indices().dtype == torch.int32
    r = graph.toarray().astype(np.float64)
    a = np.block([[np.zeros((30, 30)), r], [r.T, np.zeros((45, 45))]])
    degree = a.sum(1)
    scale = np.where(degree > 0, 1 / np.sqrt(np.maximum(degree, 1)), 0.0)
    expected = scale[:, None] * a * scale[None, :]
    np.testing.assert_allclose(adjacency.to_dense().numpy(), expected, rtol=1e-6, atol=1e-7)


def test_adjacency_bytes_are_counted_exactly():
    graph = random_graph(seed=1)
    n_edges = graph.nnz
    # 4-byte row pointers for 75 + 1 rows, a 4-byte column and a 4-byte value per entry
    expected = 4 * (30 + 45 + 1) + 8 * 2 * n_edges
    adjacency = normalized_adjacency(graph)
    assert nbytes(adjacency) == adjacency_nbytes(30, 45, n_edges) == expected
    model = LightGCN(Full(30), Full(45), 30, 45, dim=8, graph=graph)
    accountant = MemoryAccountant()
    accountant.track("graph", model.adjacency)
    accountant.track("model", model)
    assert accountant.ledger().accounts == {"graph": expected, "model": (31 + 46) * 8 * 4}


def test_index_dtype_falls_back_to_int64_past_int32():
    assert index_dtype(100, 2**31 - 1) == torch.int32
    assert index_dtype(100, 2**31) == index_dtype(2**31, 5) == torch.int64
    assert adjacency_nbytes(10, 20, 2**30) == 8 * 31 + 12 * 2**31  # int64 indices


def test_propagation_is_the_same_with_int64_indices():
    graph = random_graph(seed=2)
    model = LightGCN(Full(30), Full(45), 30, 45, dim=8, graph=graph)
    weight = model.table.dense().detach().requires_grad_()
    out32 = model.propagate(weight)
    (grad32,) = torch.autograd.grad(out32.pow(2).sum(), weight)
    a = model.adjacency
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model.adjacency = torch.sparse_csr_tensor(
            a.crow_indices().long(), a.col_indices().long(), a.values(), size=a.shape
        )
    out64 = model.propagate(weight)
    (grad64,) = torch.autograd.grad(out64.pow(2).sum(), weight)
    assert torch.equal(out32, out64) and torch.equal(grad32, grad64)


def test_propagation_gradient_equals_the_dense_product_gradient():
    """The symmetric shortcut in the backward pass gives autograd's dense gradient."""
    graph = sp.random(7, 9, density=0.4, random_state=0, format="csr")
    adjacency = normalized_adjacency(graph)
    dense = adjacency.to_dense()
    assert torch.equal(dense, dense.T)
    x = torch.randn(16, 3, requires_grad=True)
    weights = torch.randn(16, 3)
    (_SymmetricProduct.apply(adjacency, x) * weights).sum().backward()
    fast = x.grad.clone()
    x.grad = None
    ((dense @ x) * weights).sum().backward()
    torch.testing.assert_close(fast, x.grad)
