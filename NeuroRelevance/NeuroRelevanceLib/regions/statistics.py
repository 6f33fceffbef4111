"""Region statistics of relevance heatmaps against an atlas (Böhle et al. 2019).

For region a with |a| voxels and heatmap R: S_a = Σ_{v∈a} R(v), Σ_a R⁺, Σ_a R⁻ (≤ 0),
density D_a = S_a / |a|, fraction F_a = Σ_a R⁺ / Σ_all R⁺ (all = the whole heatmap, so the
fractions sum to the share of positive relevance that falls inside the atlas), and the gain of a
group against a reference group G_a = mean_group S⁺_a / mean_reference S⁺_a on positive relevance
(``gain_on="positive"``, the default: Böhle et al. explain with β = 0, whose relevance is positive)
or on |R| (``gain_on="absolute"``). Never on the signed sums: controls explained for the patients'
class (e.g. a centred "AD" logit) have mostly negative relevance, and a signed gain then turns
negative everywhere and ranks the patients' strongest region last. A region whose reference sum is
0 (no positive, or no, relevance there), or below ``gain_floor`` (default 1 %) of the largest region's
reference sum (numerical noise: a reference Σ R⁺ of 1e-8 gave a gain of 3e4 that ranked first), gets no
gain (NaN) and a reason in ``gain_note``; when most regions have none, ``table.attrs["gain_summary"]`` says so.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..geometry import Grid
from ..vocabulary import OptionError, OptionNote
from .atlas import Atlas, load_label_map
from .bundled import is_bundled, load_bundled_atlas
from .counting import RegionSums, count_regions, nonzero_share
from .grids import PAIR_HINT, from_sitk, volume_pair
from .heatmaps import Heatmap, load_heatmaps
from .hemispheres import pooling_groups

METRICS = ["voxels", "volume_mm3", "sum", "sum_pos", "sum_neg", "density", "fraction_pos"]
#: regions smaller than this (on the heatmap's grid) are listed but not ranked: a density over a
#: handful of voxels is noise, and such regions used to top the table
DEFAULT_MIN_REGION_VOXELS = 10
DEFAULT_MIN_REGION_MM3 = 500.0
#: what the gain is computed on: option value -> the words used in tables and CSV headers
GAIN_ON = {"positive": "positive relevance (R+)", "absolute": "absolute relevance (|R|)"}
#: a region whose reference sum is below this fraction of the largest region's reference sum gets no gain
DEFAULT_GAIN_FLOOR = 0.01
#: atlases built from files or arrays, keyed by content (a few, most recent last)
_LOADED: dict[tuple, Atlas] = {}
_LOADED_SIZE = 4


def region_statistics(heatmap: object, atlas: object, reference: object = None, pool_hemispheres: bool = False,
                      *, names: Mapping | str | Path | None = None, transform: object = None,
                      min_overlap: float = 0.5, rank_by: str = "density", per_subject: bool = False,
                      min_region_voxels: float = DEFAULT_MIN_REGION_VOXELS,
                      min_region_mm3: float = DEFAULT_MIN_REGION_MM3,
                      gain_on: str = "positive", gain_floor: float = DEFAULT_GAIN_FLOOR) -> pd.DataFrame:
    """Relevance per atlas region: one row per region, sorted by ``rank`` (1 = most relevant).

    heatmap: a NIfTI path, nibabel image, SimpleITK image or ``(array_kji, Grid)`` pair (array in
        Slicer's k, j, i order, ``geometry.Grid``); a *list* of these is a group (means over subjects).
    atlas: a bundled atlas name (see ``available_atlases()``), a label-map path (NIfTI/NRRD), an
        :class:`Atlas`, a SimpleITK label image, or a ``(labels_kji, Grid)`` pair.
    reference: heatmap(s) of a reference group; adds ``reference_sum`` (signed), the reference sum the
        gain divides by (``reference_sum_pos`` or ``reference_sum_abs``), ``gain`` and ``gain_note``.
    gain_on: ``"positive"`` (S⁺, default) or ``"absolute"`` (Σ|R|); never the signed sums (see above).
    gain_floor: a region whose reference sum is below this fraction of the largest region's reference sum
        gets no gain (noise, not a baseline); 0 divides by any positive reference sum.
    pool_hemispheres: add left and right regions with the same base name together.
    names: lookup table (path or ``{id: name}``) for a label-map atlas.
    transform: 4×4 RAS matrix or SimpleITK transform mapping heatmap-space points to atlas space.
    min_overlap: raise when less than this share of a heatmap's relevance Σ|R| lies inside the atlas.
    rank_by: the column ranked (descending) into ``rank``.
    per_subject: return the long table (group, subject, then one row per region for each subject,
        ranked within the subject, with per-subject gains S⁺_a / mean_reference S⁺_a).
    min_region_voxels, min_region_mm3: a region with fewer voxels, or less volume, on the heatmap's
        grid is listed (``ranked`` False, after the ranked rows, sharing the last rank) but not ranked.

    Columns: label, name, voxels, volume_mm3, sum, sum_pos, sum_neg, density, fraction_pos, rank,
    ranked (+ reference_sum, reference_sum_pos or _abs, gain, gain_note). ``table.attrs`` holds atlas,
    space, licence, overlap, n_subjects, grid (shape and spacing of the heatmap), the minimum region
    size and ``gain_on``, ``gain_floor`` (and ``gain_summary`` when most regions have no gain).
    """
    check_region_options(min_overlap, min_region_voxels, min_region_mm3)
    if gain_on not in GAIN_ON:
        raise InputError(f"gain_on={gain_on!r}: choose 'positive' (gain on R+, as Böhle et al.) or 'absolute' "
                         f"(on |R|); a gain on signed sums inverts when the reference relevance is negative.")
    if isinstance(gain_floor, bool) or not isinstance(gain_floor, (int, float, np.integer, np.floating)) \
            or not 0.0 <= float(gain_floor) < 1.0:
        raise InputError(f"gain_floor={gain_floor!r}: give a fraction in [0, 1) of the largest region's reference "
                         "sum (default 0.01); regions below it get no gain.")
    atlas_obj = resolve_atlas(atlas, names)
    minimum = (float(min_region_voxels), float(min_region_mm3))
    group = load_heatmaps(heatmap, "heatmap")
    refs = load_heatmaps(reference, "reference heatmap") if reference is not None else []
    index, region_names, labels, members = _regions(atlas_obj, pool_hemispheres)
    pooling = (index, len(region_names)) if pool_hemispheres else None
    sums_group = [_sums(h, atlas_obj, transform, min_overlap, pooling) for h in group]
    sums_ref = [_sums(h, atlas_obj, transform, min_overlap, pooling) for h in refs]
    base = pd.DataFrame({"label": labels, "name": region_names})
    if pool_hemispheres:
        base["labels"] = members
    subjects = [_metrics(base, s) for s in sums_group]
    reference = None
    if refs:
        reference = (np.mean([s.sums for s in sums_ref], axis=0),
                     np.mean([_gain_part(s.sums_pos, s.sums, gain_on) for s in sums_ref], axis=0), gain_on,
                     float(gain_floor))
    if per_subject:
        frames = [_subject_frame(t, "group", s.label, reference) for t, s in zip(subjects, sums_group, strict=True)]
        frames += [_subject_frame(_metrics(base, s), "reference", s.label, reference) for s in sums_ref]
        table = pd.concat([_ranked(frame, rank_by, minimum) for frame in frames], ignore_index=True)
    else:
        table = subjects[0] if len(subjects) == 1 else _mean_table(base, subjects)
        if reference is not None:
            _add_gain(table, reference)
        table = _ranked(table, rank_by, minimum)
    all_sums = sums_group + sums_ref
    table.attrs.update({
        "atlas": atlas_obj.name, "space": atlas_obj.space, "licence": atlas_obj.licence,
        "overlap": min(s.overlap for s in all_sums),
        "fraction_pos_outside_atlas": float(np.mean([1 - _ratio(s.sums_pos.sum(), s.total_pos)
                                                     for s in sums_group])),
        "n_subjects": len(group), "n_reference": len(refs), "rank_by": rank_by,
        "pooled_hemispheres": bool(pool_hemispheres), "grid": describe_grid(group[0].grid),
        "min_region_voxels": minimum[0], "min_region_mm3": minimum[1]})
    if refs:
        table.attrs["gain_on"] = GAIN_ON[gain_on]
        table.attrs["gain_floor"] = float(gain_floor)
        if not per_subject:
            summary = gain_summary(table, gain_on)
            if summary:
                table.attrs["gain_summary"] = summary
    return table


def gain_summary(table: pd.DataFrame, gain_on: str) -> str:
    """A note when most regions of a gain table have no gain ("" otherwise): the comparison says little. It names
    ``gain_on`` as the library spells it (:class:`~..vocabulary.OptionNote`; the command line prints its flag)."""
    from ..vocabulary import OptionNote

    missing, total = int(table["gain"].isna().sum()), len(table)
    if total == 0 or missing <= total / 2:
        return ""
    other = (("gain_on", "absolute"), " or density compare them instead") if gain_on == "positive" \
        else ("density compares them instead",)
    return OptionNote(f"{missing} of {total} regions have no gain: the reference group has little or no "
                      f"{GAIN_ON[gain_on]} there (e.g. controls explained for the patients' class); ", *other, ".")


def _gain_part(sums_pos: np.ndarray, sums: np.ndarray, gain_on: str) -> np.ndarray:
    """Per region: Σ R⁺ (``positive``) or Σ |R| = 2 Σ R⁺ − Σ R (``absolute``)."""
    return np.asarray(sums_pos, float) if gain_on == "positive" else 2 * np.asarray(sums_pos, float) - sums


def _add_gain(table: pd.DataFrame, reference: tuple[np.ndarray, np.ndarray, str, float]) -> None:
    """Add reference sums, the gain on R⁺ or |R| and, where it is undefined, the reason."""
    signed, part, gain_on, floor = reference
    own = _gain_part(table["sum_pos"].to_numpy(float), table["sum"].to_numpy(float), gain_on)
    table["reference_sum"] = signed
    table["reference_sum_pos" if gain_on == "positive" else "reference_sum_abs"] = part
    largest = float(np.max(part)) if len(part) else 0.0
    noise = (part > 0) & (part < floor * largest)
    defined = (part > 0) & ~noise
    table["gain"] = np.where(defined, _ratio(own, np.where(defined, part, 1.0)), np.nan)
    what = "positive relevance (Σ R⁺ = 0)" if gain_on == "positive" else "relevance (Σ |R| = 0)"
    symbol = "Σ R⁺" if gain_on == "positive" else "Σ |R|"
    table["gain_note"] = np.where(defined, "", np.where(
        noise, f"no gain: the reference group's {symbol} here is below {floor:.0%} of its largest region's "
               f"({largest:.3g}), too little to divide by",
        f"no gain: the reference group has no {what} in this region"))


def check_region_options(min_overlap: object, min_region_voxels: object, min_region_mm3: object) -> None:
    """Refuse region-table options that cannot work, before anything is computed (every front end)."""
    def real(value: object) -> bool:
        return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)) \
            and bool(np.isfinite(value))

    if not real(min_overlap) or not 0.0 <= float(min_overlap) <= 1.0:  # type: ignore[arg-type]
        raise InputError(f"min_overlap must lie in [0, 1] (the share of the map's Σ|R| that must fall inside the "
                         f"atlas' brain; 0 accepts any overlap), not {min_overlap!r}.")
    for name, value in (("min_region_voxels", min_region_voxels), ("min_region_mm3", min_region_mm3)):
        if not real(value) or float(value) < 0:  # type: ignore[arg-type]
            raise InputError(f"{name} must be a finite number ≥ 0 (the minimum region size: smaller regions are "
                             f"listed but not ranked), not {value!r}.")


def describe_grid(grid: Grid) -> str:
    """The heatmap grid in words: "91×109×91 voxels of 2×2×2 mm" (i × j × k)."""
    return f"{'×'.join(map(str, grid.shape_ijk))} voxels of {'×'.join(f'{s:.4g}' for s in grid.spacing)} mm"


def resolve_atlas(atlas: object, names: Mapping | str | Path | None = None) -> Atlas:
    """Turn any accepted atlas argument into an :class:`Atlas` (bundled and file atlases are cached)."""
    if isinstance(atlas, Atlas):
        if names is not None:
            raise InputError("names= applies to label-map atlases; an Atlas object already has its names.")
        return atlas
    if isinstance(atlas, (str, Path)):
        path = Path(atlas)
        if not path.is_file() and is_bundled(str(atlas)):
            if names is not None:
                raise InputError(f"names= applies to label-map atlases; {atlas} is bundled with its own names.")
            return load_bundled_atlas(str(atlas))
        check_atlas_name(str(atlas))
        stat = path.stat()
        key: tuple = ("file", str(path.resolve()), stat.st_mtime_ns, stat.st_size, _names_key(names))
        return _cached(key, lambda: load_label_map(path, names=names))
    if hasattr(atlas, "GetDirection") and hasattr(atlas, "GetSpacing"):
        atlas = from_sitk(atlas)
    if isinstance(atlas, tuple):
        labels, grid = volume_pair(atlas, "atlas")
        labels = np.asarray(labels)
        digest = hashlib.blake2b(np.ascontiguousarray(labels).view(np.uint8).data, digest_size=16).hexdigest() \
            if labels.dtype != object else str(id(labels))
        key = ("array", labels.shape, str(labels.dtype), digest, grid.ijk_to_ras.tobytes(), _names_key(names))
        return _cached(key, lambda: Atlas(labels, grid, names))
    raise InputError(f"Cannot use a {type(atlas).__name__} as an atlas; pass a bundled atlas name, a label-map "
                     f"path, an Atlas or a (labels_kji, Grid) pair ({PAIR_HINT}).")


def check_atlas_name(atlas: str) -> None:
    """Refuse a name that is neither a bundled atlas nor an existing file (cheap: loads nothing)."""
    if not Path(atlas).is_file() and not is_bundled(atlas):
        from .bundled import BUNDLED

        names = sorted((entry.name for entry in BUNDLED.values()), key=str.lower)  # as the help and docs spell them
        raise InputError(f"{atlas!r} is neither a bundled atlas nor an existing label-map file; the bundled "
                         f"atlases are {', '.join(names)}; or give the path of a label map.")


def _names_key(names: Mapping | str | Path | None) -> object:
    return tuple(sorted(map(repr, names.items()))) if isinstance(names, Mapping) else str(names)


def _cached(key: tuple, build) -> Atlas:
    """An atlas from the small content-keyed cache, built (and the oldest dropped) when missing."""
    atlas = _LOADED.pop(key, None) or build()
    _LOADED[key] = atlas
    while len(_LOADED) > _LOADED_SIZE:
        _LOADED.pop(next(iter(_LOADED)))
    return atlas


def _regions(atlas: Atlas, pool: bool) -> tuple[np.ndarray, list[str], list[int], list[str]]:
    """Region → row mapping, row names, row label ids and (when pooled) member ids."""
    if not pool:
        return np.arange(atlas.n_regions), list(atlas.names), [int(i) for i in atlas.ids], []
    index, names = pooling_groups(atlas.names)
    members: list[list[int]] = [[] for _ in names]
    for region, group in enumerate(index):
        members[group].append(int(atlas.ids[region]))
    return index, names, [m[0] for m in members], [";".join(map(str, m)) for m in members]


def _sums(heatmap: Heatmap, atlas: Atlas, transform: object, min_overlap: float,
          pooling: tuple[np.ndarray, int] | None) -> RegionSums:
    grid = atlas.on_grid(heatmap.grid, transform)
    sums = count_regions(heatmap, grid)
    if sums.overlap == 0.0 or sums.overlap < min_overlap:
        raise AtlasOverlapError(OptionNote(
            f"Only {sums.overlap:.1%} of the relevance (Σ|R|) of the {heatmap.what or heatmap.label} lies inside the "
            f"brain of atlas '{atlas.name}' ({atlas.space}; {nonzero_share(heatmap, grid):.1%} of its nonzero "
            "voxels), below ", ("min_overlap", float(min_overlap)), ": the heatmap is probably not in the atlas' "
            "space."))
    return sums if pooling is None else sums.pooled(*pooling)


class AtlasOverlapError(OptionError):
    """Too little of a heatmap's relevance lies inside the atlas. The message ends with the way out
    for the caller at hand (``with_fix``): the library's ``transform=``, the command line's options; a way out
    given as :class:`~..vocabulary.OptionError` parts is spelled by the front end."""

    #: the way out through :func:`region_statistics` itself
    LIBRARY_FIX = ("Register it to the atlas and pass transform=... (a 4×4 RAS matrix or a SimpleITK transform), "
                   "or lower min_overlap to accept the partial overlap.")

    def __init__(self, finding: str, *fix: str | tuple) -> None:
        super().__init__(finding, " ", *(fix or (self.LIBRARY_FIX,)))
        self.finding = finding

    def with_fix(self, *fix: str | tuple) -> AtlasOverlapError:
        """The same finding with another way out (for a front end that words its options differently)."""
        return AtlasOverlapError(self.finding, *fix)


def _metrics(base: pd.DataFrame, sums: RegionSums) -> pd.DataFrame:
    columns = {column: base[column].to_numpy() for column in base.columns}
    columns.update({
        "voxels": sums.voxels,
        "volume_mm3": sums.voxels * sums.voxel_volume,
        "sum": sums.sums,
        "sum_pos": sums.sums_pos,
        "sum_neg": sums.sums - sums.sums_pos,
        "density": _ratio(sums.sums, sums.voxels),
        "fraction_pos": _ratio(sums.sums_pos, np.full_like(sums.sums_pos, sums.total_pos)),
    })
    return pd.DataFrame(columns)


def _mean_table(base: pd.DataFrame, subjects: list[pd.DataFrame]) -> pd.DataFrame:
    table = base.copy()
    for column in METRICS:
        stack = np.stack([s[column].to_numpy(dtype=float) for s in subjects])
        table[column] = _ratio(np.nansum(stack, axis=0), np.sum(~np.isnan(stack), axis=0))  # NaN-aware mean
    return table


def _subject_frame(table: pd.DataFrame, group: str, subject: str, reference) -> pd.DataFrame:
    table = table.copy()
    table.insert(0, "subject", subject)
    table.insert(0, "group", group)
    if reference is not None:
        _add_gain(table, reference)
    return table


def _ranked(table: pd.DataFrame, rank_by: str, minimum: tuple[float, float] = (0.0, 0.0)) -> pd.DataFrame:
    """Rank regions by ``rank_by`` (descending); too small or valueless regions follow, unranked."""
    if rank_by not in table.columns or rank_by in ("label", "name", "labels"):
        choices = [c for c in table.columns if c not in ("label", "name", "labels", "ranked")]
        raise InputError(f"rank_by={rank_by!r} is not a metric of this table; choose one of {choices}.")
    values = table[rank_by].to_numpy(dtype=float)
    ranked = ~np.isnan(values) & (table["voxels"].to_numpy(dtype=float) >= minimum[0]) \
        & (table["volume_mm3"].to_numpy(dtype=float) >= minimum[1])
    key = np.where(np.isnan(values), -np.inf, values)
    # ranked rows first, each part by descending metric, then ascending label
    ordered = np.lexsort((table["label"].to_numpy(), -key, ~ranked))
    rank = np.empty(len(values), dtype=np.int64)
    sorted_key = key[ordered]
    first = np.r_[True, sorted_key[1:] != sorted_key[:-1]]  # ties share the smallest rank ("min")
    rank[ordered] = np.maximum.accumulate(np.where(first, np.arange(1, len(values) + 1), 0))
    rank[~ranked] = np.count_nonzero(ranked) + 1  # listed, sharing the last rank
    table = table.iloc[ordered].reset_index(drop=True)
    table["rank"] = rank[ordered]
    table["ranked"] = ranked[ordered]
    return table


def _ratio(numerator, denominator):
    """numerator / denominator with NaN where the denominator is 0."""
    numerator = np.asarray(numerator, dtype=float)
    denominator = np.asarray(denominator, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(denominator != 0, numerator / np.where(denominator != 0, denominator, 1), np.nan)
    return out if out.ndim else float(out)
