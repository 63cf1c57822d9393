"""The education extract (like the National Pupil Database): one row per pupil per year.

Pupils are the people of school age (years 1-11) in each academic year who attend a state
school (fewer in the least deprived areas). Free-school-meals eligibility rises with deprivation
and is persistent; SEN follows lower ability and disability; KS2 (year 6) and KS4 (year 11)
attainment follow ability, lowered further by FSM and SEN, so FSM pupils score lower.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from tre.synth import arrow
from tre.synth.codes import ACADEMIC_YEAR_STARTS, ACADEMIC_YEARS, ETHNICITY_CODES, SEN_STATUSES
from tre.synth.identifiers import upns
from tre.synth.population import People, month_of, year_of
from tre.synth.rng import Stream, block_rng
from tre.synth.rows import BlockRows, expand, sigmoid
from tre.synth.schema import arrow_schema

_ACADEMIC_YEARS = arrow.labels(ACADEMIC_YEARS)
_ETHNICITIES = arrow.labels(ETHNICITY_CODES)
_SEN = arrow.labels(SEN_STATUSES)
SCHEMA = arrow_schema("education")

# Thresholds on the SEN score giving roughly 13% SEN support and 4% EHCP among pupils.
_EHCP_CUT = 2.35
_SUPPORT_CUT = 1.25


def _other_in_range(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return lo + np.floor(rng.random(len(lo)) * (hi - lo + 1)).astype(np.int64)


def generate_education(people: People) -> BlockRows:
    """The education rows of one block of people."""
    world = people.world
    rng = block_rng(world.seed, Stream.EDUCATION, people.block)
    n = len(people)
    dep = people.deprivation

    # Per-person draws (for everyone, so the stream does not depend on who is a pupil).
    # Academic cohort: children born September to August start school together.
    cohort = year_of(people.dob) - (month_of(people.dob) < 9)
    first = np.maximum(ACADEMIC_YEAR_STARTS[0], cohort + 6)  # year 1 at 5 turning 6
    last = np.minimum(ACADEMIC_YEAR_STARTS[-1], cohort + 16)  # year 11 at 15 turning 16
    state_school = rng.random(n) < 0.955 - 0.012 * (people.decile - 1)
    counts = np.where(state_school, np.clip(last - first + 1, 0, None), 0)
    fsm_p = sigmoid(-1.7 + 1.5 * dep + 1.2 * rng.normal(size=n))
    fsm_u = rng.random(n)
    sen_score = (
        rng.normal(size=n)
        - 0.7 * people.ability
        + 0.35 * ~people.female
        + 0.25 * dep
        + 1.4 * people.disability
    )
    sen_level = np.where(sen_score > _EHCP_CUT, 2, np.where(sen_score > _SUPPORT_CUT, 1, 0))
    sen_onset = 1 + rng.integers(0, np.where(sen_level == 2, 3, 7))
    own_school = rng.random(n) < 0.85
    alt_area = _other_in_range(rng, *world.la_areas[people.la].T)
    primary = world.area_primary[np.where(own_school, people.area, alt_area)]
    own_school = rng.random(n) < 0.75
    alt_district = _other_in_range(rng, *world.la_districts[people.la].T)
    district = world.area_district[people.area]
    secondary = world.district_secondary[np.where(own_school, district, alt_district)]

    person, within = expand(counts)
    m = len(person)
    year = first[person] + within
    year_group = year - cohort[person] - 5
    # FSM status mostly persists from year to year (same uniform 80% of the time).
    u = np.where(rng.random(m) < 0.8, fsm_u[person], rng.random(m))
    fsm = u < fsm_p[person]
    sen = np.where(year_group >= sen_onset[person], sen_level[person], 0)
    ability = people.ability[person] - 0.45 * fsm - np.select([sen == 1, sen == 2], [0.6, 1.5], 0)

    ks2_row = (year_group == 6) & (rng.random(m) > 0.02)
    reading = np.clip(np.round(104.5 + 6.0 * ability + 4.0 * rng.normal(size=m)), 80, 120)
    maths = np.clip(np.round(104.0 + 6.5 * ability + 4.0 * rng.normal(size=m)), 80, 120)
    ks2 = (reading + maths) / 2
    ks4_row = (year_group == 11) & (rng.random(m) > 0.03)
    a8 = 46.0 + 15.0 * ability + 6.0 * rng.normal(size=m)
    a8 = np.where(rng.random(m) < 0.015, 0.0, a8)  # pupils entered for nothing score 0
    ks4 = np.round(np.clip(a8, 0, 90) * 2) / 2

    school = np.where(year_group <= 6, primary[person], secondary[person])
    columns = [
        arrow.take(people.person_id, person),
        arrow.take(upns(people.index, world.key_upn), person),
        arrow.take(people.full_name, person),
        arrow.take(people.date_of_birth, person),
        arrow.take(people.sex, person),
        arrow.take(_ETHNICITIES, people.ethnicity[person]),
        arrow.take(people.postcode, person),
        arrow.take(world.school_ids, school),
        arrow.take(people.local_authority, person),
        arrow.take(people.region, person),
        arrow.take(_ACADEMIC_YEARS, year - ACADEMIC_YEAR_STARTS[0]),
        pa.array(year_group, type=pa.int64()),
        pa.array(fsm, type=pa.bool_()),
        arrow.take(_SEN, sen),
        arrow.floats(ks2, ks2_row),
        arrow.floats(ks4, ks4_row),
    ]
    return BlockRows(pa.Table.from_arrays(columns, schema=SCHEMA), person)
