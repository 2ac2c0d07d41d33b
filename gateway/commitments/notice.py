"""The monthly report as the owners see it: a public notice (物业服务承诺公示), printable on A4,
and the same figures as CSV. Chinese by default, English on request; no external assets.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

WORDS = {
    "zh": {"title": "物业服务承诺公示", "indicator": "承诺指标", "target": "承诺目标", "actual": "本月实际",
           "met": "是否达标", "change": "较上月", "why": "未达标说明", "yes": "达标", "no": "未达标",
           "none": "暂无数据", "computed": "计算时间", "frozen": "本月数据已于 {at} 锁定", "source":
           "数据来源：设施传感器、维修工单与巡查记录，由物业网关自动计算。", "month": "{y}年{m}月",
           "differs": "重新计算结果与已公示数据不同的指标：{ids}（以已公示数据为准）", "id": "编号",
           "numerator": "分子", "denominator": "分母"},
    "en": {"title": "Service commitments: monthly figures", "indicator": "Commitment", "target": "Target",
           "actual": "This month", "met": "Met", "change": "Since last month", "why": "Why not met",
           "yes": "met", "no": "not met", "none": "no data", "computed": "Computed", "frozen":
           "Figures frozen on {at}", "source": "Source: facility sensors, repair tickets and inspection records, "
           "computed by the site gateway.", "month": "{y}-{m:02d}",
           "differs": "A recomputation differs for: {ids} (the published figures stand)", "id": "id",
           "numerator": "Numerator", "denominator": "Denominator"},
}


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.2f}%".replace(".00%", "%")


def _change(value: float | None, before: float | None) -> str:
    if value is None or before is None:
        return "—"
    delta = (value - before) * 100
    return "±0" if abs(delta) < 0.005 else f"{delta:+.2f} pt"


def _count(x: float) -> str:
    """A numerator or denominator in full (asset-seconds run to millions: never ``2.59e+06``)."""
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.3f}".rstrip("0").rstrip(".")


def _local(at: float, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(at, tz).strftime("%Y-%m-%d %H:%M")


def rows(report: Mapping[str, Any], lang: str = "zh") -> list[dict[str, str]]:
    """One row per indicator, in the words of ``lang``."""
    w = WORDS[lang]
    before = {r["id"]: r["value"] for r in report.get("previous") or []}
    out = []
    for r in report["results"]:
        sign = "≥" if r["direction"] == ">=" else "≤"
        met = w["none"] if r["met"] is None else w["yes"] if r["met"] else w["no"]
        out.append({"id": r["id"], "indicator": r[lang], "target": f"{sign} {pct(r['target'])}",
                    "actual": pct(r["value"]), "met": met, "change": _change(r["value"], before.get(r["id"])),
                    "why": "" if r["met"] is not False else r.get(f"why_{lang}", r.get("why_zh", "")),
                    "numerator": _count(r["num"]), "denominator": _count(r["den"])})
    return out


def to_csv(report: Mapping[str, Any], lang: str = "zh") -> str:
    buf = io.StringIO()
    fields = ["id", "indicator", "target", "actual", "met", "change", "numerator", "denominator", "why"]
    writer = csv.writer(buf)
    writer.writerow([WORDS[lang][f] for f in fields])  # the header in the report's language too
    writer.writerows([r[f] for f in fields] for r in rows(report, lang))
    return buf.getvalue()


def to_html(report: Mapping[str, Any], site_name: str, tz: ZoneInfo, lang: str = "zh") -> str:
    w = WORDS[lang]
    y, m = int(report["month"][:4]), int(report["month"][5:7])
    heading = f"{escape(site_name)} · {w['month'].format(y=y, m=m)}"
    body: list[str] = []
    for r in rows(report, lang):
        cls = "miss" if r["met"] == w["no"] else ""
        body.append(f'<tr class="{cls}"><td>{escape(r["indicator"])}</td><td>{escape(r["target"])}</td>'
                    f'<td>{escape(r["actual"])}</td><td>{escape(r["met"])}</td><td>{escape(r["change"])}</td>'
                    f'<td>{escape(r["why"])}</td></tr>')
    notes = [f"{w['computed']}: {_local(report['computed_at'], tz)}"]
    if report.get("frozen_at"):
        notes.append(w["frozen"].format(at=_local(report["frozen_at"], tz)))
    if report.get("differs"):
        notes.append(w["differs"].format(ids=", ".join(report["differs"])))
    notes.append(w["source"])
    head = "".join(f"<th>{w[k]}</th>" for k in ("indicator", "target", "actual", "met", "change", "why"))
    return f"""<!doctype html>
<html lang="{'zh-CN' if lang == 'zh' else 'en'}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{w['title']} · {heading}</title>
<style>
@page {{ size: A4; margin: 18mm 15mm; }}
body {{ font-family: "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", sans-serif;
       color: #111; max-width: 190mm; margin: 0 auto; padding: 8mm 0; }}
h1 {{ text-align: center; font-size: 20pt; margin: 0 0 2mm; letter-spacing: .1em; }}
h2 {{ text-align: center; font-size: 13pt; font-weight: normal; margin: 0 0 6mm; }}
table {{ width: 100%; border-collapse: collapse; font-size: 10.5pt; }}
th, td {{ border: 1px solid #444; padding: 2.2mm 2mm; vertical-align: top; }}
th {{ background: #eee; }}
td:nth-child(2), td:nth-child(3), td:nth-child(4), td:nth-child(5) {{ text-align: center; white-space: nowrap; }}
tr.miss td:nth-child(3), tr.miss td:nth-child(4) {{ color: #b00020; font-weight: bold; }}
.notes {{ font-size: 9pt; color: #333; margin-top: 5mm; line-height: 1.6; }}
@media print {{ body {{ padding: 0; }} }}
</style></head><body>
<h1>{w['title']}</h1>
<h2>{heading}</h2>
<table><thead><tr>{head}</tr></thead><tbody>
{chr(10).join(body)}
</tbody></table>
<div class="notes">{'<br>'.join(escape(n) for n in notes)}</div>
</body></html>
"""


def explain(results: Sequence[Mapping[str, Any]]) -> None:
    """Fill ``why_zh``/``why_en`` of each missed indicator from its evidence (in place)."""
    for r in results:
        if r["met"] is not False:
            continue
        ev = r.get("evidence") or []
        detail = r.get("detail") or {}
        if r["kind"] == "intact_rate":
            worst = detail.get("ranking") or []
            top = "、".join(f"{a}（{s / 3600:.1f} 小时）" for a, s in worst[:5])
            top_en = ", ".join(f"{a} ({s / 3600:.1f} h)" for a, s in worst[:5])
            r["why_zh"] = f"完好时间损失最多的设施：{top}" if top else "部分设施故障或监测中断"
            r["why_en"] = f"Most intact-time lost: {top_en}" if top_en else "assets faulty or unmonitored"
        elif ev:
            shown = ", ".join(f"#{t}" for t in ev[:10]) + (" …" if len(ev) > 10 else "")
            r["why_zh"] = f"{len(ev)} 张工单：{shown}"
            r["why_en"] = f"{len(ev)} tickets: {shown}"
        else:
            r["why_zh"] = r["why_en"] = ""
