"""The health extract (like Hospital Episode Statistics): episodes from April 2018 to March 2024.

Episode counts per person are Poisson with a rate from age, deprivation and the person's gamma
`frailty`, so most people have 0-1 episodes and a long tail has dozens; a few regular attenders
(dialysis, chemotherapy) add 10-60 day cases each. Babies born in the window have a birth
episode. Diagnoses follow age and admission method; lengths of stay and costs are skewed, with
long-stay and high-cost outliers.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from tre.synth import arrow
from tre.synth.codes import (
    ADMISSION_METHODS,
    BIRTH_DIAGNOSIS,
    CHAPTER_NUMERALS,
    CHAPTERS,
    CHEMOTHERAPY_DIAGNOSIS,
    CHEMOTHERAPY_PROCEDURE,
    DIALYSIS_DIAGNOSIS,
    DIALYSIS_PROCEDURE,
    GENERIC_PROCEDURES,
    HEALTH_END,
    HEALTH_START,
)
from tre.synth.identifiers import nhs_numbers
from tre.synth.population import DAYS_PER_YEAR, People, day
from tre.synth.rng import Stream, block_rng
from tre.synth.rows import BlockRows, cumulative, expand, pick_rows
from tre.synth.schema import arrow_schema

SCHEMA = arrow_schema("health")
START = day(HEALTH_START)
END = day(HEALTH_END)
MID = np.datetime64("2021-04-01", "D")

ELECTIVE, EMERGENCY, MATERNITY, OTHER = range(4)
NORMAL, REGULAR, BIRTH = range(3)

# Admissions per person-year by age (at mid-window), before deprivation and frailty.
_RATE_AGES = np.array([0, 1, 4, 5, 15, 16, 44, 45, 64, 65, 74, 75, 84, 85, 100], dtype=float)
_RATE_VALUES = np.array(
    [0.6, 0.2, 0.15, 0.07, 0.07, 0.12, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 0.9, 1.2, 1.3]
)

# Chapter weights (order of CHAPTERS) by age band (<1, 1-15, 16-64, 65+) for elective and
# emergency episodes. Pregnancy (XV) comes only from maternity episodes.
# fmt: off
_CHAPTER_WEIGHTS = np.array([
    [  # under 1
        [1, 0, .2, .3, 0, .3, .1, .2, .2, 2, 1.5, .3, .1, .5, 0, 4, 3, 2, .3, 0, 1, 0],
        [3, 0, .1, .3, 0, .5, .1, .3, .1, 8, 1.5, .5, 0, .8, 0, 5, .8, 4, 1, .05, .5, .3],
    ],
    [  # 1-15
        [.3, .3, .3, .5, .3, .8, .5, 3, .2, 3, 3, .8, 1, 1.5, 0, 0, 1.5, 1, 1, 0, 1, 0],
        [3, .1, .2, 1, 1, 1.5, .1, .5, .1, 6, 3, 1, .5, 1, 0, 0, .2, 4, 5, .2, .3, .3],
    ],
    [  # 16-64
        [.2, 4, .8, .8, .3, 1.5, 1, .5, 2, .8, 6, 1, 5, 3, 0, 0, .1, 2, 1, 0, 4, 0],
        [1.5, .8, .4, 1, 2, 1.5, .1, .2, 3, 4, 5, 1.5, 1.5, 2.5, 0, 0, .05, 6, 5, .3, .3, .8],
    ],
    [  # 65 and over
        [.2, 5, 1, .6, .1, 1, 5, .4, 4, 1, 5, .8, 5, 3, 0, 0, 0, 1.5, .8, 0, 4, 0],
        [2, 1.5, .6, 1.5, 1, 1.5, .1, .3, 7, 8, 4, 1.5, 1.5, 4, 0, 0, 0, 5, 5, .2, .3, 1],
    ],
])
# Cost multipliers by chapter (neoplasms, circulatory and joints cost more).
_CHAPTER_COST = np.array([
    1.0, 1.6, .9, 1.0, 1.4, 1.1, .8, .8, 1.7, 1.2, 1.1, .9, 1.9, 1.0, 1.0, 1.3, 1.8, .7, 1.3,
    1.0, .7, 1.5,
])
# fmt: on
_CHAPTER_CDF = cumulative(_CHAPTER_WEIGHTS)
_CH = {c.numeral: i for i, c in enumerate(CHAPTERS)}


def _code_tables() -> tuple[pa.StringArray, np.ndarray, np.ndarray]:
    """All diagnosis codes, and per chapter the code indices and their CDF (padded)."""
    codes: list[str] = []
    width = max(len(c.codes) for c in CHAPTERS)
    index = np.zeros((len(CHAPTERS), width), dtype=np.int32)
    weights = np.zeros((len(CHAPTERS), width))
    for ci, chapter in enumerate(CHAPTERS):
        for k, (code, weight) in enumerate(chapter.codes):
            index[ci, k] = len(codes)
            # A birth code belongs only to birth episodes.
            weights[ci, k] = 0.0 if code == BIRTH_DIAGNOSIS else weight
            codes.append(code)
    return arrow.labels(codes), index, cumulative(weights)


def _procedure_tables() -> tuple[pa.StringArray, np.ndarray, np.ndarray]:
    """All procedure codes, and per chapter the procedure indices and how many there are."""
    names: list[str] = []
    lists = [c.procedures or GENERIC_PROCEDURES for c in CHAPTERS]
    width = max(len(p) for p in lists)
    index = np.zeros((len(CHAPTERS), width), dtype=np.int32)
    for ci, procs in enumerate(lists):
        for k, proc in enumerate(procs):
            if proc not in names:
                names.append(proc)
            index[ci, k] = names.index(proc)
    for extra in (DIALYSIS_PROCEDURE, CHEMOTHERAPY_PROCEDURE):
        if extra not in names:
            names.append(extra)
    return arrow.labels(names), index, np.array([len(p) for p in lists])


_CODES, _CODE_INDEX, _CODE_CDF = _code_tables()
_CODE_POS = {code: i for i, code in enumerate(_CODES.to_pylist())}
_PROCS, _PROC_INDEX, _PROC_COUNT = _procedure_tables()
_PROC_POS = {code: i for i, code in enumerate(_PROCS.to_pylist())}
_METHODS = arrow.labels(ADMISSION_METHODS)
_CHAPTERS = arrow.labels(CHAPTER_NUMERALS)


def _admissions(people: People, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Each episode's person, kind and admission day, sorted by person then date."""
    n = len(people)
    first_day = np.maximum(START, people.dob)
    exposure = np.clip((END - first_day).astype(np.int64) + 1, 0, None)
    years = exposure / DAYS_PER_YEAR
    age_mid = np.clip(people.age_at(MID), 0, None)
    rate = np.interp(age_mid, _RATE_AGES, _RATE_VALUES)
    rate += np.where(people.female & (age_mid >= 18) & (age_mid <= 40), 0.08, 0.0)
    mu = rate * (1 + 0.35 * people.deprivation) * people.frailty * years
    normal = rng.poisson(mu)
    regular_p = 0.0015 * (1 + age_mid / 50) * (1 + 0.3 * people.deprivation)
    regular = rng.random(n) < regular_p
    regular_count = np.where(regular, rng.poisson(25 * years / 6) + 10, 0)
    born_here = (people.dob >= START) & (rng.random(n) < 0.97)
    counts = normal + regular_count + born_here

    person, within = expand(counts)
    kind = np.where(
        within < normal[person],
        NORMAL,
        np.where(within < (normal + regular_count)[person], REGULAR, BIRTH),
    )
    offset = np.floor(rng.random(len(person)) * exposure[person]).astype(np.int64)
    admitted = np.where(kind == BIRTH, people.dob[person], first_day[person] + offset)
    order = np.lexsort((admitted, person))
    return person[order], kind[order], admitted[order]


