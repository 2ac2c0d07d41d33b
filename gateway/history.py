"""Readings history for charts: InfluxQL on ``/query`` (CONTRACT.md), which InfluxDB 1.x, 2.x (its
v1-compatible API, the bucket as database) and 3.x all answer.

The query is built by :func:`readings_query` and its answer read by :func:`parse_points`, both
pure; :class:`History` is the thin HTTP adapter, with a connection pool of its own so that a
chart never waits behind the forwarder's writes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import urllib3

from gateway.config import InfluxSettings
from gateway.influx import http_to
from gateway.sensors.base import FieldSpec

MAX_POINTS = 500  # per chart: a phone draws this many without strain, and a day at 3-minute steps fits


class HistoryError(Exception):
    """InfluxDB could not answer (unreachable, refused): the API says so with a 503."""


def step_for(seconds: float, max_points: int = MAX_POINTS) -> int:
    """The grouping step (whole seconds, at least a minute) that keeps a span under ``max_points``."""
    return max(60, math.ceil(seconds / max_points))


def _ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def readings_query(measurement: str, asset: str, site: str, fields: Mapping[str, FieldSpec],
                   since: float, until: float, step_s: int) -> str:
    """One asset's readings of one kind, grouped by ``step_s``: the mean of each number, the last of
    each flag (InfluxQL has no mean of booleans). Names and values are quoted: an asset id is data."""
    selects = [f"{'last' if spec.type is bool else 'mean'}({_ident(name)}) AS {_ident(name)}"
               for name, spec in fields.items()]
    return (f"SELECT {', '.join(selects)} FROM {_ident(measurement)} "
            f"WHERE {_ident('asset')} = {_literal(asset)} AND {_ident('site')} = {_literal(site)} "
            f"AND time >= {int(since * 1e9)} AND time < {int(until * 1e9)} "
            f"GROUP BY time({step_s}s) fill(none)")


def parse_points(answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    """InfluxDB's JSON answer as points ``{"t": epoch seconds, field: value}``; an error in it raises."""
    points: list[dict[str, Any]] = []
    for result in answer.get("results", []):
        if "error" in result:
            raise HistoryError(f"InfluxDB refused the query: {result['error']}")
        for series in result.get("series", []):
            columns: Sequence[str] = series["columns"]
            for row in series.get("values", []):
                point = dict(zip(columns, row, strict=True))
                point["t"] = point.pop("time")
                points.append(point)
    if "error" in answer:
        raise HistoryError(f"InfluxDB refused the query: {answer['error']}")
    return points


class History:
    """Reads InfluxDB over HTTP (``epoch=s``: times come as seconds)."""

    def __init__(self, s: InfluxSettings) -> None:
        self.s = s
        self.http, self.headers = http_to(s, connections=2)

    def query(self, q: str) -> list[dict[str, Any]]:
        url = f"{self.s.url}/query?" + urlencode({"db": self.s.db, "q": q, "epoch": "s"})
        try:
            r = self.http.request("GET", url, headers=self.headers)
        except urllib3.exceptions.HTTPError as exc:
            raise HistoryError(f"InfluxDB at {self.s.url} did not answer: {exc}") from None
        try:
            answer = json.loads(r.data or b"{}")
        except ValueError:
            raise HistoryError(f"InfluxDB answered HTTP {r.status} without JSON") from None
        if r.status >= 300:
            raise HistoryError(f"InfluxDB answered HTTP {r.status}: {answer.get('error', '')}")
        return parse_points(answer)

    def close(self) -> None:
        self.http.clear()
