"""The benefits and earnings extract (like DWP benefits joined to HMRC earnings).

One row per adult (16 or over at the start of the tax year) per tax year and benefit received;
a person-year with no benefit has one `none` row. Employment status persists from year to year
and follows age, deprivation and disability; earnings follow ability (so attainment and earnings
are linked) with a Pareto-like tail of very high earners. Universal Credit replaces JSA and ESA
over the years, as it did.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from tre.synth import arrow
from tre.synth.codes import (
    BENEFIT_TYPES,
    CHILD_BENEFIT_FIRST,
    CHILD_BENEFIT_OTHER,
    EMPLOYMENT_STATUSES,
    JSA_RATE,
    PIP_DAILY_LIVING,
    PIP_MOBILITY,
    TAX_YEAR_STARTS,
    TAX_YEARS,
    UPRATING,
)
from tre.synth.identifiers import ninos
from tre.synth.population import DAYS_PER_YEAR, People
from tre.synth.rng import Stream, block_rng
from tre.synth.rows import BlockRows, cumulative, expand, pick_rows
from tre.synth.schema import arrow_schema

SCHEMA = arrow_schema("benefits")
_STARTS = np.array([np.datetime64(f"{y}-04-06", "D") for y in TAX_YEAR_STARTS])
_SIXTEEN = np.timedelta64(int(np.ceil(16 * DAYS_PER_YEAR)), "D")
_TAX_YEARS = arrow.labels(TAX_YEARS)
_BENEFITS = arrow.labels(BENEFIT_TYPES)
_STATUSES = arrow.labels(EMPLOYMENT_STATUSES)

EMPLOYED, SELF_EMPLOYED, UNEMPLOYED, INACTIVE, RETIRED = range(5)
UC, CHILD_BENEFIT, PIP, ESA, JSA, PENSION_CREDIT, NONE = range(7)
STATE_PENSION_AGE = 66

# Employment status shares by age band: 16-20, 21-59, 60-65, 66 and over.
_STATUS_BY_AGE = np.array(
    [
        [0.40, 0.02, 0.10, 0.48, 0.00],
        [0.76, 0.11, 0.04, 0.09, 0.00],
        [0.52, 0.12, 0.03, 0.13, 0.20],
        [0.06, 0.03, 0.00, 0.00, 0.91],
    ]
)
# Universal Credit's share of new and migrated claims in each tax year (the rollout).
_UC_SHARE = np.array([0.12, 0.22, 0.42, 0.52, 0.62, 0.70])


def _status(age: np.ndarray, dep: np.ndarray, disabled: np.ndarray, u: np.ndarray) -> np.ndarray:
    band = np.digitize(age, [21, 60, STATE_PENSION_AGE])
    shares = _STATUS_BY_AGE[band].copy()
    working_age = age < STATE_PENSION_AGE
    shift = np.where(working_age, 0.04 * dep, 0.0)
    shares[:, EMPLOYED] -= 2 * shift
    shares[:, UNEMPLOYED] += shift
    shares[:, INACTIVE] += shift
    sick = disabled & working_age
    shares[:, EMPLOYED] -= np.where(sick, 0.30, 0.0)
    shares[:, INACTIVE] += np.where(sick, 0.35, 0.0)
    return pick_rows(cumulative(np.clip(shares, 0.0, None)), u)


def generate_benefits(people: People) -> BlockRows:
    """The benefit and earnings rows of one block of people."""
    world = people.world
    rng = block_rng(world.seed, Stream.BENEFITS, people.block)
    n = len(people)
    dep = people.deprivation

    # Per-person draws.
    first_year = np.searchsorted(_STARTS, people.dob + _SIXTEEN, side="left")
    counts = len(_STARTS) - first_year
    status_u = rng.random(n)
    earning_power = 0.5 * people.ability - 0.12 * dep + rng.normal(0.0, 0.45, n)
    top_earner = rng.random(n) < 0.004
    # Pareto tail (alpha 1.5) from 3x pay, capped so that the very top is in the tens of millions.
    top_multiplier = np.minimum(3.0 * (rng.pareto(1.5, n) + 1.0), 400.0)
    part_time = rng.random(n) < np.where(people.female, 0.35, 0.12)
    age_mid = people.age_at(np.datetime64("2021-04-06"))
    parent = (
        (age_mid >= 20) & (age_mid <= 50) & (rng.random(n) < np.where(people.female, 0.55, 0.2))
    )
    children = 1 + rng.binomial(3, np.clip(0.3 + 0.05 * dep, 0, 1))
    pip_claimant = people.disability & (rng.random(n) < 0.75)
    pip_daily = rng.integers(0, 3, n)
    pip_mobility = np.where(pip_daily == 0, rng.integers(1, 3, n), rng.integers(0, 3, n))
    pension_top_up = rng.uniform(5.0, 120.0, n)

    # Person-years.
    person, within = expand(counts)
    m = len(person)
    year = first_year[person] + within
    age = (_STARTS[year] - people.dob[person]).astype(np.float64) / DAYS_PER_YEAR
    u = np.where(rng.random(m) < 0.85, status_u[person], rng.random(m))
    disabled = people.disability[person]
    status = _status(age, dep[person], disabled, u)

    log_employed = (
        np.log(27500.0)
        + earning_power[person]
        - 0.0007 * (age - 47) ** 2
        + 0.035 * year
        + rng.normal(0.0, 0.15, m)
    )
    employed_pay = np.exp(log_employed) * np.where(part_time[person], 0.5, 1.0)
    self_pay = np.exp(np.log(17000.0) + 1.3 * earning_power[person] + 0.035 * year)
    self_pay *= rng.lognormal(0.0, 0.5, m)
    odd_jobs = np.where(rng.random(m) < 0.25, rng.uniform(0.0, 9000.0, m), 0.0)
    late_work = np.where(rng.random(m) < 0.05, rng.uniform(0.0, 15000.0, m), 0.0)
    earnings = np.select(
        [status == EMPLOYED, status == SELF_EMPLOYED, status == RETIRED],
        [employed_pay, self_pay, late_work],
        odd_jobs,
    )
    working = (status == EMPLOYED) | (status == SELF_EMPLOYED)
    earnings = np.where(working & top_earner[person], earnings * top_multiplier[person], earnings)
    earnings = np.round(earnings, 2)

    # Which benefits each person-year receives.
    pdep = dep[person]
    working_age = age < STATE_PENSION_AGE
    claim_p = np.select(
        [status == UNEMPLOYED, status == INACTIVE, working & (earnings < 16000)],
        [np.full(m, 0.85), 0.30 + 0.2 * pdep + 0.3 * disabled, 0.25 + 0.15 * pdep],
        0.0,
    )
    claims = working_age & (rng.random(m) < claim_p)
    on_uc = claims & (rng.random(m) < _UC_SHARE[year])
    flags = np.zeros((m, len(BENEFIT_TYPES)), dtype=bool)
    flags[:, UC] = on_uc
    flags[:, JSA] = claims & ~on_uc & (status == UNEMPLOYED)
    flags[:, ESA] = claims & ~on_uc & (status == INACTIVE) & disabled
    flags[:, CHILD_BENEFIT] = parent[person] & (age >= 20) & (age <= 55) & (rng.random(m) < 0.93)
    flags[:, PIP] = pip_claimant[person]
    pension_credit_p = np.clip(0.12 + 0.12 * pdep, 0.02, None)
    flags[:, PENSION_CREDIT] = (status == RETIRED) & (rng.random(m) < pension_credit_p)
    flags[:, NONE] = ~flags[:, :NONE].any(axis=1)

    py, benefit = np.nonzero(flags)  # row-major: by person-year, then benefit
    row_person = person[py]
    row_year = year[py]
    kids = children[row_person]
    uprate = np.array(UPRATING)[row_year]
    uc_amount = np.clip(
        80.0 + 55.0 * kids * parent[row_person] + rng.normal(0, 25.0, len(py)), 10, None
    )
    uc_amount *= np.where(working[py], 0.5, 1.0) * uprate
    child_amount = np.array(CHILD_BENEFIT_FIRST)[row_year] + np.array(CHILD_BENEFIT_OTHER)[
        row_year
    ] * (kids - 1)
    pip_amount = (
        np.array(PIP_DAILY_LIVING)[pip_daily[row_person]]
        + np.array(PIP_MOBILITY)[pip_mobility[row_person]]
    ) * uprate
    esa_amount = np.where(disabled[py] & (rng.random(len(py)) < 0.6), 110.75, 73.10) * uprate
    jsa_amount = np.array(JSA_RATE)[row_year] * np.where(age[py] < 25, 0.79, 1.0)
    amount = np.select(
        [benefit == UC, benefit == CHILD_BENEFIT, benefit == PIP, benefit == ESA, benefit == JSA],
        [uc_amount, child_amount, pip_amount, esa_amount, jsa_amount],
        np.where(benefit == PENSION_CREDIT, pension_top_up[row_person] * uprate, 0.0),
    )
    amount = np.round(amount, 2)

    columns = [
        arrow.take(people.person_id, row_person),
        arrow.take(ninos(people.index, world.key_nino), row_person),
        arrow.take(people.full_name, row_person),
        arrow.take(people.date_of_birth, row_person),
        arrow.take(people.sex, row_person),
        arrow.take(people.postcode, row_person),
        arrow.take(people.region, row_person),
        arrow.take(_TAX_YEARS, row_year),
        arrow.take(_BENEFITS, benefit),
        arrow.take(_STATUSES, status[py]),
        pa.array(amount, type=pa.float64()),
        pa.array(earnings[py], type=pa.float64()),
    ]
    return BlockRows(pa.Table.from_arrays(columns, schema=SCHEMA), row_person)
