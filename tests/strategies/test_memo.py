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
