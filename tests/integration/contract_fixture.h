#pragma once
// A server under test with the admin CLI, contracts and devices at hand (the contract,
// quarantine and reprocessing tests).
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <fstream>
#include <memory>
#include <string>
#include <utility>

#include "harness.h"

namespace fieldline::itest {

class ContractFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(dir_.path() + "/data");
    server_->start();
  }
  std::string cli(const std::string& args) {
    return std::string(FIELDLINE_BINARY) + " " + args + " --server " + server_->url() + " --token " + kAdminToken;
  }
  void apply(const std::string& text, const std::string& extra = "") {
    std::string path = dir_.path() + "/contract-" + std::to_string(files_++) + ".toml";
    std::ofstream(path) << text;
    auto r = run(cli("contract apply " + path + extra));
    ASSERT_EQ(r.status, 0) << r.output;
  }
  // A file in the test's folder with `text`; its path.
  std::string write(const std::string& name, const std::string& text) {
    std::string path = dir_.path() + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  boost::json::value json_of(const std::string& text) {
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec);
    EXPECT_FALSE(ec) << text;
    return v;
  }
  std::string add_pump(const std::string& id, const std::string& site) {
    auto [code, body] = server_->http("POST", "/api/v1/devices",
                                      "{\"id\": \"" + id + "\", \"profile\": \"pump\", \"tags\": {\"site\": \"" + site + "\"}}");
    EXPECT_EQ(code, 201) << body;
    return std::string(json_of(body).at("token").as_string());
  }
  // POSTs telemetry as the device; returns the status and the parsed body (null when empty).
  std::pair<int, boost::json::value> send(const std::string& device, const std::string& token, const std::string& body) {
    auto [code, text] = server_->http("POST", "/api/v1/devices/" + device + "/telemetry", body, token);
    return {code, text.empty() ? boost::json::value() : json_of(text)};
  }
  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  int files_ = 0;
};

}  // namespace fieldline::itest
