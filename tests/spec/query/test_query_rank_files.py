"""Spec: rows beyond the contribution limit in files of their own (as ingest publishes them).

A query bounded at the limit skips those files and drops the per-row `_tre_rank <= k` filter;
its bounded aggregates before noise are exactly those of the same rows in one filtered file,
for every supported shape and for joins. Files without a recorded rank range are filtered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.query_support import (
    BENEFITS_COLUMNS,
    HEALTH_COLUMNS,
    FixtureCatalog,
    Shape,
    benefits_rows,
    grant,
    health_rows,
    publish,
    shapes,
    tre_exact,
)
from tre.query.execute import Limits
from tre.query.service import QueryService, QuerySettings, bounded_files

JOIN = Shape(
    "join_count",
    "SELECT h.sex, COUNT(*) FROM health h JOIN benefits b ON h.pid = b.pid GROUP BY h.sex",
    None,
    ("__tre_a0",),
)


def _catalog(root: Path, split: bool) -> FixtureCatalog:
    return FixtureCatalog(
        {
            "health": publish(root, "health", health_rows(400), HEALTH_COLUMNS, 5, split=split),
            "benefits": publish(
                root, "benefits", benefits_rows(400), BENEFITS_COLUMNS, 2, split=split
            ),
        }
    )


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[bool, QueryService]]:
    settings = QuerySettings(limits=Limits(timeout_seconds=10))
    out = {
        split: QueryService(
            _catalog(Path(tmp_path_factory.mktemp(f"split{split}")), split), None, None, settings
        )
        for split in (False, True)
    }
    yield out
    for svc in out.values():
        svc.close()


@pytest.mark.parametrize("shape", [*shapes(5), JOIN], ids=lambda s: s.name)
def test_split_files_give_the_same_bounded_aggregates(
    shape: Shape, services: dict[bool, QueryService]
) -> None:
    g = grant("health", "benefits")
    assert tre_exact(services[True], g, shape) == tre_exact(services[False], g, shape)


def test_views_over_split_files_read_no_overflow_file_and_need_no_filter(
    services: dict[bool, QueryService],
) -> None:
    sql = "SELECT h.sex, COUNT(*) FROM health h JOIN benefits b ON h.pid = b.pid GROUP BY h.sex"
    g = grant("health", "benefits")
    split = services[True].prepare(sql, g, rho=1.0).query.views
    whole = services[False].prepare(sql, g, rho=1.0).query.views
    assert [v.rank_filter for v in split] == [False, False]
    assert all(f.endswith("part-0.parquet") for v in split for f in v.files)
    assert [v.rank_filter for v in whole] == [True, True]


def test_bounded_files_choose_by_rank_range(tmp_path: Path) -> None:
    dv = publish(tmp_path, "health", health_rows(200), HEALTH_COLUMNS, 5, split=True)
    (within, over) = (str(f) for f in dv.files)
    assert dv.manifest.files[0].max_rank == 5 and dv.manifest.files[1].min_rank == 6
    assert bounded_files(dv, 5) == ((within,), False)
    # A tighter limit than the files were split at reads the same file, filtered.
    assert bounded_files(dv, 3) == ((within,), True)
    # A looser one would need the overflow file too, filtered.
    assert bounded_files(dv, 8) == ((within, over), True)
    legacy = publish(tmp_path / "old", "health", health_rows(200), HEALTH_COLUMNS, 5)
    assert bounded_files(legacy, 5) == (tuple(str(f) for f in legacy.files), True)
