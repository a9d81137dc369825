#include "fieldline/tsdb/chunk.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "fieldline/core/bytes.h"
#include "fieldline/core/time.h"
#include "fieldline/tsdb/errc.h"

namespace fieldline::tsdb {
namespace {

constexpr int64_t kScales[] = {1, 1000, 1'000'000, 1'000'000'000};
constexpr int kPackedUnitNibble = 12;  // high nibble of a chunk's unit byte: a packed chunk

int coarsest_scale(int64_t ts) {
  for (int code = 3; code > 0; --code) {
    if (ts % kScales[code] == 0) return code;
  }
  return 0;
}

// Variable-width signed buckets shared by timestamps and ints:
// '0' zero | '10' 7 bits | '110' 14 bits | '1110' 20 bits | '11110' 32 bits | '11111' 64 bits
void write_signed(BitWriter& w, int64_t v) {
  if (v == 0) {
    w.write_bits(0, 1);
    return;
  }
  auto fits = [v](int bits) { return v >= -(int64_t{1} << (bits - 1)) && v < (int64_t{1} << (bits - 1)); };
  // The prefix and the value in one write where they fit in 64 bits.
  const auto u = static_cast<uint64_t>(v);
  if (fits(7)) {
    w.write_bits(uint64_t{0b10} << 7 | (u & 0x7f), 2 + 7);
  } else if (fits(14)) {
    w.write_bits(uint64_t{0b110} << 14 | (u & 0x3fff), 3 + 14);
  } else if (fits(20)) {
    w.write_bits(uint64_t{0b1110} << 20 | (u & 0xfffff), 4 + 20);
  } else if (fits(32)) {
    w.write_bits(uint64_t{0b11110} << 32 | (u & 0xffffffffULL), 5 + 32);
  } else {
    w.write_bits(0b11111, 5);
    w.write_bits(u, 64);
  }
}

bool read_signed(BitReader& r, int64_t& out) {
  // The prefix is up to five 1-bits ended by a 0: peek five bits at once where possible.
  int ones = 0;
  uint64_t prefix;
  if (r.peek_bits(5, prefix)) {
    ones = std::countl_one(static_cast<uint64_t>(prefix << 59));
    if (ones > 5) ones = 5;
    r.skip(ones < 5 ? ones + 1 : 5);
  } else {
    for (; ones < 5; ++ones) {
      bool b;
      if (!r.read_bit(b)) return false;
      if (!b) break;
    }
  }
  static constexpr int kWidths[] = {0, 7, 14, 20, 32, 64};
  int width = kWidths[ones];
  if (width == 0) {
    out = 0;
    return true;
  }
  uint64_t raw;
  if (!r.read_bits(width, raw)) return false;
  if (width < 64 && (raw >> (width - 1)) & 1) raw |= ~uint64_t{0} << width;  // sign-extend
  out = static_cast<int64_t>(raw);
  return true;
}

uint64_t float_bits(double d) { return std::bit_cast<uint64_t>(d); }

// Gorilla's XOR coding of a float after the first: '0' same value | '10' + the meaningful
// bits in the previous window | '11' + 5 bits leading zeros + 6 bits (length - 1) + bits.

// Counts the bits a writer would write: the packed encoding sizes its candidates with it
// and writes only the smallest.
struct BitCounter {
  size_t bits = 0;
  void write_bits(uint64_t, int nbits) { bits += static_cast<size_t>(nbits); }
  void write_bit(bool) { ++bits; }
};

template <typename Writer>
void write_xor(Writer& w, uint64_t v, XorState& s) {
  uint64_t x = v ^ s.prev;
  s.prev = v;
  if (x == 0) {
    w.write_bit(false);
    return;
  }
  int leading = std::min(std::countl_zero(x), 31);
  int trailing = std::countr_zero(x);
  if (s.leading >= 0 && leading >= s.leading && trailing >= s.trailing) {
    // '10' and the bits in the window, in one write where they fit in 64 bits.
    const int width = 64 - s.leading - s.trailing;
    if (width <= 62) {
      w.write_bits(uint64_t{0b10} << width | x >> s.trailing, 2 + width);
    } else {
      w.write_bits(0b10, 2);
      w.write_bits(x >> s.trailing, width);
    }
    return;
  }
  int sig = 64 - leading - trailing;
  // '11', 5 bits of leading zeros and 6 of length - 1 (sig in 1..64): 13 bits in one write.
  w.write_bits(uint64_t{0b11} << 11 | static_cast<uint64_t>(leading) << 6 | static_cast<uint64_t>(sig - 1), 13);
  w.write_bits(x >> trailing, sig);
  s.leading = leading;
  s.trailing = trailing;
}

[[gnu::always_inline]] inline bool read_xor(BitReader& r, XorState& s) {
  bool changed;
  if (!r.read_bit(changed)) return false;
  if (!changed) return true;
  bool new_window;
  if (!r.read_bit(new_window)) return false;
  if (new_window) {
    uint64_t lead, sig;
    if (!r.read_bits(5, lead) || !r.read_bits(6, sig)) return false;
    s.leading = static_cast<int>(lead);
    s.trailing = 64 - s.leading - (static_cast<int>(sig) + 1);
    if (s.trailing < 0) return false;
  } else if (s.leading < 0) {
    return false;  // no window yet
  }
  int sigbits = 64 - s.leading - s.trailing;
  uint64_t x;
  if (!r.read_bits(sigbits, x)) return false;
  s.prev ^= sigbits == 64 ? x : x << s.trailing;
  return true;
}

}  // namespace

void BitWriter::write_bits(uint64_t value, int nbits) {
  if (nbits <= 0) return;
  if (nbits < 64) value &= (uint64_t{1} << nbits) - 1;
  // The last byte's free bits first, then whole bytes at once (a byte per step was ~3% of
  // the server's CPU at 200k messages/s).
  if (free_bits_ > 0) {
    const int take = nbits < free_bits_ ? nbits : free_bits_;
    buf_.back() = static_cast<char>(static_cast<uint8_t>(buf_.back()) | ((value >> (nbits - take)) << (free_bits_ - take)));
    free_bits_ -= take;
    nbits -= take;
    if (nbits == 0) return;
    value &= (uint64_t{1} << nbits) - 1;  // nbits < 64 here
  }
  const int bytes = (nbits + 7) / 8;
  // The bits at the top of a 64-bit word, most significant first: big-endian bytes.
  const uint64_t top = value << (64 - nbits);
  const uint64_t be = __builtin_bswap64(top);
  const size_t at = buf_.size();
  buf_.resize(at + static_cast<size_t>(bytes));
  std::memcpy(buf_.data() + at, &be, static_cast<size_t>(bytes));
  free_bits_ = bytes * 8 - nbits;
}

bool BitReader::read_bits_slow(int nbits, uint64_t& out) {
  uint64_t v = 0;
  while (nbits > 0) {
    size_t byte = pos_ >> 3;
    int bit_in_byte = static_cast<int>(pos_ & 7);
    int avail = 8 - bit_in_byte;
    int take = nbits < avail ? nbits : avail;
    uint64_t bits = (p_[byte] >> (avail - take)) & ((1u << take) - 1);
    v = (v << take) | bits;
    pos_ += static_cast<size_t>(take);
    nbits -= take;
  }
  out = v;
  return true;
}

ChunkEncoder::ChunkEncoder(ValueType type) : type_(type) {}
ChunkEncoder::ChunkEncoder(ValueType type, int decimals)
    : type_(type), decimals_(type == ValueType::float64 && decimals >= 0 && decimals <= kMaxChunkDecimals ? decimals : -1) {}

namespace {
// Decimal scaling of both float encodings that use it: version-2 chunks (up to 10 decimals)
// and packed ones (up to 15).
constexpr double kPow10[kMaxPackedDecimals + 1] = {1,   1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                                   1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
constexpr double k2Pow53 = 9007199254740992.0;

// The decoder's expression; the encoder uses the same one to prove a value round-trips.
double from_decimal(int64_t n, int decimals) { return static_cast<double>(n) / kPow10[decimals]; }

std::optional<int64_t> to_decimal(double x, int decimals) {
  double scaled = x * kPow10[decimals];
  if (!(std::fabs(scaled) < k2Pow53)) return std::nullopt;  // also NaN
  auto n = static_cast<int64_t>(std::llround(scaled));
  if (std::bit_cast<uint64_t>(from_decimal(n, decimals)) != std::bit_cast<uint64_t>(x)) return std::nullopt;  // -0.0 too
  return n;
}
}  // namespace

int decimal_places(std::span<const double> values) {
  for (int d = 0; d <= kMaxChunkDecimals; ++d) {
    bool all = true;
    for (double x : values) {
      if (!to_decimal(x, d)) {
        all = false;
        break;
      }
    }
    if (all) return d;
  }
  return -1;
}

void ChunkEncoder::append(int64_t ts, const Value& value) {
  int code = coarsest_scale(ts);
  if (count_ > 0 && code < scale_code_) rescale(code);
  if (count_ == 0) {
    scale_code_ = code;
    min_ts_ = ts;
  }
  append_ts(ts / kScales[scale_code_]);
  append_value(value);
  max_ts_ = ts;
  ++count_;
}

void ChunkEncoder::append_ts(int64_t scaled) {
  if (count_ == 0) {
    bits_.write_bits(static_cast<uint64_t>(scaled), 64);
  } else {
    int64_t delta = static_cast<int64_t>(static_cast<uint64_t>(scaled) - static_cast<uint64_t>(prev_scaled_));
    int64_t dod = static_cast<int64_t>(static_cast<uint64_t>(delta) - static_cast<uint64_t>(prev_delta_));
    write_signed(bits_, dod);
    prev_delta_ = delta;
  }
  prev_scaled_ = scaled;
}

void ChunkEncoder::append_value(const Value& value) {
  if (decimals_ >= 0) {
    // REQUIRES (checked by the caller with decimal_places): the value is exactly decimal.
    auto n = to_decimal(std::get<double>(value), decimals_).value_or(0);
    if (count_ == 0) {
      bits_.write_bits(static_cast<uint64_t>(n), 64);
    } else {
      write_signed(bits_, static_cast<int64_t>(static_cast<uint64_t>(n) - prev_bits_));
    }
    prev_bits_ = static_cast<uint64_t>(n);
    return;
  }
  switch (type_) {
    case ValueType::float64: {
      uint64_t v = float_bits(std::get<double>(value));
      if (count_ == 0) {
        bits_.write_bits(v, 64);
        xor_.prev = v;
      } else {
        write_xor(bits_, v, xor_);
      }
      break;
    }
    case ValueType::int64: {
      auto v = std::get<int64_t>(value);
      if (count_ == 0) {
        bits_.write_bits(static_cast<uint64_t>(v), 64);
      } else {
        int64_t delta = static_cast<int64_t>(static_cast<uint64_t>(v) - prev_bits_);
        write_signed(bits_, delta);
      }
      prev_bits_ = static_cast<uint64_t>(v);
      break;
    }
    case ValueType::boolean: {
      uint64_t v = std::get<bool>(value) ? 1 : 0;
      if (count_ == 0) bits_.write_bits(v, 1);
      else bits_.write_bit(v != prev_bits_);
      prev_bits_ = v;
      break;
    }
    case ValueType::string: {
      const auto& s = std::get<std::string>(value);
      if (!dict_) dict_ = std::make_unique<StringDict>();
      auto [it, inserted] = dict_->index.try_emplace(s, static_cast<uint32_t>(dict_->values.size()));
      if (inserted) dict_->values.push_back(s);
      uint64_t idx = it->second;
      if (count_ > 0 && idx == prev_bits_) {
        bits_.write_bit(false);
      } else {
        if (count_ > 0) bits_.write_bit(true);
        bits_.write_bits(idx, 8);  // at most kMaxChunkSamples (< 256) distinct strings
      }
      prev_bits_ = idx;
      break;
    }
  }
}

void ChunkEncoder::rescale(int new_scale_code) {
  // A finer timestamp arrived: re-encode what we have at the finer unit. Rare (at most three
  // times per chunk), and it keeps the common case (whole seconds or ms) compact.
  auto samples = decode_chunk(finish());
  ChunkEncoder fresh(type_, decimals_);
  fresh.scale_code_ = new_scale_code;
  if (samples) {
    for (const auto& s : *samples) {
      if (fresh.count_ == 0) fresh.min_ts_ = s.ts;
      fresh.append_ts(s.ts / kScales[new_scale_code]);
      fresh.append_value(s.value);
      fresh.max_ts_ = s.ts;
      ++fresh.count_;
    }
  }
  *this = std::move(fresh);
}

std::string ChunkEncoder::finish() const {
  std::string out;
  out.push_back(static_cast<char>(type_));
  // High nibble of the unit byte: decimals + 1 for decimal-scaled float chunks, else 0.
  out.push_back(static_cast<char>(scale_code_ | (decimals_ >= 0 ? (decimals_ + 1) << 4 : 0)));
  core::put_uvarint(out, count_);
  if (type_ == ValueType::string) {
    core::put_uvarint(out, dict_ ? dict_->values.size() : 0);
    if (dict_) {
      for (const auto& s : dict_->values) core::put_string(out, s);
    }
  }
  out += bits_.bytes();
  return out;
}

Value ChunkEncoder::last_value() const {
  switch (type_) {
    case ValueType::float64:
      return decimals_ >= 0 ? from_decimal(static_cast<int64_t>(prev_bits_), decimals_) : std::bit_cast<double>(xor_.prev);
    case ValueType::int64: return static_cast<int64_t>(prev_bits_);
    case ValueType::boolean: return prev_bits_ != 0;
    case ValueType::string: return dict_->values[prev_bits_];
  }
  return Value{};
}

size_t ChunkEncoder::memory_bytes() const {
  size_t n = sizeof(*this) + bits_.bytes().capacity();
  if (dict_) {
    n += sizeof(StringDict);
    for (const auto& s : dict_->values) n += s.capacity() * 2 + 48;
  }
  return n;
}

Result<ChunkIterator> ChunkIterator::open(std::string_view chunk) {
  core::ByteReader r(chunk);
  auto type = r.u8();
  auto scale = r.u8();
  auto count = r.uvarint();
  if (!type || !scale || !count || *type < 1 || *type > 4 || (*scale & 0x0f) > 3 || *count > kMaxChunkSamples) {
    return make_error(Errc::corrupt, "bad chunk header");
  }
  const bool packed = (*scale >> 4) == kPackedUnitNibble;
  int decimals = packed ? -1 : (*scale >> 4) - 1;
  if (decimals > kMaxChunkDecimals || (decimals >= 0 && *type != static_cast<uint8_t>(ValueType::float64)) ||
      (packed && *type != static_cast<uint8_t>(ValueType::float64) && *type != static_cast<uint8_t>(ValueType::int64))) {
    return make_error(Errc::corrupt, "bad chunk value encoding");
  }
  ChunkIterator it;
  it.type_ = static_cast<ValueType>(*type);
  it.scale_ = kScales[*scale & 0x0f];
  it.decimals_ = decimals;
  it.count_ = static_cast<uint32_t>(*count);
  if (packed) {
    if (!it.open_packed(r)) return make_error(Errc::corrupt, "truncated or malformed packed values");
    return it;
  }
  if (it.type_ == ValueType::string) {
    auto n = r.uvarint();
    if (!n || *n > kMaxChunkSamples) return make_error(Errc::corrupt, "bad chunk dictionary size");
    for (uint64_t i = 0; i < *n; ++i) {
      auto s = r.string();
      if (!s) return make_error(Errc::corrupt, "truncated chunk dictionary");
      it.dict_.emplace_back(*s);
    }
  }
  it.bits_ = BitReader(r.position(), r.remaining());
  return it;
}

bool ChunkIterator::fail(const char* what) {
  error_ = what;
  read_ = count_;
  return false;
}

bool ChunkIterator::next_integer() {
  // The first value whole, then deltas (int64 values and decimal-scaled floats alike).
  if (read_ == 0) return bits_.read_bits(64, prev_bits_);
  int64_t delta;
  if (!read_signed(bits_, delta)) return false;
  prev_bits_ += static_cast<uint64_t>(delta);
  return true;
}

bool ChunkIterator::next() {
  if (read_ >= count_) return false;
  if (packed_) {
    // Wrapping arithmetic: corrupt input may overflow, which must not be undefined behaviour.
    scaled_ = static_cast<int64_t>(static_cast<uint64_t>(scaled_) + packed_values_[count_ + read_]);
    if (__builtin_mul_overflow(scaled_, scale_, &ts_)) return fail("timestamp overflow");
    prev_bits_ = packed_values_[read_];
    number_ = type_ == ValueType::float64 ? std::bit_cast<double>(prev_bits_) : static_cast<double>(static_cast<int64_t>(prev_bits_));
    ++read_;
    return true;
  }
  uint64_t raw;
  if (read_ == 0) {
    if (!bits_.read_bits(64, raw)) return fail("truncated first timestamp");
    scaled_ = static_cast<int64_t>(raw);
  } else {
    int64_t dod;
    if (!read_signed(bits_, dod)) return fail("truncated timestamp");
    // Wrapping arithmetic: corrupt input may overflow, which must not be undefined behaviour.
    delta_ = static_cast<int64_t>(static_cast<uint64_t>(delta_) + static_cast<uint64_t>(dod));
    scaled_ = static_cast<int64_t>(static_cast<uint64_t>(scaled_) + static_cast<uint64_t>(delta_));
  }
  if (__builtin_mul_overflow(scaled_, scale_, &ts_)) return fail("timestamp overflow");
  switch (type_) {
    case ValueType::float64: {
      if (decimals_ >= 0) {
        if (!next_integer()) return fail("truncated value");
        number_ = from_decimal(static_cast<int64_t>(prev_bits_), decimals_);
        break;
      }
      if (read_ == 0) {
        if (!bits_.read_bits(64, xor_.prev)) return fail("truncated value");
      } else if (!read_xor(bits_, xor_)) {
        return fail("truncated or malformed value");
      }
      number_ = std::bit_cast<double>(xor_.prev);
      break;
    }
    case ValueType::int64: {
      if (!next_integer()) return fail("truncated value");
      number_ = static_cast<double>(static_cast<int64_t>(prev_bits_));
      break;
    }
    case ValueType::boolean: {
      bool bit;
      if (!bits_.read_bit(bit)) return fail("truncated value");
      prev_bits_ = read_ == 0 ? (bit ? 1 : 0) : (bit ? prev_bits_ ^ 1 : prev_bits_);
      number_ = prev_bits_ != 0 ? 1.0 : 0.0;
      break;
    }
    case ValueType::string: {
      bool changed = true;
      if (read_ > 0 && !bits_.read_bit(changed)) return fail("truncated value");
      if (changed) {
        if (!bits_.read_bits(8, raw)) return fail("truncated value");
        if (raw >= dict_.size()) return fail("string index outside the dictionary");
        prev_bits_ = raw;
      }
      number_ = 0;
      break;
    }
  }
  ++read_;
  return true;
}

const Value& ChunkIterator::value() const {
  // Built on demand: aggregation reads number() and never pays for the variant.
  switch (type_) {
    case ValueType::float64: value_ = number_; break;  // decoded in next(): decimal, XOR or packed
    case ValueType::int64: value_ = static_cast<int64_t>(prev_bits_); break;
    case ValueType::boolean: value_ = prev_bits_ != 0; break;
    case ValueType::string: value_ = dict_[prev_bits_]; break;
  }
  return value_;
}

Result<std::vector<Sample>> decode_chunk(std::string_view chunk) {
  FL_TRY(it, ChunkIterator::open(chunk));
  std::vector<Sample> out;
  out.reserve(it.count());
  while (it.next()) out.push_back({it.ts(), it.value()});
  if (!it.error().empty()) return make_error(Errc::corrupt, "chunk: " + it.error());
  return out;
}

std::string encode_rollups_v1(const std::vector<RollupPoint>& points) {
  // Version 1 (blocks of version 1): timestamps as varint deltas, min/max/sum as raw doubles
  // XOR'ed with the previous point in uvarints, count as a varint.
  std::string out;
  core::put_uvarint(out, points.size());
  int64_t prev_ts = 0;
  uint64_t prev[3] = {0, 0, 0};
  for (const auto& p : points) {
    core::put_varint(out, p.ts - prev_ts);
    prev_ts = p.ts;
    double vals[3] = {p.min, p.max, p.sum};
    for (int i = 0; i < 3; ++i) {
      uint64_t b = float_bits(vals[i]);
      core::put_uvarint(out, b ^ prev[i]);
      prev[i] = b;
    }
    core::put_uvarint(out, p.count);
  }
  return out;
}

Result<std::vector<RollupPoint>> decode_rollups_v1(std::string_view bytes) {
  core::ByteReader r(bytes);
  auto n = r.uvarint();
  if (!n || *n > bytes.size()) return make_error(Errc::corrupt, "bad rollup count");
  std::vector<RollupPoint> out;
  out.reserve(*n);
  int64_t ts = 0;
  uint64_t prev[3] = {0, 0, 0};
  for (uint64_t i = 0; i < *n; ++i) {
    RollupPoint p;
    auto d = r.varint();
    if (!d) return make_error(Errc::corrupt, "truncated rollup");
    ts = static_cast<int64_t>(static_cast<uint64_t>(ts) + static_cast<uint64_t>(*d));
    p.ts = ts;
    double* vals[3] = {&p.min, &p.max, &p.sum};
    for (int k = 0; k < 3; ++k) {
      auto x = r.uvarint();
      if (!x) return make_error(Errc::corrupt, "truncated rollup");
      prev[k] ^= *x;
      *vals[k] = std::bit_cast<double>(prev[k]);
    }
    auto c = r.uvarint();
    if (!c) return make_error(Errc::corrupt, "truncated rollup");
    p.count = *c;
    out.push_back(p);
  }
  return out;
}

std::string encode_rollups_v2(const std::vector<RollupPoint>& points) {
  // Version 2: u8 time unit (0 ns, 1 minute) | uvarint n | bitstream. The first point whole
  // (ts, count, min, max, sum in 64 bits each); then the delta-of-delta of ts and the delta of
  // count in the prefix code of chunk timestamps (one bit each for regular rollups), and
  // min, max and sum in Gorilla XOR coding, one window per field.
  bool minutes = std::all_of(points.begin(), points.end(), [](const RollupPoint& p) { return p.ts % core::kNsPerMinute == 0; });
  std::string out;
  out.push_back(static_cast<char>(minutes ? 1 : 0));
  core::put_uvarint(out, points.size());
  BitWriter w;
  XorState fields[3];
  int64_t prev_ts = 0, prev_delta = 0;
  uint64_t prev_count = 0;
  for (size_t i = 0; i < points.size(); ++i) {
    const auto& p = points[i];
    int64_t ts = minutes ? p.ts / core::kNsPerMinute : p.ts;
    uint64_t vals[3] = {float_bits(p.min), float_bits(p.max), float_bits(p.sum)};
    if (i == 0) {
      w.write_bits(static_cast<uint64_t>(ts), 64);
      w.write_bits(p.count, 64);
      for (int k = 0; k < 3; ++k) {
        w.write_bits(vals[k], 64);
        fields[k].prev = vals[k];
      }
    } else {
      int64_t delta = static_cast<int64_t>(static_cast<uint64_t>(ts) - static_cast<uint64_t>(prev_ts));
      write_signed(w, static_cast<int64_t>(static_cast<uint64_t>(delta) - static_cast<uint64_t>(prev_delta)));
      prev_delta = delta;
      write_signed(w, static_cast<int64_t>(p.count - prev_count));
      for (int k = 0; k < 3; ++k) write_xor(w, vals[k], fields[k]);
    }
    prev_ts = ts;
    prev_count = p.count;
  }
  out += w.bytes();
  return out;
}

Result<std::vector<RollupPoint>> decode_rollups_v2(std::string_view bytes) {
  core::ByteReader r(bytes);
  auto unit = r.u8();
  auto n = r.uvarint();
  if (!unit || *unit > 1 || !n || *n > bytes.size() * 8) return make_error(Errc::corrupt, "bad rollup header");
  const int64_t scale = *unit == 1 ? core::kNsPerMinute : 1;
  BitReader bits(r.position(), r.remaining());
  std::vector<RollupPoint> out;
  out.reserve(*n);
  XorState fields[3];
  int64_t ts = 0, delta = 0;
  uint64_t count = 0;
  for (uint64_t i = 0; i < *n; ++i) {
    if (i == 0) {
      uint64_t raw;
      if (!bits.read_bits(64, raw)) return make_error(Errc::corrupt, "truncated rollup");
      ts = static_cast<int64_t>(raw);
      if (!bits.read_bits(64, count)) return make_error(Errc::corrupt, "truncated rollup");
      for (auto& f : fields) {
        if (!bits.read_bits(64, f.prev)) return make_error(Errc::corrupt, "truncated rollup");
      }
    } else {
      int64_t dod, dcount;
      if (!read_signed(bits, dod) || !read_signed(bits, dcount)) return make_error(Errc::corrupt, "truncated rollup");
      delta = static_cast<int64_t>(static_cast<uint64_t>(delta) + static_cast<uint64_t>(dod));
      ts = static_cast<int64_t>(static_cast<uint64_t>(ts) + static_cast<uint64_t>(delta));
      count += static_cast<uint64_t>(dcount);
      for (auto& f : fields) {
        if (!read_xor(bits, f)) return make_error(Errc::corrupt, "truncated rollup");
      }
    }
    RollupPoint p;
    if (__builtin_mul_overflow(ts, scale, &p.ts)) return make_error(Errc::corrupt, "rollup timestamp overflow");
    p.count = count;
    p.min = std::bit_cast<double>(fields[0].prev);
    p.max = std::bit_cast<double>(fields[1].prev);
    p.sum = std::bit_cast<double>(fields[2].prev);
    out.push_back(p);
  }
  return out;
}

// ---- Packed streams (block version 3) -------------------------------------------------------

namespace {

constexpr size_t kPackGroup = 16;
constexpr uint8_t kPackedXor = 0xff;  // packed floats that kept Gorilla's XOR coding

// Packed streams end on a byte boundary (the writer's last byte is zero-padded), so several
// can follow each other (a rollup's fields) and a reader knows where the next one starts.
void finish_stream(std::string& out, const BitWriter& w) { out += w.bytes(); }

bool advance_past(core::ByteReader& r, const BitReader& bits) {
  size_t bytes = (bits.bit_position() + 7) / 8;
  return r.bytes(bytes).has_value();
}

// A lone signed integer as '7 bits width' + its zigzag in that many bits: a first value or
// timestamp costs what it needs (31 bits for seconds since 1970) rather than 64.
template <typename Writer>
void put_sized(Writer& w, int64_t v) {
  uint64_t z = core::zigzag(v);
  int width = 64 - std::countl_zero(z);
  w.write_bits(static_cast<uint64_t>(width), 7);
  w.write_bits(z, width);
}

bool get_sized(BitReader& r, uint64_t& out) {
  uint64_t width, z;
  if (!r.read_bits(7, width) || width > 64 || !r.read_bits(static_cast<int>(width), z)) return false;
  out = static_cast<uint64_t>(core::unzigzag(z));
  return true;
}

// Integers as deltas from the previous one (wrapping), zigzag-coded and bit-packed in groups
// of 16 at the width of the group's largest: '7 bits width' + 16 x width bits, the first
// value sized. Noise on a sensor reading costs about its own entropy plus the group's spread,
// where a prefix code pays for the whole bucket above it.
template <typename Writer>
void pack_ints(Writer& w, std::span<const uint64_t> values) {
  if (!values.empty()) put_sized(w, static_cast<int64_t>(values[0]));
  uint64_t zz[kPackGroup];
  for (size_t begin = 1; begin < values.size(); begin += kPackGroup) {
    size_t n = std::min(kPackGroup, values.size() - begin);
    uint64_t all = 0;
    for (size_t i = 0; i < n; ++i) {
      zz[i] = core::zigzag(static_cast<int64_t>(values[begin + i] - values[begin + i - 1]));
      all |= zz[i];
    }
    int width = 64 - std::countl_zero(all);
    w.write_bits(static_cast<uint64_t>(width), 7);
    if (width == 0) continue;
    for (size_t i = 0; i < n; ++i) w.write_bits(zz[i], width);
  }
}

void put_packed_ints(std::string& out, std::span<const uint64_t> values) {
  BitWriter w;
  pack_ints(w, values);
  finish_stream(out, w);
}

// Times (in any unit) as the first whole, sized, then packed ints of the deltas after it:
// packing codes the differences between deltas, so regular times cost 7 bits per 16.
// `deltas[0]` is the first time, `deltas[i]` the step to time i, on both sides.
void put_packed_times(std::string& out, std::span<const uint64_t> deltas) {
  BitWriter w;
  if (!deltas.empty()) {
    put_sized(w, static_cast<int64_t>(deltas[0]));
    pack_ints(w, deltas.subspan(1));
  }
  finish_stream(out, w);
}

size_t packed_ints_bytes(std::span<const uint64_t> values) {
  BitCounter c;
  pack_ints(c, values);
  return (c.bits + 7) / 8;
}

bool unpack_ints(BitReader& bits, size_t count, uint64_t* out) {
  if (count > 0 && !get_sized(bits, out[0])) return false;
  for (size_t begin = 1; begin < count; begin += kPackGroup) {
    size_t n = std::min(kPackGroup, count - begin);
    uint64_t width;
    if (!bits.read_bits(7, width) || width > 64) return false;
    if (width == 0) {
      for (size_t i = 0; i < n; ++i) out[begin + i] = out[begin - 1];
      continue;
    }
    uint64_t zz[kPackGroup];
    if (!bits.read_group(static_cast<int>(width), n, zz)) return false;
    for (size_t i = 0; i < n; ++i) out[begin + i] = out[begin + i - 1] + static_cast<uint64_t>(core::unzigzag(zz[i]));
  }
  return true;
}

bool get_packed_ints(core::ByteReader& r, size_t count, uint64_t* out) {
  BitReader bits(r.position(), r.remaining());
  return unpack_ints(bits, count, out) && advance_past(r, bits);
}

bool get_packed_times(core::ByteReader& r, size_t count, uint64_t* deltas) {
  BitReader bits(r.position(), r.remaining());
  if (count == 0) return true;
  return get_sized(bits, deltas[0]) && unpack_ints(bits, count - 1, deltas + 1) && advance_past(r, bits);
}

// The fewest decimals (0..15) at which x is exactly n / 10^d; -1 if none. Tries `hint` (the
// previous value's answer) first: a series' readings usually share their precision.
int min_decimals(double x, int hint) {
  auto exact = [x](int d) { return to_decimal(x, d).has_value(); };
  if (hint >= 0 && exact(hint) && (hint == 0 || !exact(hint - 1))) return hint;
  for (int d = 0; d <= kMaxPackedDecimals; ++d) {
    if (exact(d)) return d;
  }
  return -1;
}

// Floats at `decimals`: the integers n = round(x * 10^d) packed as above, and an exception
// list for values that are not exactly n / 10^d: (uvarint index delta, uvarint zigzag of the
// difference of the IEEE bits). Values printed with a binary artefact (74.93588199999998)
// cost a byte or two there instead of turning the whole chunk into XOR coding; NaN, ±Inf
// and -0.0 are exceptions too and survive bit for bit.
struct DecimalPlan {
  int decimals = 0;
  std::vector<uint64_t> ns;
  std::string exceptions;
  size_t n_exceptions = 0;
  size_t bytes() const { return 1 + core::uvarint_size(n_exceptions) + exceptions.size() + packed_ints_bytes(ns); }
};

void plan_decimal(std::span<const double> values, int decimals, DecimalPlan& plan) {
  plan.decimals = decimals;
  plan.ns.resize(values.size());
  plan.exceptions.clear();
  plan.n_exceptions = 0;
  size_t last = 0;
  int64_t prev = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    double scaled = values[i] * kPow10[decimals];
    int64_t n = std::fabs(scaled) < k2Pow53 ? std::llround(scaled) : prev;
    plan.ns[i] = static_cast<uint64_t>(n);
    prev = n;
    uint64_t want = float_bits(values[i]), got = float_bits(from_decimal(n, decimals));
    if (want != got) {
      core::put_uvarint(plan.exceptions, i - last);
      core::put_uvarint(plan.exceptions, core::zigzag(static_cast<int64_t>(want - got)));
      last = i;
      ++plan.n_exceptions;
    }
  }
}

template <typename Writer>
void xor_floats(Writer& w, std::span<const double> values) {
  XorState state;
  for (size_t i = 0; i < values.size(); ++i) {
    if (i == 0) {
      state.prev = float_bits(values[0]);
      w.write_bits(state.prev, 64);
    } else {
      write_xor(w, float_bits(values[i]), state);
    }
  }
}

// Whichever of the candidate encodings is smallest: XOR, and decimal scaling at each
// precision that some value needs exactly (fewer decimals mean narrower deltas, more
// decimals fewer exceptions; the sizes decide). Candidates are sized, not written.
void put_packed_floats(std::string& out, std::span<const double> values) {
  uint32_t wanted = 0;  // bit d: some value is exact at d decimals and no fewer
  int hint = -1;
  for (double x : values) {
    hint = min_decimals(x, hint);
    if (hint >= 0) wanted |= 1u << hint;
  }
  BitCounter xor_bits;
  xor_floats(xor_bits, values);
  size_t best_bytes = 1 + (xor_bits.bits + 7) / 8;
  DecimalPlan best, trial;
  bool decimal = false;
  for (int d = 0; d <= kMaxPackedDecimals; ++d) {
    if (!(wanted & (1u << d))) continue;
    plan_decimal(values, d, trial);
    if (size_t bytes = trial.bytes(); bytes < best_bytes) {
      best_bytes = bytes;
      std::swap(best, trial);
      decimal = true;
    }
  }
  if (!decimal) {
    out.push_back(static_cast<char>(kPackedXor));
    BitWriter w;
    xor_floats(w, values);
    finish_stream(out, w);
    return;
  }
  out.push_back(static_cast<char>(best.decimals));
  core::put_uvarint(out, best.n_exceptions);
  out += best.exceptions;
  put_packed_ints(out, best.ns);
}

// Decodes `count` floats as their IEEE bits.
bool get_packed_floats(core::ByteReader& r, size_t count, uint64_t* out) {
  auto mode = r.u8();
  if (!mode) return false;
  if (*mode == kPackedXor) {
    BitReader bits(r.position(), r.remaining());
    XorState state;
    for (size_t i = 0; i < count; ++i) {
      if (i == 0 ? !bits.read_bits(64, state.prev) : !read_xor(bits, state)) return false;
      out[i] = state.prev;
    }
    return advance_past(r, bits);
  }
  int decimals = *mode;
  if (decimals > kMaxPackedDecimals) return false;
  auto n_exceptions = r.uvarint();
  if (!n_exceptions || *n_exceptions > count) return false;
  // Exceptions come before the integers; read them into place after.
  struct Exception {
    size_t index;
    uint64_t diff;
  };
  std::vector<Exception> exceptions;
  exceptions.reserve(*n_exceptions);
  size_t index = 0;
  for (uint64_t e = 0; e < *n_exceptions; ++e) {
    auto delta = r.uvarint();
    auto diff = r.uvarint();
    if (!delta || !diff || *delta > count - index) return false;
    index += *delta;
    if (index >= count) return false;
    exceptions.push_back({index, static_cast<uint64_t>(core::unzigzag(*diff))});
  }
  if (!get_packed_ints(r, count, out)) return false;
  // Whole numbers (counters, the sums of integer readings) skip the division: a rollup query
  // decodes millions of them.
  if (decimals == 0) {
    for (size_t i = 0; i < count; ++i) out[i] = float_bits(static_cast<double>(static_cast<int64_t>(out[i])));
  } else {
    for (size_t i = 0; i < count; ++i) out[i] = float_bits(from_decimal(static_cast<int64_t>(out[i]), decimals));
  }
  for (const auto& e : exceptions) out[e.index] += e.diff;
  return true;
}

}  // namespace

std::string encode_packed_chunk(ValueType type, std::span<const Sample> samples) {
  int scale_code = 3;
  for (const auto& s : samples) scale_code = std::min(scale_code, coarsest_scale(s.ts));
  std::string out;
  out.push_back(static_cast<char>(type));
  out.push_back(static_cast<char>(scale_code | kPackedUnitNibble << 4));
  core::put_uvarint(out, samples.size());
  if (type == ValueType::float64) {
    std::vector<double> values;
    values.reserve(samples.size());
    for (const auto& s : samples) values.push_back(std::get<double>(s.value));
    put_packed_floats(out, values);
  } else {
    std::vector<uint64_t> values;
    values.reserve(samples.size());
    for (const auto& s : samples) values.push_back(static_cast<uint64_t>(std::get<int64_t>(s.value)));
    put_packed_ints(out, values);
  }
  std::vector<uint64_t> deltas(samples.size());
  int64_t prev = 0;
  for (size_t i = 0; i < samples.size(); ++i) {
    int64_t scaled = samples[i].ts / kScales[scale_code];
    deltas[i] = static_cast<uint64_t>(scaled) - static_cast<uint64_t>(prev);
    prev = scaled;
  }
  put_packed_times(out, deltas);
  return out;
}

bool ChunkIterator::open_packed(core::ByteReader& r) {
  // Everything is decoded here, values then time deltas; next() only walks the arrays.
  packed_ = true;
  packed_values_.resize(2 * static_cast<size_t>(count_));
  uint64_t* values = packed_values_.data();
  bool ok = type_ == ValueType::float64 ? get_packed_floats(r, count_, values) : get_packed_ints(r, count_, values);
  return ok && get_packed_times(r, count_, values + count_) && r.remaining() == 0;
}

std::string encode_rollups(const std::vector<RollupPoint>& points) {
  // Version 3: u8 time unit (0 ns, 1 minute) | uvarint n | packed ints: the time deltas
  // (the first whole), so regular rollups cost 7 bits per 16 | packed ints: counts | packed
  // floats: sum, min, max (in that order: most queries stop after the sum).
  bool minutes = std::all_of(points.begin(), points.end(), [](const RollupPoint& p) { return p.ts % core::kNsPerMinute == 0; });
  std::string out;
  out.push_back(static_cast<char>(minutes ? 1 : 0));
  core::put_uvarint(out, points.size());
  std::vector<uint64_t> ints(points.size());
  int64_t prev = 0;
  for (size_t i = 0; i < points.size(); ++i) {
    int64_t ts = minutes ? points[i].ts / core::kNsPerMinute : points[i].ts;
    ints[i] = static_cast<uint64_t>(ts) - static_cast<uint64_t>(i == 0 ? 0 : prev);
    prev = ts;
  }
  put_packed_times(out, ints);
  for (size_t i = 0; i < points.size(); ++i) ints[i] = points[i].count;
  put_packed_ints(out, ints);
  std::vector<double> field(points.size());
  for (double RollupPoint::*member : {&RollupPoint::sum, &RollupPoint::min, &RollupPoint::max}) {
    for (size_t i = 0; i < points.size(); ++i) field[i] = points[i].*member;
    put_packed_floats(out, field);
  }
  return out;
}

Result<std::vector<RollupPoint>> decode_rollups(std::string_view bytes, bool extremes) {
  core::ByteReader r(bytes);
  auto unit = r.u8();
  auto n = r.uvarint();
  // Five packed streams take at least 5 x 7 bits per 16 points: a count beyond 4 per input
  // byte is corrupt, found before anything is allocated for it.
  if (!unit || *unit > 1 || !n || *n > bytes.size() * 4) return make_error(Errc::corrupt, "bad rollup header");
  const int64_t scale = *unit == 1 ? core::kNsPerMinute : 1;
  // The streams decode into one buffer (time deltas, counts, sum, min, max).
  const size_t count = *n, streams_wanted = extremes ? 5 : 3;
  std::vector<uint64_t> streams(streams_wanted * count);
  uint64_t* ts = streams.data();
  if (!get_packed_times(r, count, ts) || !get_packed_ints(r, count, ts + count)) {
    return make_error(Errc::corrupt, "truncated rollup");
  }
  for (size_t f = 2; f < streams_wanted; ++f) {
    if (!get_packed_floats(r, count, ts + f * count)) return make_error(Errc::corrupt, "truncated rollup");
  }
  std::vector<RollupPoint> out(count);
  uint64_t t = 0;
  for (size_t i = 0; i < count; ++i) {
    t += ts[i];
    auto& p = out[i];
    if (__builtin_mul_overflow(static_cast<int64_t>(t), scale, &p.ts)) return make_error(Errc::corrupt, "rollup timestamp overflow");
    p.count = ts[count + i];
    p.sum = std::bit_cast<double>(ts[2 * count + i]);
    if (extremes) {
      p.min = std::bit_cast<double>(ts[3 * count + i]);
      p.max = std::bit_cast<double>(ts[4 * count + i]);
    } else {
      p.min = p.max = std::numeric_limits<double>::quiet_NaN();
    }
  }
  return out;
}

}  // namespace fieldline::tsdb
