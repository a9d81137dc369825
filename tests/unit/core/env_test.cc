// The POSIX Env's mapped files: letting go of pages already read (done_with) must not change
// what the mapping reads afterwards; the pages come back from the file.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <string>

#include "fieldline/core/env.h"

namespace fieldline::core {
namespace {

TEST(MappedFile, BytesReadAfterDoneWithAreTheFilesBytes) {
  auto env = make_posix_env();
  const std::string dir = std::filesystem::temp_directory_path() / ("fieldline-env-test-" + std::to_string(::getpid()));
  ASSERT_TRUE(env->create_dirs(dir));
  const std::string path = dir + "/segment";
  std::string content(3 * 1024 * 1024 + 123, '\0');
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>((i * 2654435761u) >> 13);
  {
    auto file = env->open_writable(path, true);
    ASSERT_TRUE(file);
    ASSERT_TRUE((*file)->append(content));
    ASSERT_TRUE((*file)->close());
  }
  auto mapped = env->map_file(path);
  ASSERT_TRUE(mapped);
  const auto bytes = (*mapped)->bytes();
  ASSERT_EQ(bytes.size(), content.size());
  EXPECT_EQ(std::string(bytes.data(), bytes.size()), content);
  (*mapped)->done_with(1024 * 1024 + 7);  // part way, not on a page boundary
  EXPECT_EQ(std::string(bytes.data(), bytes.size()), content);
  (*mapped)->done_with(bytes.size());
  (*mapped)->done_with(bytes.size() * 2);  // past the end: harmless
  EXPECT_EQ(std::string(bytes.data(), bytes.size()), content);
  ASSERT_TRUE(env->remove_all(dir));
}

}  // namespace
}  // namespace fieldline::core
