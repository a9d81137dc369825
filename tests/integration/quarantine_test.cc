// Validation at ingestion and quarantine, end to end with real clients (curl, mosquitto_pub)
// against the real server: conforming, flagged and refused messages, what each sender
// learns, quarantine → contract fix → replay → data present exactly once, and contracts
// applied while data streams in.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "contract_fixture.h"

namespace fieldline::itest {
namespace {

using namespace std::chrono_literals;

constexpr const char* kPump = R"(profile = "pump"
required_tags = ["site"]

[metrics.temperature]
type = "float"
unit = "Cel"
min = -50
max = 150
required = true

[metrics.vibration]
type = "float"
unit = "mm/s"
max_rate_hz = 1
)";

class Quarantine : public ContractFixture {};

}  // namespace

TEST_F(Quarantine, ValidatesFlagsQuarantinesAndReplaysExactlyOnce) {
  apply(kPump);
  std::string token = add_pump("p1", "north");
  ASSERT_FALSE(token.empty());
  // Conforming, and in another unit: stored in the contract's unit.
  EXPECT_EQ(send("p1", token, R"({"ts": 1795400000000, "values": {"temperature": 20, "vibration": 1.5}})").first, 204);
  EXPECT_EQ(send("p1", token, R"({"ts": 1795400001000, "values": {"temperature": 68}, "units": {"temperature": "[degF]"}})").first, 204);
  // Out of range: stored, flagged, and the sender is told.
  auto [flag_code, flagged] = send("p1", token, R"({"ts": 1795400002000, "values": {"temperature": 200}})");
  EXPECT_EQ(flag_code, 200);
  EXPECT_EQ(flagged.at("flagged").as_int64(), 1);
  EXPECT_NE(std::string(flagged.at("warning").as_string()).find("outside [-50, 150]"), std::string::npos) << flagged;
  auto temps = server_->query("p1", "temperature");
  ASSERT_EQ(temps.size(), 3u);
  EXPECT_EQ(temps[1].at("value").to_number<double>(), 20.0);  // 68 [degF], exactly
  EXPECT_FALSE(temps[0].as_object().contains("quality"));
  EXPECT_EQ(temps[2].at("quality").as_string(), "out_of_range");
  // Each refusal names its reason and where the message went.
  struct Case {
    std::string body;
    int status;
    std::string code, says;
  };
  std::vector<uint64_t> quarantined;
  for (const auto& c : std::vector<Case>{
           {R"({"ts": 1795400003000, "values": {"temperature": 21, "pressure": 3.2}})", 422, "ingest.unknown_metric", "'pressure'"},
           {R"({"ts": 1795400004000, "values": {"temperature": "hot"}})", 422, "ingest.wrong_type", "must be float"},
           {R"({"ts": 1795400005000, "values": {"vibration": 1}})", 422, "ingest.missing_required", "'temperature'"},
           {R"({"ts": 1795400006000, "values": {"temperature": 20}, "units": {"temperature": "degC"}})", 422,
            "ingest.unit_mismatch", "did you mean 'Cel'"},
           {R"({"ts": 1795400007000, "values": {"temperature": 20}, "units": {"temperature": "bar"}})", 422,
            "ingest.unit_mismatch", "'bar'"},
           {"\x01\x02{not json", 400, "ingest.bad_payload", "invalid JSON"},
       }) {
    auto [code, body] = send("p1", token, c.body);
    EXPECT_EQ(code, c.status) << c.body << " -> " << body;
    const auto& e = body.at("error");
    EXPECT_EQ(e.at("code").as_string(), c.code) << body;
    EXPECT_NE(std::string(e.at("message").as_string()).find(c.says), std::string::npos) << body;
    EXPECT_EQ(e.at("contract_version").as_int64(), 1);
    quarantined.push_back(static_cast<uint64_t>(e.at("quarantine_id").as_int64()));
  }
  // Nothing of a refused message is stored: 21 Cel at ...3000 is not there.
  EXPECT_EQ(server_->query("p1", "temperature").size(), 3u);

  // MQTT 5 learns the reason in its PUBACK (0x99, payload format invalid); MQTT 3.1.1 has no
  // reason codes, and its QoS 1 message is acknowledged once quarantine holds it.
  auto v5 = run("mosquitto_pub " + server_->mosquitto_args("p1", token) +
                " -V 5 -q 1 -d -i p1-v5 -t devices/p1/telemetry -m '{\"ts\": 1795400008000, \"values\": {\"temperature\": 22, \"pressure\": 1.1}}'");
  EXPECT_NE(v5.output.find("RC:153"), std::string::npos) << v5.output;
  EXPECT_NE(v5.output.find("'pressure' is not in the contract"), std::string::npos) << v5.output;
  auto v3 = run("mosquitto_pub " + server_->mosquitto_args("p1", token) +
                " -V 311 -q 1 -d -i p1-v3 -t devices/p1/telemetry -m '{\"ts\": 1795400009000, \"values\": {\"temperature\": 23, \"pressure\": 1.2}}'");
  EXPECT_EQ(v3.status, 0) << v3.output;
  EXPECT_NE(v3.output.find("received PUBACK (Mid: 1, RC:0)"), std::string::npos) << v3.output;

  // The quarantine, filtered by reason: the HTTP one and both MQTT ones.
  auto listed = run(cli("quarantine list --reason unknown_metric --format json"));
  ASSERT_EQ(listed.status, 0) << listed.output;
  auto list = json_of(listed.output).at("messages").as_array();
  ASSERT_EQ(list.size(), 3u) << listed.output;
  std::multiset<std::string> transports;
  for (const auto& m : list) transports.insert(std::string(m.at("transport").as_string()));
  EXPECT_EQ(transports, (std::multiset<std::string>{"http", "mqtt", "mqtt"}));
  EXPECT_EQ(server_->metric("fieldline_messages_quarantined_total", "reason=\"unknown_metric\""), 3);
  // show: the raw payload as it came, with its fingerprint.
  auto shown = run(cli("quarantine show " + std::to_string(quarantined.back()) + " --format json"));
  ASSERT_EQ(shown.status, 0) << shown.output;
  auto hostile = json_of(shown.output);
  EXPECT_EQ(hostile.at("reason").as_string(), "bad_payload");
  EXPECT_EQ(hostile.at("payload_base64").as_string(), "AQJ7bm90IGpzb24=");  // "\x01\x02{not json"
  EXPECT_EQ(hostile.at("sha256").as_string().size(), 64u);
  // export: one JSON object per line, payloads included.
  auto exported = run(cli("quarantine export --device p1 -o " + dir_.path() + "/q.ndjson"));
  ASSERT_EQ(exported.status, 0) << exported.output;
  std::ifstream in(dir_.path() + "/q.ndjson");
  std::string line;
  size_t lines = 0;
  while (std::getline(in, line)) {
    auto rec = json_of(line);
    EXPECT_TRUE(rec.as_object().contains("payload_base64")) << line;
    ++lines;
  }
  EXPECT_EQ(lines, 8u);

  // Replaying before the fix changes nothing: still refused, still in quarantine.
  auto early = run(cli("quarantine replay --reason unknown_metric --format json"));
  EXPECT_EQ(early.status, 1) << early.output;
  EXPECT_EQ(json_of(early.output).at("rejected").as_int64(), 3);
  // The fix: pressure becomes an optional metric (a compatible change), then replay.
  apply(std::string(kPump) + "\n[metrics.pressure]\ntype = \"float\"\nunit = \"bar\"\n");
  auto replayed = run(cli("quarantine replay --reason unknown_metric --format json"));
  ASSERT_EQ(replayed.status, 0) << replayed.output;
  auto r = json_of(replayed.output);
  EXPECT_EQ(r.at("stored").as_int64(), 3) << replayed.output;
  auto pressure = server_->query("p1", "pressure");
  ASSERT_EQ(pressure.size(), 3u);
  EXPECT_EQ(pressure[0].at("value").to_number<double>(), 3.2);
  // Replaying again, by id or by reason, stores nothing twice.
  auto again = run(cli("quarantine replay --id " + std::to_string(list[0].at("id").as_int64()) + " --format json"));
  EXPECT_EQ(again.status, 0) << again.output;
  EXPECT_EQ(json_of(again.output).at("results").at(0).at("result").as_string(), "already_replayed") << again.output;
  auto by_reason = run(cli("quarantine replay --reason unknown_metric --format json"));
  EXPECT_EQ(json_of(by_reason.output).at("stored").as_int64(), 0) << by_reason.output;
  EXPECT_EQ(server_->query("p1", "pressure").size(), 3u);
  EXPECT_EQ(server_->query("p1", "temperature").size(), 6u);
  // Replayed messages say so, and the rest are still pending.
  auto pending = json_of(run(cli("quarantine list --replayed false --format json")).output).at("messages").as_array();
  EXPECT_EQ(pending.size(), 5u);
  auto audit = run(cli("audit --format json"));
  EXPECT_NE(audit.output.find("quarantine.replay"), std::string::npos) << audit.output;
  // Replays do not count as new messages in the data-quality figures: 9 over HTTP, 2 over MQTT.
  auto [qcode, qtext] = server_->http("GET", "/api/v1/quality?device=p1");
  ASSERT_EQ(qcode, 200) << qtext;
  EXPECT_EQ(json_of(qtext).at("devices").at(0).at("messages").as_int64(), 11) << qtext;
  // Quarantine survives a restart.
  ASSERT_EQ(server_->terminate().first, 0);
  server_->start();
  auto after = json_of(run(cli("quarantine list --format json")).output).at("messages").as_array();
  EXPECT_EQ(after.size(), 8u);
  // An MQTT 3.1.1 message acknowledged because quarantine held it survives kill -9 at once.
  auto acked = run("mosquitto_pub " + server_->mosquitto_args("p1", token) +
                   " -V 311 -q 1 -i p1-kill -t devices/p1/telemetry -m '{\"ts\": 1795400009500, \"values\": {\"bogus\": 1}}'");
  ASSERT_EQ(acked.status, 0) << acked.output;
  server_->kill9();
  server_->start();
  auto survived = json_of(run(cli("quarantine list --reason unknown_metric --replayed false --format json")).output).at("messages").as_array();
  ASSERT_EQ(survived.size(), 1u);
  EXPECT_NE(std::string(survived[0].at("detail").as_string()).find("'bogus'"), std::string::npos);
}

