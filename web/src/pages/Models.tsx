import { useEffect, useState } from "preact/hooks";
import type uPlot from "uplot";
import { ApiError, api, qs } from "../api";
import { Chart } from "../components/Chart";
import { num, when } from "../format";

type ModelSummary = { name: string; latest: number; profile: string; production?: number; shadow?: number };
type Version = { name: string; version: number; profile: string; runtime: string; label: string; stage: string; created: string; created_by: string;
  stage_changed: string; training_set_sha256: string; metrics: Record<string, number> };
type History = { name: string; versions: Version[]; stage_changes: { version: number; from: string; to: string; at: string; by: string; reason: string }[] };
type Decision = { id: number; device: string; version: number; as_of: string; value: number };
type Columns = { ts: number[]; value: (number | null)[] };

// "event:failure/7d/6h" is labelled by the failure events; any other label is a metric.
function outcomeMetric(label: string): { metric: string; event: boolean } {
  if (label.startsWith("event:")) return { metric: label.slice(6).split("/")[0], event: true };
  return { metric: label, event: false };
}

function Outcomes(props: { model: string; version: Version | undefined; devices: string[] }) {
  const [device, setDevice] = useState(props.devices[0] ?? "");
  const [data, setData] = useState<uPlot.AlignedData | null>(null);
  const [markers, setMarkers] = useState<{ ts: number; label: string }[]>([]);
  const [outcomes, setOutcomes] = useState(0);
  const [tick, setTick] = useState(0);  // read again every 30 s: predictions keep coming
  useEffect(() => { if (!props.devices.includes(device)) setDevice(props.devices[0] ?? ""); }, [props.devices.join()]);
  useEffect(() => {
    const every = window.setInterval(() => setTick((n) => n + 1), 30000);
    return () => clearInterval(every);
  }, []);
  useEffect(() => {
    if (!device || !props.version) return;
    const { metric, event } = outcomeMetric(props.version.label);
    const base = `/api/v1/devices/${encodeURIComponent(device)}/metrics/`;
    const empty: Columns = { ts: [], value: [] };
    const read = (m: string, step: string | null, from: string) =>
      api.get<Columns>(base + encodeURIComponent(m) + qs({ from, to: "now", format: "columns", agg: step ? "avg" : undefined, step: step ?? undefined }))
        .catch(() => empty);
    (async () => {
      // 30 days in hours; a model younger than a few hours is shown sample by sample over a day.
      let [pred, outcome] = await Promise.all([read(props.model, "1h", "-30d"), read(metric, event ? null : "1h", "-30d")]);
      if (pred.ts.length < 3) [pred, outcome] = await Promise.all([read(props.model, null, "-1d"), read(metric, null, "-1d")]);
      return [pred, outcome] as const;
    })().then(([pred, outcome]) => {
      if (event) {
        setData([pred.ts.map((t) => t / 1000), pred.value]);
        setMarkers(outcome.ts.map((t) => ({ ts: t / 1000, label: metric })));
        setOutcomes(outcome.ts.length);
      } else {
        // Regression: the prediction and the measured label on one time axis (each series has
        // nulls where only the other has a point).
        const xs = [...new Set([...pred.ts, ...outcome.ts])].sort((a, b) => a - b);
        const p = new Map(pred.ts.map((t, i) => [t, pred.value[i]]));
        const o = new Map(outcome.ts.map((t, i) => [t, outcome.value[i]]));
        setData([xs.map((t) => t / 1000), xs.map((t) => p.get(t) ?? null), xs.map((t) => o.get(t) ?? null)]);
        setMarkers([]);
        setOutcomes(outcome.ts.length);
      }
    });
  }, [device, props.model, props.version?.label, tick]);
  if (!props.version) return null;
  const { metric, event } = outcomeMetric(props.version.label);
  return (
    <div class="panel">
      <h2>Predictions against outcomes</h2>
      <select value={device} onChange={(e) => setDevice((e.target as HTMLSelectElement).value)} aria-label="Device">
        {props.devices.map((d) => <option value={d}>{d}</option>)}
      </select>
      <span class="muted"> {props.model} over 30 days{event ? `, ${outcomes} ${metric} event(s) as red lines` : `, against ${metric}`}</span>
      {data && (data[0].length
        ? <Chart data={data} series={event ? [{ label: props.model, color: "#1f77b4", points: data[0].length < 50 }]
                                       : [{ label: props.model, color: "#1f77b4", points: true, spanGaps: true }, { label: metric, color: "#2ca02c", points: true, spanGaps: true }]}
                 markers={markers} height={220} testId="outcomes-chart" />
        : <p class="muted">No stored predictions for {device}.</p>)}
    </div>
  );
}

