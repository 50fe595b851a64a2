import itertools
import math

import numpy as np
import pytest
import torch

from continual import MemoryAccountant, nbytes
from recsys.dsl import DenseTable, DynamicSparsity, SparseTable, cosine_ratio


def train_steps(table, dsl, optimizer, steps, seed=0):
    generator = torch.Generator().manual_seed(seed)
    target = torch.randn(table.shape, generator=generator)
    counts = []
    for step in range(steps):
        weight = table.dense()
        if dsl.wants_gradient(step):
            weight.retain_grad()
        loss = (weight - target).pow(2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        dsl.after_step(step, weight)
        counts.append((table.nnz, table.mask.count(), int((table.dense() != 0).sum())))
    return counts


def test_nonzeros_constant_through_prune_and_grow():
    table = SparseTable(50, 8, density=0.3, seed=0)
    nnz = table.nnz
    optimizer = torch.optim.Adam(table.parameters(), lr=0.05)
    dsl = DynamicSparsity(table, optimizer, total_steps=40, update_every=5, accumulate=2)
    before = table.active().clone()
    counts = train_steps(table, dsl, optimizer, 40)
    assert dsl.n_updates == 8
    assert all(c[0] == nnz and c[1] == nnz for c in counts)
    assert all(c[2] <= nnz for c in counts)
    assert not torch.equal(before, table.active())  # the mask really moved
    state = optimizer.state[table.values]
    assert state["exp_avg"].shape == (nnz,) and state["exp_avg_sq"].shape == (nnz,)


def test_prune_drops_smallest_and_grow_takes_largest_gradient():
    table = SparseTable(1, 6, density=0.5, seed=3)
    active = table.active().tolist()
    table.values.data = torch.arange(1, len(active) + 1, dtype=torch.float32)
    optimizer = torch.optim.Adam(table.parameters())
    dsl = DynamicSparsity(table, optimizer, total_steps=10)
    inactive = sorted(set(range(6)) - set(active))
    grad = torch.zeros(1, 6)
    grad[0, inactive[-1]] = 5.0
    dsl._grad = grad
    assert dsl.prune_and_grow(0.1) == 1
    expected = sorted([*active[1:], inactive[-1]])
    assert table.active().tolist() == expected
    dense = table.dense().detach().ravel()
    assert dense[inactive[-1]] == 0 and dense[active[0]] == 0


def test_cosine_schedule_end_points():
    assert cosine_ratio(0, 10) == 0.5 and cosine_ratio(10, 10) == pytest.approx(0.005)
    ratios = [cosine_ratio(s, 10) for s in range(11)]
    assert all(a >= b for a, b in itertools.pairwise(ratios))


def bytes_at(density, n_rows=1000, dim=64):
    table = DenseTable(n_rows, dim) if density == 1 else SparseTable(n_rows, dim, density, 0)
    optimizer = torch.optim.Adam(table.parameters())
    table.dense().sum().backward()
    optimizer.step()
    accountant = MemoryAccountant()
    accountant.track("table", table)
    accountant.track("optimizer", optimizer)
    return accountant.ledger().accounts


def test_bytes_fall_with_density_and_meet_the_35_percent_target():
    dense = bytes_at(1.0)
    assert dense == {"table": 256_000, "optimizer": 2 * 256_000 + 4}  # Adam: two moments + step
    ledgers = {d: bytes_at(d) for d in (0.5, 0.2, 0.1)}
    totals = [sum(ledgers[d].values()) for d in (0.5, 0.2, 0.1)]
    assert totals == sorted(totals, reverse=True)
    sparse = ledgers[0.2]
    nnz = (sparse["table"] - 64_000 // 8) // 4
    assert abs(nnz - 12_800) < 400
    assert sparse["optimizer"] == 2 * 4 * nnz + 4
    assert sum(sparse.values()) <= 0.35 * sum(dense.values())
    assert sparse["table"] <= 0.35 * dense["table"]


def test_bad_density_is_named():
    with pytest.raises(ValueError, match="density"):
        SparseTable(3, 3, density=0.0)
    assert nbytes(SparseTable(8, 8, density=1.0)) == 8 + 64 * 4
    assert math.isclose(SparseTable(100, 10, 0.5, 0).nnz / 1000, 0.5, abs_tol=0.05)
    assert np.isfinite(SparseTable(2, 2, 0.5).dense().detach().numpy()).all()