TEST_F(Quarantine, RateAboveTheContractIsFlaggedAndSeriesCarryProtocolAndContractVersion) {
  apply(kPump);
  std::string token = add_pump("p2", "south");
  // vibration allows 1 Hz with a one-second burst: ten samples 10 ms apart exceed it.
  std::string body = "[";
  for (int i = 0; i < 10; ++i) {
    body += std::string(i ? "," : "") + "{\"ts\": " + std::to_string(1795400000000LL + i * 10) +
            ", \"values\": {\"temperature\": 20, \"vibration\": 1}}";
  }
  body += "]";
  auto [code, reply] = send("p2", token, body);
  EXPECT_EQ(code, 200) << reply;
  EXPECT_EQ(reply.at("flagged").as_int64(), 8) << reply;  // two fit the burst
  auto vib = server_->query("p2", "vibration");
  ASSERT_EQ(vib.size(), 10u);
  size_t rate_flags = 0;
  for (const auto& p : vib) rate_flags += p.as_object().contains("quality") && p.at("quality").as_string() == "rate_exceeded";
  EXPECT_EQ(rate_flags, 8u);
  // The series carry the device's tags, the profile, the protocol and the contract version,
  // so tag filters can leave flagged values out.
  auto [qc, q] = server_->http("GET", "/api/v1/query?selector=vibration%7Bdevice%3D%22p2%22%2Cquality%3D%22%22%7D&agg=count"
                                      "&group_by=protocol,contract_version&from=1795400000000&to=1795400010000");
  ASSERT_EQ(qc, 200) << q;
  auto groups = json_of(q).at("series").as_array();
  ASSERT_EQ(groups.size(), 1u) << q;
  EXPECT_EQ(groups[0].at("labels").at("protocol").as_string(), "http") << q;
  EXPECT_EQ(groups[0].at("labels").at("contract_version").as_string(), "1") << q;
  EXPECT_EQ(groups[0].at("points").at(0).at("value").to_number<double>(), 2) << q;
  auto exported = run(cli("export --selector 'vibration{device=\"p2\"}' --from 1795400000000 --to 1795400010000 --format csv"));
  ASSERT_EQ(exported.status, 0) << exported.output;
  EXPECT_NE(exported.output.find("contract_version=1;profile=pump;protocol=http;site=south,"), std::string::npos) << exported.output;
  EXPECT_NE(exported.output.find("quality=rate_exceeded"), std::string::npos) << exported.output;
}

