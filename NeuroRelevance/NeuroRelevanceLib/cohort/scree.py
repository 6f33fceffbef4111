"""Scree data: leading singular values of the mode-1/2/3 unfoldings of a cohort tensor."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import InputError

if TYPE_CHECKING:  # torch is imported by the functions, so importing this module stays cheap
    import torch


def mode_gram(a: torch.Tensor, mode: int) -> torch.Tensor:
    """Gram matrix X_(m) X_(m)ᵀ of the mode-``mode`` unfolding of a 3-way tensor (no copy of A)."""
    import torch

    n, c, v = a.shape
    if mode == 0:
        flat = a.reshape(n, c * v)
        return flat @ flat.T
    if mode == 1:
        return torch.bmm(a, a.transpose(1, 2)).sum(0)
    if mode == 2:
        flat = a.reshape(n * c, v)
        return flat.T @ flat
    raise InputError(f"mode must be 0, 1 or 2, got {mode}.")


def leading_vectors(a: torch.Tensor, mode: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` left singular vectors and singular values of the mode unfolding (via its Gram)."""
    import torch

    gram = mode_gram(a, mode)
    size = gram.shape[0]
    k = min(k, size)
    if gram.device.type == "cpu":  # scipy's subset solver: only the k leading pairs, much faster
        import scipy.linalg

        w, v = scipy.linalg.eigh(gram.double().numpy(), subset_by_index=[size - k, size - 1], driver="evr")
        evals = torch.as_tensor(w[::-1].copy(), dtype=a.dtype)
        evecs = torch.as_tensor(v[:, ::-1].copy(), dtype=a.dtype)
    else:
        w, v = torch.linalg.eigh(gram)
        evals, evecs = torch.flip(w, dims=[0])[:k], torch.flip(v, dims=[1])[:, :k]
    return evecs, torch.sqrt(torch.clamp(evals, min=0))


def singular_values(a: torch.Tensor, mode: int, k: int = 30, seed: int = 0,
                    gram_limit: int = 1024) -> torch.Tensor:
    """Leading ``k`` singular values of the mode unfolding.

    Exact (eigenvalues of the Gram matrix) when that mode has at most ``gram_limit`` entries,
    otherwise a seeded randomized SVD (:func:`randomized_singular_values`, 4 power iterations).
    """
    import torch

    size = a.shape[mode]
    k = min(k, size, a.numel() // size)
    if size <= gram_limit:
        return leading_vectors(a, mode, k)[1]
    unf = torch.movedim(a, mode, 0).reshape(size, -1)
    return randomized_singular_values(unf, k, seed)[:k]


def randomized_singular_values(x: torch.Tensor, k: int, seed: int = 0, niter: int = 4) -> torch.Tensor:
    """Leading singular values of a matrix by a randomized range finder with ``niter`` power iterations
    (Halko, Martinsson & Tropp 2011), drawn from a local ``torch.Generator`` seeded with ``seed``: the
    global random state of the user's process is neither read nor changed."""
    import torch

    q = min(k + 10, min(x.shape))
    generator = torch.Generator(device=x.device).manual_seed(int(seed))
    omega = torch.randn(x.shape[1], q, generator=generator, device=x.device, dtype=x.dtype)
    basis = torch.linalg.qr(x @ omega).Q
    for _ in range(niter):  # power iterations, re-orthonormalised each half step
        basis = torch.linalg.qr(x.T @ basis).Q
        basis = torch.linalg.qr(x @ basis).Q
    return torch.linalg.svdvals(basis.T @ x)


def scree(a: torch.Tensor, k: int = 30, seed: int = 0) -> dict[str, list[float]]:
    """Singular values of the three unfoldings: {"mode1": [...], "mode2": [...], "mode3": [...]}."""
    return {f"mode{m + 1}": [float(x) for x in singular_values(a, m, k, seed)] for m in range(3)}
