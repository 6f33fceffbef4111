"""The settings of a batch run, checked once against the model card before any subject runs.

:class:`BatchOptions` holds what decides every subject's numbers (method, preset and rule
parameters, target, filter, atlases and region sizes) and what the run writes (PNG, group gain
against a reference group). :meth:`BatchOptions.key` identifies them together with the model
files, so a re-run into the same folder knows whether earlier outputs are still valid.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..errors import InputError
from ..regions.statistics import DEFAULT_MIN_REGION_MM3, DEFAULT_MIN_REGION_VOXELS
from ..vocabulary import OptionError, check_region_effect

#: the atlas of the region tables when none is named (as ``neurorelevance regions``)
DEFAULT_ATLASES = ("AAL3",)
_DEVICE = re.compile(r"^(auto|cpu(:0)?|mps|cuda(:\d+)?)$")


@dataclass(frozen=True)
class BatchOptions:
    """Everything that decides a batch run's outputs (see :func:`batch.explain_cohort`)."""

    method: str = "lrp"
    preset: str | None = None          # None: the model card's recommended preset
    target: Any = None                    # None: the predicted class; a class name or index
    filter: str | None = None
    filter_range: tuple = (0.0, 1.0)
    filter_placement: str = "input"
    alpha: float | None = None
    engine_params: dict = field(default_factory=dict)
    atlases: tuple = DEFAULT_ATLASES
    min_overlap: float = 0.5
    min_region_voxels: float = DEFAULT_MIN_REGION_VOXELS
    min_region_mm3: float = DEFAULT_MIN_REGION_MM3
    png: bool = True
    reference_group: str | None = None
    gain_on: str = "positive"              # the group gain on R+ or |R| (regions.region_statistics)
    device: str = "auto"
    batch_size: int = 1

    def checked(self, card) -> BatchOptions:
        """These options validated against ``card`` (preset and method resolved); InputError otherwise."""
        from ..explanation.dispatch import canonical
        from ..explanation.filters import check_filter
        from ..explanation.keywords import check_lrp_options, method_options
        from ..jobs import resolve_target
        from ..models.card import PRESETS
        from ..regions.statistics import check_atlas_name, check_region_options

        method = canonical(self.method)
        rule_params = {"alpha": self.alpha, **{k: self.engine_params.get(k) for k in ("epsilon", "gamma")}}
        check_lrp_options([method], {"preset": self.preset, "alpha": self.alpha,
                                     "filter_placement": self.filter_placement
                                     if self.filter_placement == "every-layer" else None,
                                     **{k: v for k, v in rule_params.items()
                                        if k != "alpha" and k not in method_options(method)}})
        preset = (self.preset or card.recommended_preset) if method == "lrp" else self.preset
        if method == "lrp" and preset not in PRESETS:
            raise InputError(f"Unknown preset {preset!r}; use one of {', '.join(PRESETS)}.")
        try:
            check_filter(self.filter, tuple(self.filter_range), self.filter_placement)
        except OptionError:
            raise
        except (ValueError, TypeError) as exc:  # values that are no numbers at all
            raise OptionError(f"{exc} (", ("filter", None), ", ", ("filter_range", None), ", ",
                              ("filter_placement", None), ")") from exc
        try:
            resolved = resolve_target(self.target, card)
        except InputError as exc:
            raise OptionError(("target", self.target), f": {exc}") from None
        classes = list(card.output.classes)
        if isinstance(resolved, int) and card.output.type == "classification" and classes \
                and not 0 <= resolved < len(classes):
            raise InputError(f"Target {resolved} is not a class index of this model (0 to {len(classes) - 1}: "
                             f"{', '.join(classes)}).")
        atlases = tuple(str(a) for a in self.atlases)
        for atlas in atlases:
            check_atlas_name(atlas)
        if len(set(atlases)) != len(atlases):
            raise InputError(f"An atlas is named twice ({', '.join(atlases)}); name each once.")
        if self.reference_group is not None and not atlases:
            raise OptionError(("reference_group", self.reference_group, "--reference-group"), " compares groups "
                              "region by region: name an atlas (", ("atlases", None, "--atlas"), "), or leave ",
                              ("reference_group", None, "--reference-group"), " out.")
        check_region_options(self.min_overlap, self.min_region_voxels, self.min_region_mm3)
        if self.gain_on not in ("positive", "absolute"):
            raise OptionError(("gain_on", self.gain_on), " is not a choice: gain on 'positive' relevance (R+) or "
                              "'absolute' relevance (|R|).")
        check_region_effect({"min_overlap": self.min_overlap, "min_region_voxels": self.min_region_voxels,
                             "min_region_mm3": self.min_region_mm3, "gain_on": self.gain_on}, bool(atlases),
                            self.reference_group is not None, atlas_part=("atlases", DEFAULT_ATLASES, "--atlas"))
        if not isinstance(self.batch_size, int) or isinstance(self.batch_size, bool) or self.batch_size < 1:
            raise OptionError(("batch_size", self.batch_size, "--batch-size"), ": the batch size must be a whole "
                              "number >= 1.")
        if not isinstance(self.device, str) or not _DEVICE.match(self.device):
            raise InputError(f"Unknown device {self.device!r}; use auto, cpu, cuda or cuda:N.")
        options = replace(self, method=method, preset=preset, atlases=atlases,
                          filter_range=tuple(float(v) for v in self.filter_range))
        # keywords; options without effect (jobs.Settings.check_effect, as on every front end); α of the αβ presets
        options.settings(card).check("explain_cohort", cohort_keywords()).engine_keywords()
        for atlas in atlases:   # a label-map file is read now (geometry checked), not after the first map
            check_atlas_file(atlas)
        return options

    def settings(self, card=None):
        """The single-run :class:`jobs.Settings` every subject runs with (first atlas as the run's table)."""
        from ..jobs import Settings

        settings = Settings(preset=self.preset, method=self.method, target=self.target, filter=self.filter,
                            filter_range=tuple(self.filter_range), filter_placement=self.filter_placement,
                            atlas=self.atlases[0] if self.atlases else None, min_overlap=self.min_overlap,
                            min_region_voxels=self.min_region_voxels, min_region_mm3=self.min_region_mm3,
                            alpha=self.alpha, engine_params=dict(self.engine_params),
                            table_required=False)  # a subject keeps its map; the summary says why no table
        return settings.resolve(card) if card is not None else settings

    def record(self) -> dict:
        """The options as plain data (for ``batch.json`` and the summary)."""
        data = asdict(self)
        data["engine_params"] = {k: v if isinstance(v, (int, float, str, bool, type(None))) else repr(v)
                                 for k, v in sorted(self.engine_params.items())}
        data["atlases"] = list(self.atlases)
        data["filter_range"] = list(self.filter_range)
        return data

    def key(self, card) -> str:
        """Identifies these options with the model files (card and weights hashes)."""
        from ..provenance import file_sha256

        decisive = {k: v for k, v in self.record().items() if k not in ("device", "batch_size", "gain_on")}
        payload = {"options": decisive, "card": file_sha256(card.path), "weights": file_sha256(card.weights_path)}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]