TEST_F(Quarantine, ContractAppliedWhileDataStreamsInIsNeverHalfApplied) {
  apply(kPump);
  std::string token = add_pump("p3", "east");
  // 4000 MQTT messages of two metrics each, one per line, from one mosquitto_pub.
  std::string feed = dir_.path() + "/feed.txt";
  {
    std::ofstream out(feed);
    for (int i = 0; i < 4000; ++i) {
      out << "{\"ts\": " << 1795400000000LL + i * 1000 << ", \"values\": {\"temperature\": " << 20 + i % 7
          << ", \"vibration\": 0.5}}\n";
    }
  }
  std::thread streamer([&] {
    auto r = run("mosquitto_pub " + server_->mosquitto_args("p3", token) + " -q 1 -i p3 -t devices/p3/telemetry -l < " + feed, 120);
    EXPECT_EQ(r.status, 0) << r.output;
  });
  // Apply new versions while the messages arrive (each a compatible widening).
  for (int v = 0; v < 6; ++v) {
    std::this_thread::sleep_for(30ms);
    apply(std::string(kPump).replace(std::string(kPump).find("max = 150"), 9, "max = " + std::to_string(151 + v)));
  }
  streamer.join();
  auto exported = run(cli("export --selector '{device=\"p3\"}' --from 1795400000000 --to 1795404000000 --format csv"), 120);
  ASSERT_EQ(exported.status, 0) << exported.output.substr(0, 500);
  // Every message's two values went to series of one and the same contract version.
  std::map<std::string, std::set<std::string>> versions_by_ts;
  std::set<std::string> versions;
  std::istringstream rows(exported.output);
  std::string row;
  std::getline(rows, row);  // header
  size_t samples = 0;
  while (std::getline(rows, row)) {
    auto at = row.find("contract_version=");
    ASSERT_NE(at, std::string::npos) << row;
    std::string version = row.substr(at + 17, row.find(';', at) - at - 17);
    auto ts_begin = row.find(',', row.find(',', row.find(',') + 1) + 1) + 1;
    std::string ts = row.substr(ts_begin, row.find(',', ts_begin) - ts_begin);
    versions_by_ts[ts].insert(version);
    versions.insert(version);
    ++samples;
  }
  EXPECT_EQ(samples, 8000u);
  for (const auto& [ts, vs] : versions_by_ts) EXPECT_EQ(vs.size(), 1u) << ts;
  // The applies landed mid-stream: more than one version validated the messages.
  EXPECT_GT(versions.size(), 1u);
}

}  // namespace fieldline::itest

