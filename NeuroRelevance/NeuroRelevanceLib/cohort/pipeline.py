"""``decompose_cohort``: the whole dataset-level explanation of seed 003, stage by stage."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..geometry import Grid
from .activations import Activations, collect_activations
from .data import CohortTable, check_grids, load_volume, split_indices
from .device import resolve_device
from .linear import LinearResult, fit_linear_model, mae
from .options import check_options, decomposable
from .ranks import RankGrid, rank_grid
from .roi import layer_grid
from .scree import scree as scree_data
from .tucker import check_rank


@dataclass
class CohortResult:
    """Everything the pipeline computed; ``write(out_dir)`` saves it (see :mod:`.outputs`)."""

    activations: Activations
    input_grid: Grid                   # the grid of the arrays the model saw, (k, j, i) = (D, H, W)
    targets: np.ndarray
    splits: dict[str, np.ndarray]
    scree: dict[str, list[float]]
    grid: RankGrid | None
    rank: tuple[int, int]
    linear: LinearResult
    network_mae: dict[str, float]
    seconds: dict[str, float] = field(default_factory=dict)
    files: dict[str, object] = field(default_factory=dict)
    signed: str = "none"               # how negative activations were handled (options.SIGNED_MODES)
    negative_fraction: float = 0.0     # share of negative entries in the layer's activations
    decomposed_channels: int = 0       # c, or 2c when the signed parts were split

    @property
    def layer_grid(self) -> Grid:
        """The :class:`Grid` of the decomposed layer (U3's columns reshaped to ``layer_shape``)."""
        return layer_grid(self.input_grid, self.activations.layer_shape)

    def summary(self) -> dict:
        """JSON-ready summary: layer, shapes, ranks, λ, α, MAE of the linear model and the network."""
        a = self.activations
        lin = self.linear
        return {
            "layer": a.layer, "tensor_shape": list(a.tensor.shape), "layer_grid": list(a.layer_shape),
            "input_grid": list(a.input_shape), "n_subjects": {k: int(len(v)) for k, v in self.splits.items()},
            "negative_fraction": round(self.negative_fraction, 4), "signed": self.signed,
            "decomposed_channels": self.decomposed_channels,
            "rank": list(self.rank), "suggested_rank": list(self.grid.suggested) if self.grid else None,
            "sparsity_fraction": lin.sparsity_fraction, "sparsity": lin.sparsity, "ridge_alpha": lin.alpha,
            "reconstruction_error_train": lin.fit.errors[-1], "iterations": lin.fit.n_iter,
            "linear_model_mae": lin.mae, "network_mae": self.network_mae, "seconds": self.seconds,
        }


def _say(progress, stage: str, msg: str) -> None:
    if progress is not None:
        progress(f"[{stage}] {msg}")


def _model_device(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError, TypeError):
        return torch.device("cpu")


def _carded_sources(sources, loader, grid: Grid, card):
    """Feed every volume through the card's preprocessing (model grid, normalisation); the input
    grid becomes the model grid."""
    from ..nifti import read_nifti
    from ..preprocessing import prepare_input

    if len(card.input.channels) != 1:
        raise InputError(f"the cohort decomposition takes single-channel models; the card names "
                         f"{len(card.input.channels)} channels {list(card.input.channels)}.")
    grids: list = []

    def load(source):
        if isinstance(source, (str, Path)):
            array, source_grid = read_nifti(source, dtype=np.float32, scan=True)
        else:
            array = np.asarray(loader(source) if loader else source)
            source_grid = grid if array.shape == grid.shape_kji else Grid(array.shape, grid.ijk_to_ras)
        prepared = prepare_input([(array, source_grid)], card)
        if grids and not prepared.grid.same_as(grids[0], atol=1e-3):
            raise InputError("the volumes lead to different model grids: register them to one "
                             "template (or give the card an input.origin).")
        grids.append(prepared.grid)
        return prepared.array[0]

    first = load(sources[0])  # fixes the model grid and so the input grid
    del first
    return sources, load, grids[0]


def _sources(volumes, volume_grid: Grid | None):
    """(sources, loader, input grid) for paths, a CohortTable or in-memory (k, j, i) arrays."""
    if isinstance(volumes, CohortTable):
        return list(volumes.paths), load_volume, volumes.grid
    vols = list(volumes)
    if vols and isinstance(vols[0], (str, Path)):
        return [Path(v) for v in vols], load_volume, check_grids([Path(v) for v in vols])
    if volume_grid is not None and not isinstance(volume_grid, Grid):
        raise InputError(f"volume_grid is a {type(volume_grid).__name__}; pass a geometry.Grid "
                         "(Grid(shape_kji, ijk_to_ras)) for the (k, j, i) arrays.")
    if volume_grid is None:
        shape = np.shape(vols[0]) if vols else (1, 1, 1)
        volume_grid = Grid(tuple(shape[-3:]) if len(shape) >= 3 else (1, 1, 1), np.eye(4))
    return vols, None, volume_grid


def _grid_values(r1_values: Sequence[int], r2_values: Sequence[int], n_train: int, c: int, v: int,
                 progress) -> tuple[list[int], list[int]]:
    """The rank grid's values that fit the tensor; refuse a grid none of whose values fit."""
    if max(r1_values) > n_train:
        raise InputError(f"the largest R1 ({max(r1_values)}) exceeds the {n_train} training subjects; "
                         "use more subjects or smaller R1 values.")
    r1v = [r for r in r1_values if r <= v]
    r2v = [r for r in r2_values if r <= c]
    if not r1v:
        raise InputError(f"every R1 value {r1_values} exceeds the layer's {v} voxels; use smaller R1 values.")
    if not r2v:
        raise InputError(f"every R2 value {r2_values} exceeds the {c} decomposed channels; use R2 <= {c}.")
    dropped = sorted(set(r1_values) - set(r1v)) + sorted(set(r2_values) - set(r2v))
    if dropped:
        _say(progress, "3/5 ranks", f"skipping rank values {dropped} (more than the tensor allows)")
    return r1v, r2v


def decompose_cohort(volumes, targets, model, *, layer: str | None = None, volume_grid: Grid | None = None,
                     rank: Sequence[int] | None = None, grid: bool = True,
                     r1_values: Sequence[int] = range(2, 11), r2_values: Sequence[int] = range(2, 11),
                     splits: dict[str, Sequence[int]] | None = None,
                     split_fractions: Sequence[float] = (0.6, 0.2, 0.2),
                     sparsity_fractions: Sequence[float] = (0.0, 0.01, 0.03, 0.1),
                     alphas: Sequence[float] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0),
                     n_iter_max: int = 300, grid_iter_max: int = 100, tol: float = 1e-6,
                     batch_size: int = 4, device: str | torch.device | None = "auto",
                     dtype: torch.dtype = torch.float32, seed: int = 0, output_index: int = 0,
                     to_input: Callable | None = None, atlas: str | None = None,
                     card=None, signed: str = "split",
                     out_dir: str | Path | None = None, target_name: str = "target",
                     progress: Callable[[str], None] | None = print,
                     collect: Callable | None = None) -> CohortResult:
    """Dataset-level explanation (seed 003) of ``model`` over a cohort.

    volumes: NIfTI paths, a :class:`CohortTable`, or arrays in (k, j, i) order (then give their
    ``volume_grid``, a ``geometry.Grid``; default: 1 mm voxels at the origin). Every volume reaches the
    network as (D, H, W) = (k, j, i), NeuroRelevance's model input order. targets: one number per
    subject. model: an ``nn.Module`` (or a TorchScript chain); it runs on its own device, unchanged.
    Stages: activations of ``layer`` (default: the last 3D feature map) → scree data → Algorithm 1
    over ``r1_values × r2_values`` (suggested rank by the elbow unless ``rank`` is given) → Algorithm 2
    (λ on U3 and ridge α by validation MAE) → RoI maps. With ``out_dir`` everything is written there
    (NIfTI, PNG, CSV, JSON).
    card: the model's card (``models.ModelCard``): each volume is then resampled into the card's
    model grid and normalised as for a single scan (``preprocessing.prepare_input``), and fed in
    the same (k, j, i) order; the RoI maps live on that model grid.
    signed: what to do with negative activations ("split", "rectify" or "refuse"; see
    :mod:`.options`). Every option is checked before any volume is read.
    collect: replaces :func:`collect_activations` (same signature), e.g.
    ``batch.distributed_collector(executor, model file)`` to collect on Dask workers.
    """
    t0 = time.perf_counter()
    seconds: dict[str, float] = {}
    opts = check_options(sparsity_fractions=sparsity_fractions, alphas=alphas, rank=rank, grid=grid,
                         r1_values=r1_values, r2_values=r2_values, n_iter_max=n_iter_max,
                         grid_iter_max=grid_iter_max, tol=tol, batch_size=batch_size,
                         output_index=output_index, signed=signed, atlas=atlas)
    sparsity_fractions, alphas, rank = opts["sparsity_fractions"], opts["alphas"], opts["rank"]
    r1_values, r2_values = opts["r1_values"], opts["r2_values"]
    sources, loader, input_grid = _sources(volumes, volume_grid)
    if card is not None:
        sources, loader, input_grid = _carded_sources(sources, loader, input_grid, card)
    y = np.asarray(targets if not isinstance(volumes, CohortTable) or targets is not None
                   else volumes.targets, float).reshape(-1)
    if len(y) != len(sources):
        raise InputError(f"{len(y)} targets for {len(sources)} volumes; give one target per subject.")
    if not np.isfinite(y).all():
        raise InputError("some targets are NaN or infinite; give a finite target for every subject.")
    if rank is None and not grid:
        raise InputError("no rank was given and the rank grid is switched off; pass rank=(R1, R2) "
                         "or grid=True.")
    dev = resolve_device(device)

    _say(progress, "1/5 activations", f"{len(sources)} subjects in batches of {batch_size}")
    acts = (collect or collect_activations)(model, sources, layer=layer, batch_size=batch_size,
                                            device=_model_device(model), load=loader, to_input=to_input,
                                            progress=(lambda k, n: _say(progress, "1/5 activations",
                                                                        f"{k}/{n}")) if progress else None)
    seconds["activations"] = time.perf_counter() - t0
    if tuple(acts.input_shape) != input_grid.shape_kji:
        raise InputError(f"the volumes have shape {tuple(acts.input_shape)} but volume_grid is {input_grid.shape_kji} "
                         "(k, j, i); pass the Grid of the (k, j, i) arrays.")
    if output_index >= acts.outputs.shape[1]:
        raise InputError(f"output_index {output_index} is out of range: the network has "
                         f"{acts.outputs.shape[1]} output(s).")
    decomposed, negative = decomposable(acts.tensor, signed, acts.layer)
    n, c, v = decomposed.shape
    _say(progress, "1/5 activations", f"layer {acts.layer!r}: tensor {n} × {acts.tensor.shape[1]} × {v} "
         f"(grid {acts.layer_shape}), {negative:.1%} negative entries"
         + (f"; decomposing {'[A+, A-] as ' + str(c) + ' channels' if signed == 'split' else 'max(A, 0)'}"
            if negative > 0 else ""))

    if splits is None and isinstance(volumes, CohortTable) and volumes.splits is not None:
        labels = np.asarray(volumes.splits)
        splits = {k: np.flatnonzero(labels == k).tolist() for k in ("train", "val", "test")}
    idx = ({k: np.asarray(v_, int) for k, v_ in splits.items()} if splits is not None
           else split_indices(y, split_fractions, seed))
    for key in ("train", "val"):
        if key not in idx or len(idx[key]) == 0:
            raise InputError(f"the {key!r} split is empty; use more subjects or other split fractions.")
    idx.setdefault("test", np.zeros(0, int))
    a = decomposed.to(device=dev, dtype=dtype)
    a_tr, a_val = a[idx["train"]], a[idx["val"]]
    a_te = a[idx["test"]] if len(idx["test"]) else None
    fit_kw = dict(device=dev, seed=seed, tol=tol)
    if rank is not None:
        if rank[0] > len(idx["train"]):
            raise InputError(f"R1 = {rank[0]} exceeds the {len(idx['train'])} training subjects; "
                             "use more subjects or a smaller R1.")
        check_rank((len(idx["train"]), c, v), rank)
    if grid:
        r1_values, r2_values = _grid_values(r1_values, r2_values, len(idx["train"]), c, v, progress)

    t = time.perf_counter()
    _say(progress, "2/5 scree", "singular values of the mode-1/2/3 unfoldings (training set)")
    scree = scree_data(a_tr, k=30, seed=seed)
    seconds["scree"] = time.perf_counter() - t

    rgrid = None
    if grid:
        t = time.perf_counter()
        rgrid = rank_grid(a_tr, a_val, r1_values, r2_values, n_iter_max=grid_iter_max,
                          progress=(lambda k, tot, row: _say(
                              progress, "3/5 ranks", f"{k}/{tot} R1={row['r1']} R2={row['r2']} "
                              f"E_train={row['e_train']:.4f} E_val={row['e_val']:.4f}")) if progress else None,
                          **fit_kw)
        seconds["rank_grid"] = time.perf_counter() - t
        _say(progress, "3/5 ranks", f"suggested (R1, R2) = {rgrid.suggested}")
    if rank is not None:
        r1, r2 = (int(r) for r in rank)
    elif rgrid is not None:
        r1, r2 = (int(r) for r in rgrid.suggested)
    else:  # refused at the start (no rank and no grid)
        raise InputError("no rank was given and the rank grid is switched off; pass rank=(R1, R2).")
    chosen = (r1, r2)

    t = time.perf_counter()
    _say(progress, "4/5 linear model", f"rank {chosen}, λ fractions {list(sparsity_fractions)}")
    lin = fit_linear_model(a_tr, y[idx["train"]], a_val, y[idx["val"]], chosen,
                           sparsity_fractions=sparsity_fractions, alphas=alphas, a_test=a_te,
                           y_test=y[idx["test"]] if a_te is not None else None,
                           progress=(lambda m: _say(progress, "4/5 linear model", m)) if progress else None,
                           n_iter_max=n_iter_max, **fit_kw)
    seconds["linear_model"] = time.perf_counter() - t
    pred_net = acts.outputs[:, output_index].numpy().astype(float)
    net_mae = {k: mae(pred_net[ix], y[ix]) for k, ix in idx.items() if len(ix)}
    _say(progress, "4/5 linear model", f"MAE linear {lin.mae} vs network {net_mae}")

    result = CohortResult(acts, input_grid, y, idx, scree, rgrid, chosen, lin,
                          net_mae, seconds, signed=signed if negative > 0 else "none",
                          negative_fraction=negative, decomposed_channels=c)
    if out_dir is not None:
        from .outputs import write_outputs

        t = time.perf_counter()
        _say(progress, "5/5 outputs", f"writing to {out_dir}")
        result.files = write_outputs(result, out_dir, atlas=atlas, target_name=target_name)
        seconds["outputs"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t0
    _say(progress, "done", f"{seconds['total']:.1f} s")
    return result
