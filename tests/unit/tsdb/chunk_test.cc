#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <tuple>

#include "fieldline/core/time.h"
#include "fieldline/tsdb/chunk.h"

namespace fieldline::tsdb {
namespace {

std::vector<Sample> roundtrip(ValueType type, const std::vector<Sample>& in) {
  ChunkEncoder enc(type);
  for (const auto& s : in) enc.append(s.ts, s.value);
  auto out = decode_chunk(enc.finish());
  EXPECT_TRUE(out) << (out ? "" : out.error().message());
  return out ? *out : std::vector<Sample>{};
}

void expect_same(const std::vector<Sample>& a, const std::vector<Sample>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].ts, b[i].ts) << i;
    EXPECT_TRUE(same_value(a[i].value, b[i].value)) << i;
  }
}

// A mix of regular steps, jitter at ns/us/ms resolution and huge jumps.
int64_t next_timestamp(std::mt19937_64& rng, int64_t ts) {
  switch (rng() % 5) {
    case 0: return ts + 1'000'000'000;
    case 1: return ts + 1 + static_cast<int64_t>(rng() % 1000);
    case 2: return ts + static_cast<int64_t>(rng() % 100000) * 1000;
    case 3: return ts + static_cast<int64_t>(rng() % (uint64_t{1} << 40));
    default: return ts + 1'000'000;
  }
}

}  // namespace

// The bit layout every chunk on disk has: most significant bit first, fields across byte
// boundaries, the last byte padded with zeros.
TEST(BitWriter, WritesFieldsMostSignificantBitFirstAcrossBytes) {
  BitWriter w;
  w.write_bits(0b101, 3);
  w.write_bits(0xABCD, 16);
  w.write_bit(true);
  EXPECT_EQ(w.bytes(), std::string("\xb5\x79\xb0", 3));
  EXPECT_EQ(w.bit_count(), 20u);
  w.write_bits(~uint64_t{0} << 4 | 0x5, 4);  // only the low nbits count
  EXPECT_EQ(w.bytes(), std::string("\xb5\x79\xb5", 3));
  w.write_bits(0x0123456789abcdefULL, 64);
  EXPECT_EQ(w.bytes(), std::string("\xb5\x79\xb5\x01\x23\x45\x67\x89\xab\xcd\xef", 11));
  w.write_bits(0, 0);
  EXPECT_EQ(w.bit_count(), 88u);
}

TEST(BitWriter, WhatItWritesReadsBackAtEveryWidthAndOffset) {
  std::mt19937_64 rng(7);
  std::vector<std::pair<uint64_t, int>> fields;
  BitWriter w;
  size_t bits = 0;
  for (int i = 0; i < 20000; ++i) {
    const int width = static_cast<int>(rng() % 65);  // 0..64
    const uint64_t value = rng();
    w.write_bits(value, width);
    fields.emplace_back(width == 64 ? value : value & ((uint64_t{1} << width) - 1), width);
    bits += static_cast<size_t>(width);
    ASSERT_EQ(w.bit_count(), bits);
  }
  BitReader r(w.bytes().data(), w.bytes().size());
  for (const auto& [value, width] : fields) {
    uint64_t got = 0;
    ASSERT_TRUE(r.read_bits(width, got));
    ASSERT_EQ(got, value) << width;
  }
}