namespace fieldline::itest {

TEST_F(Quarantine, VendorLayoutIsQuarantinedThenReadByAMappingDecoderAfterTheFix) {
  apply(kPump);
  std::string token = add_pump("v1", "west");
  // A vendor's own layout: the core JSON decoder cannot read it, so it is quarantined whole.
  const std::string vendor = R"({"meta": {"time": 1795400000000}, "sensors": {"t_raw": 725, "vib": 2.5}})";
  auto [code, body] = send("v1", token, vendor);
  EXPECT_EQ(code, 400) << body;
  EXPECT_EQ(body.at("error").at("code").as_string(), "ingest.bad_payload") << body;
  // The fix: the profile's contract gets a mapping decoder (t_raw is tenths of a degree F).
  apply(std::string(kPump) + R"(
[decoder]
format = "mapping"
time = "/meta/time"
[decoder.fields.temperature]
pointer = "/sensors/t_raw"
scale = 0.1
unit = "[degF]"
[decoder.fields.vibration]
pointer = "/sensors/vib"
)");
  auto replayed = run(cli("quarantine replay --device v1 --format json"));
  ASSERT_EQ(replayed.status, 0) << replayed.output;
  EXPECT_EQ(json_of(replayed.output).at("stored").as_int64(), 1) << replayed.output;
  auto temps = server_->query("v1", "temperature");
  ASSERT_EQ(temps.size(), 1u);
  EXPECT_EQ(temps[0].at("value").to_number<double>(), 22.5);  // 72.5 [degF]
  EXPECT_EQ(temps[0].at("ts").as_string(), "2026-11-23T02:13:20Z");
  // New messages in that layout are read the same way, over HTTP and MQTT.
  EXPECT_EQ(send("v1", token, R"({"meta": {"time": 1795400001000}, "sensors": {"t_raw": 730}})").first, 204);
  auto m = run("mosquitto_pub " + server_->mosquitto_args("v1", token) +
               " -q 1 -i v1 -t devices/v1/telemetry -m '{\"meta\": {\"time\": 1795400002000}, \"sensors\": {\"t_raw\": 735}}'");
  EXPECT_EQ(m.status, 0) << m.output;
  EXPECT_EQ(server_->query("v1", "temperature").size(), 3u);
}

TEST_F(Quarantine, SenmlInJsonAndCborFromRealClients) {
  apply(kPump);
  std::string token = add_pump("s1", "west");
  // SenML JSON over MQTT 5, named by the content type; units converted to the contract's.
  auto pub = run("mosquitto_pub " + server_->mosquitto_args("s1", token) +
                 " -V 5 -q 1 -i s1 -t devices/s1/telemetry -D publish content-type application/senml+json"
                 " -m '[{\"bn\": \"urn:dev:s1:\", \"bt\": 1795400000, \"n\": \"temperature\", \"u\": \"K\", \"v\": 300.15},"
                 " {\"n\": \"vibration\", \"u\": \"mm/s\", \"v\": 1.25}]'");
  EXPECT_EQ(pub.status, 0) << pub.output;
  auto temps = server_->query("s1", "temperature");
  ASSERT_EQ(temps.size(), 1u);
  EXPECT_EQ(temps[0].at("value").to_number<double>(), 27.0);
  // SenML CBOR over HTTP (RFC 8428 section 6 labels), with curl.
  std::string cbor;
  auto head = [&](int major, unsigned n) { cbor.push_back(static_cast<char>(major << 5 | n)); };
  auto text = [&](const std::string& t) {
    head(3, static_cast<unsigned>(t.size()));
    cbor += t;
  };
  head(4, 1);
  head(5, 3);
  head(0, 0);  // n
  text("temperature");
  head(0, 2);  // v
  head(0, 21);
  head(0, 6);  // t: -3, relative to receipt
  head(1, 2);
  std::string path = dir_.path() + "/pack.cbor";
  std::ofstream(path, std::ios::binary) << cbor;
  auto post = run("curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Authorization: Bearer " + token +
                  "' -H 'Content-Type: application/senml+cbor' --data-binary @" + path + " " + server_->url() +
                  "/api/v1/devices/s1/telemetry");
  EXPECT_EQ(post.output, "204") << post.output;
  temps = server_->query("s1", "temperature");
  ASSERT_EQ(temps.size(), 2u);
  EXPECT_EQ(temps[1].at("value").to_number<double>(), 21.0);
  // A hostile CBOR body goes to quarantine with a clear reason; the server carries on.
  std::ofstream(path, std::ios::binary) << std::string("\x9b\xff\xff\xff\xff\xff\xff\xff\xff", 9);
  auto hostile = run("curl -s -X POST -H 'Authorization: Bearer " + token + "' -H 'Content-Type: application/senml+cbor' --data-binary @" +
                     path + " " + server_->url() + "/api/v1/devices/s1/telemetry");
  EXPECT_NE(hostile.output.find("CBOR at byte"), std::string::npos) << hostile.output;
  EXPECT_NE(hostile.output.find("quarantine_id"), std::string::npos) << hostile.output;
  EXPECT_EQ(server_->query("s1", "temperature").size(), 2u);
}

}  // namespace fieldline::itest

