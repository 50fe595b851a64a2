"""scikit-learn faces of the strategies: ``partial_fit`` is one experience."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from continual.estimator import ContinualClassifier
from continual.plugin import Plugin
from strategies.backbones import make_backbone
from strategies.der import DER
from strategies.finetune import Finetune
from strategies.icarl import ICaRL
from strategies.memo import MEMO
from strategies.replay import Replay

__all__ = [
    "DERClassifier",
    "FinetuneClassifier",
    "ICaRLClassifier",
    "MEMOClassifier",
    "ReplayClassifier",
]


class FinetuneClassifier(ContinualClassifier):
    """Class-incremental fine-tuning with a scikit-learn interface.

    Each :meth:`partial_fit` call trains the network on one experience, with
    no memory of the past. The model and its optimizer state are charged to
    ``accountant_`` against ``budget``.

    Parameters
    ----------
    budget
        Bytes (int) or a string such as ``"200 KB"``; None measures only.
    backbone
        ``"mlp"`` for flat features or ``"conv8"`` for 8x8 images given as 64 features.
    hidden_sizes
        Hidden widths of the MLP.
    width
        First-block channels of the conv net.
    optimizer
        ``"adam"`` or ``"sgd"``.
    lr
        Learning rate.
    epochs
        Passes over each experience.
    batch_size
        Mini-batch size.
    input_scale
        Inputs are multiplied by this after the float cast (``1/16`` for digits, ``1/255``
        for uint8 images).
    random_state
        Seed of the initialisation and the batch order.
    verbose
        0 for silence.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from strategies import FinetuneClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = FinetuneClassifier(budget="150 KB", input_scale=1 / 16, random_state=0)
    >>> clf = clf.partial_fit(X[:900], y[:900], classes=range(10))
    >>> clf.score(X[900:], y[900:]) > 0.9
    True
    >>> clf.accountant_.ledger().accounts
    {'model': 38440, 'optimizer': 76896}
    """

    def __init__(
        self,
        budget: int | str | None = None,
        *,
        backbone: str = "mlp",
        hidden_sizes: Sequence[int] = (128,),
        width: int = 16,
        optimizer: str = "adam",
        lr: float = 1e-2,
        epochs: int = 20,
        batch_size: int = 32,
        input_scale: float = 1.0,
        random_state: int | None = None,
        verbose: int = 0,
    ) -> None:
        self.budget = budget
        self.backbone = backbone
        self.hidden_sizes = hidden_sizes
        self.width = width
        self.optimizer = optimizer
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.input_scale = input_scale
        self.random_state = random_state
        self.verbose = verbose

    def _make_model(self, n_features: int, n_classes: int) -> nn.Module:
        return make_backbone(
            self.backbone, n_features, n_classes, hidden_sizes=self.hidden_sizes, width=self.width
        )

    def _make_plugins(self, seed: int) -> list[Plugin]:
        return [Finetune()]


class ReplayClassifier(FinetuneClassifier):
    """Class-incremental replay with a scikit-learn interface.

    Like :class:`FinetuneClassifier`, plus an exemplar store that takes all
    the headroom the budget leaves after the model and optimizer state
    (account ``replay/exemplars``). Stored samples keep the input dtype:
    pass uint8 images to pay one byte per pixel.

    Parameters
    ----------
    budget, backbone, hidden_sizes, width, optimizer, lr, epochs, batch_size, input_scale, \
