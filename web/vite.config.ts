import { defineConfig } from "vite";

// The console is served by `fieldline serve` from the files this build writes to dist/
// (tools/embed_console.py compiles them into the binary). `npm run dev` proxies the API to a
// server on FIELDLINE_URL (default http://127.0.0.1:8080).
const target = process.env.FIELDLINE_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    target: "es2020",
    outDir: "dist",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    sourcemap: false,
    reportCompressedSize: true,
  },
  server: {
    proxy: {
      "/api": { target, ws: true },
      "/healthz": target,
    },
  },
});