namespace fieldline::itest {

// Calibration records share the contract tests' server and helpers.
class Calibrations : public Quarantine {};

TEST_F(Calibrations, AppliedAtIngestionTaggedRecoverableAndOverdueRaisesAnEvent) {
  apply(kPump);
  std::string token = add_pump("c1", "north");
  // Before any calibration: stored as sent.
  EXPECT_EQ(send("c1", token, R"({"ts": 1795400000000, "values": {"temperature": 20}})").first, 204);
  // Gain and offset from a certificate, valid from a second later.
  auto added = run(cli("calibration add c1 temperature --gain 1.02 --offset -0.3 --reference CERT-17 "
                       "--valid-from 1795400001000 --due 2099-01-01T00:00:00Z --format json"));
  ASSERT_EQ(added.status, 0) << added.output;
  auto cal = json_of(added.output);
  const int64_t id = cal.at("id").as_int64();
  EXPECT_EQ(cal.at("status").as_string(), "current");
  EXPECT_EQ(send("c1", token, R"({"ts": 1795400002000, "values": {"temperature": 20}})").first, 204);
  // Over MQTT too: the calibration is the device's, whatever the transport.
  auto m = run("mosquitto_pub " + server_->mosquitto_args("c1", token) +
               " -q 1 -i c1 -t devices/c1/telemetry -m '{\"ts\": 1795400003000, \"values\": {\"temperature\": 30}}'");
  EXPECT_EQ(m.status, 0) << m.output;
  auto [code, text] = server_->http("GET", "/api/v1/devices/c1/metrics/temperature?from=0&to=now%2B1d&raw=true");
  ASSERT_EQ(code, 200) << text;
  auto pts = json_of(text).at("points").as_array();
  ASSERT_EQ(pts.size(), 3u);
  EXPECT_EQ(pts[0].at("value").to_number<double>(), 20);  // before valid_from: untouched
  EXPECT_FALSE(pts[0].as_object().contains("calibration"));
  EXPECT_EQ(pts[1].at("value").to_number<double>(), 20.1);  // 20 x 1.02 - 0.3
  EXPECT_EQ(pts[1].at("calibration").as_int64(), id);
  EXPECT_EQ(pts[1].at("raw").to_number<double>(), 20);  // the reading as sent, recovered
  EXPECT_EQ(pts[2].at("value").to_number<double>(), 30.3);
  EXPECT_EQ(pts[2].at("raw").to_number<double>(), 30);
  // The series says which calibration made it.
  auto exported = run(cli("export --selector 'temperature{device=\"c1\",calibration=\"" + std::to_string(id) +
                          "\"}' --from 1795400000000 --to 1795400010000 --format csv"));
  EXPECT_EQ(std::count(exported.output.begin(), exported.output.end(), '\n'), 3) << exported.output;
  // A record already past its due date is overdue: an event, once, and a gauge.
  auto late = run(cli("calibration add c1 vibration --gain 1.1 --valid-from 2026-01-01T00:00:00Z --due 2026-06-01T00:00:00Z"));
  ASSERT_EQ(late.status, 0) << late.output;
  auto events = json_of(run(cli("events --kind calibration.overdue --format json")).output).at("events").as_array();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].at("device").as_string(), "c1");
  EXPECT_EQ(events[0].at("detail").at("metric").as_string(), "vibration");
  EXPECT_EQ(server_->metric("fieldline_calibrations_overdue"), 1);
  auto list = json_of(run(cli("calibration list c1 --format json")).output).at("calibrations").as_array();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[1].at("status").as_string(), "overdue");
  // Calibrations and their events survive a restart and keep applying.
  ASSERT_EQ(server_->terminate().first, 0);
  server_->start();
  EXPECT_EQ(send("c1", token, R"({"ts": 1795400004000, "values": {"temperature": 10}})").first, 204);
  EXPECT_EQ(server_->query("c1", "temperature").back().at("value").to_number<double>(), 9.9);
  EXPECT_EQ(json_of(run(cli("events --format json")).output).at("events").as_array().size(), 1u);
  auto audit = run(cli("audit --format json"));
  EXPECT_NE(audit.output.find("calibration.add"), std::string::npos) << audit.output;
  // A bad record is refused with the field named.
  auto bad = run(cli("calibration add c1 temperature --polynomial 0,0,1 --raw-min -1 --raw-max 1"));
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.output.find("not monotonic"), std::string::npos) << bad.output;
}

}  // namespace fieldline::itest

