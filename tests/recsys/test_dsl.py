import itertools
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from continual import Learner, MemoryAccountant, Plugin, nbytes
from continual.bitmask import BitMask
from recsys.dsl import (
    DenseTable,
    DynamicSparsity,
    SparseTable,
    cosine_ratio,
    select_extreme,
    table_nbytes,
)


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


def table_with(flags, values):
    """A SparseTable of one row whose mask and values are set by hand."""
    flags = np.asarray(flags, dtype=bool)
    table = SparseTable(1, flags.size, density=flags.mean(), seed=0)
    table.set_mask(BitMask.from_bool(flags))
    table.values.data = torch.as_tensor(values, dtype=torch.float32)
    return table


def naive_pass(flags, values, score, n):
    """DSL's pass written plainly with full sorts (no ties in ``values`` or ``score``)."""
    active = np.flatnonzero(flags)
    inactive = np.flatnonzero(~flags)
    dropped = set(active[np.argsort(np.abs(values))[:n]].tolist())
    grown = set(inactive[np.argsort(-score[inactive])[:n]].tolist())
    kept = [p for p in active.tolist() if p not in dropped]
    old = dict(zip(active.tolist(), values.tolist()))
    new_active = sorted(kept + sorted(grown))
    return new_active, [old.get(p, 0.0) for p in new_active]


@pytest.mark.parametrize("ratio", [0.5, 0.2, 0.01])
def test_the_pass_matches_a_plain_sorted_reference(ratio):
    rng = np.random.default_rng(1)
    size = 5_000
    flags = np.zeros(size, dtype=bool)
    flags[rng.choice(size, 1_000, replace=False)] = True
    values = rng.permutation(np.arange(1, 1_001)).astype(np.float32) * rng.choice([-1, 1], 1_000)
    score = rng.permutation(size).astype(np.float32) + 1.0  # distinct, all positive
    table = table_with(flags, np.zeros(1_000))
    optimizer = torch.optim.Adam(table.parameters())
    (
        table.dense() * torch.randn(1, size, generator=torch.Generator().manual_seed(0))
    ).sum().backward()
    optimizer.step()  # distinct moments per entry
    moments = {k: optimizer.state[table.values][k].clone() for k in ("exp_avg", "exp_avg_sq")}
    table.values.data = torch.from_numpy(values / 1_000)  # distinct magnitudes
    values_before = table.values.detach().numpy().copy()
    n = int(np.ceil(ratio * 1_000))
    dsl = DynamicSparsity(total_steps=10)
    dsl.accumulate_gradient(torch.from_numpy(score).view(1, size))
    assert dsl.prune_and_grow(table, optimizer, ratio) == n
    expected_active, expected_values = naive_pass(flags, values_before, score, n)
    assert table.active().tolist() == expected_active
    assert table.values.detach().tolist() == expected_values
    assert table.nnz == table.mask.count() == 1_000
    # Adam's moments moved with their entries; grown entries start at 0
    for key, before in moments.items():
        old = dict(zip(np.flatnonzero(flags).tolist(), before.tolist()))
        expected = [old.get(p, 0.0) for p in expected_active]
        assert optimizer.state[table.values][key].tolist() == expected


def test_grow_spreads_zero_gradient_ties_evenly():
    flags = np.zeros(20, dtype=bool)
    flags[:4] = True  # active 0..3, values 1..4: the pass drops all four
    table = table_with(flags, [1.0, 2.0, 3.0, 4.0])
    grad = torch.zeros(1, 20)
    grad[0, 10], grad[0, 4], grad[0, 2] = 5.0, 1.0, 9.0  # position 2 is active: not a candidate
    dsl = DynamicSparsity(total_steps=10)
    dsl.accumulate_gradient(grad)
    assert dsl.prune_and_grow(table, None, 1.0) == 4
    # the two positive inactive entries, then 2 of the 14 zero ties 5..9, 11..19: the tied
    # entries number 0 and 7 (j * 14 // 2), which are positions 5 and 13
    assert table.active().tolist() == [4, 5, 10, 13]
    assert table.values.detach().tolist() == [0.0, 0.0, 0.0, 0.0]


def test_prune_spreads_zero_value_ties_evenly_and_keeps_the_rest():
    flags = np.zeros(12, dtype=bool)
    flags[[0, 2, 3, 5, 7, 8, 9, 11]] = True
    values = [0.0, -0.5, 0.0, 0.3, 0.0, 0.9, 0.0, -0.2]  # four zeros: 0, 3, 7, 9
    table = table_with(flags, values)
    grad = torch.zeros(1, 12)
    grad[0, [1, 4]] = torch.tensor([2.0, 1.0])
    dsl = DynamicSparsity(total_steps=10)
    dsl.accumulate_gradient(grad)
    assert dsl.prune_and_grow(table, None, 0.25) == 2
    # 2 of the 4 zero-valued entries: tied entries j * 4 // 2 = 0 and 2, positions 0 and 7
    assert table.active().tolist() == [1, 2, 3, 4, 5, 8, 9, 11]
    expected = [0.0, -0.5, 0.0, 0.0, 0.3, 0.9, 0.0, -0.2]
    assert table.values.detach().tolist() == pytest.approx(expected)


def plain_extreme(score, n, largest):
    """The n largest (smallest) by a full sort; ties at the cut: tied entries j * m // k."""
    order = sorted(range(len(score)), key=lambda i: -score[i] if largest else score[i])
    cut = score[order[n - 1]]
    beyond = [i for i in range(len(score)) if (score[i] > cut if largest else score[i] < cut)]
    tied = [i for i in range(len(score)) if score[i] == cut]
    k = n - len(beyond)
    return sorted(beyond + [tied[j * len(tied) // k] for j in range(k)])


@pytest.mark.parametrize("largest", [True, False])
def test_select_extreme_against_a_full_sort(largest):
    rng = np.random.default_rng(0)
    score = rng.integers(0, 6, 300).astype(np.float32)  # many ties
    for n in (1, 7, 50, 150, 299):
        got = sorted(select_extreme(score, n, largest).tolist())
        assert got == plain_extreme(score.tolist(), n, largest)
    assert sorted(select_extreme(score, 400, largest).tolist()) == list(range(300))


def test_dense_scatters_values_and_gathers_the_gradient():
    table = SparseTable(7, 5, density=0.4, seed=2)
    active = table.active()
    weight = table.dense()
    expected = torch.zeros(35)
    expected[active] = table.values.detach()
    assert torch.equal(weight.detach().view(-1), expected)
    upstream = torch.arange(35, dtype=torch.float32).view(7, 5)
    (weight * upstream).sum().backward()
    assert torch.equal(table.values.grad, upstream.view(-1)[active])
