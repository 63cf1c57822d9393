"""Attacks through public lookup tables: each is refused with a pointed reason, and the service
keeps answering. A lookup may be joined only on its unique key to a non-identifier column of a
dataset, so it can neither multiply a person's rows nor link people nor read a file."""

from __future__ import annotations

import pytest

from tests.query_support import grant
from tre.errors import UserError
from tre.query.errors import QueryRefused
from tre.query.service import QueryService

G = grant("health", "benefits")
HEALTHY = "SELECT sex, COUNT(*) AS n FROM health GROUP BY sex"
J = "JOIN icd10_chapter c"

ATTACKS = {
    "on the pid": (f"SELECT COUNT(*) FROM health h {J} ON h.pid = c.chapter", "person identifier"),
    "on a non-key column": (
        f"SELECT COUNT(*) FROM health h {J} ON h.diagnosis_chapter = c.title",
        "only on its key column",
    ),
    "non-key on both sides": (
        f"SELECT COUNT(*) FROM health h {J} ON c.title = c.code_range",
        "only on its key column",
    ),
    "cross join": (
        "SELECT COUNT(*) FROM health h CROSS JOIN icd10_chapter c",
        "CROSS join is not allowed",
    ),
    "comma join": ("SELECT COUNT(*) FROM health h, icd10_chapter c", "only with ON"),
    "on true": (f"SELECT COUNT(*) FROM health h {J} ON TRUE", "only with ON"),
    "on a condition": (
        f"SELECT COUNT(*) FROM health h {J} ON h.diagnosis_chapter = c.chapter OR TRUE",
        "only with ON",
    ),
    "using": (
        "SELECT COUNT(*) FROM health h JOIN icd10_chapter c USING (chapter)",
        "only with ON",
    ),
    "inequality": (
        f"SELECT COUNT(*) FROM health h {J} ON h.diagnosis_chapter <> c.chapter",
        "only with ON",
    ),
    "lookup only": ("SELECT COUNT(*) FROM icd10_chapter", "cannot be queried on its own"),
    "lookup first": (
        "SELECT COUNT(*) FROM icd10_chapter c JOIN health h ON h.diagnosis_chapter = c.chapter",
        "cannot be queried on its own",
    ),
    "lookup to lookup": (
        f"SELECT COUNT(*) FROM health h {J} ON h.diagnosis_chapter = c.chapter "
        "JOIN icd10_chapter d ON d.chapter = c.chapter",
        "another lookup table",
    ),
    "dataset joined on a lookup column": (
        f"SELECT COUNT(*) FROM health h {J} ON h.diagnosis_chapter = c.chapter "
        "JOIN benefits b ON b.pid = c.title",
        "person pseudonym",
    ),
    "aggregate a lookup value": (
        f"SELECT SUM(c.title) FROM health h {J} ON h.diagnosis_chapter = c.chapter",
        "bounds in the policy",
    ),
    "unknown lookup": (
        "SELECT COUNT(*) FROM health h JOIN icd11_chapter c ON h.diagnosis_chapter = c.chapter",
        "no granted dataset",
    ),
    "lookup named like a file": (
        "SELECT COUNT(*) FROM health h JOIN 'policies/lookups/icd10_chapter.yaml' c "
        "ON h.diagnosis_chapter = c.chapter",
        "no granted dataset",
    ),
    "lookup with a path": (
        'SELECT COUNT(*) FROM health h JOIN "../lookups/icd10_chapter" c '
        "ON h.diagnosis_chapter = c.chapter",
        "no granted dataset",
    ),
    "qualified lookup": (
        "SELECT COUNT(*) FROM health h JOIN lookups.icd10_chapter c "
        "ON h.diagnosis_chapter = c.chapter",
        "qualified names",
    ),
    "lookup view by name": (
        "SELECT COUNT(*) FROM health h JOIN __tre_l0 c ON h.diagnosis_chapter = c.chapter",
        "",
    ),
    "on a column the policy forbids grouping by": (
        f"SELECT c.title, COUNT(*) FROM health h {J} ON h.procedure_code = c.chapter "
        "GROUP BY c.title",
        "group_by to forbidden",
    ),
    "on a forbidden column through a CTE": (
        "WITH t AS (SELECT pid, upper(procedure_code) AS p FROM health) "
        f"SELECT COUNT(*) FROM t {J} ON t.p = c.chapter",
        "group_by to forbidden",
    ),
    "type mismatch": (
        f"SELECT COUNT(*) FROM health h {J} ON h.length_of_stay = c.chapter",
        "cannot be matched",
    ),
    "cte shadowing a lookup": (
        "WITH icd10_chapter AS (SELECT pid, sex AS chapter FROM health) "
        "SELECT COUNT(*) FROM health h JOIN icd10_chapter c ON h.sex = c.chapter",
        "already taken",
    ),
}


@pytest.mark.parametrize("sql,words", ATTACKS.values(), ids=list(ATTACKS))
def test_lookup_attack_is_refused(service: QueryService, sql: str, words: str) -> None:
    with pytest.raises(UserError) as info:
        service.run(sql, G, rho=0.1)
    err = info.value
    assert err.hint, "every refusal says how to fix it"
    assert words in str(err)
    assert "policies/" not in str(err).replace("'policies/lookups/icd10_chapter.yaml'", "")
    assert len(service.run(HEALTHY, G, rho=0.1).rows) == 2


def test_a_refused_lookup_join_points_at_the_condition(service: QueryService) -> None:
    with pytest.raises(QueryRefused) as info:
        service.prepare(
            "SELECT COUNT(*)\nFROM health h\nJOIN icd10_chapter c ON h.diagnosis_chapter = c.title",
            G,
            rho=0.1,
        )
    assert info.value.reason == "join_not_allowed"
    assert str(info.value).startswith("line 3,")


def test_a_lookup_never_multiplies_rows(service: QueryService) -> None:
    """The count with a LEFT JOIN on the key equals the count without it (exact, before noise)."""
    plain = service.prepare("SELECT COUNT(*) FROM health", G, rho=0.5)
    joined = service.prepare(
        "SELECT COUNT(*) FROM health h LEFT JOIN icd10_chapter c "
        "ON h.diagnosis_chapter = c.chapter",
        G,
        rho=0.5,
    )
    assert service.answer(joined) == service.answer(plain)
    assert joined.query.bound == plain.query.bound
