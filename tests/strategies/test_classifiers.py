"""The scikit-learn faces: estimator checks, bad input, atomic partial_fit, budgets."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.utils.estimator_checks import check_estimator

from continual import BudgetExceededError, nbytes
from continual.samples import LazySamples
from strategies import FinetuneClassifier, ReplayClassifier
from strategies.classifiers import ICaRLClassifier, MEMOClassifier

# Checks that cannot pass, with the reason.
EXPECTED_FAILED_CHECKS = {
    "check_methods_subset_invariance": (
        "float32 matrix products take different BLAS kernels for different batch sizes, so "
        "probabilities of a subset differ from the full batch in the last float32 bits "
        "(about 2e-7), just above the check's 1e-7 tolerance"
    ),
}

ESTIMATORS = [FinetuneClassifier, ReplayClassifier]


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X.astype(np.uint8), y


@pytest.mark.parametrize("estimator_class", ESTIMATORS)
def test_sklearn_estimator_checks(estimator_class):
    results = check_estimator(
        estimator_class(), expected_failed_checks=EXPECTED_FAILED_CHECKS, on_fail=None
    )
    failed = [r["check_name"] for r in results if r["status"] == "failed"]
    assert failed == []


def _small(estimator_class, **params):
    defaults = {"epochs": 2, "input_scale": 1 / 16, "random_state": 0}
    return estimator_class(**{**defaults, **params})


def _state(clf):
    state = {k: v.clone() for k, v in clf.learner_.model.state_dict().items()}
    return state, clf.n_partial_fits_, nbytes(clf.learner_.plugins)


def _assert_same_state(before, after):
    (model_a, n_a, stored_a), (model_b, n_b, stored_b) = before, after
    assert model_a.keys() == model_b.keys()
    assert all(torch.equal(model_a[k], model_b[k]) for k in model_a)
    assert (n_a, stored_a) == (n_b, stored_b)


@pytest.mark.parametrize("estimator_class", ESTIMATORS)
def test_partial_fit_is_one_experience_and_fit_resets(estimator_class, digits):
    X, y = digits
    clf = _small(estimator_class)
    clf.partial_fit(X[y < 5], y[y < 5], classes=np.arange(10))
    clf.partial_fit(X[y >= 5], y[y >= 5])
    assert clf.n_partial_fits_ == 2
    assert clf.predict_proba(X[:3]).shape == (3, 10)
    clf.fit(X, y)
    assert clf.n_partial_fits_ == 1
    assert clf.score(X, y) > 0.8


def test_replay_spends_headroom_on_uint8_exemplars(digits):
    X, y = digits
    clf = _small(ReplayClassifier, budget="120 KB")
    for task in range(5):
        mask = y // 2 == task
        clf.partial_fit(X[mask], y[mask], classes=np.arange(10))
    ledger = clf.accountant_.ledger()
    store = clf.learner_.plugins[0].store
    assert store.x.dtype == torch.uint8
    assert ledger.accounts["replay/exemplars"] == len(store) * (64 + 1)
    assert ledger.total <= 120_000
    assert ledger.headroom < 65  # not one more exemplar would fit
    assert len(store.classes) == 10


def test_replay_beats_finetune_under_the_same_budget(digits):
    X, y = digits
    scores = {}
    for estimator_class in ESTIMATORS:
        clf = _small(estimator_class, budget="150 KB", epochs=5)
        for task in range(5):
            mask = y // 2 == task
            clf.partial_fit(X[mask], y[mask], classes=np.arange(10))
        scores[estimator_class.__name__] = clf.score(X, y)
    assert scores["ReplayClassifier"] > scores["FinetuneClassifier"] + 0.2


@pytest.mark.parametrize("estimator_class", ESTIMATORS)
def test_budget_that_cannot_hold_the_model(estimator_class, digits):
    X, y = digits
    clf = _small(estimator_class, budget="10 KB")
    with pytest.raises(BudgetExceededError, match="budget exceeded") as error:
        clf.partial_fit(X, y, classes=np.arange(10))
    assert error.value.ledger.accounts["model"] == 38_440
    assert error.value.ledger.budget == 10_000
    assert not hasattr(clf, "learner_")


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda clf, X, y: clf.partial_fit(X, y), "classes must be passed on the first call"),
        (
            lambda clf, X, y: clf.partial_fit(X, y + 20, classes=np.arange(10)),
            r"y contains labels \[20.*outside the declared classes",
        ),
        (
            lambda clf, X, y: clf.partial_fit(X[:0], y[:0], classes=np.arange(10)),
            "X must hold at least one sample",
        ),
    ],
)
def test_bad_first_call_raises_and_leaves_estimator_unfitted(call, match, digits):
    X, y = digits
    clf = _small(FinetuneClassifier)
    with pytest.raises(ValueError, match=match):
        call(clf, X[:50], y[:50])
    assert [k for k in vars(clf) if k.endswith("_")] == []


@pytest.mark.parametrize("estimator_class", ESTIMATORS)
@pytest.mark.parametrize(
    ("make_bad", "error", "match"),
    [
        (lambda X, y: (X[:, :10], y), ValueError, "X has 10 features.*expecting 64"),
        (lambda X, y: (np.where(X == 0, np.nan, X), y), ValueError, "Input X contains NaN"),
        (lambda X, y: (np.where(X == 0, np.inf, X), y), ValueError, "Input X contains inf"),
        (lambda X, y: (X, np.full_like(y, 11)), ValueError, "outside the declared classes"),
        (lambda X, y: (X[:0], y[:0]), ValueError, "an experience cannot be empty"),
        (lambda X, y: (X, y), BudgetExceededError, "budget exceeded"),
    ],
)
def test_failed_partial_fit_leaves_model_exactly_as_it_was(
    estimator_class, make_bad, error, match, digits
):
    X, y = digits
    clf = _small(estimator_class, budget="180 KB")
    clf.partial_fit(X[y < 4], y[y < 4], classes=np.arange(10))
    before = _state(clf)
    if error is BudgetExceededError:
        # the model trains, then the check fails: roll back (a budget changed after the
        # first call is refused, so the accountant's and the parameter change together)
        clf.accountant_.budget = 50_000
        clf.set_params(budget=50_000)
    with pytest.raises(error, match=match):
        clf.partial_fit(*make_bad(X[y >= 4], y[y >= 4]))
    _assert_same_state(before, _state(clf))


def test_changed_classes_are_rejected(digits):
    X, y = digits
    clf = _small(FinetuneClassifier).partial_fit(X[:20], y[:20], classes=np.arange(10))
    with pytest.raises(ValueError, match="differs from the classes declared"):
        clf.partial_fit(X[:20], y[:20], classes=np.arange(5))


def test_same_seed_same_model_and_clone_is_unfitted(digits):
    X, y = digits
    first = _small(ReplayClassifier).fit(X[:300], y[:300])
    second = clone(first).fit(X[:300], y[:300])
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    assert not hasattr(clone(first), "learner_")


def test_string_labels(digits):
    X, y = digits
    names = np.array(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    )
    clf = _small(FinetuneClassifier, epochs=5).fit(X, names[y])
    assert set(clf.predict(X[:50])) <= set(names)
    assert clf.score(X, names[y]) > 0.8


def test_conv_backbone(digits):
    X, y = digits
    clf = _small(FinetuneClassifier, backbone="conv8", width=4).fit(X[:200], y[:200])
    assert type(clf.learner_.model).__name__ == "DigitsConvNet"
    with pytest.raises(ValueError, match="backbone 'conv8' needs 64 input features"):
        _small(FinetuneClassifier, backbone="conv8").fit(X[:50, :10], y[:50])


# ------------------------------------------------------------- torch Dataset inputs
class DigitRows(torch.utils.data.Dataset):
    """Digits as ``(uint8 1x8x8 tensor, label)`` pairs with ``targets``; reads are recorded."""

    def __init__(self, X, y):
        self.X, self.targets, self.reads = X, list(y.tolist()), []

    def __len__(self):
        return len(self.X)

    def __getitem__(self, index):
        self.reads.append(index)
        return torch.as_tensor(self.X[index]).reshape(1, 8, 8), self.targets[index]


def _four_digits(digits, n=240):
    X, y = digits
    keep = np.flatnonzero(y < 4)[:n]
    return X[keep], y[keep]


def test_a_dataset_stream_scores_and_charges_exactly_like_arrays(digits):
    from streams import class_incremental

    X, y = _four_digits(digits)
    data = DigitRows(X, y)
    arrays = class_incremental(X, y, n_experiences=2, test=(X, y), seed=0)
    lazy = class_incremental(data, n_experiences=2, test=data, seed=0)
    eager = _small(ReplayClassifier, budget="150 KB", epochs=1).evaluate(arrays)
    clf = _small(ReplayClassifier, budget="150 KB", epochs=1)
    scores = clf.evaluate(lazy)
    np.testing.assert_array_equal(scores.matrix, eager.matrix)
    store = clf.learner_.plugins[0].store
    assert store.x.dtype == torch.uint8 and store.x.shape[1:] == (1, 8, 8)
    assert clf.accountant_.ledger().accounts["replay/exemplars"] == len(store) * (64 + 1)
    np.testing.assert_array_equal(clf.predict_proba(data), clf.predict_proba(X))


@pytest.mark.parametrize(
    "estimator_class", [ReplayClassifier, ICaRLClassifier, MEMOClassifier], ids=lambda c: c.__name__
)
def test_training_reads_only_the_current_experience(estimator_class, digits):
    X, y = _four_digits(digits, n=160)
    data = DigitRows(X, y)
    clf = _small(estimator_class, budget="200 KB", epochs=1, hidden_sizes=(16, 8))
    for task, classes in enumerate([(0, 1), (2, 3)]):
        rows = np.flatnonzero(np.isin(y, classes))
        data.reads.clear()
        clf.partial_fit(LazySamples(data, rows), None, np.arange(4) if task == 0 else None)
        assert set(data.reads) == set(rows.tolist())  # trained on all, read nothing else
    assert len(clf.learner_.plugins[0].store) > 0


def test_an_image_folder_trains_and_stores_uint8_images(tmp_path):
    from PIL import Image
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import PILToTensor

    from streams import class_incremental

    rng = np.random.default_rng(0)
    for split, count in (("train", 6), ("test", 2)):
        for label, brightness in (("dark", 40), ("light", 210), ("mid", 128), ("noisy", 0)):
            folder = tmp_path / split / label
            folder.mkdir(parents=True)
            for i in range(count):
                noise = rng.integers(0, 255 if label == "noisy" else 30, size=(4, 4, 3))
                pixels = np.clip(brightness + noise, 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    train = ImageFolder(tmp_path / "train", transform=PILToTensor())
    test = ImageFolder(tmp_path / "test", transform=PILToTensor())
    stream = class_incremental(train, n_experiences=2, test=test, seed=0)
    clf = ReplayClassifier(
        budget="60 KB", hidden_sizes=(8,), input_scale=1 / 255, epochs=3, random_state=0
    )
    scores = clf.evaluate(stream)
    assert scores.matrix.shape == (2, 2)
    store = clf.learner_.plugins[0].store
    assert len(store) == 24 and store.x.dtype == torch.uint8  # the budget holds every image
    assert clf.accountant_.ledger().accounts["replay/exemplars"] == 24 * (3 * 4 * 4 + 1)
    assert clf.n_features_in_ == 48


def test_bad_dataset_inputs_name_the_argument_and_the_fix(digits):
    X, y = _four_digits(digits, n=40)
    bare = torch.utils.data.TensorDataset(torch.as_tensor(X))
    clf = _small(FinetuneClassifier)
    with pytest.raises(ValueError, match=r"X is a TensorDataset without a `targets`.*pass y"):
        clf.partial_fit(bare, None, classes=np.arange(4))
    with pytest.raises(ValueError, match=r"y must hold one label per row of X \(40 rows\)"):
        clf.partial_fit(bare, y[:3], classes=np.arange(4))

    class Pictures(torch.utils.data.Dataset):
        def __init__(self):
            self.targets = [0, 1]

        def __len__(self):
            return 2

        def __getitem__(self, index):
            from PIL import Image

            return Image.new("L", (2, 2)), self.targets[index]

    with pytest.raises(TypeError, match=r"must give a tensor or an array.*PILToTensor"):
        clf.partial_fit(Pictures(), None, classes=np.arange(4))
    assert [k for k in vars(clf) if k.endswith("_")] == []

    clf.partial_fit(bare, y, classes=np.arange(4))
    small = torch.utils.data.TensorDataset(torch.zeros(3, 10))
    with pytest.raises(
        ValueError,
        match=r"X has 10 features per sample \(samples of shape "
        r"\(10,\)\).*expecting 64",
    ):
        clf.predict(small)
    with pytest.raises(ValueError, match="X must hold at least one sample, got an empty"):
        clf.partial_fit(LazySamples(bare, []), y[:0])


def test_bf16_mixed_precision_learns_on_the_cpu_with_float32_state():
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.uint8)
    clf = ReplayClassifier(budget="150 KB", input_scale=1 / 16, epochs=5, random_state=0,
                           precision="bf16-mixed")  # fmt: skip
    clf.partial_fit(X[y < 5], y[y < 5], classes=range(10))
    assert clf.score(X[y < 5], y[y < 5]) > 0.9
    assert {p.dtype for p in clf.learner_.model.parameters()} == {torch.float32}
    full = ReplayClassifier(budget="150 KB", input_scale=1 / 16, epochs=5, random_state=0)
    full.partial_fit(X[y < 5], y[y < 5], classes=range(10))
    assert clf.accountant_.ledger().accounts == full.accountant_.ledger().accounts


def test_stores_live_on_store_device_and_the_ledger_says_where():
    X, y = load_digits(return_X_y=True)
    clf = ReplayClassifier(budget="150 KB", input_scale=1 / 16, epochs=1, random_state=0,
                           store_device="cpu")  # fmt: skip
    clf.partial_fit(X[y < 5], y[y < 5], classes=range(10))
    store = clf.learner_.plugins[0].store
    assert store.x.device.type == "cpu" and store.device == torch.device("cpu")
    ledger = clf.accountant_.ledger()
    assert ledger.account_devices("replay/exemplars") == {
        "cpu": ledger.accounts["replay/exemplars"]
    }
    with pytest.raises(ValueError, match="device='cuda:99' is not available"):
        ReplayClassifier(store_device="cuda:99", random_state=0).partial_fit(
            X[:20], y[:20], classes=range(10)
        )


def test_a_dataset_brings_its_own_labels_and_an_array_needs_y():
    X, y = load_digits(return_X_y=True)

    class Digits(torch.utils.data.Dataset):
        targets = y[:200]

        def __len__(self):
            return 200

        def __getitem__(self, i):
            return torch.from_numpy(X[i].astype(np.float32))

    clf = FinetuneClassifier(epochs=2, input_scale=1 / 16, random_state=0).fit(Digits())
    assert clf.classes_.tolist() == sorted(set(y[:200].tolist()))
    assert clf.score(X[:200], y[:200]) > 0.5
    with pytest.raises(ValueError, match="requires y to be passed, but the target y is None"):
        FinetuneClassifier(random_state=0).partial_fit(X[:10], classes=range(10))
