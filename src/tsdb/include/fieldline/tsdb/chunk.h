#pragma once
// Chunk encodings (spec: docs/format/chunk.md). A chunk holds up to kMaxChunkSamples samples
// of one series in time order:
//   timestamps  delta-of-delta in variable-width buckets (Gorilla), at the coarsest unit
//               (1 s, 1 ms, 1 us or 1 ns) that divides every timestamp in the chunk
//   float64     XOR with the previous value, leading/trailing-zero windows (Gorilla)
//   int64       zigzag delta in variable-width buckets
//   bool        one bit per sample: 0 = same as previous, 1 = flipped (run-length in bits)
//   string      per-chunk dictionary; one bit for "same as previous", else the index
//
// ChunkEncoder is single-threaded and owned by its series. ChunkIterator reads untrusted
// bytes: every read is bounds-checked and a malformed chunk ends iteration with an error
// (never a crash).

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "fieldline/core/bytes.h"
#include "fieldline/core/result.h"
#include "fieldline/tsdb/types.h"

namespace fieldline::tsdb {

inline constexpr uint32_t kMaxChunkSamples = 240;

class BitWriter {
 public:
  void write_bits(uint64_t value, int nbits);  // REQUIRES: 0 <= nbits <= 64
  void write_bit(bool bit) { write_bits(bit ? 1 : 0, 1); }
  const std::string& bytes() const { return buf_; }
  size_t bit_count() const { return buf_.size() * 8 - free_bits_; }
  void clear() {
    buf_.clear();
    free_bits_ = 0;
  }

 private:
  std::string buf_;
  int free_bits_ = 0;  // unused low bits in the last byte
};

class BitReader {
 public:
  BitReader(const char* p, size_t n) : p_(reinterpret_cast<const uint8_t*>(p)), n_bits_(n * 8) {}
  // Returns false (and reads nothing) past the end.
  bool read_bits(int nbits, uint64_t& out) {
    if (nbits == 0) {
      out = 0;
      return true;
    }
    if (pos_ + static_cast<size_t>(nbits) > n_bits_) return false;
    size_t byte = pos_ >> 3;
    if (nbits <= 56 && byte + 8 <= (n_bits_ + 7) / 8) {
      // Fast path: one unaligned big-endian 64-bit load holds all the bits.
      uint64_t word;
      __builtin_memcpy(&word, p_ + byte, 8);
      word = __builtin_bswap64(word);
      out = (word << (pos_ & 7)) >> (64 - nbits);
      pos_ += static_cast<size_t>(nbits);
      return true;
    }
    return read_bits_slow(nbits, out);
  }
  // n values of `width` (1..64) bits each; false past the end. Checks the bounds once for
  // the group, not per value: bit-packed streams decode at a few cycles a value.
  bool read_group(int width, size_t n, uint64_t* out) {
    const size_t need = static_cast<size_t>(width) * n;
    if (pos_ + need > n_bits_) return false;
    if (width <= 56 && ((pos_ + need) >> 3) + 8 <= (n_bits_ + 7) / 8) {
      for (size_t i = 0; i < n; ++i) {
        uint64_t word;
        __builtin_memcpy(&word, p_ + (pos_ >> 3), 8);
        word = __builtin_bswap64(word);
        out[i] = (word << (pos_ & 7)) >> (64 - width);
        pos_ += static_cast<size_t>(width);
      }
      return true;
    }
    for (size_t i = 0; i < n; ++i) {
      if (!read_bits(width, out[i])) return false;
    }
    return true;
  }
  bool peek_bits(int nbits, uint64_t& out) {
    size_t saved = pos_;
    bool ok = read_bits(nbits, out);
    pos_ = saved;
    return ok;
  }
  void skip(int nbits) { pos_ += static_cast<size_t>(nbits); }
  size_t bit_position() const { return pos_; }
  bool read_bit(bool& out) {
    uint64_t v;
    if (!read_bits(1, v)) return false;
    out = v != 0;
    return true;
  }