def cohort_keywords() -> tuple[str, ...]:
    """The keywords ``batch.explain_cohort`` takes beside the method's own (what a misspelled one is compared with)."""
    import inspect

    from .run import explain_cohort

    return tuple(name for name, p in inspect.signature(explain_cohort).parameters.items()
                 if p.kind is inspect.Parameter.KEYWORD_ONLY)


def check_atlas_file(atlas: str) -> None:
    """Read a label-map file named as an atlas (cached for the run), so a broken one is refused before any subject
    runs (bundled atlases are known to work and load when first used)."""
    from pathlib import Path

    from ..regions.statistics import resolve_atlas

    if not Path(atlas).is_file():
        return
    try:
        resolve_atlas(atlas)
    except InputError as exc:
        raise OptionError(("atlases", atlas, "--atlas"), f": {exc}") from None
    except (MemoryError, RecursionError):
        raise
    except Exception as exc:  # a damaged file fails inside nibabel / gzip
        raise OptionError(("atlases", atlas, "--atlas"), f": the file could not be read as a label map "
                          f"({type(exc).__name__}: {exc}); give a label-map NIfTI or a bundled atlas name.") from None


#: the command-line flags of the recorded options :data:`vocabulary.OPTIONS` does not name so
_FLAGS = {"atlases": "--atlas", "reference_group": "--reference-group", "png": "--no-png"}


def changed_options(before: dict, now: dict) -> list[dict]:
    """Each recorded option (:meth:`BatchOptions.record`) that differs between two runs, as an
    :class:`vocabulary.OptionError` part: "min_overlap: 0.1 → 0.2" in the library's words, "--min-overlap: 0.1 →
    0.2" on the command line (the rule parameters one by one; ``png`` as ``--no-png``)."""
    from ..vocabulary import OPTIONS

    def flag_value(name: str, value: Any) -> str:
        if name == "png":
            return "not given" if value in (True, None) else "given"
        if value is None or (name == "atlases" and isinstance(value, list) and not value):
            return "none" if name in ("atlases", "filter") else "not given"
        if isinstance(value, (list, tuple)):
            return " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
        return f"{value:g}" if isinstance(value, float) else str(value)

    def change(name: str, old: Any, new: Any, flag: str) -> dict:
        return {"keyword": f"{name}: {old!r} → {new!r}",
                "flag": f"{flag}: {flag_value(name, old)} → {flag_value(name, new)}"}

    parts = []
    for name in sorted(set(before) | set(now)):
        old, new = before.get(name), now.get(name)
        if old == new or name in ("device", "batch_size"):
            continue
        if name == "engine_params" and isinstance(old or {}, dict) and isinstance(new or {}, dict):
            for key in sorted(set(old or {}) | set(new or {})):
                if (old or {}).get(key) != (new or {}).get(key):
                    flag = (OPTIONS[key].flag if key in OPTIONS else None) or key
                    parts.append(change(key, (old or {}).get(key), (new or {}).get(key), flag))
            continue
        flag = _FLAGS.get(name) or (OPTIONS[name].flag if name in OPTIONS else None) or name
        parts.append(change(name, old, new, flag))
    return parts
