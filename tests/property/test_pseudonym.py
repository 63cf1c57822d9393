"""The DuckDB HMAC-SHA256 (sha256 with the ipad/opad construction) equals Python's `hmac`
bit for bit, for any key and identifier; normalisation agrees between SQL and Python."""

from __future__ import annotations

import hashlib
import hmac

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from tre.ingest.pseudonym import hmac_params, hmac_sql, normalise, normalise_sql, pseudonym

_CON = duckdb.connect()

identifiers = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(key=st.binary(min_size=1, max_size=130), message=identifiers)
def test_sql_hmac_equals_python_hmac(key: bytes, message: str) -> None:
    got = _CON.execute(f"SELECT {hmac_sql('$m')}", {**hmac_params(key), "m": message}).fetchone()
    assert got is not None
    assert got[0] == hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


@settings(max_examples=300, deadline=None)
@given(key=st.binary(min_size=32, max_size=32), identifier=identifiers)
def test_sql_pseudonym_of_normalised_identifier_equals_python(key: bytes, identifier: str) -> None:
    sql = f"SELECT {normalise_sql('$m')}, {hmac_sql(normalise_sql('$m'))}"
    got = _CON.execute(sql, {**hmac_params(key), "m": identifier}).fetchone()
    assert got is not None
    assert got[0] == normalise(identifier)
    assert got[1] == pseudonym(key, identifier)


@settings(max_examples=200, deadline=None)
@given(identifier=st.from_regex(r"[A-Za-z0-9]{1,12}", fullmatch=True), pad=st.integers(0, 3))
def test_spelling_variants_of_one_identifier_share_a_pseudonym(identifier: str, pad: int) -> None:
    key = bytes(range(32))
    variant = " " * pad + identifier.lower() + " " * pad
    assert pseudonym(key, variant) == pseudonym(key, identifier.upper())


@settings(max_examples=100, deadline=None)
@given(a=st.binary(min_size=32, max_size=32), b=st.binary(min_size=32, max_size=32))
def test_different_keys_give_different_pseudonyms(a: bytes, b: bytes) -> None:
    if a != b:
        assert pseudonym(a, "P123456789") != pseudonym(b, "P123456789")


def test_the_pads_are_not_printed() -> None:
    params = hmac_params(bytes(range(32)))
    from tre.ingest.pseudonym import hmac_pads

    assert "secret" in repr(hmac_pads(bytes(range(32))))
    assert set(params) == {"hmac_inner", "hmac_outer"}
