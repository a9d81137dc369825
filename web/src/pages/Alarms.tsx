import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import type uPlot from "uplot";
import { Alarm, ApiError, api, openStream, qs } from "../api";
import { Chart } from "../components/Chart";
import { ago, severityRank, when } from "../format";

function order(a: Alarm, b: Alarm): number {
  // Most severe first; within a severity, the oldest unhandled first.
  return severityRank(a.severity) - severityRank(b.severity) || Number(a.acknowledged) - Number(b.acknowledged) ||
    a.raised.localeCompare(b.raised);
}

function evidenceData(a: Alarm): uPlot.AlignedData {
  const xs: number[] = [], ys: (number | null)[] = [];
  for (const [, v, ns] of a.evidence?.samples ?? []) {
    xs.push(ns / 1e9);
    ys.push(v);
  }
  return [xs, ys];
}

// The latest moment an alarm's state records: of two copies of one alarm, the later one.
function freshness(a: Alarm): string {
  const times = [a.last_seen, a.acknowledged_at ?? "", a.cleared ?? "", ...(a.comments ?? []).map((c) => c.at)];
  return times.reduce((latest, t) => (t > latest ? t : latest), "");
}

export function AlarmsPage() {
  const wanted = Number(new URLSearchParams(location.hash.split("?")[1] ?? "").get("id")) || null;
  const [alarms, setAlarms] = useState<Alarm[]>([]);
  const [showCleared, setShowCleared] = useState(false);
  const [selected, setSelected] = useState<number | null>(wanted);
  const [comment, setComment] = useState("");
  const [message, setMessage] = useState("");
  const [live, setLive] = useState(false);
  const commentBox = useRef<HTMLTextAreaElement>(null);

  // Reads of the list in flight, each with the alarm events that arrived meanwhile: the list a
  // read answers may be older than they are, so they are applied again on top of it. A read
  // answered after a later one is dropped.
  const reads = useRef({ started: 0, applied: 0, arriving: new Map<number, Alarm[]>() });
  const load = async () => {
    const r = reads.current;
    const seq = ++r.started;
    r.arriving.set(seq, []);
    try {
      const answer = await api.get<{ alarms: Alarm[] }>(`/api/v1/alarms${qs({ state: showCleared ? undefined : "active", limit: 1000 })}`);
      if (seq < r.applied) return;
      r.applied = seq;
      setAlarms((r.arriving.get(seq) ?? []).reduce((list, a) => {
        const known = list.find((x) => x.id === a.id);
        return known && freshness(known) > freshness(a) ? list : patch(list, a);
      }, answer.alarms));
      if (wanted && !answer.alarms.some((a) => a.id === wanted)) {
        // Asked for by id (from a device page) but not in this list: fetch it alone.
        api.get<Alarm>(`/api/v1/alarms/${wanted}`).then((a) => setAlarms((l) => [a, ...l.filter((x) => x.id !== a.id)]), () => {});
      }
    } finally {
      r.arriving.delete(seq);
    }
  };

  // Read at once, not only when the stream opens: behind a proxy that refuses WebSockets the
  // list is still shown, just not live.
  useEffect(() => {
    load().catch((e: ApiError) => setMessage(e.message));
  }, [showCleared]);

  // Every alarm event carries the alarm as it is now: patch the list in place. A cleared alarm
  // leaves the list of open ones, unless it is the one being looked at.
  const selectedRef = useRef(selected);
  selectedRef.current = selected;
  const patch = (list: Alarm[], a: Alarm) => {
    const rest = list.filter((x) => x.id !== a.id);
    return !a.active && !showCleared && a.id !== selectedRef.current ? rest : [a, ...rest];
  };
  // Each time the stream opens (the first time and after every reconnect) the list is read
  // again: an alarm raised before the stream was open, or while it was down, sends no event
  // this page could still receive, and would otherwise stay missing until a reload.
  useEffect(() => openStream({}, (e) => {
    if (!e.event.startsWith("alarm.") || !e.alarm) return;
    const a = e.alarm as Alarm;
    for (const arrived of reads.current.arriving.values()) arrived.push(a);
    setAlarms((list) => patch(list, a));
  }, (connected) => {
    setLive(connected);
    if (connected) load().catch((e: ApiError) => setMessage(e.message));
  }), [showCleared]);

  const sorted = useMemo(() => [...alarms].sort(order), [alarms]);
  const current = sorted.find((a) => a.id === selected) ?? sorted[0] ?? null;

  const act = async (what: "acknowledge" | "clear" | "comment") => {
    if (!current) return;
    try {
      const body = what === "comment" ? { text: comment } : {};
      if (what === "comment" && !comment.trim()) { commentBox.current?.focus(); return; }
      const a = await api.post<Alarm>(`/api/v1/alarms/${current.id}/${what}`, body);
      setAlarms((list) => list.map((x) => (x.id === a.id ? a : x)));
      if (what === "comment") setComment("");
      setMessage(what === "acknowledge" ? `Alarm ${a.id} acknowledged.` : what === "clear" ? `Alarm ${a.id} cleared.` : "Comment added.");
    } catch (e) {
      setMessage((e as Error).message);
    }
  };

  // Keyboard: j/k or arrows move, a acknowledges, c clears, m writes a comment, Enter opens the device.
  useEffect(() => {
    const on = (e: KeyboardEvent) => {
      const target = e.target as HTMLElement;
      if (target.tagName === "TEXTAREA" || target.tagName === "INPUT") {
        if (e.key === "Escape") target.blur();
        return;
      }
      const i = current ? sorted.indexOf(current) : -1;
      if ((e.key === "j" || e.key === "ArrowDown") && i + 1 < sorted.length) setSelected(sorted[i + 1].id);
      else if ((e.key === "k" || e.key === "ArrowUp") && i > 0) setSelected(sorted[i - 1].id);
      else if (e.key === "a") act("acknowledge");
      else if (e.key === "c") act("clear");
      else if (e.key === "m") { e.preventDefault(); commentBox.current?.focus(); }
      else if (e.key === "Enter" && current) location.hash = `#/devices/${encodeURIComponent(current.device)}`;
      else return;
      e.preventDefault();
    };
    addEventListener("keydown", on);
    return () => removeEventListener("keydown", on);
  });

  return (
    <section>
      <div class="page-title">
        <h1>Alarms</h1>
        <span class={`live ${live ? "on" : ""}`}>{live ? "live" : "reconnecting"}</span>
        <label class="check"><input type="checkbox" checked={showCleared} onChange={(e) => setShowCleared((e.target as HTMLInputElement).checked)} /> include cleared</label>
        <small class="muted keys">j/k move · a acknowledge · c clear · m comment · Enter device</small>
      </div>
      {message && <p class="notice" role="status" data-testid="alarm-message">{message}</p>}
      <div class="inbox">
        <ul class="alarm-inbox" data-testid="alarm-list" role="listbox" aria-label="Alarms">
          {sorted.length === 0 && <li class="muted">No alarms{showCleared ? "" : " open"}.</li>}
          {sorted.map((a) => (
            <li role="option" aria-selected={current?.id === a.id} class={`${current?.id === a.id ? "selected" : ""} ${a.acknowledged ? "acked" : ""} ${a.active ? "" : "cleared"}`}
                onClick={() => setSelected(a.id)} data-alarm={a.id}>
              <span class={`sev ${a.severity}`}>{a.severity}</span>
              <span class="strong">{a.device}</span>
              <span>{a.type} · {a.dedup_key.replace(`${a.type}:`, "")}</span>
              <small class="muted">{ago(a.raised)}{a.occurrences > 1 ? ` · ×${a.occurrences}` : ""}{a.acknowledged ? " · ack" : ""}</small>
            </li>
          ))}
        </ul>
        {current && (
          <article class="panel alarm-detail" data-testid="alarm-detail">
            <h2><span class={`sev ${current.severity}`}>{current.severity}</span> {current.type} on <a href={`#/devices/${encodeURIComponent(current.device)}`}>{current.device}</a></h2>
            <p>{current.evidence?.explanation}</p>
            <p class="muted">Raised {when(current.raised)} · last seen {ago(current.last_seen)} · {current.occurrences} occurrence(s)
              {current.escalations ? ` · escalated ${current.escalations}×` : ""} · state <b data-testid="alarm-state">{current.active ? "active" : "cleared"}{current.acknowledged ? ", acknowledged" : ""}</b>
              {current.acknowledged_by ? ` by ${current.acknowledged_by}` : ""}</p>
            {(current.evidence?.samples?.length ?? 0) > 0 && (
              <Chart key={current.id} data={evidenceData(current)} series={[{ label: current.dedup_key, color: "#c0392b", points: true }]} height={200}
                     markers={[{ ts: Date.parse(current.raised) / 1000, label: "raised" }]} testId="evidence-chart" />
            )}
            <div class="actions">
              <button onClick={() => act("acknowledge")} disabled={current.acknowledged || !current.active} data-testid="ack">Acknowledge (a)</button>
              <button onClick={() => act("clear")} disabled={!current.active}>Clear (c)</button>
            </div>
            {current.runbook && (<><h3>Runbook</h3><pre class="runbook">{current.runbook}</pre></>)}
            <h3>Comments</h3>
            <ul class="comments">
              {(current.comments ?? []).map((c) => <li><b>{c.by}</b> <small class="muted">{when(c.at)}</small><br />{c.text}</li>)}
            </ul>
            <textarea ref={commentBox} rows={2} placeholder="What did you find or do? (m)" value={comment}
                      onInput={(e) => setComment((e.target as HTMLTextAreaElement).value)}
                      onKeyDown={(e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) act("comment"); }} />
            <button onClick={() => act("comment")}>Add comment</button>
          </article>
        )}
      </div>
    </section>
  );
}
