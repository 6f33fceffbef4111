"""The one error measure for conservation (LRP) and completeness (gradient × input, integrated gradients)."""
from __future__ import annotations

import torch

Tensor = torch.Tensor


def relative_error(total: Tensor, reference: Tensor) -> Tensor:
    """|total − reference| / |reference| per sample (plain |difference| where the reference is 0)."""
    denom = reference.abs()
    return (total - reference).abs() / torch.where(denom > 0, denom, torch.ones_like(denom))
