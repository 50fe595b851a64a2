"""MEMO under the byte budget: growth, sharing, freezing, exemplars and the budget error."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.utils.estimator_checks import check_estimator

from continual import BudgetExceededError, Learner, MemoryAccountant, nbytes
from strategies import DigitsConvNet
from strategies.classifiers import MEMOClassifier
from strategies.expandable import ExpandableNet
from strategies.memo import MEMO
from strategies.resnet import CifarResNet
from streams import split_digits
from tests.strategies.test_classifiers import EXPECTED_FAILED_CHECKS


def _learner(budget, plugin, width=4, epochs=1):
    torch.manual_seed(0)
    return Learner(
        DigitsConvNet(10, width=width),
        plugins=[plugin],
        accountant=MemoryAccountant(budget),
        input_scale=1 / 16,
        epochs=epochs,
    )


@pytest.fixture(scope="module")
def trained():
    memo = MEMO(seed=0)
    learner = _learner("45 KB", memo)
    stream = split_digits(5, seed=0)
    scores = learner.run(stream)
    return learner, memo, scores, stream


def test_every_snapshot_fits_the_budget_and_the_store_takes_the_rest(trained):
    learner, memo, _, _ = trained
    assert len(learner.accountant.history) == 5
    for snapshot in learner.accountant.history:
        assert snapshot.ledger.total <= 45_000
    ledger = learner.accountant.ledger()
    assert ledger.accounts["memo/exemplars"] == len(memo.store) * (64 + 1)
    assert ledger.headroom < 65  # not one more uint8 digit would fit
    assert memo.store.x.dtype == torch.uint8


def test_model_is_one_shared_trunk_plus_one_block_per_task(trained):
    learner, _, _, _ = trained
    model = learner.model
    assert isinstance(model, ExpandableNet) and len(model.blocks) == 5
    block = nbytes(model.blocks[0])
    heads = 4 * 10 * (5 * 16 + 1) + 8 * 10 + 4 * (2 + 1) * (16 + 1)  # unified + aux (2 new + 1)
    assert nbytes(model) == nbytes(model.shared) + 5 * block + heads
    assert learner.accountant.ledger().accounts["model"] == nbytes(model)
    assert model.features(torch.zeros(2, 1, 8, 8)).shape == (2, 5 * 16)


def test_old_blocks_frozen_trunk_trains_and_optimizer_covers_the_trainable_part(trained):
    learner, _, _, _ = trained
    model = learner.model
    assert not any(p.requires_grad for b in model.blocks[:-1] for p in b.parameters())
    assert all(p.requires_grad for p in model.shared.parameters())
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert learner.accountant.ledger().accounts["optimizer"] == nbytes(trainable)


def test_exemplar_count_falls_as_the_model_grows():
    memo = MEMO(seed=0)
    learner = _learner("45 KB", memo)
    stream = split_digits(5, seed=0)
    sizes = []
    for experience in stream:
        learner.train_experience(experience)
        sizes.append(learner.accountant.ledger().accounts["memo/exemplars"])
    assert sizes[1] > sizes[2] > sizes[3] > sizes[4]  # each new block costs exemplars
    counts = memo.store.class_counts()
    assert len(counts) == 10 and max(counts.values()) - min(counts.values()) <= 1


def test_learns_and_predicts_only_seen_classes(trained):
    learner, _, scores, stream = trained
    x, y = stream[0].test
    logits = learner.predict(x)
    assert torch.isfinite(logits).all()  # all ten classes seen by the end
    assert scores.matrix[4, 0] == pytest.approx(float((logits.argmax(1).numpy() == y).mean()))
    fresh = _learner(None, MEMO(seed=0))
    fresh.train_experience(stream[0])
    first = fresh.predict(stream[0].test[0])
    seen = np.unique(stream[0].train[1])
    assert torch.isfinite(first[:, seen]).all() and torch.isinf(first).sum(1).eq(8).all()


def test_train_base_false_freezes_the_generalized_blocks():
    learner = _learner(None, MEMO(train_base=False, seed=0))
    stream = split_digits(5, seed=0)
    learner.train_experience(stream[0])
    trunk = {k: v.clone() for k, v in learner.model.shared.state_dict().items()}
    learner.train_experience(stream[1])
    after = learner.model.shared.state_dict()
    assert all(torch.equal(trunk[k], after[k]) for k in trunk)


def test_same_seed_same_scores():
    stream = split_digits(5, seed=1)[:2]
    first = _learner("40 KB", MEMO(seed=3)).run(stream).matrix
    second = _learner("40 KB", MEMO(seed=3)).run(stream).matrix
    np.testing.assert_array_equal(first, second)


def test_budget_below_the_model_size_says_bytes_and_budget():
    learner = _learner("20 KB", MEMO(seed=0))
    stream = split_digits(5, seed=0)
    learner.train_experience(stream[0])  # one block fits
    with pytest.raises(BudgetExceededError) as error:
        for experience in stream[1:]:
            learner.train_experience(experience)
    message = str(error.value)
    assert "MEMO at experience" in message and "the model needs" in message
    assert "the budget is 20,000 bytes" in message
    needed = error.value.ledger.accounts["model"] + error.value.ledger.accounts["optimizer"]
    assert needed > 20_000
    with pytest.raises(BudgetExceededError, match="MEMO at experience 0: the model needs"):
        _learner("5 KB", MEMO(seed=0)).train_experience(stream[0])


# ------------------------------------------------------------------ the scikit-learn face
def test_memo_classifier_passes_check_estimator():
    # the foundation's EXPECTED_FAILED_CHECKS apply unchanged; small settings keep it fast
    estimator = MEMOClassifier(hidden_sizes=(8, 8), epochs=4, lr=0.05)
    results = check_estimator(
        estimator, expected_failed_checks=EXPECTED_FAILED_CHECKS, on_fail=None
    )
    assert [r["check_name"] for r in results if r["status"] == "failed"] == []


def test_memo_classifier_fits_the_budget_and_refuses_one_below_the_model():
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.uint8)
    clf = MEMOClassifier(
        budget="120 KB", hidden_sizes=(32, 16), epochs=2, input_scale=1 / 16, random_state=0
    )
    for task in range(3):
        mask = y // 2 == task
        clf.partial_fit(X[mask], y[mask], classes=np.arange(10))
    ledger = clf.accountant_.ledger()
    assert ledger.total <= 120_000 and ledger.accounts["memo/exemplars"] > 0
    small = MEMOClassifier(
        budget="10 KB", hidden_sizes=(32, 16), input_scale=1 / 16, random_state=0
    )
    with pytest.raises(BudgetExceededError, match=r"model needs .* the budget is .10 KB."):
        small.partial_fit(X, y, classes=np.arange(10))
    assert not hasattr(small, "learner_")


# ------------------------------------------------------------------ the fast forward
def _explicit_blocks(blocks, z, batch_statistics):
    """Option-A BasicBlocks written out with explicit convolutions and batch-norm formulas."""

    def bn(t, layer):
        if batch_statistics:
            mean, var = t.mean((0, 2, 3)), t.var((0, 2, 3), unbiased=False)
        else:
            mean, var = layer.running_mean, layer.running_var
        shifted = (t - mean[:, None, None]) / (var[:, None, None] + layer.eps).sqrt()
        return shifted * layer.weight[:, None, None] + layer.bias[:, None, None]

    def conv(t, layer):
        return torch.nn.functional.conv2d(t, layer.weight, stride=layer.stride, padding=1)

    for block in blocks:
        out = bn(conv(torch.relu(bn(conv(z, block.conv1), block.bn1)), block.conv2), block.bn2)
        if out.shape[1] != z.shape[1]:
            pad = (out.shape[1] - z.shape[1]) // 2
            z = torch.nn.functional.pad(z[:, :, ::2, ::2], (0, 0, 0, 0, pad, pad))
        z = torch.relu(out + z)
    return z


def _three_task_resnet_memo():
    torch.manual_seed(0)
    net = MEMO(seed=0).expand(CifarResNet(8, n_classes=6))
    for task in range(3):
        net.grow([2 * task, 2 * task + 1])
        generator = torch.Generator().manual_seed(task)
        with torch.no_grad():  # distinct weights and statistics per block, as after training
            for bn in net.blocks[-1].modules():
                if isinstance(bn, torch.nn.BatchNorm2d):
                    bn.running_mean.copy_(torch.rand(bn.num_features, generator=generator) - 0.5)
                    bn.running_var.copy_(torch.rand(bn.num_features, generator=generator) + 0.5)
                    bn.weight.copy_(torch.rand(bn.num_features, generator=generator) + 0.5)
            for conv in net.blocks[-1].modules():
                if isinstance(conv, torch.nn.Conv2d):
                    conv.weight.mul_(1 + torch.rand(conv.weight.shape, generator=generator))
    return net


@pytest.mark.parametrize("training", [False, True])
def test_fast_forward_gives_the_per_block_logits_and_gradients(training):
    net = _three_task_resnet_memo().train(training)
    assert not net.blocks[0].training and net.blocks[-1].training == training
    x = torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    weights = torch.randn(6, 6, generator=torch.Generator().manual_seed(6))

    # expectation: the trunk (batch statistics while training), then every block on the trunk's
    # output, the old blocks with their running statistics, the newest with batch statistics
    # while training; features concatenated in task order and read by the unified head
    stem, stem_bn, _, stage1, stage2 = net.shared
    z = torch.nn.functional.conv2d(x, stem.weight, padding=1)
    if training:
        mean, var = z.mean((0, 2, 3)), z.var((0, 2, 3), unbiased=False)
    else:
        mean, var = stem_bn.running_mean, stem_bn.running_var
    z = (z - mean[:, None, None]) / (var[:, None, None] + stem_bn.eps).sqrt()
    z = torch.relu(z * stem_bn.weight[:, None, None] + stem_bn.bias[:, None, None])
    trunk = _explicit_blocks([*stage1, *stage2], z, training)
    features = [
        _explicit_blocks(block[0], trunk, training and i == 2).mean((2, 3))
        for i, block in enumerate(net.blocks)
    ]
    expected = torch.cat(features, 1) @ net.head.weight.T + net.head.bias
    (expected * weights).sum().backward()
    aux = {id(p) for p in net.aux_head.parameters()}  # not part of the logits
    trainable = [p for p in net.parameters() if p.requires_grad and id(p) not in aux]
    expected_grads = [p.grad.clone() for p in trainable]
    net.zero_grad()

    logits = net(x)
    assert torch.isfinite(logits).all() and net.head.classes.tolist() == list(range(6))
    assert torch.allclose(logits, expected, rtol=1e-4, atol=1e-4)
    (logits * weights).sum().backward()
    assert all(p.grad is None for b in net.blocks[:-1] for p in b.parameters())  # frozen
    for grad, p in zip(expected_grads, trainable):
        assert torch.allclose(p.grad, grad, rtol=1e-3, atol=1e-4)
    assert any(p.grad.abs().sum() > 0 for p in net.shared.parameters())  # the trunk trains
