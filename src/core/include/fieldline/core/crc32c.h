#pragma once
// CRC32C (Castagnoli), the checksum on every WAL record and block chunk. Uses the SSE4.2
// instruction when the CPU has it, a table otherwise; both give identical results.

#include <cstddef>
#include <cstdint>
#include <span>

namespace fieldline::core {
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t size);
inline uint32_t crc32c(const void* data, size_t size) { return crc32c_extend(0, data, size); }
inline uint32_t crc32c(std::span<const char> s) { return crc32c(s.data(), s.size()); }
}  // namespace fieldline::core
