import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { Fleet, FleetDevice, api, openStream } from "../api";
import { VirtualTable } from "../components/VirtualTable";
import { ago, pct, severityRank } from "../format";

type SortKey = "id" | "site" | "profile" | "status" | "last_seen" | "alarms" | "quality" | "risk";

function risk(d: FleetDevice): number | null {
  return d.predictions.length ? Math.max(...d.predictions.map((p) => p.value)) : null;
}

function status(d: FleetDevice): string {
  return d.state === "disabled" ? "disabled" : d.online ? "online" : "offline";
}

function compare(a: FleetDevice, b: FleetDevice, key: SortKey): number {
  switch (key) {
    case "site": return a.site.localeCompare(b.site) || a.id.localeCompare(b.id);
    case "profile": return a.profile.localeCompare(b.profile) || a.id.localeCompare(b.id);
    case "status": return status(a).localeCompare(status(b)) || a.id.localeCompare(b.id);
    case "last_seen": return (b.last_seen ?? "").localeCompare(a.last_seen ?? "");
    case "alarms": return severityRank(a.highest_severity) - severityRank(b.highest_severity) || b.open_alarms - a.open_alarms;
    case "quality": return (a.conformance_rate ?? 2) - (b.conformance_rate ?? 2);
    case "risk": return (risk(b) ?? -Infinity) - (risk(a) ?? -Infinity);
    default: return a.id.localeCompare(b.id);
  }
}

