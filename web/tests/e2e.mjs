// End-to-end test of the operator console: starts the real `fieldline serve`, feeds it with
// mosquitto_pub (a client nobody here wrote), and drives the console in Debian's Chromium
// through playwright-core. Screenshots of every page land in web/test-results/.
//
// node web/tests/e2e.mjs --binary build/release/fieldline
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { CHROMIUM, startServer } from "./platform.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const binary = path.resolve(args[args.indexOf("--binary") + 1] ?? "build/release/fieldline");
const results = path.resolve(here, "../test-results");
const ADMIN = "e2e-admin-token-" + Math.random().toString(36).slice(2) + "0123456789";
fs.mkdirSync(results, { recursive: true });

let failures = 0;
const log = (...m) => console.log(new Date().toISOString().slice(11, 23), ...m);
function check(cond, what) {
  if (cond) log("ok  ", what);
  else {
    failures++;
    log("FAIL", what);
  }
  return cond;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, fn, timeoutMs = 20000) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what} (last: ${last})`);
}
const { base, mqttPort, server, stop } = await startServer({ binary, adminToken: ADMIN, name: "fieldline-console-e2e",
  stderr: fs.openSync(path.join(results, "server.log"), "w") });
let publisher, browser, page;
let stopping = false;
server.on("exit", (code, signal) => { if (!stopping) { failures++; log("FAIL the server exited while the test ran:", code, signal); } });
const cleanup = async () => {
  try { publisher?.stdin.end(); publisher?.kill(); } catch {}
  try { await browser?.close(); } catch {}
  stopping = true;
  await stop();
};

async function rest(method, p, body, token = ADMIN, type = "application/json") {
  const res = await fetch(base + p, { method, headers: { Authorization: `Bearer ${token}`, "Content-Type": type },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? (() => { try { return JSON.parse(text); } catch { return text; } })() : null };
}

try {
  // Nothing but the console's files and health answers without a token.
  check((await fetch(`${base}/api/v1/fleet`)).status === 401, "GET /api/v1/fleet without a token is 401");
  const index = await fetch(`${base}/`, { headers: { "Accept-Encoding": "gzip" } });
  check(index.ok && (index.headers.get("content-security-policy") ?? "").includes("default-src 'self'"), "the console is served with a same-origin content security policy");
  // The console's size as a browser downloads it (gzipped), from the files the binary serves.
  const html = await index.text();
  const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]);
  let gz = 0;
  for (const a of assets) {
    const r = await fetch(base + a, { headers: { "Accept-Encoding": "gzip" } });
    const raw = await fetch(base + a, { headers: { "Accept-Encoding": "identity" } });
    check(r.headers.get("cache-control")?.includes("immutable") && raw.headers.get("content-encoding") === null, `${a} is cacheable and served plain to a client without gzip`);
    gz += Number(execFileSync("bash", ["-c", `curl -s -H 'Accept-Encoding: gzip' ${base}${a} | wc -c`]).toString().trim());
  }
  check(assets.length >= 2 && gz < 300 * 1024, `the console's assets are ${(gz / 1024).toFixed(1)} KiB gzipped (budget 300 KiB)`);

  // A device with a rule that alarms, and a contract-less profile.
  const dev = await rest("POST", "/api/v1/devices", { id: "boiler-1", profile: "boiler", tags: { site: "north", line: "A" } });
  check(dev.status === 201 && dev.body.token, "device registered over REST");
  const dev2 = await rest("POST", "/api/v1/devices", { id: "boiler-2", profile: "boiler", tags: { site: "south" } });
  const doc = `profile = "boiler"
[[rules]]
name = "overheat"
when = "temperature > 90"
clear = "temperature < 80"
severity = "major"
runbook = "Open the bypass valve, then check the burner."
`;
  const applied = await rest("POST", "/api/v1/detectors", doc, ADMIN, "application/toml");
  check(applied.status === 201 || applied.status === 200, `detector document applied (${applied.status} ${JSON.stringify(applied.body).slice(0, 120)})`);

  // Five minutes of boiler-2's history with a remaining-life label, a feature view, and two
  // trained versions of a model for the models page (over REST, as an integrator would).
  const view = `view = "boiler_life"
profile = "boiler"
[[metrics]]
metric = "temperature"
windows = ["1m"]
aggregates = ["mean", "slope"]
last = true
`;
  check((await rest("POST", "/api/v1/features/views", view, ADMIN, "application/toml")).status === 201, "feature view applied");
  const t0 = Date.now() - 330e3;
  const history = [];
  for (let i = 0; i < 300; i++) {
    const temp = 50 + 0.1 * i;
    history.push({ ts: t0 + i * 1000, values: { temperature: temp } });
    if (i >= 60) history.push({ ts: t0 + i * 1000 + 500, values: { rul: (90 - temp) / 0.1 } });
  }
  const seeded = await fetch(`${base}/api/v1/devices/boiler-2/telemetry`, { method: "POST", headers: { Authorization: `Bearer ${dev2.body.token}`, "Content-Type": "application/json" }, body: JSON.stringify(history) });
  check(seeded.status === 204, `boiler-2's history stored (${seeded.status})`);
  for (const rounds of [20, 10]) {
    const trained = await rest("POST", "/api/v1/models/boiler_rul/train", { profile: "boiler", label: "rul", rounds });
    check(trained.status === 201, `model trained (${trained.status} ${JSON.stringify(trained.body).slice(0, 160)})`);
  }

  // mosquitto_pub -l publishes each line it reads: a steady 5 Hz feed from a real client.
  publisher = spawn("mosquitto_pub", ["-h", "127.0.0.1", "-p", String(mqttPort), "-i", "boiler-1", "-u", "boiler-1", "-P", dev.body.token,
    "-t", "devices/boiler-1/telemetry", "-q", "1", "-l"], { stdio: ["pipe", "ignore", "inherit"] });
  let temperature = 60;
  const feed = setInterval(() => {
    const t = temperature + Math.sin(Date.now() / 3000) * 2;
    publisher.stdin.write(JSON.stringify({ values: { temperature: Number(t.toFixed(2)), pressure: 2.1 } }) + "\n");
  }, 200);
  await until("samples to be stored", async () => {
    const r = await rest("GET", "/api/v1/devices/boiler-1/metrics/temperature?from=-1m&format=columns");
    return r.status === 200 && r.body.ts.length > 3;
  });
  // A malformed message for the quarantine.
  execFileSync("mosquitto_pub", ["-h", "127.0.0.1", "-p", String(mqttPort), "-i", "boiler-1-bad", "-u", "boiler-1", "-P", dev.body.token,
    "-t", "devices/boiler-1/telemetry", "-q", "1", "-m", '{"values": {"temperature": 61.5,']);

  browser = await chromium.launch(CHROMIUM);
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  page = await context.newPage();
  const consoleErrors = [];
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  page.on("requestfailed", (r) => { if (!r.url().includes("/api/v1/stream")) log("request failed:", r.method(), r.url(), r.failure()?.errorText); });

  // Log in: a wrong token is refused with a reason, the admin token opens the fleet.
  await page.goto(base + "/");
  await page.fill("input[name=token]", "not-a-token");
  await page.click("button[type=submit]");
  check(await page.locator("[role=alert]").textContent({ timeout: 15000 }).then((t) => /not valid/.test(t)), "a wrong token is refused on the login page");
  await page.screenshot({ path: path.join(results, "login.png") });
  await page.fill("input[name=token]", ADMIN);
  await page.click("button[type=submit]");
  await page.waitForSelector("[data-device=boiler-1]", { timeout: 20000 });
  consoleErrors.length = 0;  // the refused login's 401 was meant
  check((await page.textContent("[data-testid=total-devices]")) === "2", "the fleet page counts 2 devices");
  await until("boiler-1 online", async () => /online/.test(await page.locator("[data-device=boiler-1]").textContent()), 15000);
  check(true, "boiler-1 shows online on the fleet page");
  await page.fill("[data-testid=fleet-search]", "site=south");
  check((await page.textContent("[data-testid=fleet-count]")) === "1 shown", "searching by tag filters the fleet");
  await page.fill("[data-testid=fleet-search]", "");
  await page.screenshot({ path: path.join(results, "fleet.png"), fullPage: true });

  // Device page: the chart grows while the page is open (samples over the WebSocket).
  await page.click("[data-device=boiler-1]");
  await page.waitForSelector("[data-testid=chart-temperature] canvas", { timeout: 20000 });
  const points = async () => Number((await page.textContent("[data-testid=points-temperature]")).split(" ")[0]);
  const before = await points();
  const grown = await until("the temperature chart to update live", async () => ((await points()) >= before + 5 ? await points() : false), 15000)
    .catch(() => false);
  check(grown, `the device chart updated live (${before} → ${grown} points without a reload)`);
  check(/boiler/.test(await page.textContent("[data-testid=device-page]")) && /line=A/.test(await page.textContent("[data-testid=device-page]")), "the device page shows its profile and tags");
  await page.selectOption("select[aria-label=Metric]", "temperature");
  await page.waitForSelector("[data-testid=lineage]", { timeout: 20000 }).then(() => check(true, "the device page shows the lineage of its latest reading"),
    () => check(false, "the device page shows the lineage of its latest reading"));
  check(/over mqtt/.test(await page.textContent("[data-testid=device-page]")), "the lineage names the transport the reading came over");
  await page.screenshot({ path: path.join(results, "device.png"), fullPage: true });

  // Alarms: one raised while the inbox is open arrives over the WebSocket.
  await page.click("nav a[href='#/alarms']");
  await page.waitForSelector("[data-testid=alarm-list]");
  temperature = 97;
  const raisedAt = Date.now();
  await page.waitForSelector("[data-testid=alarm-list] li[data-alarm]", { timeout: 20000 });
  check(true, `the alarm appeared in the inbox ${Date.now() - raisedAt} ms after the first hot reading, without a reload`);
  const alarmId = Number(await page.getAttribute("[data-testid=alarm-list] li[data-alarm]", "data-alarm"));
  check(/Open the bypass valve/.test(await page.textContent("[data-testid=alarm-detail]")), "the alarm shows its runbook inline");
  await page.waitForSelector("[data-testid=evidence-chart] canvas", { timeout: 15000 }).then(() => check(true, "the alarm shows its evidence chart"),
    () => check(false, "the alarm shows its evidence chart"));
  await page.screenshot({ path: path.join(results, "alarms.png"), fullPage: true });
  await page.keyboard.press("a");  // acknowledge from the keyboard
  await page.waitForSelector("text=acknowledged", { timeout: 15000 });
  const acked = await rest("GET", `/api/v1/alarms/${alarmId}`);
  check(acked.body.acknowledged === true && acked.body.acknowledged_by !== "", `the REST API says alarm ${alarmId} is acknowledged (by ${acked.body.acknowledged_by})`);
  await page.keyboard.press("m");
  await page.keyboard.type("Bypass opened, burner inspected");
  await page.keyboard.press("Control+Enter");
  await until("the comment to be saved", async () => (await rest("GET", `/api/v1/alarms/${alarmId}`)).body.comments?.some((c) => /Bypass opened/.test(c.text)));
  check(true, "a comment written in the inbox is stored");
  temperature = 60;

  // The device page links its alarms to the inbox.
  await page.goto(`${base}/#/devices/boiler-1`);
  await page.click(`a[href='#/alarms?id=${alarmId}']`, { timeout: 20000 });
  check(await page.waitForSelector(`[data-testid=alarm-list] li[data-alarm='${alarmId}'][aria-selected=true]`, { timeout: 15000 }).then(() => true, () => false),
    "an alarm linked from the device page opens selected in the inbox");

  // Data quality: the malformed message is in quarantine with its raw payload; a replay of it
  // is refused again with the reason.
  await page.click("nav a[href='#/quality']");
  await page.waitForSelector("[data-testid=quarantine] tbody tr td", { timeout: 20000 });
  await page.click("[data-testid=quarantine] button:has-text('Payload')");
  check(/"temperature": 61.5,/.test(await page.textContent("[data-testid=payload]")), "the quarantine browser shows the raw payload");
  await page.click("[data-testid=quarantine] button:has-text('Replay')");
  check(/1 still refused/.test(await page.locator("[data-testid=quality-message]").textContent({ timeout: 15000 })), "replaying a still-malformed message reports it refused");
  await page.screenshot({ path: path.join(results, "quality.png"), fullPage: true });

  // Models: promote v1, then v2, roll back — each only after a confirmation with a reason;
  // the registry says what the page did.
  await page.click("nav a[href='#/models']");
  await page.waitForSelector("[data-testid=model-versions] tbody tr", { timeout: 20000 });
  const stageOf = async (v) => (await rest("GET", "/api/v1/models/boiler_rul")).body.versions.find((x) => x.version === v).stage;
  const versionRow = (v) => page.locator("[data-testid=model-versions] tbody tr", { hasText: `v${v}` }).first();
  await versionRow(1).locator("button:has-text('Promote')").click();
  await page.waitForSelector("[data-testid=confirm]");
  await page.click("[data-testid=confirm] button:has-text('Cancel')");
  check(await stageOf(1) === "candidate", "cancelling the confirmation changes nothing");
  await versionRow(1).locator("button:has-text('Promote')").click();
  await page.fill("[data-testid=confirm] input", "first model");
  await page.click("[data-testid=confirm] button:has-text('Confirm')");
  await until("v1 in production", async () => (await stageOf(1)) === "production", 20000);
  check(true, "promoting v1 in the console put it in production");
  await page.waitForSelector("[data-testid=model-versions] tbody tr:has-text('v2') button:has-text('Promote')");
  await versionRow(2).locator("button:has-text('Promote')").click();
  await page.fill("[data-testid=confirm] input", "fewer rounds");
  await page.click("[data-testid=confirm] button:has-text('Confirm')");
  await until("v2 in production", async () => (await stageOf(2)) === "production", 20000);
  await page.waitForSelector("[data-testid=rollback]:has-text('v2')");
  await page.click("[data-testid=rollback]");
  await page.fill("[data-testid=confirm] input", "drifted");
  await page.click("[data-testid=confirm] button:has-text('Confirm')");
  await until("the rollback", async () => (await stageOf(1)) === "production" && (await stageOf(2)) === "archived", 20000);
  const changes = (await rest("GET", "/api/v1/models/boiler_rul")).body.stage_changes;
  check(changes.some((c) => c.reason === "drifted" && c.by === "admin"), "rolling back in the console restored v1, archived v2, and kept the reason");
  await page.waitForSelector("text=is in production again", { timeout: 15000 });
  await page.waitForSelector("[data-testid=confirm]", { state: "detached", timeout: 15000 });
  await page.screenshot({ path: path.join(results, "models.png"), fullPage: true });
  // KPIs: a definition applied over REST shows as cards and per-day charts.
  const kpi = await rest("POST", "/api/v1/kpis/definitions", 'kpi = "boiler_outcomes"\nprofile = "boiler"\nalarm_type = "rule"\n', ADMIN, "application/toml");
  check(kpi.status === 201, `KPI definition applied (${kpi.status})`);
  await page.click("nav a[href='#/kpis']");
  await page.waitForSelector("[data-testid=kpi-downtime]", { timeout: 20000 }).then(() => check(true, "the KPI page shows the profile's KPIs"),
    () => check(false, "the KPI page shows the profile's KPIs"));
  check(/boiler_outcomes v1: 2 devices/.test(await page.textContent("main")), "the KPI page names the definition and counts the profile's devices");
  await page.screenshot({ path: path.join(results, "kpis.png"), fullPage: true });

  // A tablet: the fleet in portrait.
  const tablet = await browser.newContext({ viewport: { width: 768, height: 1024 }, hasTouch: true, isMobile: true });
  const tab = await tablet.newPage();
  page = tab;  // for the screenshot if something fails from here
  tab.on("requestfailed", (r) => log("request failed:", r.method(), r.url(), r.failure()?.errorText));
  await tab.goto(base + "/");
  await tab.fill("input[name=token]", ADMIN);
  await tab.click("button[type=submit]");
  await tab.waitForSelector("[data-device=boiler-1]", { timeout: 20000 });
  const overflow = await tab.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  check(overflow <= 0, `the fleet page fits a tablet's width (overflow ${overflow}px)`);
  await tab.screenshot({ path: path.join(results, "fleet-tablet.png"), fullPage: true });

  // Signing out forgets the token: the API is out of reach again.
  page = await context.pages()[0];
  await page.click("button:has-text('Sign out')");
  await page.waitForSelector("input[name=token]");
  check(await page.evaluate(() => sessionStorage.getItem("fieldline.token")) === null, "signing out forgets the token");
  clearInterval(feed);
  check(consoleErrors.length === 0, `no errors in the browser console${consoleErrors.length ? ": " + consoleErrors.join(" | ") : ""}`);
} catch (e) {
  failures++;
  log("FAIL", e.stack ?? e);
  await page?.screenshot({ path: path.join(results, "failure.png"), fullPage: true }).catch(() => {});
  if (page) log("page text at failure:", (await page.textContent("body").catch(() => "")).slice(0, 500));
} finally {
  await cleanup();
}
log(failures ? `${failures} check(s) failed; screenshots and server.log in ${results}` : `all checks passed; screenshots in ${results}`);
process.exit(failures ? 1 : 0);
