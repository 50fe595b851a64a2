"""CIFAR ResNets and the ImageNet ResNet18 split: the paper's parameter counts and byte totals."""

import pytest
import torch
from torch import nn

from continual import MemoryAccountant, nbytes
from strategies.backbones import split_backbone
from strategies.resnet import CifarResNet, imagenet_resnet18, n_parameters


def _expected_cifar(n):
    """Parameter count of a 6n+2 CIFAR ResNet, from the layer shapes (option A: no shortcut)."""
    conv = lambda cin, cout: 9 * cin * cout  # noqa: E731
    bn = lambda c: 2 * c  # noqa: E731
    block = lambda cin, cout: conv(cin, cout) + conv(cout, cout) + 2 * bn(cout)  # noqa: E731
    stem = conv(3, 16) + bn(16)
    stage = lambda cin, cout: block(cin, cout) + (n - 1) * block(cout, cout)  # noqa: E731
    return stem + stage(16, 16) + stage(16, 32), stage(32, 64)


@pytest.mark.parametrize(
    ("depth", "total"), [(14, 171_856), (20, 269_072), (26, 366_288), (32, 463_504)]
)
def test_cifar_resnet_parameter_counts(depth, total):
    net = CifarResNet(depth, n_classes=0)
    generalized, specialized = _expected_cifar((depth - 2) // 6)
    assert n_parameters(net) == total == generalized + specialized
    assert n_parameters(net.generalized) == generalized
    assert n_parameters(net.specialized) == specialized


def test_resnet32_split_is_the_papers():
    net = CifarResNet(32, n_classes=0)
    assert n_parameters(net.generalized) == 112_016
    assert n_parameters(net.specialized) == 351_488
    x = torch.zeros(2, 3, 32, 32)
    assert net.generalized(x).shape == (2, 32, 16, 16)
    assert net.features(x).shape == (2, 64)
    shared, block, dim = split_backbone(net)
    assert (shared, block, dim) == (net.generalized, net.specialized, 64)


def test_accountant_charges_bn_statistics_on_top_of_parameters():
    net = CifarResNet(32, n_classes=0)
    bn_channels = sum(m.num_features for m in net.modules() if isinstance(m, nn.BatchNorm2d))
    # running mean and variance (float32) plus one int64 num_batches_tracked per BN layer
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    buffers = 2 * 4 * bn_channels + 8 * n_bn
    accountant = MemoryAccountant()
    accountant.track("model", net)
    assert 4 * 463_504 == 1_854_016
    assert accountant.total() == 1_854_016 + buffers
    assert accountant.total() == 1_863_352


def test_a_model_or_603_exemplars():
    net = CifarResNet(32, n_classes=0)
    weights = nbytes(list(net.parameters()))
    image = torch.zeros(3, 32, 32, dtype=torch.uint8)
    assert weights == 1_854_016
    assert round(weights / nbytes(image), 1) == 603.5


def test_head_and_forward():
    net = CifarResNet(20, n_classes=7)
    assert net(torch.zeros(4, 3, 32, 32)).shape == (4, 7)
    assert n_parameters(net) == 269_072 + 64 * 7 + 7
    with pytest.raises(RuntimeError, match="no head"):
        CifarResNet(20, n_classes=0)(torch.zeros(1, 3, 32, 32))


def test_option_a_shortcut_pads_channels_with_zeros():
    net = CifarResNet(8, n_classes=0)
    block = net.specialized[0][0]
    x = torch.randn(1, 32, 8, 8)
    out = block.shortcut(x)
    assert out.shape == (1, 64, 4, 4)
    assert torch.equal(out[:, 16:48], x[:, :, ::2, ::2])
    assert out[:, :16].abs().sum() == 0 and out[:, 48:].abs().sum() == 0


@pytest.mark.parametrize("depth", [7, 9, 33, "32", True])
def test_bad_depth(depth):
    with pytest.raises(ValueError, match=r"depth must be 6n \+ 2"):
        CifarResNet(depth)


def test_imagenet_resnet18_split_on_meta_device():
    net = imagenet_resnet18(device="meta")
    assert all(p.device.type == "meta" for p in net.parameters())
    assert n_parameters(net.generalized) == 2_782_784
    assert n_parameters(net.specialized) == 8_393_728
    assert n_parameters(net) == 11_176_512
