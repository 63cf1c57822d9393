"""tre.privacy: the only package that imports OpenDP, and the durable privacy-budget ledger.

- `tre.privacy.ledger`: `Ledger` — per-dataset lifetime caps and per-(project, dataset)
  allowances in exact zCDP ρ and δ units; reserve → commit or release, atomic across processes
  on SQLite and PostgreSQL, every step audited (see docs/governance.md).
"""
