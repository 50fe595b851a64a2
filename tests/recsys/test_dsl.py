import itertools
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from continual import Learner, MemoryAccountant, Plugin, nbytes
from recsys.dsl import DenseTable, DynamicSparsity, SparseTable, cosine_ratio, table_nbytes


class Fit(torch.nn.Module):
    """A sparse table fitted to a target; its output carries the step's dense table."""

    def __init__(self, table, target):
        super().__init__()
        self.table, self.target = table, target

    def forward(self, inputs):
        weight = self.table.dense()
        return SimpleNamespace(weight=weight, loss=(weight - self.target).pow(2).sum())


def train_steps(table, dsl, steps, seed=0):
    """``steps`` Adam steps on the Learner with the DSL plugin; nonzero counts after each."""
    target = torch.randn(table.shape, generator=torch.Generator().manual_seed(seed))
    counts = []

    class Count(Plugin):
        def after_batch(self, learner):
            counts.append((table.nnz, table.mask.count(), int((table.dense() != 0).sum())))

    learner = Learner(
        Fit(table, target),
        plugins=[dsl, Count()],
        optimizer="adam",
        lr=0.05,
        epochs=steps,
        loss=lambda output, _: output.loss,
        batches=lambda payload, size, generator: [(None, None)],
        forward=lambda model, inputs: model(inputs),
        keep_optimizer=True,
    )
    learner.train_experience(SimpleNamespace(index=0, train=None))
    return counts, learner


def test_nonzeros_constant_through_prune_and_grow():
    table = SparseTable(50, 8, density=0.3, seed=0)
    nnz = table.nnz
    dsl = DynamicSparsity(total_steps=40, update_every=5, accumulate=2)
    before = table.active().clone()
    counts, learner = train_steps(table, dsl, 40)
    assert dsl.n_updates == 8 and nnz == 120
    assert all(c[0] == nnz and c[1] == nnz for c in counts)
    assert all(c[2] <= nnz for c in counts)
    assert not torch.equal(before, table.active())  # the mask really moved
    state = learner.optimizer.state[table.values]
    assert state["exp_avg"].shape == (nnz,) and state["exp_avg_sq"].shape == (nnz,)


def test_the_accumulator_lives_only_in_the_steps_before_an_update():
    table = SparseTable(10, 4, density=0.5, seed=0)
    dsl = DynamicSparsity(total_steps=12, update_every=4, accumulate=2)
    held = []

    class Watch(Plugin):
        def after_batch(self, learner):
            held.append(dsl.memory_items()["grad_accumulator"] is not None)

    target = torch.zeros(table.shape)
    learner = Learner(
        Fit(table, target),
        plugins=[dsl, Watch()],
        optimizer="adam",
        epochs=8,
        loss=lambda output, _: output.loss,
        batches=lambda payload, size, generator: [(None, None)],
        forward=lambda model, inputs: model(inputs),
    )
    learner.train_experience(SimpleNamespace(index=0, train=None))
    # steps 2 and 3 of each window of 4 are accumulated; the update at step 3 drops it
    assert held == [False, False, True, False, False, False, True, False]
    assert learner.accountant.ledger().accounts["dsl/grad_accumulator"] == 0


def test_prune_drops_smallest_and_grow_takes_largest_gradient():
    table = SparseTable(1, 6, density=0.5, seed=3)
    active = table.active().tolist()
    table.values.data = torch.arange(1, len(active) + 1, dtype=torch.float32)
    optimizer = torch.optim.Adam(table.parameters())
    dsl = DynamicSparsity(total_steps=10)
    inactive = sorted(set(range(6)) - set(active))
    grad = torch.zeros(1, 6)
    grad[0, inactive[-1]] = 5.0
    dsl.accumulate_gradient(grad)
    assert dsl.prune_and_grow(table, optimizer, 0.1) == 1
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
    assert nnz == 12_800  # exactly density x entries
    assert table_nbytes(1000, 64, 0.2) == sparse["table"] and table_nbytes(1000, 64) == 256_000
    assert sparse["optimizer"] == 2 * 4 * nnz + 4
    assert sum(sparse.values()) <= 0.35 * sum(dense.values())
    assert sparse["table"] <= 0.35 * dense["table"]


def test_bad_density_is_named():
    with pytest.raises(ValueError, match="density"):
        SparseTable(3, 3, density=0.0)
    assert nbytes(SparseTable(8, 8, density=1.0)) == 8 + 64 * 4
    assert SparseTable(100, 10, 0.5, 0).nnz == 500 and SparseTable(3, 3, 0.01).nnz == 1
    assert np.isfinite(SparseTable(2, 2, 0.5).dense().detach().numpy()).all()
