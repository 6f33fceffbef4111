"""Every method explains the same target as LRP: segmentation over a mask, regression output, anti-class."""
import pytest
import torch

from NeuroRelevanceLib.explanation.layers import last_conv_block
from NeuroRelevanceLib.explanation.dispatch import METHODS, explain
from NeuroRelevanceLib.nets import PreActResNet3d, UNet3d

torch.set_num_threads(1)
D = torch.float64
FAST = {"smoothgrad": {"samples": 2}, "integrated_gradients": {"steps": 4}}


def test_segmentation_channel_over_a_mask():
    torch.manual_seed(0)
    net = UNet3d(in_channels=2, n_classes=2, features=(2, 4)).double().eval()
    x = torch.randn(2, 2, 4, 4, 4, generator=torch.Generator().manual_seed(1), dtype=D)
    mask = torch.zeros(4, 4, 4, dtype=D)
    mask[1:3, :2, 2:] = 1
    assert last_conv_block(net, x) == "decoder.0"          # the block before the 1×1×1 head
    xi = x.clone().requires_grad_(True)
    s = (net(xi)[:, 1] * mask).flatten(1).sum(1)
    (oracle,) = torch.autograd.grad(s.sum(), xi)
    for method in METHODS:
        e = explain(net, x, method, target=1, mask=mask, device="cpu", dtype=D, **FAST.get(method, {}))
        assert e.relevance.shape == x.shape, method
        torch.testing.assert_close(e.target_value, s.detach(), msg=method)
        assert e.target == "channel 1 over the given mask", method
    g = explain(net, x, "gradient", target=1, mask=mask, device="cpu", dtype=D).relevance
    torch.testing.assert_close(g, oracle)


def test_regression_output_and_anti_class():
    torch.manual_seed(2)
    reg = PreActResNet3d(widths=(2, 4), units=(1, 1)).double().eval()
    x = torch.randn(2, 1, 4, 4, 4, generator=torch.Generator().manual_seed(3), dtype=D)
    e = explain(reg, x, "gradcam++", device="cpu", dtype=D)
    assert e.target == "regression output" and e.parameters["layer"] == "stages.1.0"
    torch.testing.assert_close(e.target_value, reg(x).detach().reshape(-1))
    cls = PreActResNet3d(widths=(2, 4), units=(1, 1), task="classification", n_outputs=3).double().eval()
    out = cls(x).detach()
    anti = out.argmin(1)
    g = explain(cls, x, "gradient_x_input", target=anti, device="cpu", dtype=D)
    torch.testing.assert_close(g.target_value, out[range(2), anti])
    with pytest.raises(ValueError, match="single output"):
        explain(reg, x, "gradient", target=2, device="cpu")
