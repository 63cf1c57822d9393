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
    las = places.LOCAL_AUTHORITIES
    district_names: list[str] = []
    district_la_list: list[int] = []
    for li, la in enumerate(las):
        names = places.expand_districts(la.districts)
        district_names.extend(names)
        district_la_list.extend([li] * len(names))
    district_la = np.array(district_la_list, dtype=np.int64)
    la_pop = np.array([la.population_k * 1000 for la in las])
    # Each authority's people spread unevenly over its districts, and districts over sectors.
    share = rng.gamma(4.0, size=len(district_la))
    district_pop = la_pop[district_la] * share / np.bincount(district_la, share)[district_la]
    per_district = np.round(district_pop / _PEOPLE_PER_SECTOR)
    sectors = np.clip(per_district, 1, _MAX_SECTORS_PER_DISTRICT).astype(np.int64)
    # Distinct sector digits per district: the first k of a random order of 0-9, sorted.
    order = np.argsort(rng.random((len(district_la), 10)), axis=1)
    chosen = np.sort(np.where(np.arange(10) < sectors[:, None], order, 10), axis=1)
    area_district = np.repeat(np.arange(len(district_la)), sectors)
    digit = chosen[np.arange(10) < sectors[:, None]]
    split = rng.gamma(3.0, size=len(area_district))
    split /= np.bincount(area_district, split)[area_district]
    area_weight = district_pop[area_district] * split
    area_la = district_la[area_district]
    deprivation = np.array([la.deprivation for la in las])
    area_score = deprivation[area_la] + rng.normal(0.0, 0.2, len(area_la))
    sector_names = [
        f"{district_names[d]} {g}"
        for d, g in zip(area_district.tolist(), digit.tolist(), strict=True)
    ]
    first_area = np.searchsorted(area_la, np.arange(len(las)), side="left")
    last_area = np.searchsorted(area_la, np.arange(len(las)), side="right") - 1
    first_district = np.searchsorted(district_la, np.arange(len(las)), side="left")
    last_district = np.searchsorted(district_la, np.arange(len(las)), side="right") - 1
    la_areas = np.stack([first_area, last_area], axis=1)
    la_districts = np.stack([first_district, last_district], axis=1)

    cdf = np.cumsum(area_weight) / area_weight.sum()
    cdf[-1] = 1.0
    n_areas = len(area_la)
    n_schools = n_areas + len(district_la)  # a primary per area, a secondary per district
    urns = rng.choice(np.arange(100000, 150000), size=n_schools, replace=False)
    region_index = {r: i for i, r in enumerate(places.REGIONS)}
    return World(
        seed=seed,
        area_la=area_la.astype(np.int16),
        area_district=area_district.astype(np.int32),
        area_cdf=cdf,
        area_decile=_weighted_deciles(area_score, area_weight),
        area_sector=labels(sector_names),
        area_primary=np.arange(n_areas, dtype=np.int32),
        district_secondary=np.arange(n_areas, n_schools, dtype=np.int32),
        la_areas=la_areas,
        la_districts=la_districts,
        la_region=np.array([region_index[la.region] for la in las], dtype=np.int8),
        school_ids=fixed_width_strings(ascii_digits(urns, 6)),
        ethnicity_cdf=_ethnicity_cdf(),
        key_person_id=derived_key(seed, "person"),
        key_nhs=derived_key(seed, "nhs"),
        key_upn=derived_key(seed, "upn"),
        key_nino=derived_key(seed, "nino"),
    )
