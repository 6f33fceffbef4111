"""LRP rules for linear layers (conv, conv-transpose, dense), each a short declarative class.

Every rule computes the relevance of a layer's input ``x`` from the relevance ``R`` of its output
with the modified-gradient trick: build one or more modified layers ``z' = layer'(x')``, divide
``R`` by a stabilised denominator, and map it back with the transposed layer (``vjp``), so only
input-gradients of linear maps are ever evaluated.

Conventions (chosen to agree with zennit 0.5, see docs/engine.md):
- stabiliser: ``z + eps * sign(z)`` with ``sign(0) = +1`` (``stabilize``); LRP-0 divides safely
  (0 where z == 0).
- ``ZPlus`` ignores the bias (z+-rule of the Deep Taylor paper); ``AlphaBeta`` counts b+ in the
  positive and b- in the negative part (zennit, iNNvestigate). ``ZPlus() == AlphaBeta(1, 0)`` on
  bias-free layers.
- ``WSquare`` and ``Flat`` ignore the bias (as in the Deep Taylor paper); zennit's ``WSquare`` adds b², so
  the oracle test passes ``zero_params='bias'`` to zennit there.
- ``Gamma`` is the generalised gamma rule (positive and negative outputs treated separately).
- ``ZBox`` uses bounds ``low``/``high`` (scalars or tensors broadcastable to the input).
"""
from __future__ import annotations

import torch

from ..errors import InputError
from .layers import LinearLayer
from .validate import check_bounds, nonnegative

Tensor = torch.Tensor


def stabilize(z: Tensor, eps: float, sign: int = 0, inplace: bool = False) -> Tensor:
    """``z + eps * sign(z)`` with ``sign(0) = +1`` (zennit's convention).

    ``sign=+1``/``-1`` promises that z >= 0 / z <= 0 everywhere. Where a promised-negative z is exactly
    0, every contribution to it is 0 as well, so the sign used there cannot change the result. The
    general case uses ``copysign``, which differs from zennit only at z = -0.0, a sum whose terms are
    all zero (again no contribution). ``inplace``: z is a temporary the caller owns.
    """
    if sign > 0:
        return z.add_(eps) if inplace else z + eps
    if sign < 0:
        return z.sub_(eps) if inplace else z - eps
    return torch.copysign(z.new_tensor(eps), z).add_(z)


def divide(r: Tensor, z: Tensor, eps: float, sign: int = 0, inplace: bool = False) -> Tensor:
    """``r / stabilize(z, eps)``; with ``eps == 0`` entries with ``z == 0`` give 0 instead of NaN."""
    if eps == 0:
        return torch.where(z == 0, torch.zeros_like(r), r / torch.where(z == 0, torch.ones_like(z), z))
    den = stabilize(z, eps, sign, inplace)
    return torch.div(r, den, out=den) if (inplace or sign == 0) and den.shape == r.shape else r / den


