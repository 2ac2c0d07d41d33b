"""InfluxDB line protocol for readings and taps (CONTRACT.md "InfluxDB"), time in microseconds.

Tags are topic segments or ids validated as segments, so they never need escaping;
string field values are escaped.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.sensors.base import Value


def string_field(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def tag_value(s: str) -> str:
    return s.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def to_us(ts: float) -> int:
    return round(ts * 1_000_000)


def reading_line(
    measurement: str,
    tags: str,
    fields: Mapping[str, Value],
    flags: frozenset[str],
    ts: float,
) -> str:
    """One point. ``tags`` is the prebuilt ``,k=v`` tag string; flags become boolean fields."""
    body = ",".join([f"{k}={'true' if v is True else 'false' if v is False else repr(v)}" for k, v in fields.items()])
    if flags:
        body += "".join(f",{f}=true" for f in sorted(flags))
    return f"{measurement}{tags} {body} {round(ts * 1_000_000)}"


def device_tags(site: str, device: str, asset: str | None, category: str | None) -> str:
    tags = f",site={site},device={device}"
    if asset:
        tags += f",asset={asset}"
    if category:
        tags += f",category={category}"
    return tags


def tap_line(site: str, reader: str, checkpoint: str | None, tag: str, badge: str | None, ts: float) -> str:
    tags = f",site={site},reader={reader}"
    if checkpoint:
        tags += f",checkpoint={tag_value(checkpoint)}"
    fields = f"tag={string_field(tag)}"
    if badge:
        fields += f",badge={string_field(badge)}"
    return f"checkpoint_tap{tags} {fields} {to_us(ts)}"


def asset_state_line(site: str, asset: str, category: str, state: str, faults: str, ts: float) -> str:
    """The ledger as InfluxDB sees it (CONTRACT.md ``asset_state``)."""
    return (f"asset_state,site={site},asset={asset},category={category} intact={int(state == 'intact')}i,"
            f"state={string_field(state)},fault={string_field(faults)} {to_us(ts)}")
