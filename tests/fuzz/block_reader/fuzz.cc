// libFuzzer target: opening and verifying an arbitrary block file.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "fieldline/core/env.h"
#include "fieldline/tsdb/block.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fieldline;
  static auto env = core::make_posix_env();
  static std::string path = (std::filesystem::temp_directory_path() / ("fl-fuzz-block-" + std::to_string(getpid()) + ".blk")).string();
  {
    auto f = env->open_writable(path, true);
    if (!f) return 0;
    (void)(*f)->append(std::span<const char>(reinterpret_cast<const char*>(data), size));
  }
  auto b = tsdb::BlockReader::open(*env, path);
  if (b) (void)(*b)->verify();
  return 0;
}
