import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, api, forgetToken, saveToken, setUnauthorizedHandler, token } from "./api";
import { FleetPage } from "./pages/Fleet";
import { DevicePage } from "./pages/Device";
import { AlarmsPage } from "./pages/Alarms";
import { ModelsPage } from "./pages/Models";
import { QualityPage } from "./pages/Quality";
import { KpisPage } from "./pages/Kpis";
import "./styles.css";

function useHash(): string {
  const [hash, setHash] = useState(location.hash || "#/fleet");
  useEffect(() => {
    const on = () => setHash(location.hash || "#/fleet");
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return hash;
}

function Login(props: { onLogin: () => void; reason?: string }) {
  const [value, setValue] = useState("");
  const [error, setError] = useState(props.reason ?? "");
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    // Read from the form, not from state: autofill and a quick Enter may not have re-rendered.
    const entered = String(new FormData(e.target as HTMLFormElement).get("token") ?? "").trim();
    if (!entered) return;
    setBusy(true);
    setError("");
    try {
      // The fleet overview needs the admin token: a device token is refused (403) here.
      await api.get("/api/v1/fleet", entered);
      saveToken(entered);
      props.onLogin();
    } catch (err) {
      const e = err as ApiError;
      setError(e.status === 401 ? "That token is not valid." : e.status === 403 ? "That token cannot use the console (a device token?)." : e.message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login">
      <form onSubmit={submit} data-testid="login">
        <h1>Fieldline</h1>
        <p>Sign in with your access token. The platform printed the admin token on its first start.</p>
        <label>
          Token
          <input type="password" name="token" autoComplete="current-password" value={value} autoFocus
                 onInput={(e) => setValue((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit" disabled={busy}>Sign in</button>
        {error && <p class="error" role="alert">{error}</p>}
      </form>
    </main>
  );
}

const NAV = [
  ["#/fleet", "Fleet"],
  ["#/alarms", "Alarms"],
  ["#/models", "Models"],
  ["#/quality", "Data quality"],
  ["#/kpis", "KPIs"],
] as const;

function App() {
  const [signedIn, setSignedIn] = useState(!!token());
  const [reason, setReason] = useState<string | undefined>();
  const hash = useHash();
  useEffect(() => {
    setUnauthorizedHandler(() => {
      forgetToken();
      setReason("Your token is no longer accepted: sign in again.");
      setSignedIn(false);
    });
  }, []);
  if (!signedIn) return <Login reason={reason} onLogin={() => { setReason(undefined); setSignedIn(true); }} />;
  // "#/devices/pump-7?range=24%20h": the page and its arguments; the query is the page's own.
  const [, page, ...rest] = hash.split("?")[0].split("/");
  let body;
  switch (page) {
    case "devices": body = <DevicePage id={decodeURIComponent(rest[0] ?? "")} />; break;
    case "alarms": body = <AlarmsPage />; break;
    case "models": body = <ModelsPage />; break;
    case "quality": body = <QualityPage />; break;
    case "kpis": body = <KpisPage />; break;
    default: body = <FleetPage />;
  }
  return (
    <>
      <header class="top">
        <a class="brand" href="#/fleet">Fieldline</a>
        <nav>
          {NAV.map(([href, label]) => (
            <a href={href} class={hash.startsWith(href) || (href === "#/fleet" && page === "devices") ? "active" : ""}>{label}</a>
          ))}
        </nav>
        <button class="link" onClick={() => { forgetToken(); setSignedIn(false); }}>Sign out</button>
      </header>
      <main class="page">{body}</main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
