#include <gtest/gtest.h>

#include <string>

#include "fieldline/core/crc32c.h"

namespace fieldline::core {
TEST(Crc32c, KnownVectors) {
  // RFC 3720 B.4 test vectors.
  std::string zeros(32, '\0');
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8a9136aaU);
  std::string ones(32, '\xff');
  EXPECT_EQ(crc32c(ones.data(), ones.size()), 0x62a8ab43U);
  EXPECT_EQ(crc32c("123456789", 9), 0xe3069283U);
}
TEST(Crc32c, ExtendEqualsWhole) {
  std::string s = "hello, world of industrial telemetry";
  EXPECT_EQ(crc32c_extend(crc32c(s.data(), 10), s.data() + 10, s.size() - 10), crc32c(s.data(), s.size()));
}
}  // namespace fieldline::core