namespace fieldline::itest {

TEST_F(Quarantine, FirmwareAndGatewayReportedByTheDeviceTagItsSeries) {
  std::string token = add_pump("f1", "north");
  // MQTT 5 CONNECT user properties.
  auto pub = run("mosquitto_pub " + server_->mosquitto_args("f1", token) +
                 " -V 5 -q 1 -i f1 -t devices/f1/telemetry -D connect user-property firmware 2.4.1"
                 " -D connect user-property gateway gw-north-1 -m '{\"ts\": 1795400000000, \"values\": {\"temperature\": 20}}'");
  EXPECT_EQ(pub.status, 0) << pub.output;
  // HTTP headers, after a firmware update.
  auto post = run("curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Authorization: Bearer " + token +
                  "' -H 'X-Fieldline-Firmware: 2.5.0' -d '{\"ts\": 1795400001000, \"values\": {\"temperature\": 21}}' " +
                  server_->url() + "/api/v1/devices/f1/telemetry");
  EXPECT_EQ(post.output, "204");
  auto [code, q] = server_->http("GET", "/api/v1/query?selector=temperature%7Bdevice%3D%22f1%22%7D&agg=count&group_by=firmware,gateway"
                                        "&from=1795400000000&to=1795400010000");
  ASSERT_EQ(code, 200) << q;
  auto groups = json_of(q).at("series").as_array();
  ASSERT_EQ(groups.size(), 2u) << q;
  std::set<std::string> seen;
  for (const auto& g : groups) {
    const auto& l = g.at("labels").as_object();
    seen.insert(std::string(l.at("firmware").as_string()) + "@" + (l.contains("gateway") ? std::string(l.at("gateway").as_string()) : ""));
  }
  EXPECT_EQ(seen, (std::set<std::string>{"2.4.1@gw-north-1", "2.5.0@"})) << q;
  // A value that is not a tag value is refused with the reason.
  auto [bad, body] = server_->http("POST", "/api/v1/devices/f1/telemetry", R"({"temperature": 1})", token);
  EXPECT_EQ(bad, 204) << body;
  auto refused = run("curl -s -X POST -H 'Authorization: Bearer " + token + "' -H 'X-Fieldline-Firmware: 2.5 beta' -d '{\"temperature\": 1}' " +
                     server_->url() + "/api/v1/devices/f1/telemetry");
  EXPECT_NE(refused.output.find("firmware '2.5 beta'"), std::string::npos) << refused.output;
}

}  // namespace fieldline::itest