def _pos(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.clamp(min=0)


def _neg(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.clamp(max=0)


def _channels(v: Tensor, like: Tensor) -> Tensor:
    """A per-channel vector (C,) shaped to broadcast over a (N, C, *spatial) tensor."""
    return v.reshape(1, -1, *([1] * (like.dim() - 2)))


def _times(fresh: Tensor, x: Tensor) -> Tensor:
    """``fresh * x``, written into ``fresh`` (a temporary the rule owns) where the shapes allow."""
    if fresh.shape == torch.broadcast_shapes(fresh.shape, x.shape) and fresh.dtype == x.dtype:
        return fresh.mul_(x)
    return fresh * x


def _has_negative(layer: LinearLayer, x: Tensor) -> bool:
    """False when the graph guarantees x >= 0 (e.g. after a ReLU); otherwise look."""
    if layer.input_nonneg:
        return False
    return bool(x.min() < 0)


class Rule:
    """Base class. ``needs_output``: the rule uses the layer's recorded output ``z``."""

    name = "rule"
    needs_output = False

    def relevance(self, layer: LinearLayer, x: Tensor, z: Tensor | None, r: Tensor,
                  pre: list | None = None) -> Tensor:
        """Relevance of ``x`` given the relevance ``r`` of the layer output.

        ``pre``: outputs of ``companions(layer)`` on ``x``, computed in the forward pass (or None).
        """
        raise NotImplementedError

    def companions(self, layer: LinearLayer) -> list:
        """Modified (weight, bias) pairs whose outputs on the layer's own input the rule needs; the
        engine computes them in the forward pass fused with the layer (one convolution call)."""
        return []

    def describe(self) -> str:
        """Short human-readable description used in ``Explanation.rules``."""
        params = ", ".join(f"{k}={v}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"

    def __repr__(self) -> str:
        return self.describe()


class Epsilon(Rule):
    """LRP-ε (Bach et al. 2015): ``R_i = Σ_j x_i w_ij / (z_j + ε sign z_j) R_j``, bias included in z."""

    name = "epsilon"
    needs_output = True

    def __init__(self, epsilon: float = 1e-6) -> None:
        self.epsilon = nonnegative("epsilon", epsilon, type(self).__name__)

    def relevance(self, layer, x, z, r, pre=None):
        if layer.kind == "affine":  # one input per output: R_x = (x w) · R / stab(x w + b), no transposed map
            u = layer.forward(x, layer.weight, None)
            return divide(r, u if layer.bias is None else u + _channels(layer.bias, u), self.epsilon).mul_(u)
        if z is None:
            z = layer.forward(x, layer.weight, layer.bias)
        return _times(layer.vjp(x, layer.weight, divide(r, z, self.epsilon)), x)


class LRP0(Epsilon):
    """LRP-0 (Bach et al. 2015): ε-rule with ε = 0 (division guarded where z == 0)."""

    name = "lrp0"

    def __init__(self) -> None:
        super().__init__(0.0)


class AlphaBeta(Rule):
    """LRP-αβ (Bach et al. 2015): positive and negative contributions weighted by α and β, α − β = 1.

    Positive part: x⁺w⁺ + x⁻w⁻ (+ b⁺); negative part: x⁺w⁻ + x⁻w⁺ (+ b⁻).
    """

    name = "alphabeta"

    def __init__(self, alpha: float = 1.0, beta: float = 0.0, stabilizer: float = 1e-6) -> None:
        alpha, beta = nonnegative("alpha", alpha, "AlphaBeta"), nonnegative("beta", beta, "AlphaBeta")
        stabilizer = nonnegative("stabilizer", stabilizer, type(self).__name__)
        if abs((alpha - beta) - 1.0) > 1e-12:
            raise InputError(f"AlphaBeta needs alpha, beta >= 0 with alpha - beta = 1 (got alpha={alpha}, "
                             f"beta={beta}); use e.g. AlphaBeta(1, 0) or AlphaBeta(2, 1).")
        self.alpha, self.beta, self.stabilizer = float(alpha), float(beta), float(stabilizer)

    def _part(self, layer, x, r, w_a, w_b, b, mixed, sign, z=None):
        """Relevance for one sign part: inputs x⁺ with ``w_a`` (+ ``b``), x⁻ with ``w_b``."""
        xp = x.clamp(min=0) if mixed else x
        if z is None:
            z = layer.forward(xp, w_a, b)
        xn = x.clamp(max=0) if mixed else None
        if mixed:
            z = z + layer.forward(xn, w_b, None)
        s = divide(r, z, self.stabilizer, sign, inplace=True)  # z is ours: a companion or fresh
        del z
        out = _times(layer.vjp(xp, w_a, s), xp)
        if mixed:
            out.add_(_times(layer.vjp(xn, w_b, s), xn))
        return out

    def _affine(self, layer, x, r):
        """Closed form on a per-channel affine layer: the positive part of one term ``u = x w`` is u⁺
        (x⁺w⁺ + x⁻w⁻), so ``R_x = α u⁺ R / (u⁺ + b⁺ + ε) − β u⁻ R / (u⁻ + b⁻ − ε)``."""
        u = layer.forward(x, layer.weight, None)
        b = self._bias(layer)
        out = None
        for factor, clamp, bias, sign in ((self.alpha, {"min": 0}, _pos(b), +1), (-self.beta, {"max": 0}, _neg(b), -1)):
            if factor == 0.0:
                continue
            part = u.clamp(**clamp)
            den = part if bias is None else part + _channels(bias, part)
            rel = divide(r, den, self.stabilizer, sign, inplace=bias is not None).mul_(part)
            if factor != 1.0:
                rel.mul_(factor)
            out = rel if out is None else out.add_(rel)
        return out

    def _bias(self, layer):
        return layer.bias

    def companions(self, layer):
        if not layer.input_nonneg:
            return []
        w, b = layer.weight, self._bias(layer)
        pairs = [(w.clamp(min=0), _pos(b))]
        if self.beta != 0.0:
            pairs.append((w.clamp(max=0), _neg(b)))
        return pairs

    def relevance(self, layer, x, z, r, pre=None):
        if layer.kind == "affine":
            return self._affine(layer, x, r)
        w, b = layer.weight, self._bias(layer)
        mixed = _has_negative(layer, x)
        pre = pre or [None, None]
        wp, wn = w.clamp(min=0), w.clamp(max=0)
        out = self._part(layer, x, r, wp, wn, _pos(b), mixed, +1, pre[0])
        if self.alpha != 1.0:
            out.mul_(self.alpha)
        if self.beta != 0.0:
            out.sub_(self._part(layer, x, r, wn, wp, _neg(b), mixed, -1, pre[1]), alpha=self.beta)
        return out


class ZPlus(AlphaBeta):
    """z⁺-rule of deep Taylor decomposition (Montavon et al. 2017; the Deep Taylor paper): α1β0 with the bias
    ignored."""

    name = "zplus"

    def __init__(self, stabilizer: float = 1e-6) -> None:
        super().__init__(1.0, 0.0, stabilizer)

    def _bias(self, layer):
        return None

    def describe(self) -> str:
        return f"ZPlus(stabilizer={self.stabilizer})"


class Gamma(Rule):
    """Generalised LRP-γ (Montavon et al. 2019; Andéol et al. 2021): favour same-sign contributions by γ.

    Where z > 0: weights w + γw⁺ on x⁺ (bias b + γb⁺) and w + γw⁻ on x⁻; where z < 0 the roles swap.
    """

    name = "gamma"
    needs_output = True

    def __init__(self, gamma: float = 0.25, stabilizer: float = 1e-6) -> None:
        self.gamma = nonnegative("gamma", gamma, "Gamma")
        self.stabilizer = nonnegative("stabilizer", stabilizer, "Gamma")

    def _params(self, layer):
        w, b, g = layer.weight, layer.bias, self.gamma
        w_up, w_dn = w + g * w.clamp(min=0), w + g * w.clamp(max=0)
        b_up = None if b is None else b + g * b.clamp(min=0)
        b_dn = None if b is None else b + g * b.clamp(max=0)
        return w_up, w_dn, b_up, b_dn

    def companions(self, layer):
        if not layer.input_nonneg:
            return []
        w_up, w_dn, b_up, b_dn = self._params(layer)
        return [(w_up, b_up), (w_dn, b_dn)]

    def relevance(self, layer, x, z, r, pre=None):
        if z is None:
            z = layer.forward(x, layer.weight, layer.bias)
        w_up, w_dn, b_up, b_dn = self._params(layer)
        mixed = _has_negative(layer, x)
        pre = pre or [None, None]
        xp, xn = (x.clamp(min=0), x.clamp(max=0)) if mixed else (x, None)
        out = torch.zeros_like(x)
        # (where z>0: x⁺ with w_up, x⁻ with w_dn) and (where z<0: x⁺ with w_dn, x⁻ with w_up)
        for k, (sel, w_for_pos, b_for_pos, w_for_neg) in enumerate(((z > 0, w_up, b_up, w_dn),
                                                                    (z < 0, w_dn, b_dn, w_up))):
            den = pre[k] if pre[k] is not None else layer.forward(xp, w_for_pos, b_for_pos)
            if mixed:
                den = den + layer.forward(xn, w_for_neg, None)
            s = sel.to(r.dtype) * divide(r, den, self.stabilizer)
            out = out + xp * layer.vjp(xp, w_for_pos, s)
            if mixed:
                out = out + xn * layer.vjp(xn, w_for_neg, s)
        return out


class WSquare(Rule):
    """w²-rule of deep Taylor decomposition (Montavon et al. 2017): ``R_i = Σ_j w_ij² / Σ_i' w_i'j² R_j``."""

    name = "wsquare"

    def __init__(self, stabilizer: float = 1e-6) -> None:
        self.stabilizer = nonnegative("stabilizer", stabilizer, type(self).__name__)

    def _weight(self, layer):
        return layer.weight ** 2

    def relevance(self, layer, x, z, r, pre=None):
        w = self._weight(layer)
        ones = torch.ones_like(x)
        s = divide(r, layer.forward(ones, w, None), self.stabilizer)
        return layer.vjp(ones, w, s)


class Flat(WSquare):
    """Flat rule (Lapuschkin et al. 2019): as w² with all weights set to one."""

    name = "flat"

    def _weight(self, layer):
        return torch.ones_like(layer.weight)


class ZBox(Rule):
    """zB-rule of deep Taylor decomposition (Montavon et al. 2017) for inputs bounded in [low, high].

    ``R_i = Σ_j (x_i w_ij − l_i w⁺_ij − h_i w⁻_ij) / Σ_i' (…) R_j``. ``low``/``high`` None: taken from
    the input's intensity range at run time (``explain`` fills them in).
    """

    name = "zbox"

    def __init__(self, low: float | Tensor | None = None, high: float | Tensor | None = None,
                 stabilizer: float = 1e-6) -> None:
        check_bounds(low, high, "ZBox")
        self.low, self.high = low, high
        self.stabilizer = nonnegative("stabilizer", stabilizer, "ZBox")

    def describe(self) -> str:
        def fmt(v):
            return f"tensor{tuple(v.shape)}" if isinstance(v, Tensor) and v.numel() > 1 else (
                float(v) if v is not None else None)
        return f"ZBox(low={fmt(self.low)}, high={fmt(self.high)}, stabilizer={self.stabilizer})"

    def _bound(self, value, x):
        if value is None:
            raise ValueError("ZBox needs bounds: pass low= and high= to explain() or to ZBox(low, high).")
        t = torch.as_tensor(value, dtype=x.dtype, device=x.device)
        if t.dim() == 1 and x.dim() > 2 and t.numel() == x.shape[1]:
            t = t.reshape(1, -1, *([1] * (x.dim() - 2)))
        return t.expand_as(x)

    def relevance(self, layer, x, z, r, pre=None):
        w = layer.weight
        wp, wn = w.clamp(min=0), w.clamp(max=0)
        lo, hi = self._bound(self.low, x), self._bound(self.high, x)
        den = layer.forward(x, w, None) - layer.forward(lo, wp, None) - layer.forward(hi, wn, None)
        s = divide(r, den, self.stabilizer)
        return x * layer.vjp(x, w, s) - lo * layer.vjp(lo, wp, s) - hi * layer.vjp(hi, wn, s)


_BY_NAME = {
    "lrp0": lambda e, g, s: LRP0(), "epsilon": lambda e, g, s: Epsilon(e), "zplus": lambda e, g, s: ZPlus(s),
    "alpha1beta0": lambda e, g, s: AlphaBeta(1.0, 0.0, s), "alpha2beta1": lambda e, g, s: AlphaBeta(2.0, 1.0, s),
    "gamma": lambda e, g, s: Gamma(g, s), "wsquare": lambda e, g, s: WSquare(s), "flat": lambda e, g, s: Flat(s),
    "zbox": lambda e, g, s: ZBox(None, None, s),
}

RULE_NAMES = tuple(_BY_NAME)


def register_rule(name: str, factory) -> None:
    """Make a rule available by ``name`` (in ``rules=`` and in presets): ``factory(epsilon, gamma, stabilizer)``
    returns the rule object (see docs/engine.md, "Adding a rule")."""
    global RULE_NAMES
    key = name.lower().replace("-", "").replace("_", "")
    if not key or not callable(factory):
        raise ValueError("register_rule needs a name and a factory(epsilon, gamma, stabilizer) -> Rule.")
    _BY_NAME[key] = factory
    RULE_NAMES = tuple(_BY_NAME)


def make_rule(value: Rule | str, epsilon: float = 1e-6, gamma: float = 0.25, stabilizer: float = 1e-6) -> Rule:
    """A rule object from a rule or one of the names in ``RULE_NAMES``; a name takes ``epsilon``, ``gamma``
    and ``stabilizer`` (``explain``'s options), a rule object keeps its own."""
    if isinstance(value, Rule):
        return value
    if isinstance(value, str):
        key = value.lower().replace("-", "").replace("_", "").replace("ε", "epsilon")
        if key in _BY_NAME:
            return _BY_NAME[key](epsilon, gamma, stabilizer)
    raise InputError(f"Unknown LRP rule {value!r}; use a rule object from NeuroRelevanceLib.engine.rules "
                     f"or one of {', '.join(_BY_NAME)}.")
