"""The synthetic population, one block of people at a time.

A person has a home in a small area (hence a local authority, region and deprivation decile),
a date of birth from England's age structure, a sex, an ethnic group drawn from the authority's
mix, a name, and three latent traits the extracts share, so that effects link across datasets:
`ability` (lower in deprived areas; drives attainment and earnings), `frailty` (higher in
deprived areas and with lower ability; drives admissions) and `disability` (drives SEN, PIP, ESA).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyarrow as pa

from tre.synth import arrow, names, places
from tre.synth.codes import REFERENCE_DATE, SEXES
from tre.synth.identifiers import person_ids
from tre.synth.rng import BLOCK_PEOPLE, Stream, block_rng
from tre.synth.rows import cumulative, pick_rows
from tre.synth.world import World

DAYS_PER_YEAR = 365.2425
REFERENCE_DAY = np.datetime64(REFERENCE_DATE, "D")

# Relative numbers of people at each age in 2024 (England, smoothed); interpolated by year.
_AGE_KNOTS = (
    (0, 1.05),
    (4, 1.10),
    (10, 1.25),
    (17, 1.20),
    (22, 1.20),
    (30, 1.40),
    (40, 1.35),
    (50, 1.35),
    (58, 1.40),
    (65, 1.15),
    (75, 0.95),
    (80, 0.70),
    (85, 0.45),
    (90, 0.20),
    (95, 0.06),
    (100, 0.01),
)
MAX_AGE = 100


def _age_cdf() -> np.ndarray:
    ages = np.arange(MAX_AGE + 1)
    knots = np.array(_AGE_KNOTS, dtype=float)
    w = np.interp(ages, knots[:, 0], knots[:, 1])
    cdf = np.cumsum(w) / w.sum()
    cdf[-1] = 1.0
    return cdf


def _zipf_cdf(n: int, offset: float = 4.0) -> np.ndarray:
    w = 1.0 / (np.arange(n) + offset)
    cdf = np.cumsum(w) / w.sum()
    cdf[-1] = 1.0
    return cdf


FIRST_BIRTH_YEAR = REFERENCE_DATE.year - MAX_AGE - 1


def _first_name_cdf(groups: names.NameGroups) -> np.ndarray:
    """(birth year, name) cumulative weights: each generation favours its own names."""
    years = np.arange(FIRST_BIRTH_YEAR, REFERENCE_DATE.year + 1, dtype=np.float64)
    parts = []
    for peak, group in groups:
        rank = 1.0 / (np.arange(len(group)) + 3.0)
        era = np.exp(-(((years - peak) / 16.0) ** 2)) + 0.01 if peak else np.full_like(years, 0.25)
        parts.append(era[:, None] * (rank / rank.sum())[None, :])
    return cumulative(np.hstack(parts))


AGE_CDF = _age_cdf()
_FEMALE_CDF = _first_name_cdf(names.FEMALE_FIRST_GROUPS)
_MALE_CDF = _first_name_cdf(names.MALE_FIRST_GROUPS)
_SURNAME_CDF = _zipf_cdf(len(names.SURNAMES), offset=8.0)
_FIRST_NAMES = arrow.labels(names.FEMALE_FIRST + names.MALE_FIRST)
_SURNAMES = arrow.labels(names.SURNAMES)
_SEXES = arrow.labels(SEXES)
_REGIONS = arrow.labels(places.REGIONS)
_LA_CODES = arrow.labels(places.LA_CODES)
_UNITS = arrow.labels([a + b for a in places.UNIT_LETTERS for b in places.UNIT_LETTERS])


def year_of(days: np.ndarray) -> np.ndarray:
    """Calendar years of datetime64[D] values."""
    return days.astype("datetime64[Y]").astype(np.int64) + 1970


def month_of(days: np.ndarray) -> np.ndarray:
    """Calendar months (1-12) of datetime64[D] values."""
    return days.astype("datetime64[M]").astype(np.int64) % 12 + 1


def day(date: dt.date) -> np.datetime64:
    """A date as numpy datetime64[D]."""
    return np.datetime64(date, "D")


@dataclass(frozen=True, eq=False)
class People:
    """One block of people: numpy arrays with one entry per person."""

    world: World
    block: int
    index: np.ndarray  # global person index (int64)
    area: np.ndarray
    la: np.ndarray
    decile: np.ndarray  # 1 = most deprived
    female: np.ndarray
    dob: np.ndarray  # datetime64[D]
    ethnicity: np.ndarray
    first_name: np.ndarray
    surname: np.ndarray
    unit: np.ndarray
    ability: np.ndarray
    frailty: np.ndarray
    disability: np.ndarray

    def __len__(self) -> int:
        return len(self.index)

    @property
    def deprivation(self) -> np.ndarray:
        """Deprivation on [-1, 1]: +1 in the most deprived decile, -1 in the least."""
        return (5.5 - self.decile.astype(np.float64)) / 4.5

    def age_at(self, when: np.ndarray | np.datetime64) -> np.ndarray:
        """Age in (fractional) years at `when`."""
        return (np.asarray(when) - self.dob).astype(np.float64) / DAYS_PER_YEAR

    # Arrow columns shared by every extract, built once per block when first asked for.

    @cached_property
    def person_id(self) -> pa.Array:
        """Spine ids."""
        return person_ids(self.index, self.world.key_person_id)

    @cached_property
    def full_name(self) -> pa.Array:
        """`First Last`."""
        first = arrow.take(_FIRST_NAMES, self.first_name)
        last = arrow.take(_SURNAMES, self.surname)
        return arrow.join(first, last, sep=" ")

    @cached_property
    def date_of_birth(self) -> pa.Array:
        """Dates of birth."""
        return arrow.dates(self.dob)

    @cached_property
    def sex(self) -> pa.Array:
        """`F` or `M`."""
        return arrow.take(_SEXES, (~self.female).astype(np.int8))

    @cached_property
    def postcode(self) -> pa.Array:
        """Full postcodes, `LS6 2AB`."""
        sector = arrow.take(self.world.area_sector, self.area)
        return arrow.join(sector, arrow.take(_UNITS, self.unit))

    @cached_property
    def region(self) -> pa.Array:
        """Region names."""
        return arrow.take(_REGIONS, self.world.la_region[self.la])

    @cached_property
    def local_authority(self) -> pa.Array:
        """Local authority codes."""
        return arrow.take(_LA_CODES, self.la)


def _pick(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)


def generate_people(world: World, block: int) -> People:
    """The people of block `block` (always BLOCK_PEOPLE of them; callers trim the last block)."""
    rng = block_rng(world.seed, Stream.POPULATION, block)
    n = BLOCK_PEOPLE
    index = np.arange(block * n, (block + 1) * n, dtype=np.int64)
    area = _pick(world.area_cdf, rng.random(n)).astype(np.int32)
    la = world.area_la[area]
    decile = world.area_decile[area]
    female = rng.random(n) < 0.507
    age = _pick(AGE_CDF, rng.random(n))
    dob = REFERENCE_DAY - np.floor((age + rng.random(n)) * DAYS_PER_YEAR).astype(np.int64).astype(
        "timedelta64[D]"
    )
    ethnicity = (rng.random(n)[:, None] > world.ethnicity_cdf[la]).sum(axis=1).astype(np.int8)
    born = np.clip(year_of(dob) - FIRST_BIRTH_YEAR, 0, len(_FEMALE_CDF) - 1)
    u = rng.random(n)
    first = np.where(
        female,
        pick_rows(_FEMALE_CDF[born], u),
        len(names.FEMALE_FIRST) + pick_rows(_MALE_CDF[born], u),
    )
    surname = _pick(_SURNAME_CDF, rng.random(n))
    unit = rng.integers(0, len(places.UNIT_LETTERS) ** 2, size=n)

    deprivation = (5.5 - decile.astype(np.float64)) / 4.5
    ability = rng.normal(0.0, 0.9, n) - 0.4 * deprivation
    # Gamma heterogeneity gives the long tail of admissions; deprivation and lower ability
    # raise it (the deprivation ↔ attainment ↔ admissions link).
    frailty = rng.gamma(0.6, 1 / 0.6, n) * np.exp(0.25 * deprivation - 0.15 * ability)
    age_now = age.astype(np.float64)
    disability_logit = -3.3 + 0.7 * deprivation + 0.4 * np.log(frailty + 0.05) + 0.025 * age_now
    disability = rng.random(n) < 1 / (1 + np.exp(-disability_logit))
    return People(
        world=world,
        block=block,
        index=index,
        area=area,
        la=la,
        decile=decile,
        female=female,
        dob=dob,
        ethnicity=ethnicity,
        first_name=first,
        surname=surname,
        unit=unit,
        ability=ability,
        frailty=frailty,
        disability=disability,
    )
