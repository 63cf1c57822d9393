"""tre.query: researcher SQL → parse → validate → plan → execute → protect (see docs/query.md)."""