def generate_health(people: People) -> BlockRows:
    """The hospital episodes of one block of people."""
    world = people.world
    rng = block_rng(world.seed, Stream.HEALTH, people.block)
    n = len(people)
    dialysis = rng.random(n) < 0.5  # what a regular attender comes in for
    person, kind, admitted = _admissions(people, rng)
    m = len(person)
    age = (admitted - people.dob[person]).astype(np.float64) / DAYS_PER_YEAR
    female = people.female[person]
    dep = people.deprivation[person]
    normal = kind == NORMAL

    # Admission method.
    maternity = normal & female & (age >= 16) & (age <= 45) & (rng.random(m) < 0.3)
    p_emergency = np.clip(0.38 + 0.06 * dep + 0.002 * (age - 40) + 0.2 * (age < 1), 0.1, 0.9)
    emergency = rng.random(m) < p_emergency
    elective = rng.random(m) < 0.9
    method = np.select(
        [kind == REGULAR, kind == BIRTH, maternity, emergency, elective],
        [ELECTIVE, OTHER, MATERNITY, EMERGENCY, ELECTIVE],
        OTHER,
    )

    # Diagnosis: chapter by age band and method, then a code within the chapter.
    band = np.digitize(age, [1, 16, 65])
    urgent = ((method == EMERGENCY) | (method == OTHER)).astype(np.int64)
    cdf = _CHAPTER_CDF[band, urgent]
    chapter = pick_rows(cdf, rng.random(m))
    chapter = np.where(method == MATERNITY, _CH["XV"], chapter)
    chapter = np.where(kind != NORMAL, _CH["XXI"], chapter)
    within = pick_rows(_CODE_CDF[chapter], rng.random(m))
    code = _CODE_INDEX[chapter, within]
    regular_code = np.where(
        dialysis[person], _CODE_POS[DIALYSIS_DIAGNOSIS], _CODE_POS[CHEMOTHERAPY_DIAGNOSIS]
    )
    code = np.select(
        [kind == REGULAR, kind == BIRTH], [regular_code, _CODE_POS[BIRTH_DIAGNOSIS]], code
    )

    # Procedure (none for many emergencies and all births).
    p_proc = np.array([0.8, 0.35, 0.5, 0.2])[method]
    has_proc = (rng.random(m) < p_proc) & (kind != BIRTH) | (kind == REGULAR)
    proc_pick = np.floor(rng.random(m) * _PROC_COUNT[chapter]).astype(np.int64)
    proc = _PROC_INDEX[chapter, proc_pick]
    regular_proc = np.where(
        dialysis[person], _PROC_POS[DIALYSIS_PROCEDURE], _PROC_POS[CHEMOTHERAPY_PROCEDURE]
    )
    proc = np.where(kind == REGULAR, regular_proc, proc)

    stay = _length_of_stay(rng, method, kind, chapter, age)
    cost = _cost(rng, method, kind, chapter, stay, has_proc, dialysis[person])

    columns = [
        arrow.take(people.person_id, person),
        arrow.take(nhs_numbers(people.index, world.key_nhs), person),
        arrow.take(people.full_name, person),
        arrow.take(people.date_of_birth, person),
        arrow.take(people.sex, person),
        arrow.take(people.postcode, person),
        arrow.take(people.region, person),
        arrow.dates(admitted),
        arrow.dates(admitted + stay.astype("timedelta64[D]")),
        arrow.take(_METHODS, method),
        arrow.take(_CODES, code),
        arrow.take(_CHAPTERS, chapter),
        arrow.take(_PROCS, proc, valid=has_proc),
        pa.array(stay, type=pa.int64()),
        pa.array(cost, type=pa.float64()),
    ]
    return BlockRows(pa.Table.from_arrays(columns, schema=SCHEMA), person)


