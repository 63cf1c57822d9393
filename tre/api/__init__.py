"""tre.api: the HTTP API (FastAPI) over governance, the ledger, the catalogue and the audit log.

`create_app(settings)` builds an app; routes are thin: they authenticate the caller, check
names against the catalogue, and call governance service functions inside one
`Database.transaction()` each. See docs/api.md.
"""

from tre.api.app import create_app

__all__ = ["create_app"]
