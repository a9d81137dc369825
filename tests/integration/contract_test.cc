// Data contracts end to end: the CLI and curl against the real server — versions, the
// compatibility check, forced changes in the audit log, clear errors, persistence.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <fstream>

#include "contract_fixture.h"

namespace fieldline::itest {
namespace {

constexpr const char* kPump = R"(profile = "pump"
required_tags = ["site"]

[metrics.vibration]
type = "float"
unit = "mm/s"

[metrics.temperature]
type = "float"
unit = "Cel"
min = -50
max = 150
required = true
)";

class Contracts : public ContractFixture {
 protected:
  // Writes `text` with `from` replaced by `to` and returns the file's path.
  std::string file(const std::string& name, std::string text, const std::string& from = "", const std::string& to = "") {
    if (!from.empty()) text.replace(text.find(from), from.size(), to);
    std::string path = dir_.path() + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  using ContractFixture::json_of;
  boost::json::value json_of(const CommandResult& r) {
    EXPECT_EQ(r.status, 0) << r.output;
    return json_of(r.output);
  }
};

}  // namespace

TEST_F(Contracts, VersionsCompatibilityForcedChangesAndAudit) {
  auto v1 = json_of(run(cli("contract apply " + file("pump.toml", kPump) + " --format json")));
  EXPECT_EQ(v1.at("version").as_int64(), 1);
  EXPECT_TRUE(v1.at("created").as_bool());
  // The same document again (here as JSON, keys in another order): no new version.
  auto same = json_of(run(cli("contract apply " + file("pump.json", R"({"metrics": {"vibration": {"unit": "mm/s", "type": "float"},
      "temperature": {"required": true, "max": 150, "min": -50, "unit": "Cel", "type": "float"}},
      "required_tags": ["site"], "profile": "pump"})") + " --format json")));
  EXPECT_EQ(same.at("version").as_int64(), 1);
  EXPECT_FALSE(same.at("created").as_bool());
  // Widening a range is compatible.
  auto v2 = json_of(run(cli("contract apply " + file("wide.toml", kPump, "max = 150", "max = 200") + " --format json")));
  EXPECT_EQ(v2.at("version").as_int64(), 2);
  // Narrowing it, changing a type or removing a required metric is refused...
  for (auto [from, to] : {std::pair<std::string, std::string>{"max = 150", "max = 120"},
                          {"unit = \"mm/s\"", "unit = \"m/s\""},
                          {"type = \"float\"\nunit = \"Cel\"", "type = \"int\"\nunit = \"Cel\""}}) {
    auto r = run(cli("contract apply " + file("breaking.toml", kPump, from, to)));
    EXPECT_EQ(r.status, 6) << r.output;
    EXPECT_NE(r.output.find("contract.incompatible"), std::string::npos) << r.output;
  }
  // ... and so is forcing it without a reason; with one, it goes in, recorded in the audit log.
  std::string narrow = file("narrow.toml", kPump, "max = 150", "max = 120");
  auto no_reason = run(cli("contract apply " + narrow + " --force"));
  EXPECT_NE(no_reason.output.find("contract.reason_required"), std::string::npos) << no_reason.output;
  auto forced = json_of(run(cli("contract apply " + narrow + " --force --reason 'sensor replaced' --format json")));
  EXPECT_EQ(forced.at("version").as_int64(), 3);
  EXPECT_TRUE(forced.at("forced").as_bool());
  auto audit = json_of(run(cli("audit --format json")));
  const auto& entries = audit.at("entries").as_array();
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].at("action").as_string(), "contract.apply.forced");
  EXPECT_EQ(entries[0].at("subject").as_string(), "contract:pump@3");
  EXPECT_EQ(entries[0].at("actor").as_string(), "admin");
  EXPECT_NE(std::string(entries[0].at("detail").as_string()).find("sensor replaced"), std::string::npos);
  // History, diff and a version's document, through the CLI and REST alike.
  auto history = json_of(run(cli("contract history pump --format json")));
  ASSERT_EQ(history.at("versions").as_array().size(), 3u);
  auto diff = json_of(run(cli("contract diff pump 1 3 --format json")));
  EXPECT_FALSE(diff.at("compatible").as_bool());
  ASSERT_EQ(diff.at("changes").as_array().size(), 1u);
  EXPECT_EQ(diff.at("changes").as_array()[0].at("field").as_string(), "metrics.temperature.max");
  auto [vcode, vbody] = server_->http("GET", "/api/v1/contracts/pump/versions/2");
  EXPECT_EQ(vcode, 200);
  EXPECT_NE(vbody.find("\"max\":200"), std::string::npos) << vbody;
  // A pump must now carry the contract's required tags to be registered.
  auto missing = run(cli("device add pump-9 --profile pump --tag asset=p9"));
  EXPECT_NE(missing.status, 0);
  EXPECT_NE(missing.output.find("requires the tags: site"), std::string::npos) << missing.output;
  EXPECT_EQ(run(cli("device add pump-9 --profile pump --tag site=north")).status, 0);
  EXPECT_EQ(run(cli("device add sensor-1 --profile generic")).status, 0);  // no contract, no rule
  // Versions survive a restart and stay immutable (the database refuses changes).
  server_->terminate();
  server_->start();
  auto after = json_of(run(cli("contract list --format json")));
  ASSERT_EQ(after.at("contracts").as_array().size(), 1u);
  EXPECT_EQ(after.at("contracts").as_array()[0].at("version").as_int64(), 3);
  auto tamper = run("sqlite3 " + shell_quote(server_->data_dir() + "/registry.db") +
                    " \"UPDATE contracts SET document='{}' WHERE version=1\" 2>&1");
  EXPECT_NE(tamper.output.find("immutable"), std::string::npos) << tamper.output;
}

