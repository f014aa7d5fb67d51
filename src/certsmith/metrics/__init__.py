"""Prometheus metrics of certsmith: ``GET /metrics``, computed from the database at scrape time."""

from __future__ import annotations

from .exposition import CONTENT_TYPE
from .requests import ApiRequests
from .scrape import Metrics

__all__ = ["CONTENT_TYPE", "ApiRequests", "Metrics"]
