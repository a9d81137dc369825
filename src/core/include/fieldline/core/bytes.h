#pragma once
// Little-endian fixed-width and varint helpers for the on-disk formats.

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace fieldline::core {

inline void put_u32(std::string& out, uint32_t v) {
  char b[4];
  std::memcpy(b, &v, 4);
  out.append(b, 4);
}
inline void put_u64(std::string& out, uint64_t v) {
  char b[8];
  std::memcpy(b, &v, 8);
  out.append(b, 8);
}
inline uint32_t get_u32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint64_t get_u64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline void put_uvarint(std::string& out, uint64_t v) {
  // Gathered, then appended once: a push_back per byte checked the capacity for each of a
  // timestamp's nine bytes.
  char bytes[10];
  size_t n = 0;
  while (v >= 0x80) {
    bytes[n++] = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  bytes[n++] = static_cast<char>(v);
  out.append(bytes, n);
}
inline size_t uvarint_size(uint64_t v) {
  size_t n = 1;
  for (; v >= 0x80; v >>= 7) ++n;
  return n;
}
inline uint64_t zigzag(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }
inline int64_t unzigzag(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }
inline void put_varint(std::string& out, int64_t v) { put_uvarint(out, zigzag(v)); }
inline void put_string(std::string& out, std::string_view s) {
  put_uvarint(out, s.size());
  out.append(s);
}

// A bounds-checked reader over a byte range; every getter fails (returns nullopt) instead of
// reading past the end, so corrupt input can never crash a decoder.
class ByteReader {
 public:
  ByteReader(const char* p, size_t n) : p_(p), end_(p + n) {}
  explicit ByteReader(std::string_view s) : ByteReader(s.data(), s.size()) {}
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  const char* position() const { return p_; }
  std::optional<uint64_t> uvarint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && p_ < end_; shift += 7) {
      auto b = static_cast<uint8_t>(*p_++);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    return std::nullopt;
  }
  std::optional<int64_t> varint() {
    auto v = uvarint();
    if (!v) return std::nullopt;
    return unzigzag(*v);
  }
  std::optional<uint32_t> u32() {
    if (remaining() < 4) return std::nullopt;
    uint32_t v = get_u32(p_);
    p_ += 4;
    return v;
  }
  std::optional<uint64_t> u64() {
    if (remaining() < 8) return std::nullopt;
    uint64_t v = get_u64(p_);
    p_ += 8;
    return v;
  }
  std::optional<uint8_t> u8() {
    if (remaining() < 1) return std::nullopt;
    return static_cast<uint8_t>(*p_++);
  }
  std::optional<std::string_view> bytes(size_t n) {
    if (remaining() < n) return std::nullopt;
    std::string_view v(p_, n);
    p_ += n;
    return v;
  }
  std::optional<std::string_view> string() {
    auto n = uvarint();
    if (!n) return std::nullopt;
    return bytes(*n);
  }

 private:
  const char* p_;
  const char* end_;
};

}  // namespace fieldline::core
