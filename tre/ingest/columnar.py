"""The in-memory ingest path: people, row order, generalisation and Parquet with Arrow and NumPy.

Used when the extract fits the in-memory budget (`IngestOptions.in_memory_limit`); larger
extracts take the DuckDB path in `pipeline`, whose sort spills to disk. Both publish the same
rows in the same order. Everything here is vectorised (Arrow compute, NumPy, DuckDB SQL over
Arrow); nothing loops over rows in Python.

- people: the privacy unit is dictionary-encoded (one entry per distinct raw identifier, and
  an index per row); DuckDB computes the HMAC once per entry with the same SQL as the table
  path; the pseudonyms are sorted (by their first 16 hex digits as an integer, exact on the
  full text when two of those tie) into `pord`, each person's position in pseudonym order.
  Spellings that normalise to one identifier get one pseudonym, hence one person.
- order: one sort of a 64-bit key per row, `pord` in the high bits and DuckDB's
  `hash(position, seed)` in the low bits (exactly (pord, hash) when truncated keys tie), gives
  the published order; `_tre_rank` is a row's position minus the rows of the people before.
  Rows within the contribution limit come first, then the rows beyond it.
- columns: every other column is dictionary-encoded; a generalisation rule runs in DuckDB
  once per distinct value (the same SQL as the table path), so a published column is a
  dictionary's indices gathered in published order. The indices are also the codes the
  ingest report groups by.
- write: pyarrow writes row group by row group (gathering each group as it goes), several
  file sequences at once; the report is computed meanwhile.
"""

from __future__ import annotations

import itertools
import re
import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tre.catalog.manifest import sha256_file
from tre.catalog.policy import RANK_COLUMN, DatasetPolicy, RareToOtherRule
from tre.errors import InternalError
from tre.ingest.generalise import rare_to_other_sql, rule_sql
from tre.ingest.pseudonym import hmac_params, hmac_sql, normalise_sql
from tre.ingest.report import distinct_pair_counts

# A dictionary larger than this is gathered to plain values before writing: the Parquet writer
# would insert the whole dictionary into every row group's dictionary page.
MAX_WRITE_DICTIONARY = 65_536
_HEX_WIDTH = 64  # a pseudonym: lower-case hex of HMAC-SHA256

# Peak memory of this path per byte of (uncompressed) extract: 2.8 measured on the synthetic
# health extract (3.3 GiB for 1.25 GB of CSV at 10M rows), rounded up.
MEMORY_PER_EXTRACT_BYTE = 3.0


def parse_size(text: str) -> int:
    """Bytes in a size like `512MB`, `300KB`, `4GB` or `2GiB` (DuckDB's spelling: kB = 1000)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(i?)[bB]?\s*", text)
    if m is None:
        raise ValueError(f"not a size: {text!r}")
    number, unit, binary = m.groups()
    base = 1024 if binary else 1000
    power = " KMGT".index(unit.upper()) if unit else 0
    return int(float(number) * base**power)


def extract_bytes(path: Path, fmt: str) -> int:
    """About how many bytes the extract holds uncompressed (gzip: from its size trailer)."""
    size = path.stat().st_size
    try:
        if fmt == "parquet":
            meta = pq.ParquetFile(path).metadata
            groups = range(meta.num_row_groups)
            return max(size, sum(meta.row_group(i).total_byte_size for i in groups))
        if path.name.lower().endswith(".gz"):
            with path.open("rb") as f:
                f.seek(-4, 2)
                (isize,) = struct.unpack("<I", f.read(4))
            # ISIZE is the size modulo 4 GiB: never trust it below a typical compression ratio.
            return max(isize, 4 * size)
    except (pa.ArrowException, OSError, struct.error):
        pass  # not readable as such: the load says so, naming the file
    return size


def fits_in_memory(path: Path, fmt: str, limit: str | None) -> bool:
    """True when the in-memory path's estimated peak for this extract is within `limit`."""
    if not limit:
        return False
    return extract_bytes(path, fmt) * MEMORY_PER_EXTRACT_BYTE <= parse_size(limit)


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> Iterator[None]:
    """`table` visible to SQL on `con` as `name` for the duration of the block."""
    con.complete()  # a result left open by execute() would refuse the registration
    con.register(name, table)
    try:
        yield
    finally:
        con.complete()
        con.unregister(name)


@contextmanager
def arrow_memory_pool() -> Iterator[None]:
    """Arrow allocations in jemalloc (else the system allocator) for the block.

    pyarrow's default, mimalloc, hands freed pages back to the kernel at once, so the many
    large short-lived arrays of an ingest are faulted in again and again: about 2.5 s of
    kernel time at 10M rows. The pool is process-wide; the previous one is restored after.
    """
    previous = pa.default_memory_pool()
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:
        pool = pa.system_memory_pool()
    pa.set_memory_pool(pool)
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