 private:
  bool read_bits_slow(int nbits, uint64_t& out);
  const uint8_t* p_;
  size_t n_bits_;
  size_t pos_ = 0;
};

// State of Gorilla's XOR coding of one float stream (the previous value and bit window).
struct XorState {
  uint64_t prev = 0;
  int leading = -1, trailing = 0;
};

inline constexpr int kMaxChunkDecimals = 10;
inline constexpr int kMaxPackedDecimals = 15;
// The fewest decimals (0..kMaxChunkDecimals) with which every value is exactly
// double(n) / 10^d for an integer |n| < 2^53 (and decodes to the same bits); -1 if none.
int decimal_places(std::span<const double> values);

class ChunkEncoder {
 public:
  explicit ChunkEncoder(ValueType type);
  // A float64 chunk whose values are all exactly n / 10^decimals (see decimal_places): stored
  // as the integers n, delta-coded. Blocks of version 2 hold such chunks; version 3 writes
  // encode_packed_chunk instead, so only tests (of the reader) still build them.
  ChunkEncoder(ValueType type, int decimals);
  // REQUIRES: ts strictly greater than the last appended ts, value of the chunk's type.
  void append(int64_t ts, const Value& value);
  uint32_t count() const { return count_; }
  bool full() const { return count_ >= kMaxChunkSamples; }
  ValueType type() const { return type_; }
  int64_t min_ts() const { return min_ts_; }
  int64_t max_ts() const { return max_ts_; }
  // The serialized chunk (header, dictionary, bitstream).
  std::string finish() const;
  // The last appended value. REQUIRES: count() > 0.
  Value last_value() const;
  size_t memory_bytes() const;

 private:
  void append_ts(int64_t scaled);
  void append_value(const Value& value);
  void rescale(int new_scale_code);

  ValueType type_;
  uint32_t count_ = 0;
  int scale_code_ = 3;  // 3 = seconds, 2 = ms, 1 = us, 0 = ns
  int64_t min_ts_ = 0, max_ts_ = 0;
  int64_t prev_scaled_ = 0, prev_delta_ = 0;
  uint64_t prev_bits_ = 0;  // float bits, int value, bool, string index
  XorState xor_;
  int decimals_ = -1;  // float64 as decimal-scaled integers when >= 0
  BitWriter bits_;
  // String series only: allocated on first use, so the many numeric series of a head do not
  // carry an empty dictionary each.
  struct StringDict {
    std::vector<std::string> values;
    std::unordered_map<std::string, uint32_t> index;
  };
  std::unique_ptr<StringDict> dict_;
};

class ChunkIterator {
 public:
  // Parses the header; fails on a malformed one.
  static Result<ChunkIterator> open(std::string_view chunk);
  // Advances; false at the end or on corruption (then error() is set).
  bool next();
  int64_t ts() const { return ts_; }
  int decimals() const { return decimals_; }
  const Value& value() const;
  // The value as a number (bool: 0/1, string: 0) without building a Value.
  double number() const { return number_; }
  ValueType type() const { return type_; }
  uint32_t count() const { return count_; }
  const std::string& error() const { return error_; }

 private:
  ChunkIterator() : bits_(nullptr, 0) {}
  bool fail(const char* what);
  bool next_integer();
  bool open_packed(core::ByteReader& r);

  ValueType type_ = ValueType::float64;
  uint32_t count_ = 0, read_ = 0;
  int64_t scale_ = 1;
  BitReader bits_;
  int64_t scaled_ = 0, delta_ = 0, ts_ = 0;
  uint64_t prev_bits_ = 0;
  XorState xor_;
  int decimals_ = -1;
  bool packed_ = false;
  std::vector<uint64_t> packed_values_;  // packed chunks: the values, then the time deltas, decoded at open
  mutable Value value_;
  double number_ = 0;
  std::vector<std::string> dict_;
  std::string error_;
};

// A sealed chunk in the packed encoding blocks use (docs/format/chunk.md): values as
// bit-packed groups of deltas (float64 as decimal-scaled integers with a list of exceptions,
// or Gorilla XOR where that is smaller), then the time deltas packed the same way. Only
// float64 and int64.
// REQUIRES: 1..kMaxChunkSamples samples of that type, timestamps strictly increasing.
std::string encode_packed_chunk(ValueType type, std::span<const Sample> samples);

// Decodes a whole chunk; fails on the first malformed sample.
Result<std::vector<Sample>> decode_chunk(std::string_view chunk);

// A rollup point: min, max, sum and count of a bucket starting at ts.
struct RollupPoint {
  int64_t ts = 0;
  double min = 0, max = 0, sum = 0;
  uint64_t count = 0;
};
// Rollup points as stored in blocks (docs/format/chunk.md): the current encoding (blocks of
// version 3), and those of versions 2 and 1 (still read; written only by tests).
std::string encode_rollups(const std::vector<RollupPoint>& points);
// With `extremes` false, min and max are not decoded (they are NaN): what queries for avg,
// sum, count, first, last and stddev need, at two thirds of the work.
Result<std::vector<RollupPoint>> decode_rollups(std::string_view bytes, bool extremes = true);
std::string encode_rollups_v2(const std::vector<RollupPoint>& points);
Result<std::vector<RollupPoint>> decode_rollups_v2(std::string_view bytes);
std::string encode_rollups_v1(const std::vector<RollupPoint>& points);
Result<std::vector<RollupPoint>> decode_rollups_v1(std::string_view bytes);

}  // namespace fieldline::tsdb
