"""The seed's fixed world: small areas with deprivation deciles, schools, ethnic mix, id keys.

Small areas are postcode sectors (`LS6 2`) inside the local authorities of `places`; each has a
population weight and a deprivation decile ranked over the whole population (1 = most deprived
tenth), so deciles are true population deciles. Each area has a primary school, each district a
secondary school. None of this depends on the number of people.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from tre.synth import places
from tre.synth.arrow import fixed_width_strings, labels
from tre.synth.codes import ETHNICITIES, WHITE_BRITISH
from tre.synth.identifiers import ascii_digits
from tre.synth.rng import derived_key, world_rng

# A postcode sector stands for roughly this many real residents.
_PEOPLE_PER_SECTOR = 5000
_MAX_SECTORS_PER_DISTRICT = 8
# Never more than this share of an authority is other than White British.
_MAX_NON_WBRI = 0.92


@dataclass(frozen=True, eq=False)
class World:
    """Everything about the synthetic country that is fixed for a seed."""

    seed: int
    area_la: np.ndarray  # (areas,) local authority index
    area_district: np.ndarray  # (areas,) district index
    area_cdf: np.ndarray  # (areas,) cumulative population share, for sampling homes
    area_decile: np.ndarray  # (areas,) deprivation decile, 1 = most deprived
    area_sector: pa.StringArray  # (areas,) "LS6 2"
    area_primary: np.ndarray  # (areas,) school index of the area's primary school
    district_secondary: np.ndarray  # (districts,) school index of the district's secondary
    la_areas: np.ndarray  # (authorities, 2) [first, last] area index of each authority
    la_districts: np.ndarray  # (authorities, 2) [first, last] district index
    la_region: np.ndarray  # (authorities,) region index
    school_ids: pa.StringArray  # (schools,) URN-like 6-digit ids
    ethnicity_cdf: np.ndarray  # (authorities, groups) cumulative ethnic mix
    key_person_id: int
    key_nhs: int
    key_upn: int
    key_nino: int

    @property
    def n_areas(self) -> int:
        """How many small areas (postcode sectors) there are."""
        return len(self.area_la)


def _ethnicity_cdf() -> np.ndarray:
    base = np.array([e.share for e in ETHNICITIES])
    base /= base.sum()
    codes = [e.code for e in ETHNICITIES]
    rows = []
    for la in places.LOCAL_AUTHORITIES:
        s = base.copy()
        others = np.arange(len(s)) != WHITE_BRITISH
        s[others] *= la.diversity
        for code, mult in la.boosts.items():
            s[codes.index(code)] *= mult
        total_other = s[others].sum()
        if total_other > _MAX_NON_WBRI:
            s[others] *= _MAX_NON_WBRI / total_other
        s[WHITE_BRITISH] = 1.0 - s[others].sum()
        cdf = np.cumsum(s)
        cdf[-1] = 1.0
        rows.append(cdf)
    return np.array(rows)


def _weighted_deciles(score: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Deciles of `score` (highest score → decile 1) weighted by population."""
    order = np.argsort(-score, kind="stable")
    share = weight[order] / weight.sum()
    midpoint = np.cumsum(share) - share / 2
    decile = np.empty(len(score), dtype=np.int8)
    decile[order] = np.minimum(np.floor(midpoint * 10).astype(np.int8) + 1, 10)
    return decile


def build_world(seed: int) -> World:
    """Lay out the small areas, deciles and schools of the seed's world."""
    rng = world_rng(seed)
    area_la: list[int] = []
    area_district: list[int] = []
    area_weight: list[float] = []
    area_score: list[float] = []
    sectors: list[str] = []
    la_areas = np.zeros((len(places.LOCAL_AUTHORITIES), 2), dtype=np.int64)
    la_districts = np.zeros_like(la_areas)
    district = 0
    for li, la in enumerate(places.LOCAL_AUTHORITIES):
        districts = places.expand_districts(la.districts)
        share = rng.gamma(4.0, size=len(districts))
        district_pop = la.population_k * 1000 * share / share.sum()
        la_areas[li, 0] = len(area_la)
        la_districts[li, 0] = district
        for name, pop in zip(districts, district_pop, strict=True):
            k = int(np.clip(round(pop / _PEOPLE_PER_SECTOR), 1, _MAX_SECTORS_PER_DISTRICT))
            digits = np.sort(rng.choice(10, size=k, replace=False))
            split = rng.gamma(3.0, size=k)
            for digit, part in zip(digits, split / split.sum(), strict=True):
                area_la.append(li)
                area_district.append(district)
                area_weight.append(float(pop * part))
                area_score.append(float(la.deprivation + rng.normal(0.0, 0.2)))
                sectors.append(f"{name} {digit}")
            district += 1
        la_areas[li, 1] = len(area_la) - 1
        la_districts[li, 1] = district - 1

    weight = np.array(area_weight)
    cdf = np.cumsum(weight) / weight.sum()
    cdf[-1] = 1.0
    n_areas = len(area_la)
    n_schools = n_areas + district
    urns = rng.choice(np.arange(100000, 150000), size=n_schools, replace=False)
    region_index = {r: i for i, r in enumerate(places.REGIONS)}
    return World(
        seed=seed,
        area_la=np.array(area_la, dtype=np.int16),
        area_district=np.array(area_district, dtype=np.int32),
        area_cdf=cdf,
        area_decile=_weighted_deciles(np.array(area_score), weight),
        area_sector=labels(sectors),
        area_primary=np.arange(n_areas, dtype=np.int32),
        district_secondary=np.arange(n_areas, n_schools, dtype=np.int32),
        la_areas=la_areas,
        la_districts=la_districts,
        la_region=np.array(
            [region_index[la.region] for la in places.LOCAL_AUTHORITIES], dtype=np.int8
        ),
        school_ids=fixed_width_strings(ascii_digits(urns, 6)),
        ethnicity_cdf=_ethnicity_cdf(),
        key_person_id=derived_key(seed, "person"),
        key_nhs=derived_key(seed, "nhs"),
        key_upn=derived_key(seed, "upn"),
        key_nino=derived_key(seed, "nino"),
    )
