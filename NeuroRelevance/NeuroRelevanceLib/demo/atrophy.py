"""Age- and disease-dependent atrophy, applied in subject space and confined to atlas regions.

Grey-matter loss: in a region with loss fraction ``f`` a voxel with grey-matter probability ``g``
turns the lost grey matter into fluid, ``T1 <- T1 - f * g * (I_gm - I_csf)``. AD-like subjects lose
``f = severity`` (drawn per subject) in the AD regions; every subject loses
``f = age_loss_at_90 * (age - 20) / 70`` in the frontal/parietal age regions. The lateral
ventricles grow by ``r = ventricle_growth_at_90_mm * (age - 20) / 70``: voxels within ``r`` mm of
the template ventricle take fluid intensity (a one-voxel soft edge), outside the AD regions.

Ground-truth label values (``ATROPHY_LABELS``): 1 AD-like grey-matter loss, 2 age-related
grey-matter loss, 3 age-related ventricle growth; 0 untouched.

``AtrophyParams.pattern = "compact"`` moves the AD-like and age-related loss from the atlas regions
into solid balls of the same volume at the same places (:mod:`.compact`); there a fraction ``f`` of
all tissue turns into fluid, ``T1 <- T1 - f * max(T1 - I_csf, 0)``.

``AtrophyParams.age_pattern = "focal"`` confines the age-related grey-matter loss to one small ball
per hemisphere in the prefrontal cortex (:func:`.compact.focal_age_map`) instead of the five
frontal/parietal regions ("frontoparietal", the default); ventricle growth is the same. The loss
inside the balls follows ``pattern`` (grey matter only for "ribbon", all tissue for "compact").
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage as ndi

ATROPHY_LABELS: dict[int, str] = {1: "ad_grey_matter", 2: "age_grey_matter", 3: "age_ventricles"}
AD_LABEL, AGE_GM_LABEL, VENTRICLE_LABEL = 1, 2, 3
DIAGNOSES = ("control", "AD")
PATTERNS = ("ribbon", "compact")
AGE_PATTERNS = ("frontoparietal", "focal")


@dataclass(frozen=True)
class AtrophyParams:
    """Effect sizes of the generator (fractions of grey matter lost, ventricle growth in mm)."""

    ad_loss_range: tuple[float, float] = (0.5, 0.8)
    age_loss_at_90: float = 0.6
    ventricle_growth_at_90_mm: float = 7.0
    age_range: tuple[float, float] = (20.0, 90.0)
    pattern: str = "ribbon"
    age_pattern: str = "frontoparietal"

    def __post_init__(self) -> None:
        if self.pattern not in PATTERNS:
            raise ValueError(f"pattern={self.pattern!r} is unknown; use one of {PATTERNS}")
        if self.age_pattern not in AGE_PATTERNS:
            raise ValueError(f"age_pattern={self.age_pattern!r} is unknown; use one of {AGE_PATTERNS}")

    def age_fraction(self, age: float) -> float:
        """(age - 20) / 70 clipped to [0, 1]: 0 at the youngest age, 1 at the oldest."""
        lo, hi = self.age_range
        return float(np.clip((age - lo) / (hi - lo), 0.0, 1.0))

    def as_dict(self) -> dict:
        return asdict(self)


def check_subject_labels(age: float, diagnosis: str, params: AtrophyParams) -> None:
    """Raise ``ValueError`` for an age outside the range or an unknown diagnosis."""
    lo, hi = params.age_range
    if not np.isfinite(age) or not lo <= age <= hi:
        raise ValueError(f"age={age!r} is outside {lo:g}..{hi:g} years; pass an age in that range")
    if diagnosis not in DIAGNOSES:
        raise ValueError(f"diagnosis={diagnosis!r} is unknown; use one of {DIAGNOSES}")


def ventricle_weight(distance_mm: np.ndarray, radius_mm: float, spacing: float,
                     exclude: np.ndarray) -> np.ndarray:
    """Fraction of each voxel taken by ventricles grown by ``radius_mm``.

    ``distance_mm`` is the distance to the original ventricles (0 inside them); voxels inside the
    original ventricles and ``exclude`` voxels get 0.
    """
    if radius_mm <= 0:
        return np.zeros(distance_mm.shape, dtype=np.float32)
    weight = np.clip((radius_mm - distance_mm) / spacing + 0.5, 0.0, 1.0).astype(np.float32)
    weight[(distance_mm == 0) | exclude] = 0.0
    return weight


def apply_atrophy(t1: np.ndarray, gm: np.ndarray, labels: np.ndarray, ventricles: np.ndarray,
                  brain: np.ndarray, *, age: float, diagnosis: str, severity: float,
                  ad_ids: list[int], age_ids: list[int], intensity: dict[str, float],
                  spacing: float, params: AtrophyParams, enabled: bool = True,
                  compact: np.ndarray | None = None, focal_age: np.ndarray | None = None,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (atrophied T1, applied-atrophy label map, regions label map).

    The regions map marks where each effect can act for this anatomy (AD regions whatever the
    diagnosis, ventricle growth at the oldest age); the applied map marks where it acted here.
    With ``enabled=False`` the T1 is returned unchanged and the applied map is empty.
    ``compact`` (the compact pattern sampled in subject space) is needed for ``pattern="compact"``,
    ``focal_age`` (the focal age balls in subject space) for ``age_pattern="focal"``.
    """
    if params.pattern == "compact":
        if compact is None:
            raise ValueError("pattern='compact' needs the compact map of this subject")
        ad_region, age_region = (compact == AD_LABEL) & brain, (compact == AGE_GM_LABEL) & brain
    else:
        ad_region, age_region = np.isin(labels, ad_ids), np.isin(labels, age_ids)
    if params.age_pattern == "focal":
        if focal_age is None:
            raise ValueError("age_pattern='focal' needs the focal age map of this subject")
        age_region = focal_age & brain & ~ad_region
    a = params.age_fraction(age)
    max_radius = params.ventricle_growth_at_90_mm
    keep_out = ad_region | age_region | ~brain
    if ventricles.any():
        dist = ndi.distance_transform_edt(~ventricles, sampling=spacing).astype(np.float32)
    else:
        dist = np.full(t1.shape, np.inf, dtype=np.float32)
    w_max = ventricle_weight(dist, max_radius, spacing, keep_out)

    regions = np.zeros(t1.shape, dtype=np.uint8)
    regions[w_max > 0] = VENTRICLE_LABEL
    regions[age_region] = AGE_GM_LABEL
    regions[ad_region] = AD_LABEL

    applied = np.zeros(t1.shape, dtype=np.uint8)
    if not enabled:
        return t1.copy(), applied, regions
    loss = np.zeros(t1.shape, dtype=np.float32)
    if diagnosis == "AD" and severity > 0:
        loss[ad_region] = severity
        applied[ad_region] = AD_LABEL
    if a > 0 and params.age_loss_at_90 > 0:
        loss[age_region] = params.age_loss_at_90 * a
        applied[age_region] = AGE_GM_LABEL
    if params.pattern == "compact":  # all tissue in the ball, not only its grey matter
        out = t1 - loss * np.clip(t1 - np.float32(intensity["csf"]), 0.0, None)
    else:
        out = t1 - loss * gm * np.float32(intensity["gm"] - intensity["csf"])
    w = ventricle_weight(dist, max_radius * a, spacing, keep_out)
    out = out + w * (np.float32(intensity["csf"]) - out)
    applied[w > 0] = VENTRICLE_LABEL
    return out.astype(np.float32), applied, regions