namespace fieldline::itest {

TEST_F(Quarantine, DataQualityPerDeviceAndProfileOverRestAndMetrics) {
  // Temperature every 10 s; vibration optional.
  apply(std::string(kPump).replace(std::string(kPump).find("required = true"), 15, "required = true\nexpected_interval_s = 10"));
  std::string token = add_pump("d1", "north");
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  auto at = [&](int64_t ms, const std::string& values) {
    return "{\"ts\": " + std::to_string(ms) + ", \"values\": {" + values + "}}";
  };
  // Recent readings 10 s apart with a 40 s hole (3 missing), one out of range, one rejected,
  // and one an hour old (late).
  const int64_t t0 = now_ms - 55'000;  // the last readings run a little ahead of the clock
  EXPECT_EQ(send("d1", token, at(t0, "\"temperature\": 20")).first, 204);
  EXPECT_EQ(send("d1", token, at(t0 + 10'000, "\"temperature\": 21")).first, 204);
  EXPECT_EQ(send("d1", token, at(t0 + 50'000, "\"temperature\": 22")).first, 204);
  EXPECT_EQ(send("d1", token, at(t0 + 60'000, "\"temperature\": 500")).first, 200);
  EXPECT_EQ(send("d1", token, at(t0 + 70'000, "\"temperature\": 20, \"pressure\": 1")).first, 422);
  EXPECT_EQ(send("d1", token, at(now_ms - 3'600'000, "\"temperature\": 20")).first, 204);
  auto [code, text] = server_->http("GET", "/api/v1/quality?device=d1");
  ASSERT_EQ(code, 200) << text;
  auto v = json_of(text);
  ASSERT_EQ(v.at("devices").as_array().size(), 1u) << text;
  const auto& d = v.at("devices").at(0);
  EXPECT_EQ(d.at("messages").as_int64(), 6);
  EXPECT_EQ(d.at("conforming").as_int64(), 4);
  EXPECT_EQ(d.at("with_warnings").as_int64(), 1);
  EXPECT_EQ(d.at("rejected").as_int64(), 1);
  EXPECT_EQ(d.at("rejected_by_reason").at("unknown_metric").as_int64(), 1);
  EXPECT_NEAR(d.at("conformance_rate").as_double(), 4.0 / 6, 1e-9);
  EXPECT_EQ(d.at("samples").as_int64(), 5);
  EXPECT_NEAR(d.at("out_of_range_share").as_double(), 0.2, 1e-9);
  EXPECT_EQ(d.at("missing").as_int64(), 3);
  EXPECT_EQ(d.at("late").as_int64(), 1);
  EXPECT_EQ(d.at("contract_version").as_int64(), 1);
  const auto& p = v.at("profiles").at(0);
  EXPECT_EQ(p.at("profile").as_string(), "pump");
  EXPECT_EQ(p.at("devices").as_int64(), 1);
  // The same by profile in /metrics (shards add their counts once a second).
  for (int i = 0; i < 30 && server_->metric("fieldline_quality_messages_total", "outcome=\"conforming\"") < 4; ++i) {
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(server_->metric("fieldline_quality_messages_total", "outcome=\"conforming\""), 4);
  EXPECT_EQ(server_->metric("fieldline_quality_messages_total", "outcome=\"rejected\""), 1);
  EXPECT_EQ(server_->metric("fieldline_quality_missing_samples_total", "profile=\"pump\""), 3);
  EXPECT_EQ(server_->metric("fieldline_quality_late_samples_total", "profile=\"pump\""), 1);
}

}  // namespace fieldline::itest

namespace fieldline::itest {

class Lineage : public Quarantine {
 protected:
  void SetUp() override {
    // Small raw-log segments, so sealing and compression happen within the test.
    server_ = std::make_unique<ServerProcess>(dir_.path() + "/data", std::vector<std::string>{"ingest.raw_segment_bytes=2KiB"});
    server_->start();
  }
};

TEST_F(Lineage, AStoredValueTracesBackToItsRawMessageDecoderContractAndCalibration) {
  apply(kPump);
  std::string token = add_pump("l1", "north");
  ASSERT_EQ(run(cli("calibration add l1 temperature --gain 2 --valid-from 2026-01-01T00:00:00Z")).status, 0);
  // curl shows the message id in a header.
  const std::string body = R"({"ts": 1795400000000, "values": {"temperature": 20, "vibration": 1.5}})";
  std::string body_file = dir_.path() + "/body.json";
  std::ofstream(body_file) << body;
  auto sent = run("curl -s -D - -o /dev/null -X POST -H 'Authorization: Bearer " + token + "' --data-binary @" + body_file + " " +
                  server_->url() + "/api/v1/devices/l1/telemetry");
  auto at = sent.output.find("X-Fieldline-Message-Id: ");
  ASSERT_NE(at, std::string::npos) << sent.output;
  std::string id = sent.output.substr(at + 24, sent.output.find('\r', at) - at - 24);
  auto traced = run(cli("lineage " + id + " --format json"));
  ASSERT_EQ(traced.status, 0) << traced.output;
  auto m = json_of(traced.output).at("messages").at(0);
  EXPECT_EQ(m.at("id").as_string(), id);
  EXPECT_EQ(m.at("device").as_string(), "l1");
  EXPECT_EQ(m.at("transport").as_string(), "http");
  EXPECT_EQ(m.at("decoder").as_string(), "auto");
  EXPECT_EQ(m.at("contract_version").as_int64(), 1);
  EXPECT_EQ(m.at("calibrations").as_array().size(), 1u);
  EXPECT_EQ(m.at("samples").as_int64(), 2);
  EXPECT_EQ(m.at("payload_base64").as_string().size() > 0, true);
  // The fingerprint is the bytes the device sent.
  auto sha = run("sha256sum " + body_file);
  EXPECT_EQ(std::string(m.at("sha256").as_string()), sha.output.substr(0, 64));
  // From the stored sample back to the same message.
  auto by_sample = run(cli("lineage --device l1 --metric temperature --at 1795400000000 --format json"));
  ASSERT_EQ(by_sample.status, 0) << by_sample.output;
  EXPECT_EQ(json_of(by_sample.output).at("messages").at(0).at("id").as_string(), id);
  // Many more messages: segments are sealed and compressed, and still traced; then kill -9.
  std::string feed = dir_.path() + "/feed.txt";
  {
    std::ofstream out(feed);
    for (int i = 1; i <= 200; ++i) out << "{\"ts\": " << 1795400000000LL + i * 1000 << ", \"values\": {\"temperature\": " << i << "}}\n";
  }
  ASSERT_EQ(run("mosquitto_pub " + server_->mosquitto_args("l1", token) + " -q 1 -i l1 -t devices/l1/telemetry -l < " + feed).status, 0);
  std::this_thread::sleep_for(2500ms);  // a maintenance tick seals; the background compresses
  auto zst = run("ls " + server_->data_dir() + "/raw/shard-*/ | grep -c zst");
  EXPECT_GT(std::stoi(zst.output), 0) << zst.output;
  server_->kill9();
  server_->start();
  for (const char* when : {"1795400000000", "1795400100000", "1795400200000"}) {
    auto r = run(cli(std::string("lineage --device l1 --metric temperature --at ") + when + " --format json"));
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(json_of(r.output).at("messages").as_array().size(), 1u) << when << ": " << r.output;
  }
  EXPECT_EQ(run(cli("lineage msg-999999 --format json")).status, 5);
}

}  // namespace fieldline::itest

namespace fieldline::itest {

class QuarantineQuota : public Quarantine {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(dir_.path() + "/data", std::vector<std::string>{"ingest.quarantine_quota=3"});
    server_->start();
  }
};

TEST_F(QuarantineQuota, ADeviceSendingGarbageCannotFillTheQuarantine) {
  apply(kPump);
  std::string noisy = add_pump("q1", "north");
  std::string quiet = add_pump("q2", "north");
  std::vector<int> codes;
  for (int i = 0; i < 5; ++i) codes.push_back(send("q1", noisy, R"({"temperature": 20, "junk": 1})").first);
  EXPECT_EQ(codes, (std::vector<int>{422, 422, 422, 429, 429}));
  auto [code, over] = send("q1", noisy, R"({"junk": 2})");
  EXPECT_EQ(code, 429);
  EXPECT_EQ(over.at("error").at("code").as_string(), "ingest.quarantine_quota") << over;
  EXPECT_NE(std::string(over.at("error").at("message").as_string()).find("not kept"), std::string::npos) << over;
  // Good data from the same device, and bad data from another, are unaffected.
  EXPECT_EQ(send("q1", noisy, R"({"temperature": 20})").first, 204);
  EXPECT_EQ(send("q2", quiet, R"({"temperature": 20, "junk": 1})").first, 422);
  // MQTT 5 is told why (0x97, quota exceeded).
  auto pub = run("mosquitto_pub " + server_->mosquitto_args("q1", noisy) +
                 " -V 5 -q 1 -d -i q1 -t devices/q1/telemetry -m '{\"temperature\": 20, \"junk\": 3}'");
  EXPECT_NE(pub.output.find("RC:151"), std::string::npos) << pub.output;
  auto listed = json_of(run(cli("quarantine list --device q1 --format json")).output).at("messages").as_array();
  EXPECT_EQ(listed.size(), 3u);
  EXPECT_EQ(server_->metric("fieldline_messages_quarantine_dropped_total"), 4);
}

}  // namespace fieldline::itest
