"""The result of ``explain``: relevance plus everything needed to judge and reproduce it."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Optional

import torch


@dataclass
class Explanation:
    """Relevance of one run.

    ``relevance``: tensor shaped like the input (per input channel), on CPU.
    ``output``: model output (before any stripped softmax/sigmoid), on CPU.
    ``target_value``: explained output value per sample (sum of the seed).
    ``layer_totals``: node name -> relevance sum per sample, from the output towards the input.
    ``conservation_error``: |ΣR_input − target| / |target| per sample; ``max_conservation_error`` its max.
    ``rules``: layer -> rule used (human-readable).
    ``graph_check``: how the propagated graph was verified against ``model(x)`` (and any fallback taken).
    ``parameters``: the options of a method other than LRP as it ran (LRP's are in ``preset`` and ``rules``).
    Methods without a conservation property (Grad-CAM, guided backprop, ...) have NaN errors.
    """

    relevance: torch.Tensor
    output: torch.Tensor
    target_value: torch.Tensor
    layer_totals: "OrderedDict[str, torch.Tensor]"
    conservation_error: torch.Tensor
    max_conservation_error: float
    device: torch.device
    dtype: torch.dtype
    seconds: float
    method: str
    preset: Optional[str]
    rules: dict = field(default_factory=dict)
    target: str = ""
    graph_source: str = ""
    stripped: list = field(default_factory=list)
    graph_check: str = ""
    parameters: dict = field(default_factory=dict)

    def summary(self) -> str:
        """A few lines for logs and the Slicer console."""
        if self.method != "lrp":
            err = "n/a" if self.max_conservation_error != self.max_conservation_error else \
                f"{self.max_conservation_error:.2e}"
            params = ", ".join(f"{k}={v}" for k, v in self.parameters.items())
            return (f"{self.method} ({params}) on {self.device} ({str(self.dtype).replace('torch.', '')}), "
                    f"{self.seconds:.2f} s; target {self.target}: {self.target_value.tolist()}; "
                    f"completeness error max {err}")
        return (f"LRP {self.preset or 'custom'} on {self.device} ({str(self.dtype).replace('torch.', '')}), "
                f"{self.seconds:.2f} s; target {self.target}: {self.target_value.tolist()}; "
                f"conservation error max {self.max_conservation_error:.2e}; {len(self.rules)} layers")
