"""Stage 1, parse: researcher SQL text → one sqlglot statement, within size and depth limits."""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from tre.query.errors import QueryRefused

MAX_SQL_CHARS = 20_000
MAX_NODES = 2_000
MAX_DEPTH = 60

_ALLOWED = "one SELECT statement (optionally with WITH) that aggregates; see docs/query.md"


@dataclass(frozen=True)
class Parsed:
    """The researcher's SQL and its single parsed statement (never run as text)."""

    sql: str
    tree: exp.Expression


def _depth(node: exp.Expression) -> int:
    # Iterative, so that deep trees cannot exhaust the Python stack here.
    deepest = 0
    stack: list[tuple[exp.Expression, int]] = [(node, 1)]
    count = 0
    while stack:
        cur, d = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise QueryRefused(
                f"the query has more than {MAX_NODES} syntax elements",
                reason="query_too_large",
                hint="Split the question into smaller queries.",
            )
        deepest = max(deepest, d)
        for child in cur.iter_expressions():
            stack.append((child, d + 1))
    return deepest


def parse(sql: str) -> Parsed:
    """Parse exactly one statement; refuse oversized, deeply nested or unknown syntax."""
    if not isinstance(sql, str) or not sql.strip():
        raise QueryRefused("the query is empty", hint=f"Send {_ALLOWED}.")
    if len(sql) > MAX_SQL_CHARS:
        raise QueryRefused(
            f"the query is {len(sql)} characters long; at most {MAX_SQL_CHARS} are accepted",
            reason="query_too_large",
            hint="Shorten the query.",
        )
    if "\x00" in sql:
        raise QueryRefused("the query contains a NUL character", hint="Remove it.")
    try:
        statements = sqlglot.parse(sql, read="duckdb")
    except ParseError as exc:
        err = exc.errors[0] if exc.errors else {}
        raise QueryRefused(
            f"syntax error: {str(err.get('description') or 'invalid SQL')[:200]}",
            reason="syntax_error",
            line=err.get("line"),
            column=err.get("col"),
            snippet=str(err.get("highlight") or "")[:80] or None,
            hint=f"Send {_ALLOWED}.",
        ) from None
    except TokenError:
        raise QueryRefused(
            "syntax error: the SQL text could not be split into tokens "
            "(an unterminated string or comment?)",
            reason="syntax_error",
            hint=f"Send {_ALLOWED}.",
        ) from None
    except RecursionError:
        raise QueryRefused(
            "the query is nested too deeply",
            reason="query_too_large",
            hint="Flatten nested expressions or subqueries.",
        ) from None
    real = [s for s in statements if s is not None]
    if len(real) != 1:
        raise QueryRefused(
            f"the request holds {len(real)} statements; exactly one is accepted",
            reason="multiple_statements",
            hint=f"Send {_ALLOWED}, without `;` separating several.",
        )
    tree = real[0]
    if isinstance(tree, exp.Command) or not isinstance(tree, exp.Select):
        kind = tree.key.upper() if not isinstance(tree, exp.Command) else str(tree.this).upper()
        raise QueryRefused(
            f"{kind[:40]} statements are not allowed",
            reason="statement_not_allowed",
            hint=f"Send {_ALLOWED}.",
        )
    if _depth(tree) > MAX_DEPTH:
        raise QueryRefused(
            f"the query is nested more than {MAX_DEPTH} levels deep",
            reason="query_too_large",
            hint="Flatten nested expressions or subqueries.",
        )
    return Parsed(sql=sql, tree=tree)
