"""Output requests from a notebook: gather tables and figures with context, submit, follow, download.

Nothing leaves tre without two independent output checkers' approval: these calls only put
items into a request and send it to review (the API's `/outputs` routes; a project token
reaches the researcher's side of its own project's requests).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from tre.client.errors import TREClientError
from tre.wire.outputs import OutputRequestOut

if TYPE_CHECKING:
    from tre.client.session import Client


def _figure_png(figure: Any) -> bytes:
    fig = getattr(figure, "figure", figure)  # an Axes has .figure; a Figure is its own
    if not hasattr(fig, "savefig"):
        raise TREClientError(
            "a figure must be a matplotlib Figure or Axes (or a path to a PNG file)",
            reason="invalid_input",
            status=0,
            hint="Pass the Axes tre.plot returned, or plt.gcf().",
        )
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    return buf.getvalue()


class OutputRequests:
    """The output-request calls of one `Client` (`client.outputs`)."""

    def __init__(self, client: Client):
        self._c = client

    def _model(self, data: Any) -> OutputRequestOut:
        return OutputRequestOut.model_validate(data)

    def create(self, title: str, *, preset: str | None = None) -> OutputRequestOut:
        """Start a draft request in this token's project."""
        body: dict[str, Any] = {"project_id": self._c.project_id, "title": title}
        if preset:
            body["preset"] = preset
        return self._model(self._c._request("POST", "/outputs", json=body))

    def list(self) -> list[OutputRequestOut]:
        """This project's requests you may see, newest first."""
        return [self._model(r) for r in self._c._request("GET", "/outputs")]

    def status(self, request_id: int) -> OutputRequestOut:
        """One request: state, automatic check results per item, reviews (blind until both in)."""
        return self._model(self._c._request("GET", f"/outputs/{request_id}"))

    def add_table(
        self,
        request_id: int,
        name: str,
        table: pl.DataFrame | str,
        *,
        context: str,
        exception: str | None = None,
        count_column: str | None = None,
        replace: bool = False,
    ) -> OutputRequestOut:
        """Add a table: a query id (kept with its provenance: SQL, plan, dataset versions) or a
        DataFrame (uploaded as CSV; the checkers see only what you computed from tre answers)."""
        if isinstance(table, str):
            answer = self._c.answer(table)
            body: dict[str, Any] = {
                "name": name,
                "result": answer,
                "context": context,
                "replace": replace,
            }
            if exception:
                body["exception"] = exception
            if count_column:
                body["count_column"] = count_column
            out = self._c._request("POST", f"/outputs/{request_id}/items/query-result", json=body)
            return self._model(out)
        if not isinstance(table, pl.DataFrame):
            raise TREClientError(
                "a table is a query id (tre.last().query_id) or a polars DataFrame",
                reason="invalid_input",
                status=0,
                hint="Use df = tre.query(...); then add_table(request_id, 'name.csv', df, ...).",
            )
        filename = name if Path(name).suffix else f"{name}.csv"
        return self._upload(
            request_id,
            filename,
            table.write_csv().encode("utf-8"),
            kind="table",
            context=context,
            exception=exception,
            count_column=count_column,
            replace=replace,
        )

    def add_figure(
        self,
        request_id: int,
        name: str,
        figure: Any,
        *,
        context: str,
        underlying: str | None = None,
        exception: str | None = None,
        replace: bool = False,
    ) -> OutputRequestOut:
        """Add a figure (a matplotlib Figure/Axes, saved as PNG, or a PNG file's path); name the
        table item it was drawn from in `underlying` so checkers can check the numbers."""
        if isinstance(figure, str | Path):
            content = Path(figure).read_bytes()
        else:
            content = _figure_png(figure)
        filename = name if Path(name).suffix else f"{name}.png"
        return self._upload(
            request_id,
            filename,
            content,
            kind="figure",
            context=context,
            exception=exception,
            underlying=underlying,
            replace=replace,
        )

    def add_context(
        self, request_id: int, item: str, context: str, *, exception: str | None = None
    ) -> OutputRequestOut:
        """Change an item's context (and exception request); an edit restarts the review round."""
        body: dict[str, Any] = {"context": context}
        if exception is not None:
            body["exception"] = exception
        return self._model(
            self._c._request("PATCH", f"/outputs/{request_id}/items/{item}", json=body)
        )

    def submit(self, request_id: int) -> OutputRequestOut:
        """Send the request to the output checkers."""
        return self._model(self._c._request("POST", f"/outputs/{request_id}/submit"))

    def withdraw(self, request_id: int) -> OutputRequestOut:
        """Take the request back (not once released or rejected)."""
        return self._model(self._c._request("POST", f"/outputs/{request_id}/withdraw"))

    def download(self, request_id: int, folder: str | Path = ".") -> Path:
        """Save the released bundle (zip) into `folder`; returns its path."""
        data, headers = self._c._download(f"/outputs/{request_id}/bundle")
        disposition = headers.get("content-disposition", "")
        filename = (
            disposition.split("filename=")[-1].strip('"') if "filename=" in disposition else ""
        )
        path = Path(folder) / (Path(filename).name or f"output-{request_id}.zip")
        path.write_bytes(data)
        return path

    def _upload(
        self, request_id: int, filename: str, content: bytes, *, kind: str, **fields: Any
    ) -> OutputRequestOut:
        form = {
            k: ("true" if v is True else "false" if v is False else str(v))
            for k, v in {"kind": kind, **fields}.items()
            if v is not None
        }
        out = self._c._request(
            "POST",
            f"/outputs/{request_id}/items",
            data=form,
            files={"file": (filename, content)},
        )
        return self._model(out)
