"""The growing network shared by MEMO and DER, and the budget helpers."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from continual import BudgetExceededError, ExemplarStore, Learner, MemoryAccountant, nbytes
from continual.learner import make_optimizer
from strategies.expandable import (
    ExpandableNet,
    UnifiedHead,
    fit_store_to_budget,
)


def _net(**kwargs):
    torch.manual_seed(0)
    shared = nn.Sequential(nn.Linear(4, 6), nn.ReLU())
    block = nn.Sequential(nn.Linear(6, 3), nn.BatchNorm1d(3), nn.ReLU())
    return ExpandableNet(shared, block, feature_dim=3, n_classes=6, **kwargs)


def test_unified_head_copies_old_weights_and_indexes_global_labels():
    torch.manual_seed(0)
    head = UnifiedHead(n_classes=5)
    head.grow(2, [3, 1])
    w, b = head.weight.detach().clone(), head.bias.detach().clone()
    head.grow(4, [0])
    assert torch.equal(head.weight[:2, :2], w) and torch.equal(head.bias[:2], b)
    f = torch.randn(3, 4)
    logits = head(f)
    expected = f @ head.weight.T + head.bias
    assert torch.allclose(logits[:, [3, 1, 0]], expected)
    assert torch.isinf(logits[:, [2, 4]]).all()
    assert nbytes(head) == 4 * 3 * (4 + 1) + 8 * 3
    with pytest.raises(ValueError, match=r"new_classes must be in \[0, 5\)"):
        head.grow(4, [7])


def test_weight_alignment_matches_the_formula():
    head = UnifiedHead(n_classes=4)
    head.grow(3, [0, 1, 2, 3])
    weight = torch.randn(4, 3)
    head.weight.data = weight.clone()
    norms = weight.norm(dim=1)
    gamma = (norms[:2].mean() / norms[2:].mean()).item()
    assert head.align_weights(2) == pytest.approx(gamma)
    assert torch.allclose(head.weight[2:], weight[2:] * gamma)
    assert torch.equal(head.weight[:2], weight[:2])
    assert head.align_weights(0) == 1.0


def test_grow_appends_a_copy_freezes_old_blocks_and_adds_aux_head():
    net = _net()
    net.grow([0, 1])
    assert net.aux_head is None  # the first task trains with plain CE
    net.grow([2, 3, 4])
    first, second = net.blocks
    assert all(
        torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values())
    )
    assert not any(p.requires_grad for p in first.parameters())
    assert all(p.requires_grad for p in second.parameters())
    assert all(p.requires_grad for p in net.shared.parameters())  # train_base default
    assert net.aux_head.out_features == 4 and net.aux_head.in_features == 3
    assert net.head.weight.shape == (5, 6)
    net.train()
    assert not first.training and second.training  # frozen BN stays in eval mode
    x = torch.randn(8, 4)
    trunk = net.shared(x)
    net.eval()
    assert torch.allclose(net.features(x), torch.cat([first(trunk), second(trunk)], 1))
    y = torch.tensor([0, 1, 2, 3, 4, 4])
    assert net.aux_targets(y).tolist() == [0, 0, 1, 2, 3, 3]


def test_frozen_block_statistics_do_not_move_during_training():
    net = _net()
    net.grow([0, 1])
    net.grow([2, 3])
    before = copy.deepcopy(net.blocks[0].state_dict())
    net.train()
    net(torch.randn(16, 4) * 5 + 3)
    after = net.blocks[0].state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_train_shared_false_freezes_the_trunk_and_fresh_init_differs():
    net = _net(train_shared=False, init_from_previous=False)
    net.grow([0])
    assert all(p.requires_grad for p in net.shared.parameters())
    net.grow([1])
    assert not any(p.requires_grad for p in net.shared.parameters())
    net.train()
    assert not net.shared.training
    assert not torch.equal(net.blocks[0][0].weight, net.blocks[1][0].weight)


def test_aux_loss_uses_the_newest_block_and_deepcopy_drops_the_graph():
    net = _net()
    net.grow([0, 1])
    net.grow([2])
    net.train()
    x, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 2, 0, 2])
    net(x)
    expected = nn.functional.cross_entropy(
        net.aux_head(net.last_features[:, -3:]), torch.tensor([0, 0, 1, 1, 0, 1])
    )
    assert torch.allclose(net.aux_loss(y), expected)
    clone = copy.deepcopy(net)  # must not fail on the cached non-leaf feature
    assert clone.last_features is None and net.last_features is not None


@pytest.mark.parametrize(
    ("optimizer", "momentum"), [("sgd", 0.9), ("sgd", 0.0), ("adam", 0.9), ("adamw", 0.0)]
)
def test_optimizer_state_estimate_matches_the_real_state(optimizer, momentum):
    net = _net()
    net.grow([0, 1])
    net.grow([2, 3])
    learner = Learner(net, optimizer=optimizer, momentum=momentum)
    expected = learner.optimizer_state_nbytes()
    trainable = [p for p in net.parameters() if p.requires_grad]
    opt = make_optimizer(optimizer, trainable, lr=0.1, momentum=momentum)
    net.train()
    y = torch.tensor([0, 1, 2, 3] * 2)
    loss = nn.functional.cross_entropy(net(torch.randn(8, 4)), y) + net.aux_loss(y)
    loss.backward()  # every trainable parameter (aux head included) gets a gradient
    opt.step()
    assert expected == nbytes(opt)


def test_fit_store_to_budget_shrinks_and_raises_with_bytes_and_budget():
    model = nn.Linear(3, 2)  # 32 bytes, 32 more of SGD momentum
    store = ExemplarStore(random_state=0).update(
        np.zeros((20, 4), np.uint8), np.arange(20) % 2, capacity_bytes=1_000
    )
    learner = Learner(model, accountant=MemoryAccountant(64 + 5 * 7))
    learner.accountant.track("store", store)
    fit_store_to_budget(learner, store)
    assert len(store) == 7
    # the optimizer holds no state yet, but its momentum is reserved
    assert learner.accountant.room_for(store) == 64 + 35 - 32 - 32
    learner.accountant.budget = 60
    with pytest.raises(BudgetExceededError) as error:
        fit_store_to_budget(learner, store, context="X")
    message = str(error.value)
    assert "X: the model needs 64 bytes" in message and "the budget is 60 bytes" in message
    assert error.value.ledger.accounts == {"model": 32, "optimizer": 32, "store": 35}


def test_channels_last_changes_the_layout_only():
    def conv_net(channels_last):
        torch.manual_seed(0)
        shared = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU())
        block = nn.Sequential(
            nn.Conv2d(4, 3, 3), nn.BatchNorm2d(3), nn.Flatten(1), nn.Linear(12, 5)
        )
        net = ExpandableNet(shared, block, 5, n_classes=4, channels_last=channels_last)
        net.grow([0, 1])
        net.grow([2, 3])
        return net.train()

    x = torch.randn(3, 2, 4, 4)
    fast, plain = conv_net(True), conv_net(False)
    assert fast.channels_last and not plain.channels_last
    assert torch.allclose(fast(x), plain(x), atol=1e-5)
    fast(x).sum().backward()
    # parameters keep their own (contiguous) layout: checkpoints need contiguous tensors
    assert all(p.is_contiguous() and p.grad.is_contiguous() for p in fast.shared.parameters())
    flat = _net()  # 2-d inputs pass through unchanged
    flat.grow([0])
    assert flat.features(torch.randn(5, 4)).shape == (5, 3)
