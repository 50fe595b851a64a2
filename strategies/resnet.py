"""ResNets split into MEMO's generalized (shallow, shared) and specialized (deep, per task) parts.

The CIFAR family has depth ``6n + 2`` (14, 20, 26, 32, ...): a 3x3 stem of 16 channels, three
stages of ``n`` BasicBlocks with widths 16, 32 and 64, and parameter-free "option A" shortcuts
(subsample by 2 and pad the new channels with zeros). The generalized part is the stem, stage 1
and stage 2; the specialized part is stage 3 and the global average pool (a 64-d feature).

The ImageNet ResNet18 (torchvision's) splits after ``layer3``: the generalized part is ``conv1``
through ``layer3``, the specialized part ``layer4`` and the pool (a 512-d feature).

Parameter counts (parameters only, no BN running statistics, no classifier) match the MEMO paper:
ResNet32 463,504 (112,016 generalized + 351,488 specialized); ResNet18 11,176,512 (2,782,784 +
8,393,728).

References
----------
He, Zhang, Ren, Sun. "Deep Residual Learning for Image Recognition", CVPR 2016 (section 4.2).
Zhou, Wang, Ye, Zhan. "A Model or 603 Exemplars: Towards Memory-Efficient Class-Incremental
Learning", ICLR 2023.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CifarResNet", "SplitResNet", "conv_bn", "imagenet_resnet18", "n_parameters"]

_CIFAR_DEPTHS = "6n + 2 with n >= 1 (8, 14, 20, 26, 32, 44, 56, ...)"


def n_parameters(module: nn.Module) -> int:
    """Number of parameter values of ``module`` (buffers excluded).

    Examples
    --------
    >>> from torch import nn
    >>> from strategies.resnet import n_parameters
    >>> n_parameters(nn.Linear(3, 2))
    8
    """
    return sum(p.numel() for p in module.parameters())


def conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """``bn(conv(x))``, as one convolution with a bias when ``bn`` uses its running statistics.

    In eval mode batch norm is the affine map ``y * s + (beta - mean * s)`` with
    ``s = gamma / sqrt(var + eps)``, so it folds into the convolution's weight and bias; this
    saves a pass over the activations forward and backward (a MEMO block frozen after its task
    runs this way). The folded weight is recomputed on every call (a few thousand values, nothing
    is cached or stored) and gradients reach ``conv`` and ``bn`` parameters through it. In
    training mode (batch statistics, running statistics updated) it is ``bn(conv(x))``.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from strategies.resnet import conv_bn
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> conv, bn = nn.Conv2d(2, 3, 3, padding=1, bias=False), nn.BatchNorm2d(3).eval()
    >>> bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2)  # doctest: +ELLIPSIS
    (tensor(...), tensor(...))
    >>> x = torch.randn(4, 2, 5, 5)
    >>> torch.allclose(conv_bn(conv, bn, x), bn(conv(x)), atol=1e-6)
    True
    """
    if bn.training or bn.running_mean is None or bn.running_var is None:
        return bn(conv(x))
    scale = torch.rsqrt(bn.running_var + bn.eps)
    shift = -bn.running_mean * scale
    if bn.affine:
        scale = scale * bn.weight
        shift = shift * bn.weight + bn.bias
    weight = conv.weight * scale.reshape(-1, 1, 1, 1)
    if conv.bias is not None:
        shift = shift + conv.bias * scale
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
        weight = weight.contiguous(memory_format=torch.channels_last)
    return conv._conv_forward(x, weight, shift)


class _ShortcutA(nn.Module):
    """Option-A shortcut: take every second pixel and zero-pad the extra channels."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pad = out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.pad // 2
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, low, self.pad - low))


class _BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        changes = stride != 1 or in_channels != out_channels
        self.shortcut = _ShortcutA(in_channels, out_channels) if changes else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(conv_bn(self.conv1, self.bn1, x))
        return F.relu(conv_bn(self.conv2, self.bn2, out) + self.shortcut(x))


