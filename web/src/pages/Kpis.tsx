import { useEffect, useState } from "preact/hooks";
import type uPlot from "uplot";
import { ApiError, api, qs } from "../api";
import { Chart } from "../components/Chart";
import { num, pct, when } from "../format";

type Period = { from: string; to: string; devices: number; observed_hours: number; unplanned_downtime_hours: number; planned_downtime_hours: number;
  failures: number; maintenance: number; mtbf_hours: number | null; mttr_hours: number | null; availability: number | null;
  maintenance_cost: number; energy_per_output: number | null; alarms: number; alarms_before_failure: number; alert_precision: number | null };
type Kpis = { profile: string; kpi: string; version: number; current: Period; baseline?: Period; series: Period[] };

const DAY = 86400e3;
// Downtime per 1,000 device-hours: periods of different lengths and fleet sizes compare fairly.
const rate = (p: Period) => (p.observed_hours > 0 ? (p.unplanned_downtime_hours / p.observed_hours) * 1000 : null);

function Card(props: { label: string; value: string; base?: string; better?: boolean | null; testId?: string }) {
  return (
    <div class="card kpi" data-testid={props.testId}>
      <b>{props.value}</b>{props.label}
      {props.base !== undefined && <small class={props.better === null || props.better === undefined ? "muted" : props.better ? "up-good" : "down-bad"}>baseline {props.base}</small>}
    </div>
  );
}

export function KpisPage() {
  const [profiles, setProfiles] = useState<string[]>([]);
  const [profile, setProfile] = useState("");
  const [days, setDays] = useState(30);
  const [step, setStep] = useState("1d");
  const [baseline, setBaseline] = useState("previous");
  const [kpis, setKpis] = useState<Kpis | null>(null);
  const [message, setMessage] = useState("");

  useEffect(() => {
    api.get<{ definitions: { profile: string }[] }>("/api/v1/kpis/definitions").then((r) => {
      const p = r.definitions.map((d) => d.profile);
      setProfiles(p);
      setProfile((cur) => cur || (p.includes("pump") ? "pump" : p[0] ?? ""));
    }, (e: ApiError) => setMessage(e.message));
  }, []);

  useEffect(() => {
    if (!profile) return;
    const to = Date.now(), from = to - days * DAY;
    const base = baseline === "previous" ? { baseline_from: from - days * DAY, baseline_to: from }
      : baseline === "first-half" ? { baseline_from: from, baseline_to: from + (days / 2) * DAY } : {};
    api.get<Kpis>(`/api/v1/kpis${qs({ profile, from, to, step, ...base })}`).then((k) => { setKpis(k); setMessage(""); }, (e: ApiError) => setMessage(e.message));
  }, [profile, days, step, baseline]);

  const c = kpis?.current;
  // A baseline without observed hours (before the fleet existed) compares with nothing.
  const b = kpis?.baseline && kpis.baseline.observed_hours > 0 ? kpis.baseline : undefined;
  const emptyBaseline = !!kpis?.baseline && !b;
  const better = (cur: number | null | undefined, base: number | null | undefined, lowerIsBetter: boolean) =>
    cur === null || cur === undefined || base === null || base === undefined || cur === base ? null : lowerIsBetter ? cur < base : cur > base;
  const series = kpis?.series ?? [];
  const xs = series.map((p) => Date.parse(p.from) / 1000);
  const downtime: uPlot.AlignedData = [xs, series.map(rate)];
  const precision: uPlot.AlignedData = [xs, series.map((p) => (p.alert_precision === null ? null : p.alert_precision * 100))];
  return (
    <section>
      <div class="page-title"><h1>KPIs</h1></div>
      {message && <p class="notice" role="status">{message}</p>}
      <div class="filters">
        <select value={profile} onChange={(e) => setProfile((e.target as HTMLSelectElement).value)} aria-label="Profile">
          {profiles.map((p) => <option value={p}>{p}</option>)}
        </select>
        <select value={days} onChange={(e) => setDays(Number((e.target as HTMLSelectElement).value))} aria-label="Period">
          {[7, 30, 90, 365].map((d) => <option value={d}>last {d} days</option>)}
        </select>
        <select value={step} onChange={(e) => setStep((e.target as HTMLSelectElement).value)} aria-label="Step">
          {["1d", "7d", "30d"].map((s) => <option value={s}>per {s}</option>)}
        </select>
        <select value={baseline} onChange={(e) => setBaseline((e.target as HTMLSelectElement).value)} aria-label="Baseline">
          <option value="previous">baseline: the period before</option>
          <option value="first-half">baseline: its first half</option>
          <option value="none">no baseline</option>
        </select>
      </div>
      {profiles.length === 0 && <p class="muted">No KPI definition yet (POST /api/v1/kpis/definitions, or `fieldline kpi apply`).</p>}
      {c && (
        <>
          <p class="muted">{kpis!.kpi} v{kpis!.version}: {c.devices} devices, {when(c.from)} to {when(c.to)}{b ? `; baseline ${when(b.from)} to ${when(b.to)}` : ""}</p>
          {emptyBaseline && <p class="notice">The baseline period has no data (the devices were not reporting then): choose another baseline.</p>}
          <div class="cards">
            <Card label="unplanned downtime per 1,000 device-hours" value={num(rate(c))} base={b ? num(rate(b)) : undefined} better={b ? better(rate(c), rate(b), true) : null} testId="kpi-downtime" />
            <Card label="unplanned downtime (h)" value={num(c.unplanned_downtime_hours, 1)} base={b ? num(b.unplanned_downtime_hours, 1) : undefined} />
            <Card label="availability" value={pct(c.availability, 2)} base={b ? pct(b.availability, 2) : undefined} better={b ? better(c.availability, b.availability, false) : null} />
            <Card label="MTBF (h)" value={num(c.mtbf_hours, 0)} base={b ? num(b.mtbf_hours, 0) : undefined} better={b ? better(c.mtbf_hours, b.mtbf_hours, false) : null} />
            <Card label="MTTR (h)" value={num(c.mttr_hours, 1)} base={b ? num(b.mttr_hours, 1) : undefined} better={b ? better(c.mttr_hours, b.mttr_hours, true) : null} />
            <Card label="alert precision" value={pct(c.alert_precision)} base={b ? pct(b.alert_precision) : undefined} better={b ? better(c.alert_precision, b.alert_precision, false) : null} />
            <Card label="failures / maintenance" value={`${c.failures} / ${c.maintenance}`} base={b ? `${b.failures} / ${b.maintenance}` : undefined} />
            <Card label="maintenance cost" value={num(c.maintenance_cost, 0)} base={b ? num(b.maintenance_cost, 0) : undefined} better={b ? better(c.maintenance_cost, b.maintenance_cost, true) : null} />
            {c.energy_per_output !== null && <Card label="energy per output" value={num(c.energy_per_output, 3)} base={b ? num(b.energy_per_output, 3) : undefined} better={b ? better(c.energy_per_output, b.energy_per_output, true) : null} />}
          </div>
          {series.length > 0 && (
            <div class="columns two">
              <div class="panel"><h3>Unplanned downtime per 1,000 device-hours, per {step}</h3>
                <Chart data={downtime} series={[{ label: "downtime /1000 h", color: "#c0392b", points: true }]} height={220} testId="kpi-chart" /></div>
              <div class="panel"><h3>Alert precision %, per {step}</h3>
                <Chart data={precision} series={[{ label: "alert precision %", color: "#1f77b4", points: true }]} height={220} /></div>
            </div>
          )}
        </>
      )}
    </section>
  );
}
