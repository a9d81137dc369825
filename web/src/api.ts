// The console's only way to the platform: the public REST API and the WebSocket stream, with
// the token the user logged in with. Nothing here is private to the console.

const TOKEN_KEY = "fieldline.token";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let onUnauthorized: () => void = () => {};

export function setUnauthorizedHandler(handler: () => void) {
  onUnauthorized = handler;
}

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function saveToken(t: string) {
  sessionStorage.setItem(TOKEN_KEY, t);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

async function call<T>(method: string, path: string, body?: unknown, tokenOverride?: string): Promise<T> {
  const t = tokenOverride ?? token();
  const headers: Record<string, string> = {};
  if (t) headers["Authorization"] = `Bearer ${t}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let parsed: any = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!res.ok) {
    const err = parsed?.error ?? {};
    if (res.status === 401 && tokenOverride === undefined) onUnauthorized();
    throw new ApiError(res.status, err.code ?? String(res.status), err.message ?? (text || res.statusText));
  }
  return parsed as T;
}

export const api = {
  get: <T>(path: string, tokenOverride?: string) => call<T>("GET", path, undefined, tokenOverride),
  post: <T>(path: string, body?: unknown) => call<T>("POST", path, body ?? {}),
};

export function qs(params: Record<string, string | number | undefined | null>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : "";
}

export type StreamEvent = { event: string; [k: string]: any };

// A WebSocket on /api/v1/stream that reconnects (1 s, doubling to 15 s) until closed. Browsers
// cannot set headers on a WebSocket, so the token travels as ?token=.
export function openStream(params: Record<string, string>, onEvent: (e: StreamEvent) => void,
                           onState?: (connected: boolean) => void): () => void {
  let ws: WebSocket | null = null;
  let closed = false;
  let delay = 1000;
  let timer: number | undefined;
  const connect = () => {
    const url = new URL("/api/v1/stream", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    url.searchParams.set("token", token() ?? "");
    ws = new WebSocket(url);
    ws.onopen = () => {
      delay = 1000;
      onState?.(true);
    };
    ws.onmessage = (m) => {
      try {
        onEvent(JSON.parse(m.data));
      } catch {
        /* a message that is not JSON is not ours to show */
      }
    };
    ws.onclose = () => {
      onState?.(false);
      if (closed) return;
      timer = window.setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    };
  };
  connect();
  return () => {
    closed = true;
    if (timer) clearTimeout(timer);
    ws?.close();
  };
}

// Shapes of the answers the console reads (the REST API's, abridged).
export type Prediction = { model: string; version: number; value: number; as_of: string; top_contributions?: { feature: string; contribution: number }[] };
export type FleetDevice = {
  id: string; name: string; profile: string; site: string; tags: Record<string, string>; state: string; online: boolean;
  last_seen: string | null; conformance_rate: number | null; contract_version: number; open_alarms: number;
  highest_severity: string | null; predictions: Prediction[];
};
export type Fleet = {
  at: string;
  totals: { devices: number; online: number; offline: number; disabled: number; with_open_alarms: number };
  groups: { site: string; profile: string; devices: number; online: number; with_open_alarms: number }[];
  devices: FleetDevice[];
};
export type Alarm = {
  id: number; type: string; device: string; dedup_key: string; severity: string; state: string; active: boolean;
  acknowledged: boolean; raised: string; last_seen: string; cleared: string | null; acknowledged_at: string | null;
  acknowledged_by: string; cleared_by: string; occurrences: number; escalations: number; runbook?: string;
  evidence: { score: number; explanation: string; samples: [string, number | null, number][] };
  comments?: { at: string; by: string; text: string }[];
};