# --- people ----------------------------------------------------------------------------------


@dataclass
class People:
    """The people of an extract, numbered 0.. in pseudonym order (`pord`)."""

    pids: pa.Array  # pseudonyms, one per distinct raw identifier
    entry: np.ndarray  # by pord: the index in `pids` of the person's pseudonym
    counts: np.ndarray  # rows per person, by pord
    pord: np.ndarray  # per raw row: its person's pord

    @property
    def count(self) -> int:
        """How many people."""
        return len(self.counts)


def encode(column: pa.ChunkedArray | pa.Array) -> pa.DictionaryArray:
    """The column as one dictionary array (distinct values, and an index per row)."""
    if isinstance(column, pa.Array):
        column = pa.chunked_array([column])
    if pa.types.is_dictionary(column.type):
        return _one_dictionary(column.unify_dictionaries())
    # Chunk by chunk with one memo table (cheaper than encoding the concatenated column):
    # every chunk's indices refer to the same, final dictionary.
    out = pc.dictionary_encode(column)
    assert isinstance(out, pa.ChunkedArray)
    return _one_dictionary(out)


def _one_dictionary(chunks: pa.ChunkedArray) -> pa.DictionaryArray:
    """Concatenate dictionary chunks that all share one dictionary (else unify them first)."""
    if chunks.num_chunks == 0:
        return pa.DictionaryArray.from_arrays(
            pa.array([], type=chunks.type.index_type), pa.array([], type=chunks.type.value_type)
        )
    last = chunks.chunk(chunks.num_chunks - 1).dictionary
    if not all(_same_array(c.dictionary, last) for c in chunks.chunks):
        chunks = chunks.unify_dictionaries()
        last = chunks.chunk(chunks.num_chunks - 1).dictionary
    indices = pa.concat_arrays([c.indices for c in chunks.chunks])
    return pa.DictionaryArray.from_arrays(indices, last)


def _same_array(a: pa.Array, b: pa.Array) -> bool:
    """True when `a` and `b` are the same values in memory (same buffers, offset, length)."""
    if len(a) != len(b) or a.offset != b.offset or a.type != b.type:
        return False
    ours, theirs = a.buffers(), b.buffers()
    return all(
        (x is None and y is None) or (x is not None and y is not None and x.address == y.address)
        for x, y in zip(ours, theirs, strict=True)
    )


def _single(table: pa.Table, name: str) -> pa.Array:
    return table.column(name).combine_chunks()


def pseudonyms(con: duckdb.DuckDBPyConnection, values: pa.Array, key: bytes) -> pa.Table:
    """`pid` (hex HMAC of each normalised value) and `w0` (its first 8 bytes), in input order."""
    with registered(con, "_tre_values", pa.table({"raw_id": values})):
        return con.sql(
            f"SELECT pid, unhex(left(pid, 16)) AS w0 FROM "
            f"(SELECT {hmac_sql(normalise_sql('raw_id'))} AS pid FROM _tre_values)",
            params=hmac_params(key),
        ).to_arrow_table()


def _fixed_width(arr: pa.Array, width: int) -> np.ndarray:
    """The values of a string/binary array whose values all have `width` bytes, as (n, width)."""
    n = len(arr)
    if arr.null_count:
        raise InternalError("fixed-width values expected without nulls")
    wide = pa.types.is_large_binary(arr.type) or pa.types.is_large_string(arr.type)
    offset_type = np.int64 if wide else np.int32
    offsets = np.frombuffer(arr.buffers()[1], dtype=offset_type)[arr.offset : arr.offset + n + 1]
    if n and not np.all(np.diff(offsets) == width):
        raise InternalError("values of unexpected width")
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)
    start = int(offsets[0]) if n else 0
    return data[start : start + n * width].reshape(n, width)


