// An asset's recent readings as small charts, one per field (shared by the maintenance and assets pages).
import { api, el, fmtTime, lang, t } from "./common.js";
import { lineChart } from "./chart.js";

/** Charts of the last `hours` of readings of `asset`, in a new element. */
export async function readingsCharts(asset, hours = 24) {
  let data;
  try {
    data = await api(`/api/v1/assets/${encodeURIComponent(asset)}/readings?hours=${hours}`, { quiet: true });
  } catch (err) {
    return el("p", { class: "hint" }, err.status === 404 ? t("nodata") : err.message);
  }
  const points = data.points || [];
  if (!points.length) return el("p", { class: "hint" }, t("readings.none", { h: hours }));
  const charts = [];
  for (const f of (data.fields || []).slice(0, 6)) {
    const series = points.map((p) => {
      const v = p[f.name];
      return [p.t, typeof v === "boolean" ? Number(v) : (typeof v === "number" ? v : null)];
    });
    const bool = f.type === "bool" || points.some((p) => typeof p[f.name] === "boolean");
    if (!series.some((p) => p[1] !== null)) continue;
    charts.push(el("figure", { class: "chart-card", "data-field": f.name },
      el("figcaption", {}, t(`field.${f.name}`) !== `field.${f.name}` ? t(`field.${f.name}`) : f.name,
        f.doc && lang() === "en" ? el("small", {}, f.doc) : null),
      lineChart(series, { title: f.name, step: bool, yMin: bool ? 0 : undefined, yMax: bool ? 1 : undefined,
        xLabel: (x) => fmtTime(x), yLabel: bool ? (y) => (y ? "1" : "0") : undefined })));
  }
  return charts.length ? el("div", { class: "charts" }, charts) : el("p", { class: "hint" }, t("readings.none", { h: hours }));
}