export function FleetPage() {
  const [fleet, setFleet] = useState<Fleet | null>(null);
  const [error, setError] = useState("");
  const [search, setSearch] = useState("");
  const [site, setSite] = useState("");
  const [profile, setProfile] = useState("");
  const [show, setShow] = useState("all");
  const [sort, setSort] = useState<SortKey>("alarms");
  const [live, setLive] = useState(false);
  const painted = useRef(false);

  useEffect(() => {
    let stopped = false;
    let pending: number | undefined;
    const load = async () => {
      try {
        const f = await api.get<Fleet>("/api/v1/fleet");
        if (!stopped) {
          setFleet(f);
          setError("");
        }
      } catch (e) {
        if (!stopped) setError((e as Error).message);
      }
    };
    load();
    // Counts stay current: a refresh every 10 s, and soon after any alarm event.
    const every = window.setInterval(load, 10000);
    const close = openStream({}, (e) => {
      if (!e.event.startsWith("alarm.")) return;
      if (pending === undefined) pending = window.setTimeout(() => { pending = undefined; load(); }, 500);
    }, setLive);
    return () => {
      stopped = true;
      clearInterval(every);
      if (pending) clearTimeout(pending);
      close();
    };
  }, []);

  const rows = useMemo(() => {
    if (!fleet) return [];
    const q = search.trim().toLowerCase();
    const out = fleet.devices.filter((d) => {
      if (site && d.site !== site) return false;
      if (profile && d.profile !== profile) return false;
      if (show !== "all") {
        if (show === "alarms" ? d.open_alarms === 0 : status(d) !== show) return false;
      }
      if (!q) return true;
      return d.id.toLowerCase().includes(q) || d.name.toLowerCase().includes(q) ||
        Object.entries(d.tags).some(([k, v]) => `${k}=${v}`.toLowerCase().includes(q));
    });
    out.sort((a, b) => compare(a, b, sort));
    return out;
  }, [fleet, search, site, profile, show, sort]);

  useEffect(() => {
    if (fleet && !painted.current) {
      painted.current = true;
      // For bench/console.sh: when the first rows of the fleet were on screen.
      requestAnimationFrame(() => { (window as any).__fleetPaintMs = performance.now(); });
    }
  }, [fleet]);

  if (!fleet) return <div class="loading">{error ? <p class="error">{error}</p> : "Loading the fleet…"}</div>;
  const sites = [...new Set(fleet.devices.map((d) => d.site))].sort();
  const profiles = [...new Set(fleet.devices.map((d) => d.profile))].sort();
  const t = fleet.totals;
  const head = (key: SortKey, label: string, cls = "") => (
    <span class={`${cls} sortable ${sort === key ? "sorted" : ""}`} onClick={() => setSort(key)} role="columnheader">{label}</span>
  );
  return (
    <section>
      <div class="page-title">
        <h1>Fleet</h1>
        <span class={`live ${live ? "on" : ""}`} title="Live updates over WebSocket">{live ? "live" : "reconnecting"}</span>
      </div>
      {error && <p class="error">{error}</p>}
      <div class="cards" data-testid="fleet-totals">
        <button class="card" onClick={() => setShow("all")}><b data-testid="total-devices">{t.devices}</b>devices</button>
        <button class="card ok" onClick={() => setShow("online")}><b data-testid="total-online">{t.online}</b>online</button>
        <button class="card muted" onClick={() => setShow("offline")}><b>{t.offline}</b>offline</button>
        <button class="card bad" onClick={() => setShow("alarms")}><b data-testid="total-alarms">{t.with_open_alarms}</b>with open alarms</button>
        <button class="card muted" onClick={() => setShow("disabled")}><b>{t.disabled}</b>disabled</button>
      </div>
      <div class="groups">
        {fleet.groups.map((g) => (
          <button class={`group ${site === g.site && profile === g.profile ? "selected" : ""}`}
                  onClick={() => { setSite(site === g.site && profile === g.profile ? "" : g.site); setProfile(site === g.site && profile === g.profile ? "" : g.profile); }}>
            <span>{g.site || "no site"} · {g.profile || "generic"}</span>
            <span>{g.online}/{g.devices} online{g.with_open_alarms ? ` · ${g.with_open_alarms} alarming` : ""}</span>
          </button>
        ))}
      </div>
      <div class="filters">
        <input type="search" placeholder="Search id, name or tag=value" value={search} aria-label="Search devices"
               onInput={(e) => setSearch((e.target as HTMLInputElement).value)} data-testid="fleet-search" />
        <select value={site} onChange={(e) => setSite((e.target as HTMLSelectElement).value)} aria-label="Site">
          <option value="">All sites</option>
          {sites.map((s) => <option value={s}>{s || "(no site)"}</option>)}
        </select>
        <select value={profile} onChange={(e) => setProfile((e.target as HTMLSelectElement).value)} aria-label="Profile">
          <option value="">All profiles</option>
          {profiles.map((p) => <option value={p}>{p}</option>)}
        </select>
        <select value={show} onChange={(e) => setShow((e.target as HTMLSelectElement).value)} aria-label="Status">
          <option value="all">Any status</option>
          <option value="online">Online</option>
          <option value="offline">Offline</option>
          <option value="alarms">With open alarms</option>
          <option value="disabled">Disabled</option>
        </select>
        <span class="count" data-testid="fleet-count">{rows.length} shown</span>
      </div>
      <VirtualTable
        rows={rows}
        rowHeight={34}
        height={Math.max(300, window.innerHeight - 380)}
        testId="fleet-table"
        header={<div class="row fleet-row head">{head("id", "Device")}{head("site", "Site", "hide-s")}{head("profile", "Profile", "hide-s")}
          {head("status", "Status")}{head("last_seen", "Last seen", "hide-s")}{head("alarms", "Alarms")}{head("quality", "Quality")}{head("risk", "Risk")}</div>}
        row={(d) => {
          const r = risk(d);
          return (
            <a class="row fleet-row" href={`#/devices/${encodeURIComponent(d.id)}`} data-device={d.id}>
              <span class="strong">{d.id}{d.name && d.name !== d.id ? <small> {d.name}</small> : null}</span>
              <span class="hide-s">{d.site || "–"}</span>
              <span class="hide-s">{d.profile}</span>
              <span><i class={`dot ${status(d)}`} />{status(d)}</span>
              <span class="hide-s">{ago(d.last_seen)}</span>
              <span>{d.open_alarms ? <span class={`sev ${d.highest_severity}`}>{d.open_alarms} {d.highest_severity}</span> : "–"}</span>
              <span class={d.conformance_rate !== null && d.conformance_rate < 0.95 ? "warn" : ""}>{pct(d.conformance_rate)}</span>
              <span title={d.predictions.map((p) => `${p.model} v${p.version}: ${p.value.toFixed(3)}`).join("\n")}
                    class={r !== null && r >= 0.5 && r <= 1 ? "warn" : ""}>
                {r === null ? "–" : r >= 0 && r <= 1 ? pct(r, 0) : r.toFixed(1)}
              </span>
            </a>
          );
        }}
      />
    </section>
  );
}