TEST(ChunkEncoding, FloatsRoundTripBitExactIncludingNanInfAndNegativeZero) {
  std::vector<double> special = {0.0, -0.0, std::numeric_limits<double>::infinity(),
                                 -std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN(),
                                 std::bit_cast<double>(uint64_t{0x7ff0000000000001ULL}),  // signalling NaN payload
                                 std::bit_cast<double>(uint64_t{0xfff8dead0000beefULL}),
                                 std::numeric_limits<double>::denorm_min(), std::numeric_limits<double>::max(),
                                 std::numeric_limits<double>::lowest(), 1.0, 1.0, 1.0, 73.96732207};
  std::vector<Sample> in;
  int64_t ts = 1'700'000'000'000'000'000;
  for (double d : special) in.push_back({ts += 1'000'000'000, d});
  expect_same(roundtrip(ValueType::float64, in), in);
}

TEST(ChunkEncoding, RandomFloatsAndIrregularTimestampsRoundTrip) {
  std::mt19937_64 rng(42);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<Sample> in;
    int64_t ts = static_cast<int64_t>(rng() >> 2) - (int64_t{1} << 61);
    size_t n = 1 + rng() % kMaxChunkSamples;
    for (size_t i = 0; i < n; ++i) {
      ts = next_timestamp(rng, ts);
      double v = trial % 2 ? std::bit_cast<double>(rng()) : static_cast<double>(rng() % 1000) / 10.0;
      in.push_back({ts, v});
    }
    expect_same(roundtrip(ValueType::float64, in), in);
  }
}

// Decimal-scaled float chunks: chosen only for values that are exact decimals, and then
// bit-exact on the way back, including adversarial ones.
TEST(ChunkEncoding, DecimalFloatsRoundTripBitExactOrAreRefused) {
  auto decimal_roundtrip = [](const std::vector<double>& values) {
    int d = decimal_places(values);
    if (d < 0) return d;
    ChunkEncoder enc(ValueType::float64, d);
    std::vector<Sample> in;
    int64_t ts = 1'700'000'000'000'000'000;
    for (double v : values) in.push_back({ts += 1'000'000'000, v});
    for (const auto& x : in) enc.append(x.ts, x.value);
    auto out = decode_chunk(enc.finish());
    EXPECT_TRUE(out);
    if (out) expect_same(*out, in);
    return d;
  };
  EXPECT_EQ(decimal_roundtrip({21.5, 21.55, 21.6, -3.25, 0.0, 1e6}), 2);
  EXPECT_EQ(decimal_roundtrip({73.96732207, 74.01293852}), 8);
  EXPECT_EQ(decimal_roundtrip({1.0, 2.0, 3.0}), 0);
  EXPECT_EQ(decimal_roundtrip({9007199254740991.0, -9007199254740991.0}), 0);  // +-(2^53 - 1)
  // Not representable: fall back to the XOR encoding.
  EXPECT_EQ(decimal_places(std::vector<double>{1.0, -0.0}), -1);
  EXPECT_EQ(decimal_places(std::vector<double>{1.0, std::numeric_limits<double>::quiet_NaN()}), -1);
  EXPECT_EQ(decimal_places(std::vector<double>{std::numeric_limits<double>::infinity()}), -1);
  EXPECT_EQ(decimal_places(std::vector<double>{0.1 + 0.2}), -1);
  EXPECT_EQ(decimal_places(std::vector<double>{9007199254740993.0 * 4}), -1);
  EXPECT_EQ(decimal_places(std::vector<double>{std::numeric_limits<double>::denorm_min()}), -1);
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    int d = static_cast<int>(rng() % (kMaxChunkDecimals + 1));
    std::vector<double> values;
    size_t n = 1 + rng() % kMaxChunkSamples;
    int64_t level = static_cast<int64_t>(rng() % 2000000) - 1000000;
    for (size_t i = 0; i < n; ++i) {
      level += static_cast<int64_t>(rng() % 201) - 100;
      // Parsed from text, as a reading arrives: the nearest double to level / 10^d.
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.*f", d, static_cast<double>(level) / std::pow(10.0, d));
      values.push_back(std::strtod(buf, nullptr));
    }
    int got = decimal_roundtrip(values);
    EXPECT_GE(got, 0) << "trial " << trial;
    EXPECT_LE(got, d) << "trial " << trial;
  }
}

TEST(ChunkEncoding, DecimalChunksAreSmallerForSensorReadings) {
  std::mt19937_64 rng(3);
  std::vector<Sample> in;
  std::vector<double> values;
  int64_t ts = 1'700'000'000'000'000'000;
  int64_t level = 2150;
  for (uint32_t i = 0; i < kMaxChunkSamples; ++i) {
    level += static_cast<int64_t>(rng() % 11) - 5;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", static_cast<double>(level) / 100.0);
    values.push_back(std::strtod(buf, nullptr));
    in.push_back({ts += 1'000'000'000, values.back()});
  }
  ChunkEncoder gorilla(ValueType::float64), decimal(ValueType::float64, decimal_places(values));
  for (const auto& x : in) {
    gorilla.append(x.ts, x.value);
    decimal.append(x.ts, x.value);
  }
  EXPECT_LT(decimal.finish().size() * 2, gorilla.finish().size());
  EXPECT_LT(decimal.finish().size(), kMaxChunkSamples * 3 / 2);  // under 1.5 bytes per sample
}

TEST(ChunkEncoding, IntsBoolsStringsRoundTrip) {
  std::mt19937_64 rng(7);
  std::vector<Sample> ints, bools, strings;
  int64_t ts = 0;
  std::vector<int64_t> extremes = {INT64_MIN, INT64_MAX, 0, -1, 1, INT64_MIN, INT64_MAX};
  for (size_t i = 0; i < kMaxChunkSamples; ++i) {
    ts += 1 + static_cast<int64_t>(rng() % 3) * 1'000'000'000;
    int64_t iv = i < extremes.size() ? extremes[i] : static_cast<int64_t>(rng());
    ints.push_back({ts, iv});
    bools.push_back({ts, rng() % 3 == 0});
    strings.push_back({ts, std::string(rng() % 4 == 0 ? "" : "state-" + std::to_string(rng() % 5))});
  }
  expect_same(roundtrip(ValueType::int64, ints), ints);
  expect_same(roundtrip(ValueType::boolean, bools), bools);
  expect_same(roundtrip(ValueType::string, strings), strings);
}

TEST(ChunkEncoding, RegularSecondSeriesIsCompact) {
  ChunkEncoder enc(ValueType::float64);
  int64_t ts = 1'700'000'000LL * 1'000'000'000;
  for (uint32_t i = 0; i < kMaxChunkSamples; ++i) enc.append(ts + i * 1'000'000'000LL, 20.0 + (i % 10) * 0.5);
  // Timestamps cost one bit each; values a few bits: well under 2 bytes per sample.
  EXPECT_LT(enc.finish().size(), 2 * kMaxChunkSamples);
}

TEST(ChunkIterator, TruncatedOrGarbledChunksFailCleanly) {
  ChunkEncoder enc(ValueType::float64);
  for (int i = 0; i < 100; ++i) enc.append(i * 1000 + (i % 7), i * 1.25);
  std::string bytes = enc.finish();
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    auto r = decode_chunk(std::string_view(bytes).substr(0, cut));
    EXPECT_FALSE(r) << "cut at " << cut;
  }
  std::mt19937 rng(1);
  for (int i = 0; i < 500; ++i) {
    std::string garbled = bytes;
    garbled[rng() % garbled.size()] ^= static_cast<char>(1 + rng() % 255);
    (void)decode_chunk(garbled);  // must not crash; may or may not detect (the CRC does)
  }
}

TEST(Rollups, RoundTrip) {
  std::vector<RollupPoint> pts = {{0, 1.5, 2.5, 40.0, 20}, {60'000'000'000, -1, 1e300, -3.25, 1}, {120'000'000'000, 0, 0, 0, 7}};
  auto out = decode_rollups(encode_rollups(pts));
  ASSERT_TRUE(out);
  ASSERT_EQ(out->size(), 3u);
  EXPECT_EQ((*out)[1].max, 1e300);
  EXPECT_EQ((*out)[2].count, 7u);
  EXPECT_FALSE(decode_rollups(encode_rollups(pts).substr(0, 5)));
}

}  // namespace fieldline::tsdb

namespace fieldline::tsdb {

// Every rollup encoding (v3 written now, v2 and v1 still read from older blocks) returns
// every point bit for bit: regular and irregular times, non-minute times, NaN payloads, -0.0,
// huge counts.
TEST(Rollups, EveryEncodingRoundTripsBitExact) {
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<RollupPoint> pts;
    int64_t ts = (static_cast<int64_t>(rng() % 1'000'000) - 500'000) * core::kNsPerMinute;
    size_t n = 1 + rng() % 300;
    for (size_t i = 0; i < n; ++i) {
      switch (rng() % 4) {
        case 0: ts += core::kNsPerMinute; break;
        case 1: ts += core::kNsPerHour; break;
        case 2: ts += static_cast<int64_t>(1 + rng() % 1000) * core::kNsPerMinute; break;
        default: ts += trial % 3 == 0 ? static_cast<int64_t>(1 + rng() % 1'000'000'000) : core::kNsPerMinute; break;
      }
      auto value = [&]() -> double {
        switch (rng() % 6) {
          case 0: return std::bit_cast<double>(rng());
          case 1: return -0.0;
          case 2: return std::bit_cast<double>(uint64_t{0x7ff8dead0000beefULL});
          default: return static_cast<double>(rng() % 10000) / 100.0;
        }
      };
      pts.push_back({ts, value(), value(), value(), trial % 5 == 0 ? rng() : 60 + rng() % 3});
    }
    for (int version : {1, 2, 3}) {
      auto bytes = version == 1 ? encode_rollups_v1(pts) : version == 2 ? encode_rollups_v2(pts) : encode_rollups(pts);
      auto decode = [version](std::string_view b) {
        return version == 1 ? decode_rollups_v1(b) : version == 2 ? decode_rollups_v2(b) : decode_rollups(b);
      };
      auto out = decode(bytes);
      ASSERT_TRUE(out) << "v" << version << " trial " << trial;
      ASSERT_EQ(out->size(), pts.size());
      for (size_t i = 0; i < pts.size(); ++i) {
        EXPECT_EQ((*out)[i].ts, pts[i].ts);
        EXPECT_EQ((*out)[i].count, pts[i].count);
        EXPECT_EQ(std::bit_cast<uint64_t>((*out)[i].min), std::bit_cast<uint64_t>(pts[i].min));
        EXPECT_EQ(std::bit_cast<uint64_t>((*out)[i].max), std::bit_cast<uint64_t>(pts[i].max));
        EXPECT_EQ(std::bit_cast<uint64_t>((*out)[i].sum), std::bit_cast<uint64_t>(pts[i].sum));
      }
      // Truncated input never crashes or reads out of bounds (the sanitizer build checks);
      // whether a cut inside the last byte's padding still decodes is not specified.
      for (size_t cut : {size_t{0}, size_t{1}, bytes.size() / 2, bytes.size() - 1}) {
        (void)decode(std::string_view(bytes).substr(0, cut));
      }
    }
  }
}

TEST(Rollups, RegularMinuteRollupsAreCompact) {
  std::vector<RollupPoint> pts;
  for (int i = 0; i < 120; ++i) {
    double base = 20 + (i % 7) * 0.25;
    pts.push_back({1'700'000'000LL * 1'000'000'000 / core::kNsPerMinute * core::kNsPerMinute + i * core::kNsPerMinute, base, base + 0.5,
                   60 * base + 12, 60});
  }
  EXPECT_LT(encode_rollups(pts).size() * 2, encode_rollups_v1(pts).size());
  EXPECT_LT(encode_rollups(pts).size(), encode_rollups_v2(pts).size());
}

namespace {

std::vector<Sample> packed_roundtrip(ValueType type, const std::vector<Sample>& in) {
  auto out = decode_chunk(encode_packed_chunk(type, in));
  EXPECT_TRUE(out) << (out ? "" : out.error().message());
  return out ? *out : std::vector<Sample>{};
}

// Readings as a transmitter prints them: `decimals` digits, and one in twenty printed with
// a binary artefact (the nearest double to the value one ulp away, as NAB's files have).
std::vector<Sample> printed_readings(std::mt19937_64& rng, size_t n, int decimals, int64_t step_units) {
  std::vector<Sample> out;
  int64_t ts = 1'700'000'000'000'000'000, level = 7'000'000'000 / static_cast<int64_t>(std::pow(10, 8 - std::min(decimals, 8)));
  for (size_t i = 0; i < n; ++i) {
    level += static_cast<int64_t>(rng() % (2 * step_units + 1)) - step_units;
    double v = static_cast<double>(level) / std::pow(10.0, decimals);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    v = std::strtod(buf, nullptr);
    if (rng() % 20 == 0) v = std::nextafter(v, 1e300);
    out.push_back({ts += 300'000'000'000, v});
  }
  return out;
}

}  // namespace

// The packed encoding of sealed chunks in blocks (version 3): bit for bit for any float or int,
// any timestamps; decimal scaling with exceptions where that is smaller, XOR where not.
TEST(PackedChunks, RoundTripBitExactForAnyInput) {
  std::mt19937_64 rng(23);
  const std::vector<double> special = {0.0, -0.0, std::numeric_limits<double>::infinity(),
                                       -std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN(),
                                       std::bit_cast<double>(uint64_t{0x7ff0000000000001ULL}),
                                       std::bit_cast<double>(uint64_t{0xfff8dead0000beefULL}),
                                       std::numeric_limits<double>::denorm_min(), std::numeric_limits<double>::max(),
                                       std::numeric_limits<double>::lowest(), 9007199254740993.0 * 4, 0.1 + 0.2};
  for (int trial = 0; trial < 400; ++trial) {
    size_t n = 1 + rng() % kMaxChunkSamples;
    int64_t ts = static_cast<int64_t>(rng() >> 2) - (int64_t{1} << 61);
    std::vector<Sample> floats, ints;
    int decimals = static_cast<int>(rng() % 17);  // 16: more than any decimal scaling holds
    int64_t level = static_cast<int64_t>(rng() % 2'000'000) - 1'000'000;
    for (size_t i = 0; i < n; ++i) {
      ts = next_timestamp(rng, ts);
      level += static_cast<int64_t>(rng() % 2001) - 1000;
      double v;
      switch (trial % 4) {
        case 0: v = std::bit_cast<double>(rng()); break;
        case 1: v = rng() % 8 == 0 ? special[rng() % special.size()] : static_cast<double>(level) / std::pow(10.0, decimals); break;
        case 2: v = std::nextafter(static_cast<double>(level) / 1e4, rng() % 2 ? 1e300 : -1e300); break;
        default: v = static_cast<double>(level) / std::pow(10.0, decimals); break;
      }
      floats.push_back({ts, v});
      int64_t iv = trial % 3 == 0 ? static_cast<int64_t>(rng()) : level;
      if (rng() % 50 == 0) iv = rng() % 2 ? INT64_MIN : INT64_MAX;
      ints.push_back({ts, iv});
    }
    expect_same(packed_roundtrip(ValueType::float64, floats), floats);
    expect_same(packed_roundtrip(ValueType::int64, ints), ints);
  }
}

TEST(PackedChunks, TruncatedOrGarbledChunksFailCleanly) {
  std::mt19937_64 rng(5);
  auto samples = printed_readings(rng, kMaxChunkSamples, 8, 100'000'000);
  std::string bytes = encode_packed_chunk(ValueType::float64, samples);
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    EXPECT_FALSE(decode_chunk(std::string_view(bytes).substr(0, cut))) << "cut at " << cut;
  }
  for (int i = 0; i < 2000; ++i) {
    std::string garbled = bytes;
    garbled[rng() % garbled.size()] ^= static_cast<char>(1 + rng() % 255);
    (void)decode_chunk(garbled);  // must not crash; may or may not detect (the CRC does)
  }
}

// What the packed encoding is for: readings with a fixed number of decimals, some of them
// printed with a binary artefact. Eight-decimal temperatures (NAB's machine temperature has
// this shape) cost about half of Gorilla's XOR; two-decimal readings about a byte.
TEST(PackedChunks, PrintedReadingsTakeFarLessThanXor) {
  std::mt19937_64 rng(9);
  for (auto [decimals, step, max_ratio] : {std::tuple{8, int64_t{100'000'000}, 0.65}, std::tuple{2, int64_t{7}, 0.5}}) {
    auto samples = printed_readings(rng, kMaxChunkSamples, decimals, step);
    ChunkEncoder gorilla(ValueType::float64);
    for (const auto& x : samples) gorilla.append(x.ts, x.value);
    size_t packed = encode_packed_chunk(ValueType::float64, samples).size();
    EXPECT_LT(static_cast<double>(packed), max_ratio * static_cast<double>(gorilla.finish().size())) << decimals << " decimals";
    if (decimals == 2) {
      EXPECT_LT(packed, kMaxChunkSamples * 5 / 4) << "bytes for " << kMaxChunkSamples;
    }
  }
}

}  // namespace fieldline::tsdb
