"""Spec: joins with public lookup tables from policy (`policies/lookups/*.yaml`).

A lookup is joined on its unique key, so each dataset row matches at most one lookup row: the
exact bounded aggregates grouped by a lookup column equal those grouped by the dataset column
and renamed through the lookup, the rows-per-person bound (and so the noise) is unchanged, and
the lookup column's distinct values are public keys (all released, empty groups included).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.query_support import CHAPTERS, FixtureCatalog, grant
from tre.catalog.lookups import MAX_LOOKUP_ROWS, load_lookup, load_lookups, parse_lookup
from tre.catalog.policy import PolicyError
from tre.query.errors import QueryRefused
from tre.query.model import PublicKeys
from tre.query.service import DEFAULT_LOOKUP_DIR, QueryService, QuerySettings

G = grant("health", "benefits")


def exact(service: QueryService, sql: str) -> list[tuple[Any, ...]]:
    p = service.prepare(sql, G, rho=1.0)
    return sorted(service.answer(p)[0], key=str)


def titles() -> dict[str, str]:
    t = load_lookups(DEFAULT_LOOKUP_DIR)["icd10_chapter"]
    return {str(r[0]): str(r[1]) for r in t.rows}


def test_grouping_by_a_lookup_title_equals_grouping_by_the_key_and_renaming(
    service: QueryService,
) -> None:
    by_chapter = exact(
        service,
        "SELECT diagnosis_chapter, COUNT(*), COUNT(DISTINCT pid), SUM(cost), SUM(length_of_stay) "
        "FROM health GROUP BY diagnosis_chapter",
    )
    by_title = exact(
        service,
        "SELECT c.title, COUNT(*), COUNT(DISTINCT h.pid), SUM(h.cost), SUM(h.length_of_stay) "
        "FROM health h JOIN icd10_chapter c ON h.diagnosis_chapter = c.chapter GROUP BY c.title",
    )
    names = titles()
    assert by_title == sorted(((names[k], *rest) for k, *rest in by_chapter), key=str)
    assert len(by_title) == len(CHAPTERS)


def test_a_lookup_join_keeps_the_bound_and_the_noise(service: QueryService) -> None:
    plain = service.prepare(
        "SELECT diagnosis_chapter, COUNT(*), SUM(cost) FROM health GROUP BY diagnosis_chapter",
        G,
        rho=0.5,
    )
    joined = service.prepare(
        "SELECT c.title, COUNT(*), SUM(h.cost) FROM health h "
        "LEFT JOIN icd10_chapter c ON c.chapter = h.diagnosis_chapter GROUP BY c.title",
        G,
        rho=0.5,
    )
    assert joined.query.bound == plain.query.bound == 5
    # Per-measurement sensitivities are the same: the join cannot copy a person's rows.
    assert [m.l2 for m in joined.measurements] == [m.l2 for m in plain.measurements]
    assert any("lookup" in line and "unchanged" in line for line in joined.description)
    # Public keys: every chapter title, plus NULL for rows without a match after a LEFT JOIN.
    assert isinstance(joined.query.keys, PublicKeys)
    keys = {r[0] for r in joined.query.keys.rows}
    assert keys == {*titles().values(), None}


def test_inner_join_drops_unmatched_and_has_no_null_key(service: QueryService) -> None:
    p = service.prepare(
        "SELECT a.area, COUNT(*) FROM health h JOIN region_area a ON h.sex = a.region "
        "GROUP BY a.area",
        G,
        rho=0.5,
    )
    assert isinstance(p.query.keys, PublicKeys)
    assert {r[0] for r in p.query.keys.rows} == {"North", "Midlands", "South"}
    # No sex matches a region: every row is dropped, and the answer is all empty groups.
    assert service.answer(p)[0] == ()


def test_lookup_columns_in_where_and_case(service: QueryService) -> None:
    got = exact(
        service,
        "SELECT CASE WHEN c.code_range LIKE 'A%' THEN 'infections' ELSE 'other' END AS g, "
        "COUNT(*) FROM health h JOIN icd10_chapter c ON h.diagnosis_chapter = c.chapter "
        "WHERE c.title <> 'Neoplasms' GROUP BY 1",
    )
    want = exact(
        service,
        "SELECT CASE WHEN diagnosis_chapter = 'I' THEN 'infections' ELSE 'other' END AS g, "
        "COUNT(*) FROM health WHERE diagnosis_chapter <> 'II' GROUP BY 1",
    )
    assert got == want


def test_lookup_inside_a_cte(service: QueryService) -> None:
    got = exact(
        service,
        "WITH t AS (SELECT h.pid, c.title FROM health h "
        "JOIN icd10_chapter c ON h.diagnosis_chapter = c.chapter) "
        "SELECT title, COUNT(*) FROM t GROUP BY title",
    )
    want = exact(
        service,
        "SELECT c.title, COUNT(*) FROM health h "
        "JOIN icd10_chapter c ON h.diagnosis_chapter = c.chapter GROUP BY c.title",
    )
    assert got == want


def test_identical_lookups_give_equal_views(service: QueryService) -> None:
    sql = (
        "SELECT c.title, COUNT(*) FROM health h "
        "JOIN icd10_chapter c ON h.diagnosis_chapter = c.chapter GROUP BY c.title"
    )
    a = service.prepare(sql, G, rho=0.5).query.views
    b = service.prepare(sql.replace(" c", " k").replace("c.", "k."), G, rho=0.5).query.views
    assert a == b
    lookup = next(v for v in a if v.is_lookup)
    assert lookup.files == () and "VALUES" in lookup.values_sql


def test_dp_end_to_end_through_the_service(service: QueryService) -> None:
    r = service.run(
        "SELECT c.title, COUNT(*) AS n, AVG(h.length_of_stay) AS stay FROM health h "
        "JOIN icd10_chapter c ON h.diagnosis_chapter = c.chapter GROUP BY c.title",
        G,
        rho=0.5,
    )
    # Every chapter title is released (empty groups included), with noise and half-widths.
    assert sorted(row[0] for row in r.rows) == sorted(titles().values())
    assert all(h[1] is not None and h[1] > 0 for h in r.half_widths)
    assert r.cost.rho > 0 and r.cost.delta == 0
    assert [d for d, _ in r.datasets] == ["health"]  # a lookup is no dataset
    exact_rows = dict(
        exact(
            service,
            "SELECT c.title, COUNT(*) FROM health h "
            "JOIN icd10_chapter c ON h.diagnosis_chapter = c.chapter GROUP BY c.title",
        )
    )
    noisy = {row[0]: row[1] for row in r.rows}
    assert noisy != {k: exact_rows.get(k, 0) for k in noisy}  # noise was added


# --- the lookup files --------------------------------------------------------------------------


def _table(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "t",
        "description": "test",
        "key": "k",
        "columns": {"k": {"type": "string"}, "v": {"type": "integer"}},
        "rows": [["a", 1], ["b", 2]],
    }
    base.update(kw)
    return base


def test_shipped_lookups_load_and_fit_the_synthetic_data() -> None:
    tables = load_lookups(DEFAULT_LOOKUP_DIR)
    assert set(tables) >= {"icd10_chapter", "region_area"}
    chapters = tables["icd10_chapter"].values("chapter")
    assert set(CHAPTERS) <= set(chapters) and len(chapters) == 22


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (_table(rows=[["a", 1], ["a", 2]]), "row 2: key k repeats row 1"),
        (_table(rows=[["a", None]]), "row 1: v is empty"),
        (_table(rows=[["a", "x"]]), "row 1: v is not a integer"),
        (_table(rows=[["a"]]), "row 1 has 1 values"),
        (_table(key="z"), "the key column 'z'"),
        (_table(name="../etc"), "name"),
        (_table(rows=[["a", 1]] * (MAX_LOOKUP_ROWS + 1)), "rows"),
        (_table(extra=1), "extra"),
    ],
)
def test_bad_lookup_files_are_refused_with_file_and_row(data: dict[str, Any], words: str) -> None:
    with pytest.raises(PolicyError) as e:
        parse_lookup(data, "policies/lookups/t.yaml")
    assert "policies/lookups/t.yaml" in str(e.value) and words in str(e.value)


def test_file_name_must_match(tmp_path: Path) -> None:
    (tmp_path / "other.yaml").write_text(
        "name: t\ndescription: d\nkey: k\ncolumns: {k: {type: string}, v: {type: string}}\n"
        "rows: [[a, b]]\n"
    )
    with pytest.raises(PolicyError, match="differs from the file name"):
        load_lookup(tmp_path / "other.yaml")


def test_the_service_reads_the_lookup_folder_from_settings(
    tmp_path: Path, query_catalog: FixtureCatalog
) -> None:
    (tmp_path / "sex_label.yaml").write_text(
        "name: sex_label\ndescription: d\nkey: code\n"
        "columns: {code: {type: string}, label: {type: string}}\n"
        "rows: [[F, female], [M, male]]\n"
    )
    svc = QueryService(query_catalog, None, None, QuerySettings(lookup_dir=str(tmp_path)))
    try:
        assert set(svc.lookups()) == {"sex_label"}
        p = svc.prepare(
            "SELECT l.label, COUNT(*) FROM health h JOIN sex_label l ON h.sex = l.code "
            "GROUP BY l.label",
            G,
            rho=0.5,
        )
        got = sorted(svc.answer(p)[0])
        plain = svc.prepare("SELECT sex, COUNT(*) FROM health GROUP BY sex", G, rho=0.5)
        want = sorted((("female" if k == "F" else "male"), n) for k, n in svc.answer(plain)[0])
        assert got == want
    finally:
        svc.close()


def test_an_edited_lookup_is_a_new_question_not_a_cached_answer(
    tmp_path: Path, query_catalog: FixtureCatalog
) -> None:
    path = tmp_path / "sex_label.yaml"
    text = (
        "name: sex_label\ndescription: d\nkey: code\n"
        "columns: {code: {type: string}, label: {type: string}}\n"
        "rows: [[F, LABEL_F], [M, male]]\n"
    )
    path.write_text(text.replace("LABEL_F", "female"))
    svc = QueryService(query_catalog, None, None, QuerySettings(lookup_dir=str(tmp_path)))
    sql = (
        "SELECT l.label, COUNT(*) FROM health h JOIN sex_label l ON h.sex = l.code GROUP BY l.label"
    )
    try:
        first = svc.run(sql, G, rho=0.5)
        assert svc.run(sql, G, rho=0.5).cached
        path.write_text(text.replace("LABEL_F", "woman"))
        second = svc.run(sql, G, rho=0.5)
        assert not second.cached
        assert {r[0] for r in first.rows} == {"female", "male"}
        assert {r[0] for r in second.rows} == {"woman", "male"}
    finally:
        svc.close()


def test_sdc_mode_answers_lookup_joins_like_the_renamed_query(service: QueryService) -> None:
    from tre.wire.grant import Mode

    g = grant("health", "benefits", modes=(Mode.DP, Mode.SDC))
    names = titles()
    # The same public key set as the dataset's (the fixture uses 5 of the 22 chapters), so the
    # same disclosure checks apply to the same cells.
    listed = ", ".join("'" + names[c].replace("'", "''") + "'" for c in CHAPTERS)
    by_title = service.run(
        "SELECT c.title, COUNT(*) AS n FROM health h "
        "JOIN icd10_chapter c ON h.diagnosis_chapter = c.chapter GROUP BY c.title "
        f"HAVING c.title IN ({listed})",
        g,
        mode="sdc",
    )
    by_chapter = service.run(
        "SELECT diagnosis_chapter, COUNT(*) AS n FROM health GROUP BY diagnosis_chapter",
        g,
        mode="sdc",
    )
    want = {names[str(k)]: n for k, n in by_chapter.rows}
    assert dict(by_title.rows) == want
    assert by_title.withheld == by_chapter.withheld
    assert not any("lookup:" in line for line in by_title.plan)


def test_a_bad_lookup_file_is_left_out_by_the_service_not_every_query(
    tmp_path: Path, query_catalog: FixtureCatalog, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "good.yaml").write_text(
        "name: good\ndescription: d\nkey: k\ncolumns: {k: {type: string}, v: {type: string}}\n"
        "rows: [[F, a], [M, b]]\n"
    )
    (tmp_path / "bad.yaml").write_text(
        "name: bad\ndescription: d\nkey: k\ncolumns: {k: {type: string}, v: {type: string}}\n"
        "rows: [[F, secret], [F, other]]\n"
    )
    with pytest.raises(PolicyError, match="row 2: key k repeats row 1"):
        load_lookups(tmp_path)
    svc = QueryService(query_catalog, None, None, QuerySettings(lookup_dir=str(tmp_path)))
    try:
        assert set(svc.lookups()) == {"good"}
        assert "bad.yaml" in caplog.text and "secret" not in caplog.text
        with pytest.raises(QueryRefused, match="no granted dataset or CTE named 'bad'"):
            svc.prepare("SELECT COUNT(*) FROM health h JOIN bad b ON h.sex = b.k", G, rho=0.5)
    finally:
        svc.close()