// Offline, as a CI pipeline would lint a contract before applying it.
TEST_F(Contracts, ValidateOfflineWithAndWithoutAPreviousVersion) {
  const std::string bin = FIELDLINE_BINARY;
  auto ok = run(bin + " contract validate " + file("v1.toml", kPump));
  EXPECT_EQ(ok.status, 0) << ok.output;
  EXPECT_NE(ok.output.find("\"profile\":\"pump\""), std::string::npos) << ok.output;
  auto bad = run(bin + " contract validate " + file("bad.toml", kPump, "type = \"float\"\nunit = \"mm/s\"", "type = \"float\"\nunit = \"rpm\""));
  EXPECT_EQ(bad.status, 1) << bad.output;
  EXPECT_NE(bad.output.find("line 6: metrics.vibration.unit"), std::string::npos) << bad.output;
  auto wider = run(bin + " contract validate " + file("v2.toml", kPump, "max = 150", "max = 200") + " --against " + file("v1.toml", kPump));
  EXPECT_EQ(wider.status, 0) << wider.output;
  EXPECT_NE(wider.output.find("compatible"), std::string::npos) << wider.output;
  auto narrower = run(bin + " contract validate " + file("v3.toml", kPump, "max = 150", "max = 100") + " --against " + file("v1.toml", kPump));
  EXPECT_EQ(narrower.status, 7) << narrower.output;
  EXPECT_NE(narrower.output.find("BREAKING metrics.temperature.max: 150 -> 100"), std::string::npos) << narrower.output;
}

TEST_F(Contracts, MalformedContractsGetClearErrorsAndNeedTheAdminToken) {
  auto r = run(cli("contract apply " + file("bad.toml", kPump, "unit = \"Cel\"", "unit = \"degC\"")));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("line 10: metrics.temperature.unit"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("did you mean 'Cel'"), std::string::npos) << r.output;
  r = run(cli("contract apply " + file("syntax.toml", "profile = \"pump\"\n[metrics.t\n")));
  EXPECT_NE(r.output.find("line 2"), std::string::npos) << r.output;
  auto [code, body] = server_->http("POST", "/api/v1/contracts", kPump, "", "text/plain");
  EXPECT_EQ(code, 401);
  std::string device_token = server_->add_device("pump-1");
  std::tie(code, body) = server_->http("POST", "/api/v1/contracts", kPump, device_token, "text/plain");
  EXPECT_EQ(code, 403);
  std::tie(code, body) = server_->http("GET", "/api/v1/contracts/nope");
  EXPECT_EQ(code, 404);
}

}  // namespace fieldline::itest
