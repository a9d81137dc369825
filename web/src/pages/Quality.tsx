import { useEffect, useState } from "preact/hooks";
import { ApiError, api, qs } from "../api";
import { ago, num, pct, when } from "../format";

type Figures = { messages: number; conforming: number; with_warnings: number; rejected: number; conformance_rate: number | null;
  rejected_by_reason: Record<string, number>; samples: number; out_of_range_share: number | null; late_share: number | null; missing: number };
type DeviceQuality = Figures & { device: string; profile: string; contract_version: number; last_message: string; silent: boolean };
type ProfileQuality = Figures & { profile: string; contract_version: number; devices: number };
type Quality = { since: string; devices: DeviceQuality[]; profiles: ProfileQuality[] };
type Quarantined = { id: number; received: string; device: string; profile: string; transport: string; format: string; reason: string; detail: string;
  contract_version: number; sha256: string; replayed: string | null; replay_attempts: number; payload?: string; payload_base64?: string };
type Replay = { stored: number; rejected: number; skipped: number; results: { id: number; result: string; detail?: string }[] };

const PAGE = 50;

export function QualityPage() {
  const [quality, setQuality] = useState<Quality | null>(null);
  const [messages, setMessages] = useState<Quarantined[]>([]);
  const [pages, setPages] = useState<number[]>([0]);  // the `after` cursor of each page seen
  const [next, setNext] = useState<number | null>(null);
  const [device, setDevice] = useState("");
  const [reason, setReason] = useState("");
  const [open, setOpen] = useState<Quarantined | null>(null);
  const [message, setMessage] = useState("");

  useEffect(() => { api.get<Quality>("/api/v1/quality").then(setQuality, (e: ApiError) => setMessage(e.message)); }, []);

  const loadPage = (after: number) =>
    api.get<{ messages: Quarantined[]; next_after?: number }>(`/api/v1/quarantine${qs({ device, reason, after: after || undefined, limit: PAGE })}`)
      .then((r) => {
        setMessages(r.messages);
        setNext(r.messages.length === PAGE && r.next_after ? r.next_after : null);
      }, (e: ApiError) => setMessage(e.message));
  useEffect(() => { setPages([0]); loadPage(0); }, [device, reason]);

  const show = (id: number) => api.get<Quarantined>(`/api/v1/quarantine/${id}`).then(setOpen, (e: ApiError) => setMessage(e.message));
  const replay = async (ids: number[]) => {
    try {
      const r = await api.post<Replay>("/api/v1/quarantine/replay", { ids });
      const first = r.results.find((x) => x.result !== "stored");
      setMessage(`Replayed ${ids.length}: ${r.stored} stored, ${r.rejected} still refused, ${r.skipped} skipped` +
        (first?.detail ? ` — ${first.detail}` : ""));
      loadPage(pages[pages.length - 1]);
      if (open && ids.includes(open.id)) show(open.id);
    } catch (e) {
      setMessage((e as Error).message);
    }
  };

  const reasons = quality ? [...new Set(quality.devices.flatMap((d) => Object.keys(d.rejected_by_reason)))].sort() : [];
  const worst = quality ? [...quality.devices].sort((a, b) => (a.conformance_rate ?? 1) - (b.conformance_rate ?? 1)).slice(0, 15) : [];
  return (
    <section>
      <div class="page-title"><h1>Data quality</h1>{quality && <small class="muted">since {quality.since}</small>}</div>
      {message && <p class="notice" role="status" data-testid="quality-message">{message}</p>}
      {quality && (
        <div class="panel">
          <h2>Conformance by profile</h2>
          <table class="grid" data-testid="quality-profiles">
            <thead><tr><th>Profile</th><th>Contract</th><th>Devices</th><th>Messages</th><th>Conforming</th><th>Refused</th><th>Out of range</th><th>Late</th><th>Missing</th><th>Refused by reason</th></tr></thead>
            <tbody>
              {quality.profiles.map((p) => (
                <tr>
                  <td>{p.profile}</td><td>{p.contract_version ? `v${p.contract_version}` : "none"}</td><td>{p.devices}</td><td>{num(p.messages)}</td>
                  <td class={p.conformance_rate !== null && p.conformance_rate < 0.95 ? "warn" : ""}>{pct(p.conformance_rate, 2)}</td>
                  <td>{num(p.rejected)}</td><td>{pct(p.out_of_range_share, 2)}</td><td>{pct(p.late_share, 1)}</td><td>{num(p.missing)}</td>
                  <td>{Object.entries(p.rejected_by_reason).map(([r, n]) => <button class="tag" onClick={() => setReason(r)}>{r}: {n}</button>)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h3>Least conforming devices</h3>
          <table class="grid">
            <thead><tr><th>Device</th><th>Conforming</th><th>Refused</th><th>Last message</th></tr></thead>
            <tbody>{worst.map((d) => (
              <tr><td><a href={`#/devices/${encodeURIComponent(d.device)}`}>{d.device}</a>{d.silent ? " (silent)" : ""}</td><td>{pct(d.conformance_rate, 2)}</td>
                <td><button class="link" onClick={() => setDevice(d.device)}>{d.rejected}</button></td><td>{ago(d.last_message)}</td></tr>
            ))}</tbody>
          </table>
        </div>
      )}
      <div class="panel">
        <h2>Quarantine</h2>
        <div class="filters">
          <input type="search" placeholder="Device" value={device} aria-label="Device" onChange={(e) => setDevice((e.target as HTMLInputElement).value.trim())} />
          <select value={reason} onChange={(e) => setReason((e.target as HTMLSelectElement).value)} aria-label="Reason">
            <option value="">Any reason</option>
            {reasons.map((r) => <option value={r}>{r}</option>)}
          </select>
          <button onClick={() => replay(messages.filter((m) => !m.replayed).map((m) => m.id))} disabled={!messages.some((m) => !m.replayed)}>Replay this page</button>
        </div>
        <table class="grid" data-testid="quarantine">
          <thead><tr><th>#</th><th>Received</th><th>Device</th><th>Reason</th><th>What was wrong</th><th>Replayed</th><th /></tr></thead>
          <tbody>
            {messages.map((m) => (
              <tr class={open?.id === m.id ? "selected" : ""}>
                <td>{m.id}</td><td>{when(m.received)}</td><td>{m.device}</td><td><span class="tag">{m.reason}</span></td>
                <td class="detail">{m.detail}</td><td>{m.replayed ? when(m.replayed) : m.replay_attempts ? `${m.replay_attempts} attempt(s)` : "–"}</td>
                <td class="actions"><button class="secondary" onClick={() => show(m.id)}>Payload</button>
                  <button onClick={() => replay([m.id])} disabled={!!m.replayed} data-testid={`replay-${m.id}`}>Replay</button></td>
              </tr>
            ))}
            {messages.length === 0 && <tr><td colSpan={7} class="muted">Nothing in quarantine{device || reason ? " for this filter" : ""}.</td></tr>}
          </tbody>
        </table>
        <div class="pager">
          <button class="secondary" disabled={pages.length < 2} onClick={() => { const p = pages.slice(0, -1); setPages(p); loadPage(p[p.length - 1]); }}>Previous</button>
          <button class="secondary" disabled={next === null} onClick={() => { setPages([...pages, next!]); loadPage(next!); }}>Next</button>
        </div>
        {open && (
          <div class="payload" data-testid="payload">
            <h3>Message {open.id} from {open.device} over {open.transport} ({open.format}), contract v{open.contract_version}</h3>
            <p class="error">{open.detail}</p>
            <pre>{open.payload ?? `(binary, base64) ${open.payload_base64}`}</pre>
            <small class="muted mono">sha256 {open.sha256}</small>
          </div>
        )}
      </div>
    </section>
  );
}