export function ModelsPage() {
  const [models, setModels] = useState<ModelSummary[]>([]);
  const [name, setName] = useState("");
  const [history, setHistory] = useState<History | null>(null);
  const [decisions, setDecisions] = useState<Decision[]>([]);
  const [message, setMessage] = useState("");
  const [confirm, setConfirm] = useState<{ title: string; run: (reason: string) => Promise<void> } | null>(null);
  const [reason, setReason] = useState("");

  const loadModels = () => api.get<{ models: ModelSummary[] }>("/api/v1/models").then((r) => {
    setModels(r.models);
    if (!name && r.models.length) setName(r.models[0].name);
  });
  const loadHistory = () => {
    if (!name) return;
    api.get<History>(`/api/v1/models/${encodeURIComponent(name)}`).then(setHistory, (e: ApiError) => setMessage(e.message));
    api.get<{ decisions: Decision[] }>(`/api/v1/models/${encodeURIComponent(name)}/decisions${qs({ limit: 200 })}`)
      .then((r) => setDecisions(r.decisions), () => setDecisions([]));
  };
  useEffect(() => { loadModels().catch((e: ApiError) => setMessage(e.message)); }, []);
  useEffect(loadHistory, [name]);

  const ask = (title: string, run: (reason: string) => Promise<void>) => { setReason(""); setConfirm({ title, run }); };
  const promote = (v: Version, stage: string) => ask(`Move ${name} version ${v.version} from ${v.stage} to ${stage}?`, async (why) => {
    await api.post(`/api/v1/models/${encodeURIComponent(name)}/versions/${v.version}/promote`, { stage, reason: why });
    setMessage(`${name} version ${v.version} is now ${stage}.`);
  });
  const rollback = () => ask(`Roll ${name} back to the version in production before the current one?`, async (why) => {
    const r = await api.post<{ production: number; archived: number }>(`/api/v1/models/${encodeURIComponent(name)}/rollback`, { reason: why });
    setMessage(`${name}: version ${r.production} is in production again; version ${r.archived} is archived.`);
  });
  const run = async () => {
    if (!confirm) return;
    try {
      await confirm.run(reason);
    } catch (e) {
      const err = e as ApiError;
      setMessage(err.status === 403 ? `Not allowed: ${err.message}` : err.message);
    }
    setConfirm(null);
    loadModels();
    loadHistory();
  };

  const production = history?.versions.find((v) => v.stage === "production");
  // The devices with decision records first; without any yet, the profile's devices.
  const [profileDevices, setProfileDevices] = useState<string[]>([]);
  const profile = history?.versions[0]?.profile;
  useEffect(() => {
    if (!profile || decisions.length) return;
    api.get<{ devices: { id: string; profile: string }[] }>("/api/v1/devices")
      .then((r) => setProfileDevices(r.devices.filter((d) => d.profile === profile).map((d) => d.id)), () => setProfileDevices([]));
  }, [profile, decisions.length]);
  const devices = decisions.length ? [...new Set(decisions.map((d) => d.device))].sort() : profileDevices;
  return (
    <section>
      <div class="page-title"><h1>Models</h1></div>
      {message && <p class="notice" role="status">{message}</p>}
      {models.length === 0 && <p class="muted">No model is registered yet (POST /api/v1/models/NAME/train, or `fieldline models train`).</p>}
      <div class="toolbar">
        {models.map((m) => (
          <button class={m.name === name ? "selected" : ""} onClick={() => setName(m.name)}>
            {m.name} <small>({m.profile}{m.production ? `, v${m.production} in production` : ", none in production"})</small>
          </button>
        ))}
      </div>
      {history && (
        <>
          <div class="panel">
            <h2>Versions of {history.name}</h2>
            <table class="grid" data-testid="model-versions">
              <thead><tr><th>Version</th><th>Stage</th><th>Runtime</th><th>Label</th><th>Held-out RMSE</th><th>Held-out MAE</th><th>Rows</th><th>Created</th><th /></tr></thead>
              <tbody>
                {[...history.versions].reverse().map((v) => (
                  <tr>
                    <td>v{v.version}</td>
                    <td><span class={`stage ${v.stage}`}>{v.stage}</span></td>
                    <td>{v.runtime}</td>
                    <td class="mono">{v.label}</td>
                    <td>{num(v.metrics.held_out_rmse, 4)}</td>
                    <td>{num(v.metrics.held_out_mae, 4)}</td>
                    <td>{num(v.metrics.rows)}</td>
                    <td>{when(v.created)} by {v.created_by}</td>
                    <td class="actions">
                      {v.stage !== "production" && <button onClick={() => promote(v, "production")}>Promote</button>}
                      {v.stage !== "shadow" && v.stage !== "production" && <button onClick={() => promote(v, "shadow")}>Shadow</button>}
                      {v.stage !== "archived" && <button class="secondary" onClick={() => promote(v, "archived")}>Archive</button>}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            {production && <button class="danger" onClick={rollback} data-testid="rollback">Roll back v{production.version}</button>}
            <h3>Stage changes</h3>
            <ul class="changes">
              {[...history.stage_changes].reverse().map((c) => <li>{when(c.at)}: v{c.version} {c.from} → <b>{c.to}</b> by {c.by}{c.reason ? ` — ${c.reason}` : ""}</li>)}
            </ul>
          </div>
          <Outcomes model={history.name} version={production ?? history.versions[history.versions.length - 1]} devices={devices} />
          <div class="panel">
            <h2>Recent decisions</h2>
            <table class="grid">
              <thead><tr><th>Device</th><th>Version</th><th>As of</th><th>Value</th></tr></thead>
              <tbody>{decisions.slice(0, 20).map((d) => <tr><td><a href={`#/devices/${encodeURIComponent(d.device)}`}>{d.device}</a></td><td>v{d.version}</td><td>{when(d.as_of)}</td><td>{num(d.value, 3)}</td></tr>)}</tbody>
            </table>
          </div>
        </>
      )}
      {confirm && (
        <div class="modal" role="dialog" aria-modal="true" data-testid="confirm">
          <div class="panel">
            <h2>{confirm.title}</h2>
            <label>Reason (kept in the audit log)<input value={reason} onInput={(e) => setReason((e.target as HTMLInputElement).value)} autoFocus /></label>
            <div class="actions">
              <button class="danger" onClick={run}>Confirm</button>
              <button class="secondary" onClick={() => setConfirm(null)}>Cancel</button>
            </div>
          </div>
        </div>
      )}
    </section>
  );
}