def _length_of_stay(
    rng: np.random.Generator,
    method: np.ndarray,
    kind: np.ndarray,
    chapter: np.ndarray,
    age: np.ndarray,
) -> np.ndarray:
    m = len(method)
    u = rng.random(m)
    elective = np.where(u < 0.6, 0, rng.geometric(0.3, m))
    emergency_median = np.log(2.5) + 0.012 * np.clip(age - 40, 0, None)
    emergency = np.where(u < 0.22, 0, np.ceil(rng.lognormal(emergency_median, 0.9)))
    maternity = np.where(u < 0.25, 0, rng.geometric(0.55, m))
    other = rng.geometric(0.4, m) - 1
    mental = np.ceil(rng.lognormal(np.log(18), 1.0, m))
    birth = np.where(u < 0.7, 0, rng.geometric(0.5, m))
    stay = np.select(
        [
            kind == REGULAR,
            kind == BIRTH,
            chapter == _CH["V"],
            method == ELECTIVE,
            method == EMERGENCY,
            method == MATERNITY,
        ],
        [0, birth, mental, elective, emergency, maternity],
        other,
    )
    # Long-stay outliers: a few episodes last months or years.
    long_stay = (kind == NORMAL) & (rng.random(m) < 0.004)
    stay = np.where(long_stay, 60 + np.floor(rng.exponential(150.0, m)), stay)
    return np.minimum(stay, 3000).astype(np.int64)


def _cost(
    rng: np.random.Generator,
    method: np.ndarray,
    kind: np.ndarray,
    chapter: np.ndarray,
    stay: np.ndarray,
    has_proc: np.ndarray,
    dialysis: np.ndarray,
) -> np.ndarray:
    m = len(method)
    base = np.array([1300.0, 1700.0, 2200.0, 900.0])[method] * _CHAPTER_COST[chapter]
    cost = (base + 1800.0 * has_proc + 320.0 * stay) * rng.lognormal(0.0, 0.35, m)
    # High-cost outliers (critical care, transplants): tens to hundreds of thousands.
    high = (kind == NORMAL) & (rng.random(m) < 0.002)
    cost = np.where(high, cost * rng.lognormal(np.log(15.0), 0.8, m), cost)
    regular = np.where(dialysis, 180.0, 450.0) * rng.lognormal(0.0, 0.2, m)
    birth = 450.0 * rng.lognormal(0.0, 0.3, m)
    cost = np.select([kind == REGULAR, kind == BIRTH], [regular, birth], cost)
    return np.round(cost, 2)
