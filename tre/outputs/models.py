"""Control-plane tables of output requests: requests, their items and the checkers' reviews.

Files live on disk under `<data_root>/outputs/<request id>/` (see `tre.outputs.files`); the
tables hold their names, sizes and sha256 checksums, the automatic check reports and every
review. Reviews of earlier rounds are kept (a round starts at each submission).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tre.db import Base, UTCDateTime


class OutputRequest(Base):
    """A researcher's request to take outputs out of the TRE."""

    __tablename__ = "output_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("projects.id"), index=True)
    author_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    state: Mapped[str] = mapped_column(sa.String(20), index=True)
    preset: Mapped[str] = mapped_column(sa.String(64))
    round: Mapped[int] = mapped_column(sa.Integer, default=0)
    reviews_required: Mapped[int] = mapped_column(sa.Integer, default=2)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    released_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"), nullable=True)
    bundle_sha256: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)

    items: Mapped[list[OutputItem]] = relationship(
        back_populates="request", order_by="OutputItem.id", cascade="all, delete-orphan"
    )
    reviews: Mapped[list[OutputReview]] = relationship(
        back_populates="request", order_by="OutputReview.id"
    )


class OutputItem(Base):
    """One file (table, figure, model summary, text) of a request, with its check report."""

    __tablename__ = "output_items"
    __table_args__ = (sa.UniqueConstraint("request_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(sa.ForeignKey("output_requests.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(16))
    media: Mapped[str] = mapped_column(sa.String(16))
    size: Mapped[int] = mapped_column(sa.Integer)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    context: Mapped[str] = mapped_column(sa.Text)
    exception: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    underlying: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    provenance: Mapped[str | None] = mapped_column(sa.Text, nullable=True)  # JSON
    check_status: Mapped[str] = mapped_column(sa.String(10))
    check_report: Mapped[str] = mapped_column(sa.Text)  # JSON of CheckResult
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())

    request: Mapped[OutputRequest] = relationship(back_populates="items")


class OutputReview(Base):
    """One output checker's review of one submission round of a request."""

    __tablename__ = "output_reviews"
    __table_args__ = (sa.UniqueConstraint("request_id", "round", "reviewer_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(sa.ForeignKey("output_requests.id"), index=True)
    round: Mapped[int] = mapped_column(sa.Integer)
    reviewer_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decision: Mapped[str | None] = mapped_column(sa.String(10), nullable=True)
    comment: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    item_comments: Mapped[str | None] = mapped_column(sa.Text, nullable=True)  # JSON
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    request: Mapped[OutputRequest] = relationship(back_populates="reviews")
