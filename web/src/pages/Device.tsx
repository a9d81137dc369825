import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import type uPlot from "uplot";
import { Alarm, ApiError, Prediction, api, openStream, qs } from "../api";
import { Chart } from "../components/Chart";
import { ago, num, pct, when } from "../format";

type Device = { id: string; name: string; profile: string; tags: Record<string, string>; state: string; created: string; last_seen: string | null };
type Metric = { name: string; type: string };
type Columns = { ts: number[]; value: (number | boolean | string | null)[] };
type Quality = { devices: { contract_version: number; conformance_rate: number | null; messages: number; rejected: number; out_of_range_share: number | null; late_share: number | null; silent: boolean }[] };
type Calibration = { metric: string; gain: number; offset: number; version?: number; id?: number; valid_from?: string; reason?: string };
type Lineage = { messages: { id: string; received: string; transport: string; decoder: string; contract_version: number; calibrations: number[]; sha256: string; series_tags: Record<string, string>; samples: number; flagged: number; bytes: number }[] };

const RANGES: [string, number][] = [["15 min", 15 * 60e3], ["1 h", 3600e3], ["24 h", 86400e3], ["7 d", 7 * 86400e3], ["30 d", 30 * 86400e3]];
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];
// About one point per pixel column: longer ranges are read as averages over steps (the
// engine answers those from its rollups), shorter ones as every sample.
const MAX_POINTS = 1500;

function stepFor(rangeMs: number): string | null {
  const s = rangeMs / 1000 / MAX_POINTS;
  if (rangeMs <= 3600e3) return null;
  for (const [sec, name] of [[60, "1m"], [300, "5m"], [900, "15m"], [1800, "30m"], [3600, "1h"]] as [number, string][]) if (s <= sec) return name;
  return "6h";
}

function toAligned(c: Columns): uPlot.AlignedData {
  const xs = new Float64Array(c.ts.length);
  const ys: (number | null)[] = new Array(c.ts.length);
  for (let i = 0; i < c.ts.length; i++) {
    xs[i] = c.ts[i] / 1000;
    const v = c.value[i];
    ys[i] = typeof v === "number" ? v : typeof v === "boolean" ? (v ? 1 : 0) : null;
  }
  return [xs as unknown as number[], ys];
}