def _stage(in_channels: int, out_channels: int, n_blocks: int, stride: int) -> nn.Sequential:
    blocks = [_BasicBlock(in_channels, out_channels, stride)]
    blocks += [_BasicBlock(out_channels, out_channels, 1) for _ in range(n_blocks - 1)]
    return nn.Sequential(*blocks)


class SplitResNet(nn.Module):
    """A backbone made of a ``generalized`` part, a ``specialized`` part and a linear ``head``.

    ``features(x) = specialized(generalized(x))`` and ``forward(x) = head(features(x))``.
    :func:`strategies.backbones.split_backbone` reads the two parts directly.

    Parameters
    ----------
    generalized, specialized
        The shallow (shared) and deep (per task) parts; ``specialized`` ends with a flat feature.
    feature_dim
        Width of the feature.
    n_classes
        Logits of the head; 0 builds no head (``head`` is then ``None``).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from strategies.resnet import SplitResNet
    >>> net = SplitResNet(nn.Flatten(), nn.Linear(4, 3), feature_dim=3, n_classes=2)
    >>> net(torch.zeros(5, 2, 2)).shape
    torch.Size([5, 2])
    """

    def __init__(
        self, generalized: nn.Module, specialized: nn.Module, feature_dim: int, n_classes: int
    ) -> None:
        super().__init__()
        self.generalized = generalized
        self.specialized = specialized
        self.feature_dim = feature_dim
        self.head = nn.Linear(feature_dim, n_classes) if n_classes else None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.specialized(self.generalized(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.head is None:
            raise RuntimeError("this backbone has no head (n_classes=0); call features(x)")
        return self.head(self.features(x))


class CifarResNet(SplitResNet):
    """The CIFAR ResNet of depth ``6n + 2`` with option-A shortcuts, split for MEMO.

    Parameters
    ----------
    depth
        ``6n + 2``: 14, 20, 26 or 32 for the paper's budget sweep.
    n_classes
        Logits of the linear head over the 64-d feature (0 for none).
    in_channels
        Input channels (3 for CIFAR images).

    Examples
    --------
    >>> import torch
    >>> from strategies.resnet import CifarResNet, n_parameters
    >>> net = CifarResNet(32, n_classes=0)
    >>> n_parameters(net), n_parameters(net.generalized), n_parameters(net.specialized)
    (463504, 112016, 351488)
    >>> x = torch.zeros(2, 3, 32, 32)
    >>> net.generalized(x).shape, net.features(x).shape
    (torch.Size([2, 32, 16, 16]), torch.Size([2, 64]))
    """

    def __init__(self, depth: int = 32, n_classes: int = 10, in_channels: int = 3) -> None:
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
            raise ValueError(f"depth must be {_CIFAR_DEPTHS}, got {depth!r}")
        n = (depth - 2) // 6
        generalized = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            _stage(16, 16, n, 1),
            _stage(16, 32, n, 2),
        )
        specialized = nn.Sequential(_stage(32, 64, n, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        super().__init__(generalized, specialized, feature_dim=64, n_classes=n_classes)
        self.depth = depth
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")


def imagenet_resnet18(n_classes: int = 0, device: str | torch.device | None = None) -> SplitResNet:
    """Torchvision's ResNet18 split after ``layer3`` (pass ``device="meta"`` to allocate nothing).

    Examples
    --------
    >>> from strategies.resnet import imagenet_resnet18, n_parameters
    >>> net = imagenet_resnet18(device="meta")
    >>> n_parameters(net.generalized), n_parameters(net.specialized), net.feature_dim
    (2782784, 8393728, 512)
    """
    from torchvision.models import resnet18

    with torch.device(device or "cpu"):
        net = resnet18()
        generalized = nn.Sequential(
            net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3
        )
        specialized = nn.Sequential(net.layer4, net.avgpool, nn.Flatten())
        return SplitResNet(generalized, specialized, feature_dim=512, n_classes=n_classes)
