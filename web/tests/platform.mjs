// The real `fieldline serve` on free loopback ports and Debian's Chromium, shared by the
// browser test (web/tests/e2e.mjs) and the console benchmark (bench/console.mjs).
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

export const CHROMIUM = {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
};

const freePort = () => new Promise((resolve) => {
  const s = net.createServer();
  s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); });
});

// Starts the server on a fresh data directory and waits until /readyz answers 200. `stderr`:
// where its log goes (a file descriptor or "inherit"). stop() ends it (SIGTERM, at most 6 s)
// and removes the data directory.
export async function startServer({ binary, adminToken, stderr = "inherit", name = "fieldline" }) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `${name}-`));
  const httpPort = await freePort(), mqttPort = await freePort();
  const base = `http://127.0.0.1:${httpPort}`;
  const server = spawn(binary, ["serve", "--data-dir", dataDir, "--http-listen", `127.0.0.1:${httpPort}`, "--mqtt-listen", `127.0.0.1:${mqttPort}`],
    { env: { ...process.env, FIELDLINE_ADMIN_TOKEN: adminToken }, stdio: ["ignore", "ignore", stderr] });
  const stop = async () => {
    server.kill("SIGTERM");
    await new Promise((r) => { server.once("exit", r); setTimeout(r, 6000); });
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  for (let i = 0; ; i++) {
    try { if ((await fetch(`${base}/readyz`)).ok) break; } catch {}
    if (i > 200 || server.exitCode !== null) {
      await stop();
      throw new Error("the server did not become ready in 20 s");
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { base, mqttPort, server, stop };
}