export function DevicePage(props: { id: string }) {
  const id = props.id;
  const params = new URLSearchParams(location.hash.split("?")[1] ?? "");
  const [device, setDevice] = useState<Device | null>(null);
  const [error, setError] = useState("");
  const [metrics, setMetrics] = useState<Metric[]>([]);
  const [range, setRange] = useState(RANGES.find((r) => r[0] === params.get("range"))?.[1] ?? 3600e3);
  const [everyPoint, setEveryPoint] = useState(params.get("raw") === "1");
  const [series, setSeries] = useState<Record<string, uPlot.AlignedData>>({});
  const [predictions, setPredictions] = useState<Prediction[]>([]);
  const [alarms, setAlarms] = useState<Alarm[]>([]);
  const [quality, setQuality] = useState<Quality["devices"][0] | null>(null);
  const [contract, setContract] = useState<number | null>(null);
  const [calibrations, setCalibrations] = useState<Calibration[]>([]);
  const [lineage, setLineage] = useState<Lineage["messages"]>([]);
  const [lineageMetric, setLineageMetric] = useState("");
  const [live, setLive] = useState(false);
  const [liveSamples, setLiveSamples] = useState(0);
  const buffers = useRef<Record<string, { xs: number[]; ys: (number | null)[] }>>({});

  useEffect(() => {
    setError("");
    api.get<Device>(`/api/v1/devices/${encodeURIComponent(id)}`).then((d) => {
      setDevice(d);
      // The contract its readings are checked against now: its profile's latest version.
      api.get<{ contracts: { profile: string; version: number }[] }>("/api/v1/contracts")
        .then((c) => setContract(c.contracts.find((x) => x.profile === d.profile)?.version ?? null), () => setContract(null));
    }, (e: ApiError) => setError(e.message));
    api.get<{ metrics: Metric[] }>(`/api/v1/devices/${encodeURIComponent(id)}/metrics`).then((r) => setMetrics(r.metrics), () => {});
    api.get<{ predictions: Prediction[] }>(`/api/v1/devices/${encodeURIComponent(id)}/predictions`).then((r) => setPredictions(r.predictions), () => setPredictions([]));
    api.get<Quality>(`/api/v1/quality${qs({ device: id })}`).then((r) => setQuality(r.devices[0] ?? null), () => {});
    api.get<{ calibrations: Calibration[] }>(`/api/v1/devices/${encodeURIComponent(id)}/calibrations`).then((r) => setCalibrations(r.calibrations), () => {});
    const loadAlarms = () => api.get<{ alarms: Alarm[] }>(`/api/v1/alarms${qs({ device: id, limit: 50 })}`).then((r) => setAlarms(r.alarms), () => {});
    loadAlarms();
    // Its samples as they are stored, and its alarm events.
    const close = openStream({ device: id, samples: "true" }, (e) => {
      if (e.event === "samples") {
        for (const s of e.samples as { metric: string; ts: number; value: unknown }[]) {
          const b = (buffers.current[s.metric] ??= { xs: [], ys: [] });
          b.xs.push(s.ts / 1000);
          b.ys.push(typeof s.value === "number" ? s.value : typeof s.value === "boolean" ? (s.value ? 1 : 0) : null);
        }
        setLiveSamples((n) => n + (e.samples as unknown[]).length);
      } else if (e.event.startsWith("alarm.")) {
        loadAlarms();
      }
    }, setLive);
    return close;
  }, [id]);

  const numeric = useMemo(() => metrics.filter((m) => m.type === "float" || m.type === "int" || m.type === "bool"), [metrics]);

  // Averaged ranges are read again each minute instead: a raw tail on averages would mislead.
  const aggregated = !everyPoint && stepFor(range) !== null;
  const [refresh, setRefresh] = useState(0);
  useEffect(() => {
    if (!aggregated) return;
    const every = window.setInterval(() => setRefresh((n) => n + 1), 60000);
    return () => clearInterval(every);
  }, [aggregated]);

  // History for the range; live samples are appended to it below.
  useEffect(() => {
    let stopped = false;
    const to = Date.now();
    const from = to - range;
    const step = everyPoint ? null : stepFor(range);
    Promise.all(numeric.map(async (m) => {
      const path = `/api/v1/devices/${encodeURIComponent(id)}/metrics/${encodeURIComponent(m.name)}` +
        qs({ from, to: "now", format: "columns", agg: step ? "avg" : undefined, step: step ?? undefined });
      try {
        return [m.name, toAligned(await api.get<Columns>(path))] as const;
      } catch {
        return [m.name, [[], []] as uPlot.AlignedData] as const;
      }
    })).then((all) => {
      if (stopped) return;
      buffers.current = {};
      setSeries(Object.fromEntries(all));
      if (!lineageMetric && all.length) setLineageMetric(all[0][0]);
    });
    return () => { stopped = true; };
  }, [id, numeric, range, everyPoint, refresh]);

  // Live samples join the charts of every sample at most once per frame.
  useEffect(() => {
    if (!liveSamples) return;
    if (aggregated) {
      buffers.current = {};
      return;
    }
    const frame = requestAnimationFrame(() => {
      const from = (Date.now() - range) / 1000;
      setSeries((current) => {
        const next = { ...current };
        for (const [metric, b] of Object.entries(buffers.current)) {
          if (!b.xs.length || !next[metric]) continue;
          const [xs, ys] = next[metric] as unknown as [ArrayLike<number>, ArrayLike<number | null>];
          let start = 0;
          while (start < xs.length && xs[start] < from) start++;
          const last = xs.length ? xs[xs.length - 1] : -Infinity;
          const nx = Array.from(xs).slice(start), ny = Array.from(ys).slice(start);
          b.xs.forEach((x, i) => { if (x > last) { nx.push(x); ny.push(b.ys[i]); } });
          next[metric] = [nx, ny];
        }
        buffers.current = {};
        return next;
      });
    });
    return () => cancelAnimationFrame(frame);
  }, [liveSamples]);

  // Where the latest reading of a metric came from: its exact time (nanoseconds, from the
  // points format), then the message(s) that stored it.
  useEffect(() => {
    const data = series[lineageMetric];
    if (!data || !data[0].length) { setLineage([]); return; }
    const base = `/api/v1/devices/${encodeURIComponent(id)}/metrics/${encodeURIComponent(lineageMetric)}`;
    const lastX = Math.floor((data[0][data[0].length - 1] as number) * 1000);
    (async () => {
      // Averaged charts end with a bucket's start: find the last sample after it.
      const raw = await api.get<Columns>(base + qs({ from: lastX, to: "now", format: "columns" }));
      if (!raw.ts.length) return [];
      const lastMs = raw.ts[raw.ts.length - 1];
      const exact = await api.get<{ points: { ts: string }[] }>(base + qs({ from: lastMs, to: lastMs + 1 }));
      if (!exact.points.length) return [];
      return (await api.get<Lineage>(`/api/v1/lineage${qs({ device: id, metric: lineageMetric, at: exact.points[exact.points.length - 1].ts })}`)).messages;
    })().then(setLineage, () => setLineage([]));
  }, [lineageMetric, !!series[lineageMetric], range, everyPoint]);

  const markers = useMemo(() => alarms.map((a) => ({ ts: Date.parse(a.raised) / 1000, label: `${a.type} (${a.severity})` })), [alarms]);

  if (error) return <p class="error">{error}</p>;
  if (!device) return <div class="loading">Loading {id}…</div>;
  return (
    <section data-testid="device-page">
      <div class="page-title">
        <h1>{device.id}{device.name && device.name !== device.id ? <small> {device.name}</small> : null}</h1>
        <span class={`live ${live ? "on" : ""}`}>{live ? "live" : "reconnecting"}</span>
      </div>
      <div class="facts">
        <div><label>Profile</label>{device.profile}</div>
        <div><label>State</label>{device.state}</div>
        <div><label>Last seen</label>{ago(device.last_seen)}</div>
        <div><label>Contract</label>{contract ? `${device.profile} v${contract}` : "none"}</div>
        <div><label>Conformance</label>{pct(quality?.conformance_rate)}{quality?.silent ? " · silent" : ""}</div>
        <div><label>Calibration</label>{calibrations.length ? `${calibrations.length} active` : "none"}</div>
      </div>
      <div class="tags">{Object.entries(device.tags).map(([k, v]) => <span class="tag">{k}={v}</span>)}</div>

      <div class="toolbar">
        {RANGES.map(([label, ms]) => (
          <button class={range === ms ? "selected" : ""} onClick={() => setRange(ms)}>{label}</button>
        ))}
        <label class="check"><input type="checkbox" checked={everyPoint} onChange={(e) => setEveryPoint((e.target as HTMLInputElement).checked)} /> every sample</label>
        <span class="count">{liveSamples} live samples</span>
      </div>
      <div class="charts">
        {numeric.map((m, i) => (
          <div class="panel">
            <h3>{m.name}</h3>
            {series[m.name]
              ? <Chart data={series[m.name]} series={[{ label: m.name, color: COLORS[i % COLORS.length] }]} markers={markers}
                       testId={`chart-${m.name}`} height={180}
                       onRendered={(ms) => { (window as any).__chartRenderMs = { ...(window as any).__chartRenderMs, [m.name]: ms }; }} />
              : <div class="loading">…</div>}
            <small class="muted" data-testid={`points-${m.name}`}>{series[m.name]?.[0].length ?? 0} points</small>
          </div>
        ))}
        {!numeric.length && <p class="muted">No numeric metrics stored yet.</p>}
      </div>

      <div class="columns">
        <div class="panel">
          <h2>Predictions</h2>
          {predictions.length === 0 && <p class="muted">No production model has scored this device yet.</p>}
          {predictions.map((p) => (
            <div class="prediction">
              <b>{p.model}</b> v{p.version}: <span class="big">{p.value >= 0 && p.value <= 1 ? pct(p.value) : num(p.value)}</span>
              <small class="muted"> as of {when(p.as_of)}</small>
              {p.top_contributions && p.top_contributions.length > 0 && (
                <ul class="contributions">
                  {p.top_contributions.map((c) => (
                    <li><span>{c.feature}</span><span class={c.contribution > 0 ? "up" : "down"}>{c.contribution > 0 ? "+" : ""}{c.contribution.toFixed(3)}</span></li>
                  ))}
                </ul>
              )}
            </div>
          ))}
          <h2>Calibrations</h2>
          {calibrations.length === 0 ? <p class="muted">Readings are stored as sent.</p> : (
            <table><tbody>{calibrations.map((c) => <tr><td>{c.metric}</td><td>× {c.gain} + {c.offset}</td><td>{when(c.valid_from)}</td></tr>)}</tbody></table>
          )}
        </div>
        <div class="panel">
          <h2>Alarms</h2>
          {alarms.length === 0 && <p class="muted">No alarms.</p>}
          <ul class="alarm-list">
            {alarms.map((a) => (
              <li><a href={`#/alarms?id=${a.id}`}><span class={`sev ${a.severity}`}>{a.severity}</span> {a.type} · {a.dedup_key}</a>
                <small class="muted"> {a.active ? "active" : "cleared"}{a.acknowledged ? ", acknowledged" : ""} · {ago(a.raised)}</small></li>
            ))}
          </ul>
        </div>
        <div class="panel">
          <h2>Lineage</h2>
          <select value={lineageMetric} onChange={(e) => setLineageMetric((e.target as HTMLSelectElement).value)} aria-label="Metric">
            {numeric.map((m) => <option value={m.name}>{m.name}</option>)}
          </select>
          <p class="muted">Where its latest reading came from:</p>
          {lineage.length === 0 && <p class="muted">No raw message recorded for it (derived, or older than the raw log keeps).</p>}
          {lineage.map((l) => (
            <dl class="lineage" data-testid="lineage">
              <dt>Message</dt><dd>{l.id}</dd>
              <dt>Received</dt><dd>{when(l.received)} over {l.transport} ({l.decoder})</dd>
              <dt>Contract</dt><dd>version {l.contract_version}</dd>
              <dt>Calibrations</dt><dd>{l.calibrations.length ? l.calibrations.join(", ") : "none"}</dd>
              <dt>Samples</dt><dd>{l.samples}{l.flagged ? `, ${l.flagged} flagged` : ""} from {l.bytes} bytes</dd>
              <dt>SHA-256</dt><dd class="mono">{l.sha256.slice(0, 16)}…</dd>
            </dl>
          ))}
        </div>
      </div>
    </section>
  );
}
