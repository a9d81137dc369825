#include <gtest/gtest.h>

#include "fieldline/core/config.h"

namespace fieldline::core {

TEST(Config, TomlThenEnvironmentOverride) {
  Config c;
  ASSERT_TRUE(c.load_toml_string("data_dir = \"/var/x\"\n[mqtt]\nlisten = \"127.0.0.1:1999\"\n[tsdb]\nfsync = \"always\"\n", "t.toml"));
  EXPECT_EQ(c.data_dir, "/var/x");
  EXPECT_EQ(c.mqtt.listen, "127.0.0.1:1999");
  EXPECT_EQ(c.tsdb.fsync, FsyncPolicy::always);
  std::string a = "FIELDLINE_MQTT_LISTEN=0.0.0.0:2000", b = "FIELDLINE_TSDB_FSYNC_INTERVAL=20ms", d = "OTHER=1";
  char* env[] = {a.data(), b.data(), d.data(), nullptr};
  ASSERT_TRUE(c.load_environment(env));
  EXPECT_EQ(c.mqtt.listen, "0.0.0.0:2000");
  EXPECT_EQ(c.tsdb.fsync_interval_ns, 20'000'000);
}

TEST(Config, UnknownKeysAndBadValuesAreErrorsThatNameTheKey) {
  Config c;
  auto r = c.load_toml_string("[mqtt]\nlisen = \"x\"\n", "t.toml");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("mqtt.lisen"), std::string::npos);
  auto s = c.set("tsdb.fsync", "sometimes");
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("tsdb.fsync"), std::string::npos);
  EXPECT_FALSE(c.load_toml_string("data_dir = ", "broken.toml"));
}

TEST(Config, PrintedTomlLoadsBackToTheSameConfig) {
  Config c;
  ASSERT_TRUE(c.set("tsdb.max_disk_bytes", "2GiB"));
  ASSERT_TRUE(c.set("shards", "3"));
  Config d;
  ASSERT_TRUE(d.load_toml_string(c.to_toml(), "printed"));
  EXPECT_EQ(d.to_toml(), c.to_toml());
  EXPECT_EQ(d.tsdb.max_disk_bytes, 2ULL << 30);
}

}  // namespace fieldline::core
