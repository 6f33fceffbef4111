"""The one filter spec: torch (engine, methods) and numpy (FilterCache) give the same map, checked against a
direct reading of Tjoa et al.'s definition (normalise by max|R|, keep / clamp |r| in [α1, α2])."""
import numpy as np
import pytest
import torch

from NeuroRelevanceLib.explanation.filters import FilterCache, apply_filter


def _oracle(r: np.ndarray, kind: str, lo: float, hi: float) -> np.ndarray:
    peak = np.abs(r).max()
    n = r / peak
    if kind == "pass":
        return np.where((np.abs(n) >= lo) & (np.abs(n) <= hi), r, 0.0)
    return np.sign(n) * np.clip(np.abs(n), lo, hi) * peak


@pytest.mark.parametrize("kind", ["pass", "clamp"])
@pytest.mark.parametrize("value_range", [(0.0, 1.0), (0.25, 0.75), (0.5, 0.5)])
def test_torch_and_numpy_follow_the_definition(kind, value_range):
    rng = np.random.default_rng(3)
    r = rng.normal(size=(4, 5, 6)).astype(np.float64)
    r[0, 0, 0] = 0.0
    expected = _oracle(r, kind, *value_range)
    torch_map = apply_filter(torch.from_numpy(r)[None], kind, value_range)[0].numpy()
    buffer = np.full(r.size, np.nan, dtype=np.float32)
    numpy_map = FilterCache(r).apply(kind, value_range, out=buffer)
    assert np.allclose(torch_map, expected, atol=1e-12)
    assert np.allclose(numpy_map, expected, atol=1e-5)
    assert np.shares_memory(numpy_map, buffer) and np.allclose(buffer.reshape(r.shape), expected, atol=1e-5)
    assert numpy_map[0, 0, 0] == 0.0 and torch_map[0, 0, 0] == 0.0
