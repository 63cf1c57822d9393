"""A real query service over small published datasets (see tests/query_fixtures.py)."""

from tests.query_fixtures import query_catalog, service

__all__ = ["query_catalog", "service"]