def people(con: duckdb.DuckDBPyConnection, enc: pa.DictionaryArray, key: bytes) -> People:
    """Pseudonymise the privacy unit (dictionary-encoded) and number the people in
    pseudonym order."""
    if enc.null_count:
        raise InternalError("the privacy unit has nulls after the checks")
    hashed = pseudonyms(con, enc.dictionary, key)
    pids = _single(hashed, "pid")
    w0 = _fixed_width(_single(hashed, "w0"), 8).view(">u8").ravel()
    order = np.argsort(w0)  # ties are resolved below, on the full text
    w0_sorted = w0[order]
    if np.any(w0_sorted[1:] == w0_sorted[:-1]):
        # Spellings that normalise alike (one person), or two pseudonyms sharing 64 bits:
        # order on the full text and merge equal pseudonyms.
        order = pc.sort_indices(pids).to_numpy()
        ordered = pids.take(pa.array(order))
        new = np.ones(len(order), dtype=bool)
        new[1:] = pc.not_equal(ordered[1:], ordered[:-1]).to_numpy(zero_copy_only=False)
    else:
        new = np.ones(len(order), dtype=bool)
    person_of_sorted = np.cumsum(new) - 1
    pord_of_entry = np.empty(len(order), dtype=np.int64)
    pord_of_entry[order] = person_of_sorted
    pord = pord_of_entry[enc.indices.to_numpy()]
    entry = order[new]
    counts = np.bincount(pord, minlength=len(entry))
    return People(pids, entry, counts, pord)


# --- order -----------------------------------------------------------------------------------


