"""One working copy for LRP and the other methods: a model that holds a lock (not deep-copyable) is explained by
both, tied weights stay tied, the user's hooks never run, and the user's model is left as it was."""
import threading

import torch
from torch import nn

from NeuroRelevanceLib.engine import explain as lrp
from NeuroRelevanceLib.explanation.working_copy import working_copy
from NeuroRelevanceLib.methods import gradient_x_input

torch.set_num_threads(1)


class Locked(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.c = nn.Conv3d(1, 2, 3, padding=1)
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        return self.fc(torch.relu(self.c(x)).mean((2, 3, 4)))


def test_lrp_and_gradient_x_input_share_the_copy_and_agree_on_a_locked_model():
    torch.manual_seed(0)
    model = Locked().double().eval()
    calls = []
    model.c.register_forward_hook(lambda *a: calls.append(1))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 1, 4, 4, 4, dtype=torch.float64)
    e = lrp(model, x, dtype=torch.float64)
    g = gradient_x_input(model, x, dtype=torch.float64)
    assert e.relevance.shape == g.relevance.shape == x.shape
    assert torch.allclose(e.target_value, g.target_value)
    assert calls == [] and all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_copy_is_private_frozen_and_keeps_tied_weights():
    lin = nn.Linear(3, 3)
    model = nn.Sequential(lin, nn.ReLU(inplace=True), nn.Linear(3, 3))
    model[2].weight = lin.weight
    model.train()
    work = working_copy(model, torch.device("cpu"), torch.float64, inplace=False)
    assert work[0].weight is work[2].weight and work[0].weight is not lin.weight
    assert work[0].weight.dtype == torch.float64 and not work[0].weight.requires_grad
    assert not work.training and model.training
    assert work[1].inplace is False and model[1].inplace is True
