// The operator console's targets, measured in Debian's Chromium (playwright-core):
//   - first paint of the fleet page with N devices registered (default 10,000): from the start
//     of navigation to the first frame that shows the fleet's rows, median of 5 loads;
//   - a device chart of 86,400 points (24 h at 1 Hz, every sample, shown over 7 days): uPlot's draw of them, and
//     from navigation to drawn, median of 5;
//   - the console's static assets, gzipped as the binary serves them.
// Run by bench/console.sh, which says which machine it ran on.
import { execFileSync } from "node:child_process";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const { chromium } = createRequire(path.resolve(here, "../web/package.json"))("playwright-core");
const { CHROMIUM, startServer } = await import("../web/tests/platform.mjs");
const devices = Number(process.argv[2] ?? 10000);
const binary = path.resolve(here, "../build/release/fieldline");
const ADMIN = "bench-admin-token-0123456789abcdef";
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const { base, stop } = await startServer({ binary, adminToken: ADMIN, name: "fieldline-console-bench" });
const auth = { Authorization: `Bearer ${ADMIN}`, "Content-Type": "application/json" };
let browser;
try {
  // N devices over REST, 8 requests at a time, on 4 sites and 3 profiles.
  const t0 = Date.now();
  let next = 0;
  const profiles = ["pump", "hvac", "energy-meter"];
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < devices) {
      const i = next++;
      const id = `dev-${String(i).padStart(5, "0")}`;
      const r = await fetch(`${base}/api/v1/devices`, { method: "POST", headers: auth,
        body: JSON.stringify({ id, profile: profiles[i % 3], tags: { site: `site-${i % 4}`, line: `L${i % 17}` } }) });
      if (r.status !== 201) throw new Error(`register ${id}: ${r.status} ${await r.text()}`);
    }
  }));
  const registerS = (Date.now() - t0) / 1000;

  // 24 h of 1 Hz samples for one device, in the past, over its own token.
  const chartDevice = await (await fetch(`${base}/api/v1/devices`, { method: "POST", headers: auth, body: JSON.stringify({ id: "chart-1", profile: "boiler" }) })).json();
  const start = Date.now() - 86400e3;
  for (let b = 0; b < 86400; b += 4320) {
    const batch = [];
    for (let i = b; i < b + 4320; i++) batch.push({ ts: start + i * 1000, values: { temperature: 60 + 10 * Math.sin(i / 3600) + Math.random() } });
    const r = await fetch(`${base}/api/v1/devices/chart-1/telemetry`, { method: "POST", headers: { Authorization: `Bearer ${chartDevice.token}`, "Content-Type": "application/json" }, body: JSON.stringify(batch) });
    if (r.status !== 204 && r.status !== 200) throw new Error(`telemetry: ${r.status} ${await r.text()}`);
  }

  const fleetT = Date.now();
  const fleetBody = await (await fetch(`${base}/api/v1/fleet`, { headers: auth })).text();
  const fleetApiMs = Date.now() - fleetT;

  browser = await chromium.launch(CHROMIUM);
  const fleetPaints = [], chartDraws = [], chartTotals = [];
  for (let run = 0; run < 5; run++) {
    const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
    await context.addInitScript((t) => sessionStorage.setItem("fieldline.token", t), ADMIN);
    const page = await context.newPage();
    await page.goto(`${base}/#/fleet`);
    await page.waitForFunction(() => (window).__fleetPaintMs !== undefined, null, { timeout: 30000 });
    const rows = await page.locator("[data-device]").count();
    if (rows === 0) throw new Error("the fleet page showed no rows");
    fleetPaints.push(await page.evaluate(() => (window).__fleetPaintMs));
    await page.goto(`${base}/#/devices/chart-1?range=7%20d&raw=1`);
    await page.reload();
    await page.waitForFunction(() => (window).__chartRenderMs?.temperature !== undefined, null, { timeout: 30000 });
    const points = Number((await page.textContent("[data-testid=points-temperature]")).split(" ")[0]);
    if (points < 86400) throw new Error(`the chart has ${points} points, not 86,400`);
    chartDraws.push(await page.evaluate(() => (window).__chartRenderMs.temperature));
    chartTotals.push(await page.evaluate(() => performance.now()));
    await context.close();
  }
  // Assets as served: gzipped bytes on the wire (curl does not decode) and their plain size.
  const html = await (await fetch(`${base}/`)).text();
  let gz = 0, plain = 0;
  for (const [, a] of html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)) {
    gz += Number(execFileSync("bash", ["-c", `curl -s -H 'Accept-Encoding: gzip' '${base}${a}' | wc -c`]).toString().trim());
    plain += (await (await fetch(base + a, { headers: { "Accept-Encoding": "identity" } })).arrayBuffer()).byteLength;
  }
  const result = {
    devices, register_seconds: registerS, fleet_api_ms: fleetApiMs, fleet_api_bytes: fleetBody.length,
    fleet_first_paint_ms: { median: median(fleetPaints), runs: fleetPaints.map((x) => Math.round(x)) },
    chart_points: 86400,
    chart_draw_ms: { median: median(chartDraws), runs: chartDraws.map((x) => Math.round(x)) },
    chart_navigation_to_drawn_ms: { median: median(chartTotals), runs: chartTotals.map((x) => Math.round(x)) },
    assets_gzip_bytes: gz, assets_bytes: plain,
  };
  console.log(JSON.stringify(result));
} finally {
  await browser?.close();
  await stop();
}