@dataclass
class Order:
    """The published order: rows within the contribution limit first, then the others.

    `perm`, `pord` and `rank` are in (person, hash) order; `published` lists their positions
    in published order (None: the same order, nobody has rows beyond the limit).
    """

    perm: np.ndarray  # raw row index, in (person, hash) order
    pord: np.ndarray  # the row's person
    rank: np.ndarray  # the row's `_tre_rank`
    published: np.ndarray | None
    within: int  # published rows within the limit (they come first)

    def __len__(self) -> int:
        return len(self.perm)

    def rows(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(raw row, person, rank) of published rows lo..hi."""
        if self.published is None:
            return self.perm[lo:hi], self.pord[lo:hi], self.rank[lo:hi]
        at = self.published[lo:hi]
        return self.perm[at], self.pord[at], self.rank[at]


def row_order(con: duckdb.DuckDBPyConnection, persons: People, seed: int, limit: int) -> Order:
    """Sort rows by (pord, hash(position, seed)); rank them within their person."""
    n = len(persons.pord)
    con.complete()
    (h,) = (
        con.execute("SELECT hash(range, $seed) AS h FROM range($n)", {"seed": seed, "n": n})
        .fetchnumpy()
        .values()
    )
    h = np.asarray(h, dtype=np.uint64)
    bits = max(1, (persons.count - 1).bit_length())
    pord = persons.pord
    key = np.right_shift(h, np.uint64(bits))
    key |= np.left_shift(pord.view(np.uint64), np.uint64(64 - bits))
    perm = np.argsort(key)
    sorted_key = key[perm]
    del key
    if np.any(sorted_key[1:] == sorted_key[:-1]):
        # Two rows of one person share the hash's high bits: sort on the whole hash.
        perm = np.lexsort((h, pord))
        pord_sorted = pord[perm]
    else:
        sorted_key >>= np.uint64(64 - bits)
        pord_sorted = sorted_key.view(np.int64)
    del sorted_key, h
    before = np.cumsum(persons.counts) - persons.counts
    rank = np.arange(n, dtype=np.int64)
    rank -= before[pord_sorted]
    rank += 1
    beyond = rank > limit
    over = int(np.count_nonzero(beyond))
    published = None
    if over:
        published = np.concatenate([np.flatnonzero(~beyond), np.flatnonzero(beyond)])
    return Order(perm, pord_sorted, rank, published, n - over)


# --- columns ---------------------------------------------------------------------------------


@dataclass
class OutColumn:
    """A published column in raw row order; `codes` for the report when it is one."""

    name: str
    values: pa.Array  # dictionary-encoded (or plain) values, one per raw row
    dense: bool = False  # gather the dictionary's values before writing

    def take(self, rows: pa.Array) -> pa.Array:
        """The values of `rows` (raw row indices), as written."""
        if self.dense and isinstance(self.values, pa.DictionaryArray):
            return self.values.dictionary.take(self.values.indices.take(rows))
        return self.values.take(rows)

    def codes(self) -> tuple[np.ndarray, int]:
        """An integer per row, equal for equal values (null included), and the number of codes."""
        enc = self.values if pa.types.is_dictionary(self.values.type) else encode(self.values)
        assert isinstance(enc, pa.DictionaryArray)
        indices = enc.indices
        if indices.null_count:
            indices = pc.fill_null(indices, -1)
        codes = indices.to_numpy(zero_copy_only=False).astype(np.int64) + 1
        return codes, len(enc.dictionary) + 1


def _map_dictionary(
    con: duckdb.DuckDBPyConnection, enc: pa.DictionaryArray, sql: Callable[[str], str]
) -> pa.DictionaryArray:
    """Apply a SQL expression of `v` to each distinct value; equal results share an entry."""
    with registered(con, "_tre_dictionary", pa.table({"v": enc.dictionary})):
        mapped = _single(
            con.sql(f"SELECT {sql('v')} AS g FROM _tre_dictionary").to_arrow_table(), "g"
        )
    again = encode(mapped)
    return pa.DictionaryArray.from_arrays(again.indices.take(enc.indices), again.dictionary)


def _rare_kept(enc: pa.DictionaryArray, persons: People, min_count: int) -> pa.Array:
    """The dictionary's values held by at least `min_count` people."""
    indices = enc.indices
    valid = indices.is_valid().to_numpy(zero_copy_only=False)
    codes = indices.to_numpy(zero_copy_only=False)[valid].astype(np.int64)
    people_per_value = distinct_pair_counts(persons.pord[valid], codes, len(enc.dictionary))
    return enc.dictionary.filter(pa.array(people_per_value >= min_count))


class Encodings:
    """Each column's dictionary encoding, computed once (possibly ahead, on a thread pool)."""

    def __init__(self, raw: pa.Table):
        self._raw: pa.Table | None = raw
        self._done: dict[str, Future[pa.DictionaryArray]] = {}
        self._lock = threading.Lock()

    def start(self, pool: Executor, names: Iterable[str]) -> None:
        """Encode `names` on `pool` from now on."""
        with self._lock:
            assert self._raw is not None
            for name in names:
                if name not in self._done:
                    self._done[name] = pool.submit(encode, self._raw.column(name))

    def started(self) -> set[str]:
        """The columns being (or already) encoded."""
        with self._lock:
            return set(self._done)

    def release(self) -> None:
        """Forget the raw table (encodings already made are kept)."""
        with self._lock:
            self._raw = None

    def get(self, name: str) -> pa.DictionaryArray:
        """The encoding of column `name` (waits for it, or computes it here)."""
        with self._lock:
            future = self._done.get(name)
            raw = self._raw
        if future is None:
            assert raw is not None
            return encode(raw.column(name))
        return future.result()


def encoded_columns(policy: DatasetPolicy) -> list[str]:
    """The raw columns `output_columns` dictionary-encodes (the privacy unit first)."""
    names = [policy.privacy_unit]
    for name, col in policy.columns.items():
        if policy.output_name(name) is None or name == policy.privacy_unit:
            continue
        rule = col.generalise
        if (
            col.column_class in ("person_identifier", "quasi_identifier")
            or rule is not None
            or col.type in ("string", "category")
        ):
            names.append(name)
    return names


def output_columns(
    con: duckdb.DuckDBPyConnection,
    raw: pa.Table,
    policy: DatasetPolicy,
    persons: Callable[[], People],
    key: bytes,
    encodings: Encodings,
) -> list[OutColumn]:
    """Every published column but the pseudonym and the rank, in policy order.

    `persons` gives the people (waiting for them): only rare-category rules need them.
    """
    out: list[OutColumn] = []
    for name, col in policy.columns.items():
        out_name = policy.output_name(name)
        if out_name is None or name == policy.privacy_unit:
            continue
        rule = col.generalise
        if name not in encoded_columns(policy):
            out.append(OutColumn(out_name, raw.column(name).combine_chunks()))
            continue
        enc = encodings.get(name)
        if col.column_class == "person_identifier":
            pids = _single(pseudonyms(con, enc.dictionary, key), "pid")
            values = pa.DictionaryArray.from_arrays(enc.indices, pids)
            out.append(OutColumn(out_name, values, dense=True))
            continue
        if isinstance(rule, RareToOtherRule):
            keep = pa.table({"v": _rare_kept(enc, persons(), rule.min_count)})
            with registered(con, "_tre_keep", keep):
                values = _map_dictionary(
                    con, enc, partial(rare_to_other_sql, rule=rule, keep_table="_tre_keep")
                )
        elif rule is not None and rule.rule != "keep":
            values = _map_dictionary(con, enc, partial(rule_sql, rule=rule))
        else:
            values = enc
        out.append(OutColumn(out_name, values, dense=len(values.dictionary) > MAX_WRITE_DICTIONARY))
    return out


# --- write -----------------------------------------------------------------------------------


def _pid_dictionary(persons: People, pord: np.ndarray) -> pa.DictionaryArray:
    """The pseudonyms of the people `pord` (non-decreasing), as indices into a dictionary of
    just those people: the writer then writes each pseudonym once per row group."""
    first = np.ones(len(pord), dtype=bool)
    np.not_equal(pord[1:], pord[:-1], out=first[1:])
    indices = np.cumsum(first, dtype=np.int32) - 1
    dictionary = persons.pids.take(pa.array(persons.entry[pord[first]]))
    return pa.DictionaryArray.from_arrays(pa.array(indices), dictionary)


@dataclass(frozen=True)
class WriteSettings:
    """Parquet layout of the written files."""

    row_group_size: int
    file_size: int
    compression: str
    compression_level: int | None


def write_segment(
    folder: Path,
    start: int,
    stop: int,
    order: Order,
    persons: People,
    pid_name: str,
    columns: list[OutColumn],
    settings: WriteSettings,
    done: Callable[[int], None],
) -> dict[Path, str]:
    """Write published rows start..stop to `folder/data_<i>.parquet`, one row group at a time.

    A new file starts once one reaches about `file_size` bytes. Dictionary encoding is off for
    floating-point columns (nearly every value differs: the writer would try, then give up).
    Returns each file's sha256, computed as soon as it is closed.
    """
    folder.mkdir(mode=0o700)
    names = [pid_name, *(c.name for c in columns), RANK_COLUMN]
    writer: pq.ParquetWriter | None = None
    sink: pa.NativeFile | None = None
    path = folder
    hashes: dict[Path, str] = {}
    try:
        for lo in range(start, stop, settings.row_group_size):
            hi = min(lo + settings.row_group_size, stop)
            raw_rows, pord, rank = order.rows(lo, hi)
            rows = pa.array(raw_rows)
            arrays = [
                _pid_dictionary(persons, pord),
                *(c.take(rows) for c in columns),
                pa.array(rank),
            ]
            table = pa.Table.from_arrays(arrays, names=names)
            if writer is None:
                path = folder / f"data_{len(hashes)}.parquet"
                hashes[path] = ""
                sink = pa.OSFile(str(path), "wb")
                writer = pq.ParquetWriter(
                    sink,
                    table.schema,
                    compression=settings.compression,
                    compression_level=settings.compression_level,
                    use_dictionary=[
                        f.name for f in table.schema if not pa.types.is_floating(f.type)
                    ],
                    # Min/max of the pseudonym (files are sorted by it), the rank (the manifest
                    # reads it) and plain columns; dictionary-encoded text spans its whole
                    # range in every row group (rows are in pseudonym order), and computing
                    # its statistics cost a quarter of the write.
                    write_statistics=[
                        f.name
                        for f in table.schema
                        if f.name in (pid_name, RANK_COLUMN) or not pa.types.is_dictionary(f.type)
                    ],
                    # Room for a row group of distinct pseudonyms in one dictionary page.
                    dictionary_pagesize_limit=max(
                        1 << 20, (_HEX_WIDTH + 8) * settings.row_group_size
                    ),
                    store_schema=False,
                )
            writer.write_table(table, row_group_size=settings.row_group_size)
            done(hi - lo)
            assert sink is not None
            if sink.tell() >= settings.file_size:
                writer.close()
                sink.close()
                writer = sink = None
                hashes[path] = sha256_file(path)
    finally:
        if writer is not None:
            writer.close()
        if sink is not None:
            sink.close()
    if hashes and not hashes[path]:
        hashes[path] = sha256_file(path)
    return hashes


def segments(order: Order, row_group_size: int, writers: int) -> list[tuple[int, int]]:
    """Ranges of published rows written in parallel, in order: the rows within the limit in
    up to `writers` pieces (whole row groups, only when each gets several), then the rest."""
    groups = -(-order.within // row_group_size)
    pieces = max(1, min(writers, groups // 4))
    bounds = [0]
    for i in range(1, pieces):
        bounds.append(min(order.within, (groups * i // pieces) * row_group_size))
    bounds.append(order.within)
    out = [(lo, hi) for lo, hi in itertools.pairwise(bounds) if hi > lo]
    if len(order) > order.within:
        out.append((order.within, len(order)))
    return out


def write_all(
    out_dir: Path,
    order: Order,
    persons: People,
    pid_name: str,
    columns: list[OutColumn],
    settings: WriteSettings,
    pool: Executor,
    writers: int,
    done: Callable[[int], None],
) -> list[tuple[Path, Future[dict[Path, str]]]]:
    """Start writing every segment on `pool`; returns (folder, future) pairs in file order."""
    out = []
    for i, (lo, hi) in enumerate(segments(order, settings.row_group_size, writers)):
        folder = out_dir / f"seg-{i:03d}"
        fut = pool.submit(
            write_segment, folder, lo, hi, order, persons, pid_name, columns, settings, done
        )
        out.append((folder, fut))
    return out
