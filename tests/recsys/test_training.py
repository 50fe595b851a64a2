from types import SimpleNamespace

import numpy as np
import scipy.sparse as sp
import torch

from recsys.dsl import DynamicSparsity
from recsys.mappers import Full
from recsys.metrics import evaluate
from recsys.models import MF, Representation
from recsys.time_budget import CpuTimeBudget
from recsys.training import BPRLoss, PositivePairs, bpr_batches, make_learner
from streams.communities import planted_communities


def test_an_epoch_shows_every_positive_once_with_a_true_negative():
    train = sp.random(40, 30, density=0.3, random_state=0, format="csr")
    pairs = PositivePairs.from_matrix(train)
    batches = list(bpr_batches(pairs, 16, torch.Generator().manual_seed(1)))
    users = np.concatenate([u for (u, _, _), _ in batches])
    items = np.concatenate([i for (_, i, _), _ in batches])
    negatives = np.concatenate([j for (_, _, j), _ in batches])
    dense = train.toarray() > 0
    assert sorted(zip(users, items)) == sorted(zip(*np.nonzero(dense)))
    assert not dense[users, negatives].any()
    again = list(bpr_batches(pairs, 16, torch.Generator().manual_seed(1)))
    assert all(np.array_equal(a[0][2], b[0][2]) for a, b in zip(batches, again))  # seeded
    other = list(bpr_batches(pairs, 16, torch.Generator().manual_seed(2)))
    assert not np.array_equal(batches[0][0][0], other[0][0][0])


def test_bpr_loss_against_the_formula():
    generator = torch.Generator().manual_seed(0)
    users, items = torch.randn(3, 4, generator=generator), torch.randn(6, 4, generator=generator)
    output = Representation(users, items, users, items, None)
    positive = (users * items[:3]).sum(1)
    negative = (users * items[3:]).sum(1)
    expected = -torch.log(torch.sigmoid(positive - negative)).mean()
    expected = expected + 0.1 * 0.5 * (users.pow(2).sum() + items.pow(2).sum()) / 3
    torch.testing.assert_close(BPRLoss(reg=0.1)(output, None), expected)


def test_the_learner_learns_communities_and_charges_what_it_keeps():
    train, test = planted_communities(200, 240, n_communities=4, seed=0).split_per_user(0.2)
    model = MF(Full(200), Full(240), 200, 240, dim=16, seed=0)
    learner = make_learner(model, lr=0.02, epochs=10, batch_size=256, seed=0)
    learner.train_experience(SimpleNamespace(index=0, train=PositivePairs.from_matrix(train.csr())))
    assert learner.epoch_losses[-1] < learner.epoch_losses[0]
    popular = np.bincount(train.items, minlength=240).argsort()[::-1][:20]
    base = np.mean([np.isin(test.user_items(u), popular).mean() for u in np.unique(test.users)])
    assert evaluate(*model.final(), train, test)["recall"] > base + 0.1
    accounts = learner.accountant.ledger().accounts
    assert accounts == {"model": 442 * 16 * 4, "optimizer": 2 * 442 * 16 * 4 + 4}


def test_the_time_budget_ends_the_experience_mid_epoch():
    train = planted_communities(200, 240, seed=0).csr()
    model = MF(Full(200), Full(240), 200, 240, dim=8, seed=0)
    learner = make_learner(model, epochs=1000, batch_size=32, time_budget=0.02)
    learner.train_experience(SimpleNamespace(index=0, train=PositivePairs.from_matrix(train)))
    timer = next(p for p in learner.plugins if isinstance(p, CpuTimeBudget))
    assert 1 <= learner.n_steps < 1000 * -(-train.nnz // 32)
    assert timer.seconds_used >= 0.02


def test_dsl_keeps_its_nonzeros_while_training_bpr():
    train = planted_communities(100, 120, seed=0).csr()
    model = MF(Full(100), Full(120), 100, 120, dim=8, density=0.25, seed=0)
    nnz, mask = model.table.nnz, model.table.active().clone()
    dsl = DynamicSparsity(total_steps=20, update_every=3)
    learner = make_learner(model, epochs=5, batch_size=128, dsl=dsl)
    learner.train_experience(SimpleNamespace(index=0, train=PositivePairs.from_matrix(train)))
    assert dsl.n_updates == learner.n_steps // 3 > 0
    assert model.table.nnz == model.table.mask.count() == nnz == round(0.25 * 222 * 8)
    assert not torch.equal(mask, model.table.active())
