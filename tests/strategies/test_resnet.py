"""CIFAR ResNets and the ImageNet ResNet18 split: the paper's parameter counts and byte totals."""

import pytest
import torch
from torch import nn

from continual import MemoryAccountant, nbytes
from strategies.backbones import split_backbone
from strategies.resnet import CifarResNet, conv_bn, imagenet_resnet18, n_parameters


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


def _random_statistics(module):
    """Give every batch norm non-trivial running statistics and affine parameters."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for bn in module.modules():
            if isinstance(bn, nn.BatchNorm2d):
                shape = bn.running_mean.shape
                bn.running_mean.copy_(torch.rand(shape, generator=generator) - 0.5)
                bn.running_var.copy_(torch.rand(shape, generator=generator) + 0.5)
                bn.weight.copy_(torch.rand(shape, generator=generator) + 0.5)
                bn.bias.copy_(torch.rand(shape, generator=generator) - 0.5)


def test_conv_bn_in_eval_mode_is_the_affine_map_of_the_running_statistics():
    torch.manual_seed(0)
    conv, bn = nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=True), nn.BatchNorm2d(4)
    _random_statistics(bn)
    bn.eval()
    x = torch.randn(5, 3, 8, 8)
    z = nn.functional.conv2d(x, conv.weight, conv.bias, stride=2, padding=1)
    std = (bn.running_var + bn.eps).sqrt()[:, None, None]
    expected = (z - bn.running_mean[:, None, None]) / std * bn.weight[:, None, None]
    expected = expected + bn.bias[:, None, None]
    for layout in (torch.contiguous_format, torch.channels_last):
        out = conv_bn(conv, bn, x.contiguous(memory_format=layout))
        assert torch.allclose(out, expected, atol=1e-5)
    # gradients reach the convolution and the batch norm's affine parameters through the fold
    conv_bn(conv, bn, x).square().sum().backward()
    grads = [p.grad.clone() for p in (conv.weight, conv.bias, bn.weight, bn.bias)]
    for p in (conv.weight, conv.bias, bn.weight, bn.bias):
        p.grad = None
    expected_with_graph = bn(conv(x))
    expected_with_graph.square().sum().backward()
    for grad, p in zip(grads, (conv.weight, conv.bias, bn.weight, bn.bias)):
        assert torch.allclose(grad, p.grad, rtol=1e-4, atol=1e-4)


def test_conv_bn_in_training_mode_uses_batch_statistics_and_updates_running_ones():
    torch.manual_seed(0)
    conv, bn = nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
    x = torch.randn(6, 3, 5, 5)
    out = conv_bn(conv, bn, x)
    z = nn.functional.conv2d(x, conv.weight, padding=1)
    mean, var = z.mean((0, 2, 3)), z.var((0, 2, 3), unbiased=False)
    expected = (z - mean[:, None, None]) / (var[:, None, None] + bn.eps).sqrt()
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.allclose(bn.running_mean, 0.1 * mean, atol=1e-6)
    assert int(bn.num_batches_tracked) == 1


def test_eval_forward_matches_an_explicit_resnet_in_both_layouts():
    torch.manual_seed(0)
    net = CifarResNet(8, n_classes=5)
    _random_statistics(net)
    net.eval()
    x = torch.randn(3, 3, 32, 32)

    def bn(z, layer):
        std = (layer.running_var + layer.eps).sqrt()[:, None, None]
        shifted = (z - layer.running_mean[:, None, None]) / std
        return shifted * layer.weight[:, None, None] + layer.bias[:, None, None]

    def conv(z, layer):
        return nn.functional.conv2d(z, layer.weight, stride=layer.stride, padding=1)

    stem, _, _, stage1, stage2 = net.generalized
    z = torch.relu(bn(conv(x, stem), net.generalized[1]))
    for block in [*stage1, *stage2, *net.specialized[0]]:
        out = torch.relu(bn(conv(z, block.conv1), block.bn1))
        out = bn(conv(out, block.conv2), block.bn2)
        if out.shape[1] != z.shape[1]:  # option A: subsample, zero-pad the channels
            pad = (out.shape[1] - z.shape[1]) // 2
            z = nn.functional.pad(z[:, :, ::2, ::2], (0, 0, 0, 0, pad, pad))
        z = torch.relu(out + z)
    expected = net.head(z.mean((2, 3)))
    with torch.no_grad():
        for layout in (torch.contiguous_format, torch.channels_last):
            assert torch.allclose(net(x.contiguous(memory_format=layout)), expected, atol=1e-4)
