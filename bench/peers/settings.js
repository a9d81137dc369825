// Node-RED settings for bench/run: loopback only, no editor or admin API; info-level logs say
// when the flow is connected to the broker (bench/run waits for that).
module.exports = {
  uiHost: "127.0.0.1",
  uiPort: Number(process.env.NODE_RED_PORT || 1880),
  httpAdminRoot: false,
  httpNodeRoot: false,
  flowFile: "flow.json",
  credentialSecret: false,
  logging: { console: { level: "info", metrics: false, audit: false } },
};
