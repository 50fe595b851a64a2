"""Small backbones for the data that runs on a CPU: 8x8 digit images and flat features.

Every backbone exposes ``features(x)`` (the penultimate representation, used
by herding) and ``forward(x) = head(features(x))``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from continual.validation import COUNT, Sizes, StrOptions, check_params

__all__ = [
    "BACKBONES",
    "MLP",
    "DigitsConvNet",
    "head_classes",
    "make_backbone",
    "split_backbone",
]

#: The names :func:`make_backbone` builds.
BACKBONES = ("mlp", "conv8")


class MLP(nn.Module):
    """A multilayer perceptron with ReLU hidden layers and a linear head.

    Parameters
    ----------
    n_features
        Input features (inputs of any shape are flattened).
    n_classes
        Output logits.
    hidden_sizes
        Width of each hidden layer.

    Examples
    --------
    >>> import torch
    >>> from continual import nbytes
    >>> from strategies.backbones import MLP
    >>> model = MLP(64, 10, hidden_sizes=(32,))
    >>> model(torch.zeros(5, 64)).shape
    torch.Size([5, 10])
    >>> nbytes(model) == 4 * (64 * 32 + 32 + 32 * 10 + 10)
    True
    """

    def __init__(self, n_features: int, n_classes: int, hidden_sizes: Sequence[int] = (128,)):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = n_features
        for size in hidden_sizes:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class DigitsConvNet(nn.Module):
    """A three-block conv net for 1x8x8 images (scikit-learn's digits).

    Blocks of 3x3 convolution, batch norm and ReLU with widths
    ``(w, 2w, 4w)``, a 2x2 max-pool after the second block, global average
    pooling and a linear head over the ``4w`` features. Flat inputs of 64
    values are reshaped to 1x8x8.

    Parameters
    ----------
    n_classes
        Output logits.
    width
        Channels of the first block.

    Examples
    --------
    >>> import torch
    >>> from strategies.backbones import DigitsConvNet
    >>> model = DigitsConvNet(10, width=8)
    >>> model(torch.zeros(2, 1, 8, 8)).shape, model.features(torch.zeros(2, 64)).shape
    (torch.Size([2, 10]), torch.Size([2, 32]))
    """

    def __init__(self, n_classes: int, width: int = 16):
        super().__init__()
        widths = (width, 2 * width, 4 * width)
        self.body = nn.Sequential(
            _conv_block(1, widths[0]),
            _conv_block(widths[0], widths[1]),
            nn.MaxPool2d(2),
            _conv_block(widths[1], widths[2]),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(widths[2], n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.reshape(-1, 1, 8, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    )


def head_classes(model: nn.Module) -> int:
    """The number of classes of a backbone: the outputs of its linear ``head``.

    Examples
    --------
    >>> from strategies.backbones import MLP, head_classes
    >>> head_classes(MLP(4, 3, hidden_sizes=(8,)))
    3
    """
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Linear):
        raise TypeError(
            f"model must have a linear `head` giving the number of classes, got "
            f"{type(head).__name__} on {type(model).__name__}"
        )
    return head.out_features


def split_backbone(model: nn.Module) -> tuple[nn.Module, nn.Module, int]:
    """Split a backbone into MEMO's generalized and specialized parts, dropping its head.

    Returns ``(generalized, specialized, feature_dim)`` with
    ``model.features(x) == specialized(generalized(x))``; the parts share the model's modules
    (no copy). Known backbones:

    - :class:`DigitsConvNet`: generalized = blocks 1-2 and the max-pool, specialized = block 3
      and the pool (``4 * width`` features);
    - :class:`MLP`: generalized = every hidden layer but the last, specialized = the last;
    - anything with ``generalized``, ``specialized`` and ``feature_dim`` attributes (the ResNets
      of :mod:`strategies.resnet`).

    Examples
    --------
    >>> import torch
    >>> from strategies.backbones import DigitsConvNet, split_backbone
    >>> model = DigitsConvNet(10, width=4).eval()
    >>> generalized, specialized, dim = split_backbone(model)
    >>> x = torch.randn(3, 1, 8, 8)
    >>> dim, torch.equal(specialized(generalized(x)), model.features(x))
    (16, True)
    """
    if isinstance(model, DigitsConvNet):
        body = model.body
        return _Reshape8x8(body[:3]), body[3:], body[3][0].out_channels
    if isinstance(model, MLP):
        layers = list(model.body)
        linears = [i for i, layer in enumerate(layers) if isinstance(layer, nn.Linear)]
        if not linears:
            raise ValueError("an MLP without hidden layers cannot be split: pass hidden_sizes")
        cut = linears[-1]
        return nn.Sequential(*layers[:cut]), nn.Sequential(*layers[cut:]), model.head.in_features
    if all(hasattr(model, name) for name in ("generalized", "specialized", "feature_dim")):
        return model.generalized, model.specialized, int(model.feature_dim)
    raise TypeError(
        f"model must be a DigitsConvNet, an MLP or a split ResNet (with generalized, "
        f"specialized and feature_dim), got {type(model).__name__}"
    )


class _Reshape8x8(nn.Module):
    """Reshape flat 64-value inputs to 1x8x8 images before ``inner``."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.reshape(-1, 1, 8, 8))


def make_backbone(
    name: str,
    n_features: int,
    n_classes: int,
    *,
    hidden_sizes: Sequence[int] = (128,),
    width: int = 16,
) -> nn.Module:
    """Build ``"mlp"`` or ``"conv8"`` (the digits conv net, needs 64 features).

    Sizes may be numpy integers; the network is the one Python ints give.

    Raises
    ------
    InvalidParameterError
        A ``ValueError`` naming ``name``, ``hidden_sizes`` (ints >= 1) or ``width`` (an int
        >= 1) and the value.
    ValueError
        ``"conv8"`` without 64 features.

    Examples
    --------
    >>> from strategies.backbones import make_backbone
    >>> type(make_backbone("conv8", 64, 10)).__name__
    'DigitsConvNet'
    >>> try:
    ...     make_backbone("mlp", 4, 2, hidden_sizes=(0,))
    ... except ValueError as error:
    ...     print(error)
    The 'hidden_sizes' parameter of make_backbone must be a sequence of ints >= 1. Got (0,) ...
    """
    check_params(
        {"name": [StrOptions(set(BACKBONES))], "hidden_sizes": [Sizes()], "width": [COUNT]},
        {"name": name, "hidden_sizes": hidden_sizes, "width": width},
        "make_backbone",
    )
    if name == "mlp":
        return MLP(n_features, n_classes, tuple(int(size) for size in hidden_sizes))
    if n_features != 64:
        raise ValueError(
            f"backbone 'conv8' needs 64 input features (8x8 images), got n_features={n_features}"
        )
    return DigitsConvNet(n_classes, int(width))
