"""Constrained non-negative Tucker decomposition of a cohort tensor (seed 003, eq. 2).

Model, for a tensor A of shape (n subjects, c channels, v voxels)::

    A ≈ G ×1 U1 ×2 U2 ×3 U3,   G of shape (R1, R2, R1),
    U3 ≥ 0,  G[i, :, k] = 0 for i ≠ k,  G[i, :, i] ≥ 0,  optional λ·‖U3‖₁.

Factors follow tensorly's convention (U_k has shape I_k × R_k; the seed writes the transpose).
Because only the "diagonal faces" h_i = G[i, :, i] are free, the model equals
``Σ_i U1[:, i] ∘ (U2 h_i) ∘ U3[:, i]`` with B = U2 H (H = [h_1 … h_R1], R2 × R1).

How the constraint is added to tensorly's machinery (``non_negative_tucker_hals``: HALS for the
factors, FISTA for the core): the factor updates call tensorly's ``hals_nnls`` with the
Gram/cross products of this structured model, and the core update calls tensorly's ``fista``
on the free entries H only. Restricting FISTA to H is exactly projected FISTA on the full
core with the projection "zero the off-diagonal faces, clip the diagonal faces at 0": the
gradient of ½‖A − G×U‖² w.r.t. G[i, :, i] is (U2ᵀU2 H Q − U2ᵀM2)[:, i] with
Q = (U1ᵀU1)∗(U3ᵀU3), and masked entries never move. The FISTA result is kept only if it lowers
the core sub-problem's objective, so each sweep is monotone. Each sweep reads A twice
(A·U3 serves both the U1 and U2/H updates; Aᵀ·(U1⊙B) serves U3 and the error), where
tensorly's routine contracts the full tensor once per mode, once for the core, and rebuilds
the full reconstruction for its error.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import tensorly as tl
import torch
from tensorly.solvers.nnls import fista, hals_nnls

from ..errors import InputError
from .device import as_tensor, resolve_device
from .scree import leading_vectors


@dataclass
class ConstrainedTucker:
    """Result of :func:`constrained_nn_tucker` (torch tensors on the fitting device)."""

    core: torch.Tensor                 # (R1, R2, R1); off-diagonal faces exactly zero
    factors: list[torch.Tensor]        # [U1 (n×R1), U2 (c×R2), U3 (v×R1)]
    errors: list[float] = field(default_factory=list)     # relative error ‖A−Â‖/‖A‖ per sweep
    objective: list[float] = field(default_factory=list)  # ½‖A−Â‖² + λ‖U3‖₁ per sweep
    n_iter: int = 0
    converged: bool = False
    sparsity: float = 0.0              # absolute ℓ1 weight λ used on U3
    nonneg_loadings: bool = True

    @property
    def rank(self) -> tuple[int, int]:
        """(R1, R2)."""
        return int(self.core.shape[0]), int(self.core.shape[1])

    @property
    def diagonal_faces(self) -> torch.Tensor:
        """H (R2 × R1) with H[:, i] = G[i, :, i]."""
        r1 = self.core.shape[0]
        return torch.stack([self.core[i, :, i] for i in range(r1)], dim=1)

    def to_tensor(self) -> torch.Tensor:
        """Full reconstruction G ×1 U1 ×2 U2 ×3 U3 (uses tensorly's ``tucker_to_tensor``)."""
        with tl.backend_context("pytorch", local_threadsafe=True):
            return tl.tucker_to_tensor((self.core, self.factors))


def _structured_core(h: torch.Tensor) -> torch.Tensor:
    r2, r1 = h.shape
    core = h.new_zeros((r1, r2, r1))
    idx = torch.arange(r1, device=h.device)
    core[idx, :, idx] = h.T
    return core


def _nnls(utm: torch.Tensor, utu: torch.Tensor, v: torch.Tensor | None, nonneg: bool,
          n_inner: int, sparsity: float | None = None) -> torch.Tensor:
    """Row-block update V ≈ argmin ‖M − U V‖² (+λ‖V‖₁), V ≥ 0 via tensorly HALS, else least squares."""
    if nonneg:  # row-major copies: tensorly's row updates on transposed views are ~100× slower
        v = None if v is None else v.contiguous()
        return hals_nnls(utm.contiguous(), utu.contiguous(), v, n_iter_max=n_inner,
                         sparsity_coefficient=sparsity)
    return torch.linalg.lstsq(utu, utm).solution


def _normalise(u1: torch.Tensor, u2: torch.Tensor, h: torch.Tensor, u3: torch.Tensor) -> None:
    """In place: unit ℓ2 columns for U1, U2 and B = U2 H; the scale moves into U3 (λ=0: same Â)."""
    n2 = torch.linalg.vector_norm(u2, dim=0)
    n2 = torch.where(n2 > 0, n2, torch.ones_like(n2))
    u2 /= n2
    h *= n2[:, None]
    nb = torch.sqrt(torch.clamp(torch.einsum("ji,jk,ki->i", h, u2.T @ u2, h), min=0))
    nb = torch.where(nb > 0, nb, torch.ones_like(nb))
    h /= nb
    n1 = torch.linalg.vector_norm(u1, dim=0)
    n1 = torch.where(n1 > 0, n1, torch.ones_like(n1))
    u1 /= n1
    u3 *= (nb * n1)[None, :]


def init_vectors(a: torch.Tensor, r1: int, r2: int) -> dict[int, torch.Tensor]:
    """Leading left singular vectors of the mode-1 and mode-2 unfoldings (for ``init_cache``)."""
    return {0: leading_vectors(a, 0, r1)[0], 1: leading_vectors(a, 1, r2)[0]}


def _init_factors(a: torch.Tensor, r1: int, r2: int, init, gen: torch.Generator, nonneg: bool,
                  cache: dict[int, torch.Tensor] | None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(U1, U2, H, U3 or None). ``init``: "svd", "random" or a previous fit with the same R1 and
    R2' ≤ R2 (warm start: extra U2 columns from the SVD, extra H rows small)."""
    n, c, _ = a.shape
    dev, dtype = a.device, a.dtype
    h = torch.rand((r2, r1), generator=gen, device=dev, dtype=dtype) + 0.5
    if isinstance(init, str) and init == "random":
        u1 = torch.rand((n, r1), generator=gen, device=dev, dtype=dtype)
        return u1, torch.rand((c, r2), generator=gen, device=dev, dtype=dtype), h, None
    if isinstance(init, ConstrainedTucker):
        p1, p2, p3 = (f.to(device=dev, dtype=dtype) for f in init.factors)
        ph = init.diagonal_faces.to(device=dev, dtype=dtype)
        if p1.shape != (n, r1) or p3.shape[1] != r1 or p2.shape[1] > r2 or p2.shape[0] != c:
            raise InputError(f"a warm start needs the same R1 and no larger R2; got {init.rank} for "
                             f"({r1}, {r2}).")
        k = p2.shape[1]
        if k < r2:
            extra = _svd_columns(a, 1, r2, gen, nonneg, cache)[:, k:]
            p2 = torch.cat([p2, extra], dim=1)
            ph = torch.cat([ph, 0.1 * ph.mean() * torch.ones((r2 - k, r1), device=dev, dtype=dtype)], dim=0)
        return p1.clone(), p2.clone(), ph.clone(), p3.clone()
    if not (isinstance(init, str) and init == "svd"):
        raise InputError(f"init={init!r} is not supported; use 'svd', 'random' or a previous fit.")
    return _svd_columns(a, 0, r1, gen, nonneg, cache), _svd_columns(a, 1, r2, gen, nonneg, cache), h, None


def _svd_columns(a, mode, r, gen, nonneg, cache) -> torch.Tensor:
    kw = dict(device=a.device, dtype=a.dtype)
    u = cache[mode][:, :r].to(**kw) if cache is not None and cache[mode].shape[1] >= r \
        else leading_vectors(a, mode, r)[0]
    if u.shape[1] < r:  # pad tiny modes with random non-negative columns
        u = torch.cat([u, torch.rand((u.shape[0], r - u.shape[1]), generator=gen, **kw)], dim=1)
    return torch.abs(u) + 1e-3 * torch.rand(u.shape, generator=gen, **kw) if nonneg else u


def squared_norm(a: torch.Tensor, chunk: int = 8) -> float:
    """‖A‖² accumulated in float64 over subject chunks (a float32 reduction over ~10⁷ entries is
    off by ~0.1 %, which would swamp the error formula ‖A‖² − 2⟨A, Â⟩ + ‖Â‖²)."""
    return sum(float(torch.sum(part.double() ** 2)) for part in torch.split(a, chunk, dim=0))


def check_rank(shape: Sequence[int], rank: Sequence[int]) -> tuple[int, int]:
    """Validate (R1, R2) against a tensor shape (n, c, v); raise a one-sentence ValueError."""
    if len(rank) != 2:
        raise InputError(f"rank must be a pair (R1, R2), got {tuple(rank)!r}.")
    r1, r2 = int(rank[0]), int(rank[1])
    n, c, v = shape
    if r1 < 1 or r2 < 1:
        raise InputError(f"ranks must be positive, got (R1, R2) = ({r1}, {r2}).")
    if r1 > n:
        raise InputError(f"R1 = {r1} exceeds the number of subjects n = {n}; "
                         "use more subjects or a smaller R1.")
    if r1 > v:
        raise InputError(f"R1 = {r1} exceeds the number of layer voxels v = {v}; use a smaller R1.")
    if r2 > c:
        raise InputError(f"R2 = {r2} exceeds the number of channels c = {c}; use a smaller R2.")
    return r1, r2


def check_tensor(a: torch.Tensor) -> None:
    """Raise a clear error for a tensor that cannot be decomposed."""
    if a.ndim != 3:
        raise InputError(f"the cohort tensor must be 3-way (subjects, channels, voxels), got shape "
                         f"{tuple(a.shape)}; reshape the activations to n × c × v first.")
    if not bool(torch.isfinite(a.sum())) and not bool(torch.isfinite(a).all()):
        raise InputError("the cohort tensor contains NaN or infinite values; remove or repair the "
                         "subjects whose volumes or activations are not finite.")
    if not (bool(a.amax() > 0) or bool(a.amin() < 0)):
        raise InputError("the cohort tensor is all zeros; choose a layer whose activations are not "
                         "identically zero.")


#: the largest share of ‖A‖² negative entries may hold for the non-negative model (error floor 0.5)
NEGATIVE_ENERGY_LIMIT = 0.25


def check_mostly_nonnegative(a: torch.Tensor) -> None:
    """With non-negative loadings Â >= 0, so ‖A − Â‖ >= ‖A⁻‖: refuse a tensor whose negative part
    alone would leave a relative error above 0.5 (noise around zero is fine)."""
    negative = float(torch.sum(a.clamp(max=0).double() ** 2))
    share = negative / max(squared_norm(a), 1e-300)
    if share > NEGATIVE_ENERGY_LIMIT:
        raise InputError(f"{share:.0%} of the tensor's energy is in negative entries "
                         f"({float((a < 0).float().mean()):.0%} of them), but with non-negative loadings "
                         "the model rebuilds only A >= 0: decompose its positive and negative parts "
                         "(decompose_cohort(..., signed='split')), rectify it, or pass nonneg_loadings=False.")


def constrained_nn_tucker(
    tensor,
    rank: Sequence[int],
    n_iter_max: int = 200,
    tol: float = 1e-7,
    sparsity: float = 0.0,
    nonneg_loadings: bool = True,
    init="svd",
    seed: int = 0,
    device: str | torch.device | None = "auto",
    dtype: torch.dtype | None = None,
    n_inner: int = 5,
    n_core_iter: int = 25,
    callback: Callable[[int, float], None] | None = None,
    init_cache: dict[int, torch.Tensor] | None = None,
) -> ConstrainedTucker:
    """Fit eq. (2) of seed 003 with HALS factor updates and FISTA on the diagonal core faces.

    ``rank`` is (R1, R2); ``sparsity`` is the absolute ℓ1 weight λ on U3 (objective
    ½‖A − Â‖² + λ‖U3‖₁); ``nonneg_loadings`` also keeps U1 and U2 ≥ 0 (as tensorly's NTD; False
    leaves them free as in eq. 2). Stops when the relative error changes by less than ``tol``.
    ``init``: "svd" (|leading singular vectors| of the mode-1/2 unfoldings; ``init_cache`` from
    :func:`init_vectors` reuses them), "random", or a previous fit (warm start, same R1, R2' ≤ R2).
    Deterministic for a given ``seed`` and device.
    """
    dev = resolve_device(device)
    a = as_tensor(tensor, dev, dtype)
    check_tensor(a)
    if nonneg_loadings:
        check_mostly_nonnegative(a)
    r1, r2 = check_rank(a.shape, rank)
    n, c, v = a.shape
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    a_flat = a.reshape(n * c, v)
    norm2 = squared_norm(a)
    lam = float(sparsity) if sparsity else None

    with tl.backend_context("pytorch", local_threadsafe=True):
        u1, u2, h, u3 = _init_factors(a, r1, r2, init, gen, nonneg_loadings, init_cache)
        if u3 is None:
            b = u2 @ h
            m3 = (((u1[:, None, :] * b[None, :, :]).reshape(n * c, r1)).T @ a_flat).T
            gram = (u1.T @ u1) * (b.T @ b)
            u3 = _nnls(m3.T, gram, None, True, n_inner, lam).T
        result = ConstrainedTucker(core=_structured_core(h), factors=[u1, u2, u3],
                                   sparsity=float(sparsity), nonneg_loadings=nonneg_loadings)
        for it in range(int(n_iter_max)):
            w = (a_flat @ u3).reshape(n, c, r1)                      # pass 1 over A
            g3 = u3.T @ u3
            b = u2 @ h
            m1 = (w * b[None]).sum(1)                               # (torch.einsum is ~100× slower here)
            u1 = _nnls(m1.T, (b.T @ b) * g3, u1.T, nonneg_loadings, n_inner).T
            m2 = (w * u1[:, None, :]).sum(0)
            q = (u1.T @ u1) * g3
            u2 = _nnls(h @ m2.T, h @ q @ h.T, u2.T, nonneg_loadings, n_inner).T
            h = _core_step(u2, m2, q, h, n_core_iter)
            _normalise(u1, u2, h, u3)
            b = u2 @ h
            kr = (u1[:, None, :] * b[None, :, :]).reshape(n * c, r1)
            m3 = (kr.T @ a_flat).T                                   # pass 2 over A
            gram = (u1.T @ u1) * (b.T @ b)
            u3 = _nnls(m3.T, gram, u3.T, True, n_inner, lam).T
            inner = float(torch.sum(m3 * u3, dtype=torch.float64))
            model2 = float(torch.sum(gram * (u3.T @ u3), dtype=torch.float64))
            res2 = max(norm2 - 2.0 * inner + model2, 0.0)
            result.errors.append((res2 / norm2) ** 0.5)
            result.objective.append(0.5 * res2 + (lam or 0.0) * float(u3.sum()))
            if callback is not None:
                callback(it, result.errors[-1])
            if it > 0 and abs(result.errors[-2] - result.errors[-1]) < tol:
                result.converged = True
                break
        result.n_iter = len(result.errors)
    result.factors = [u1, u2, u3]
    result.core = _structured_core(h)
    if not all(bool(f.abs().amax() > 0) for f in (u1, u2 @ h, u3)):
        raise InputError(f"the decomposition at rank ({r1}, {r2}) collapsed to zero: the tensor has no "
                         "structure this non-negative model can fit (is it mostly negative?).")
    return _canonical(result)


def _core_step(u2: torch.Tensor, m2: torch.Tensor, q: torch.Tensor, h: torch.Tensor,
               n_core_iter: int) -> torch.Tensor:
    """FISTA (tensorly) on H ≥ 0 for ½ tr(HᵀPHQ) − tr(HᵀC); keep it only if it lowers the objective.

    Solved on vec(H) (column-major) with the Kronecker Gram Q ⊗ P, which is the core block of
    tensorly's FISTA step restricted to the diagonal faces.
    """
    p = u2.T @ u2
    c_mat = u2.T @ m2
    gram = torch.kron(q, p)
    lipschitz = float(torch.linalg.matrix_norm(p, ord=2) * torch.linalg.matrix_norm(q, ord=2))
    if not math.isfinite(lipschitz) or lipschitz <= 0:  # a zero factor: nothing to update
        return h
    lr = 1.0 / lipschitz
    with tl.backend_context("pytorch", local_threadsafe=True):
        x = fista(c_mat.T.reshape(-1), gram, x=h.T.reshape(-1).clone(), n_iter_max=n_core_iter, lr=lr)
    h_new = x.reshape(h.shape[1], h.shape[0]).T

    def obj(y: torch.Tensor) -> float:
        return float(0.5 * torch.sum(y * (p @ y @ q)) - torch.sum(y * c_mat))

    return h_new.contiguous() if obj(h_new) <= obj(h) else h


def _canonical(res: ConstrainedTucker) -> ConstrainedTucker:
    """Unit-norm columns for U1, U2, U3 (scale into the core), components sorted by core energy."""
    u1, u2, u3 = res.factors
    h = res.diagonal_faces.clone()
    n2 = torch.linalg.vector_norm(u2, dim=0)
    n2 = torch.where(n2 > 0, n2, torch.ones_like(n2))
    u2 = u2 / n2
    h = h * n2[:, None]
    n1 = torch.linalg.vector_norm(u1, dim=0)
    n3 = torch.linalg.vector_norm(u3, dim=0)
    n1 = torch.where(n1 > 0, n1, torch.ones_like(n1))
    n3 = torch.where(n3 > 0, n3, torch.ones_like(n3))
    u1, u3 = u1 / n1, u3 / n3
    h = h * (n1 * n3)[None, :]
    order = torch.argsort(torch.linalg.vector_norm(u2 @ h, dim=0), descending=True, stable=True)
    res.factors = [u1[:, order], u2, u3[:, order]]
    res.core = _structured_core(h[:, order])
    return res


def solve_loadings(tensor, fit: ConstrainedTucker) -> tuple[torch.Tensor, float]:
    """Subject loadings of new subjects with the core and U2, U3 fixed (seed Alg. 1, line 5).

    Returns (U1_new (n_new × R1), relative reconstruction error ‖A − Â‖/‖A‖).
    """
    u1_fit, u2, u3 = fit.factors
    a = as_tensor(tensor, u3.device, u3.dtype)
    check_tensor(a)
    n, c, v = a.shape
    if (c, v) != (u2.shape[0], u3.shape[0]):
        raise InputError(f"new subjects have {c} channels × {v} voxels but the fit has "
                         f"{u2.shape[0]} × {u3.shape[0]}; collect them from the same layer.")
    b = u2 @ fit.diagonal_faces
    w = (a.reshape(n * c, v) @ u3).reshape(n, c, -1)
    m1 = (w * b[None]).sum(1)
    gram = (b.T @ b) * (u3.T @ u3)
    u1 = _exact_nnls(gram, m1) if fit.nonneg_loadings else torch.linalg.lstsq(gram, m1.T).solution.T
    norm2 = squared_norm(a)
    res2 = norm2 - 2.0 * float(torch.sum(m1 * u1, dtype=torch.float64)) \
        + float(torch.sum(gram * (u1.T @ u1), dtype=torch.float64))
    return u1, (max(res2, 0.0) / norm2) ** 0.5


def _exact_nnls(gram: torch.Tensor, utm: torch.Tensor) -> torch.Tensor:
    """Exact rows x ≥ 0 minimising xᵀGx − 2xᵀb for each row b of ``utm`` (n × R): with G = LLᵀ this
    is ‖Lᵀx − L⁻¹b‖², solved by scipy's active-set NNLS (finite, exact)."""
    import scipy.linalg
    from scipy.optimize import nnls

    g = gram.detach().cpu().double().numpy()
    b = utm.detach().cpu().double().numpy()
    jitter = 1e-12 * max(float(np.trace(g)), 1e-300)
    low = scipy.linalg.cholesky(g + jitter * np.eye(len(g)), lower=True)
    rhs = scipy.linalg.solve_triangular(low, b.T, lower=True)
    x = np.stack([nnls(low.T, rhs[:, k])[0] for k in range(b.shape[0])]) if b.shape[0] else np.zeros((0, len(g)))
    return torch.as_tensor(x, dtype=utm.dtype, device=utm.device)


def relative_error(tensor, fit: ConstrainedTucker, loadings: torch.Tensor | None = None,
                   chunk: int = 16) -> float:
    """Exact ‖A − Â‖/‖A‖ computed subject by subject (bounded memory), Â from ``fit``."""
    u1, u2, u3 = fit.factors
    if loadings is not None:
        u1 = loadings
    a = as_tensor(tensor, u3.device, u3.dtype)
    b = u2 @ fit.diagonal_faces
    num = 0.0
    for s in range(0, a.shape[0], chunk):
        rec = torch.einsum("ni,ci,vi->ncv", u1[s:s + chunk], b, u3)
        num += float(torch.linalg.vector_norm(a[s:s + chunk] - rec, dtype=torch.float64)) ** 2
    return (num / float(torch.linalg.vector_norm(a, dtype=torch.float64)) ** 2) ** 0.5


def as_numpy(fit: ConstrainedTucker) -> dict[str, np.ndarray]:
    """Core and factors as numpy arrays (for saving)."""
    return {"core": fit.core.detach().cpu().numpy(), "U1": fit.factors[0].detach().cpu().numpy(),
            "U2": fit.factors[1].detach().cpu().numpy(), "U3": fit.factors[2].detach().cpu().numpy()}