random_state, verbose
        As in :class:`FinetuneClassifier`.
    policy
        Exemplar selection: ``"class_balanced"``, ``"herding"``, ``"random"`` or ``"reservoir"``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from strategies import ReplayClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X.astype(np.uint8)
    >>> clf = ReplayClassifier(budget="150 KB", input_scale=1 / 16, random_state=0)
    >>> for task in range(5):
    ...     mask = (y // 2) == task
    ...     clf = clf.partial_fit(X[mask], y[mask], classes=range(10))
    >>> ledger = clf.accountant_.ledger()
    >>> ledger.total <= 150_000, ledger.accounts["replay/exemplars"] // 65
    (True, 533)
    """

    def __init__(
        self,
        budget: int | str | None = None,
        *,
        policy: str = "class_balanced",
        backbone: str = "mlp",
        hidden_sizes: Sequence[int] = (128,),
        width: int = 16,
        optimizer: str = "adam",
        lr: float = 1e-2,
        epochs: int = 20,
        batch_size: int = 32,
        input_scale: float = 1.0,
        random_state: int | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(
            budget,
            backbone=backbone,
            hidden_sizes=hidden_sizes,
            width=width,
            optimizer=optimizer,
            lr=lr,
            epochs=epochs,
            batch_size=batch_size,
            input_scale=input_scale,
            random_state=random_state,
            verbose=verbose,
        )
        self.policy = policy

    def _make_plugins(self, seed: int) -> list[Plugin]:
        return [Replay(policy=self.policy, seed=seed)]


class MEMOClassifier(FinetuneClassifier):
    """MEMO (a shared generalized trunk, one specialized block per experience) for scikit-learn.

    Each :meth:`partial_fit` call is one task of :class:`~strategies.memo.MEMO`: the backbone
    is split by :func:`~strategies.backbones.split_backbone` (for the MLP, every hidden layer
    but the last is generalized), a specialized block is added, and herding exemplars fill what
    the grown model leaves of ``budget``. The ledger holds ``model`` (trunk, blocks, heads),
    ``optimizer`` and ``memo/exemplars``. A budget that cannot hold the grown model and its
    optimizer state raises :class:`~continual.accountant.BudgetExceededError` naming both.

    Parameters
    ----------
    budget, backbone, hidden_sizes, width, optimizer, lr, epochs, batch_size, input_scale, \
random_state, verbose
        As in :class:`FinetuneClassifier` (the MLP defaults to two hidden layers, so that
        there is a generalized part to share).
    train_base
        Keep training the generalized blocks after the first experience.
    aux_weight
        Weight of the auxiliary ``new + 1`` loss.
    weight_alignment
        Rescale the new classes' head rows after each experience (MEMO's default). With few
        epochs and balanced replay the new rows are the *shorter* ones, and alignment then
        favours new classes: the example turns it off.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from strategies.classifiers import MEMOClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X.astype(np.uint8)
    >>> clf = MEMOClassifier(budget="200 KB", input_scale=1 / 16, epochs=5,
    ...                      weight_alignment=False, random_state=0)
    >>> for task in range(5):
    ...     mask = (y // 2) == task
    ...     clf = clf.partial_fit(X[mask], y[mask], classes=range(10))
    >>> ledger = clf.accountant_.ledger()
    >>> ledger.total <= 200_000, len(clf.learner_.model.blocks), clf.score(X, y) > 0.8
    (True, 5, True)
    """

    def __init__(
        self,
        budget: int | str | None = None,
        *,
        train_base: bool = True,
        aux_weight: float = 1.0,
        weight_alignment: bool = True,
        backbone: str = "mlp",
        hidden_sizes: Sequence[int] = (64, 32),
        width: int = 16,
        optimizer: str = "adam",
        lr: float = 1e-2,
        epochs: int = 20,
        batch_size: int = 32,
        input_scale: float = 1.0,
        random_state: int | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(
            budget,
            backbone=backbone,
            hidden_sizes=hidden_sizes,
            width=width,
            optimizer=optimizer,
            lr=lr,
            epochs=epochs,
            batch_size=batch_size,
            input_scale=input_scale,
            random_state=random_state,
            verbose=verbose,
        )
        self.train_base = train_base
        self.aux_weight = aux_weight
        self.weight_alignment = weight_alignment

    def _make_plugins(self, seed: int) -> list[Plugin]:
        return [
            MEMO(
                train_base=self.train_base,
                aux_weight=self.aux_weight,
                weight_alignment=self.weight_alignment,
                seed=seed,
            )
        ]


class DERClassifier(FinetuneClassifier):
    """DER (one whole backbone per experience) for scikit-learn.

    Each :meth:`partial_fit` call is one task of :class:`~strategies.der.DER`: a copy of the
    backbone is added and the old ones are frozen; herding exemplars fill what the models
    leave of ``budget``. The ledger holds ``model`` (every backbone and the heads),
    ``optimizer`` and ``der/exemplars``.

    Parameters
    ----------
    budget, backbone, hidden_sizes, width, optimizer, lr, epochs, batch_size, input_scale, \
random_state, verbose
        As in :class:`MEMOClassifier`.
    aux_weight, weight_alignment
        As in :class:`MEMOClassifier`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from strategies.classifiers import DERClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = DERClassifier(budget="200 KB", input_scale=1 / 16, epochs=5, random_state=0)
    >>> clf = clf.partial_fit(X[y < 5], y[y < 5], classes=range(10))
    >>> clf = clf.partial_fit(X[y >= 5], y[y >= 5])
    >>> clf.accountant_.total() <= 200_000, len(clf.learner_.model.blocks), clf.score(X, y) > 0.8
    (True, 2, True)
    """

    def __init__(
        self,
        budget: int | str | None = None,
        *,
        aux_weight: float = 1.0,
        weight_alignment: bool = True,
        backbone: str = "mlp",
        hidden_sizes: Sequence[int] = (64, 32),
        width: int = 16,
        optimizer: str = "adam",
        lr: float = 1e-2,
        epochs: int = 20,
        batch_size: int = 32,
        input_scale: float = 1.0,
        random_state: int | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(
            budget,
            backbone=backbone,
            hidden_sizes=hidden_sizes,
            width=width,
            optimizer=optimizer,
            lr=lr,
            epochs=epochs,
            batch_size=batch_size,
            input_scale=input_scale,
            random_state=random_state,
            verbose=verbose,
        )
        self.aux_weight = aux_weight
        self.weight_alignment = weight_alignment

    def _make_plugins(self, seed: int) -> list[Plugin]:
        return [DER(aux_weight=self.aux_weight, weight_alignment=self.weight_alignment, seed=seed)]


class ICaRLClassifier(FinetuneClassifier):
    """iCaRL (herding, distillation, nearest-mean-of-exemplars) for scikit-learn.

    Each :meth:`partial_fit` call is one task of :class:`~strategies.icarl.ICaRL`.
    :meth:`predict` and :meth:`predict_proba` score classes by their distance to the class
    means of the stored exemplars (a softmax over minus squared distances). The ledger holds
    ``model``, ``optimizer``, ``icarl/exemplars``, ``icarl/old_model`` (the distillation
    teacher), ``icarl/class_means`` and ``icarl/mean_classes``.

    Parameters
    ----------
    budget, backbone, hidden_sizes, width, optimizer, lr, epochs, batch_size, input_scale, \
random_state, verbose
        As in :class:`FinetuneClassifier`.
    temperature
        Distillation temperature.
    distillation_weight
        Weight of the distillation loss.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from strategies.classifiers import ICaRLClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X.astype(np.uint8)
    >>> clf = ICaRLClassifier(budget="200 KB", input_scale=1 / 16, epochs=5, random_state=0)
    >>> for task in range(5):
    ...     mask = (y // 2) == task
    ...     clf = clf.partial_fit(X[mask], y[mask], classes=range(10))
    >>> clf.accountant_.total() <= 200_000, clf.score(X, y) > 0.8
    (True, True)
    """

    def __init__(
        self,
        budget: int | str | None = None,
        *,
        temperature: float = 2.0,
        distillation_weight: float = 1.0,
        backbone: str = "mlp",
        hidden_sizes: Sequence[int] = (128,),
        width: int = 16,
        optimizer: str = "adam",
        lr: float = 1e-2,
        epochs: int = 20,
        batch_size: int = 32,
        input_scale: float = 1.0,
        random_state: int | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(
            budget,
            backbone=backbone,
            hidden_sizes=hidden_sizes,
            width=width,
            optimizer=optimizer,
            lr=lr,
            epochs=epochs,
            batch_size=batch_size,
            input_scale=input_scale,
            random_state=random_state,
            verbose=verbose,
        )
        self.temperature = temperature
        self.distillation_weight = distillation_weight

    def _make_plugins(self, seed: int) -> list[Plugin]:
        return [
            ICaRL(
                temperature=self.temperature,
                distillation_weight=self.distillation_weight,
                seed=seed,
            )
        ]
