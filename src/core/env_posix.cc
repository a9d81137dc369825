#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>

#include "fieldline/core/env.h"
#include "fieldline/core/errc.h"

namespace fieldline::core {
namespace {

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(int fd, std::string path, uint64_t size) : fd_(fd), path_(std::move(path)), size_(size) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status append(std::span<const char> data) override {
    const char* p = data.data();
    size_t left = data.size();
    while (left > 0) {
      ssize_t n = ::write(fd_, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno_error(errno, "write " + path_);
      }
      p += n;
      left -= static_cast<size_t>(n);
      size_.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
    }
    return ok();
  }
  Status sync() override {
    if (::fdatasync(fd_) != 0) return errno_error(errno, "fdatasync " + path_);
    return ok();
  }
  Status close() override {
    if (fd_ < 0) return ok();
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return errno_error(errno, "close " + path_);
    return ok();
  }
  uint64_t size() const override { return size_.load(std::memory_order_relaxed); }
  const std::string& path() const override { return path_; }

 private:
  int fd_;
  std::string path_;
  std::atomic<uint64_t> size_;
};

class PosixMappedFile final : public MappedFile {
 public:
  PosixMappedFile(void* base, size_t size, std::string path) : base_(base), size_(size), path_(std::move(path)) {}
  ~PosixMappedFile() override {
    if (base_ != nullptr && size_ > 0) ::munmap(base_, size_);
  }
  std::span<const char> bytes() const override { return {static_cast<const char*>(base_), size_}; }
  const std::string& path() const override { return path_; }
  void done_with(size_t end) const override {
    static const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    const size_t whole_pages = std::min(end, size_) / page * page;
    if (whole_pages > 0) ::madvise(base_, whole_pages, MADV_DONTNEED);
  }

 private:
  void* base_;
  size_t size_;
  std::string path_;
};

class PosixEnv final : public Env {
 public:
  Result<std::unique_ptr<WritableFile>> overwrite_writable(const std::string& path) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno_error(errno, "open " + path);
    return std::unique_ptr<WritableFile>(std::make_unique<PosixWritableFile>(fd, path, 0));
  }
  Result<std::unique_ptr<WritableFile>> open_writable(const std::string& path, bool truncate) override {
    int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0);
    int fd = ::open(path.c_str(), flags, 0644);
    if (fd < 0) return errno_error(errno, "open " + path);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      int err = errno;
      ::close(fd);
      return errno_error(err, "stat " + path);
    }
    return std::unique_ptr<WritableFile>(
        std::make_unique<PosixWritableFile>(fd, path, static_cast<uint64_t>(st.st_size)));
  }

  Result<std::string> read_file(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno_error(errno, "open " + path);
    std::string out;
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        ::close(fd);
        return errno_error(err, "read " + path);
      }
      if (n == 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return out;
  }

  Result<std::unique_ptr<MappedFile>> map_file(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno_error(errno, "open " + path);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      int err = errno;
      ::close(fd);
      return errno_error(err, "stat " + path);
    }
    void* base = nullptr;
    if (st.st_size > 0) {
      base = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
      if (base == MAP_FAILED) {
        int err = errno;
        ::close(fd);
        return errno_error(err, "mmap " + path);
      }
    }
    ::close(fd);
    return std::unique_ptr<MappedFile>(std::make_unique<PosixMappedFile>(base, static_cast<size_t>(st.st_size), path));
  }

  Status rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return errno_error(errno, "rename " + from + " -> " + to);
    return ok();
  }
  Status remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return errno_error(errno, "unlink " + path);
    return ok();
  }
  Status remove_all(const std::string& path) override {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
    if (ec) return errno_error(ec.value(), "remove " + path);
    return ok();
  }
  Status create_dirs(const std::string& path) override {
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    if (ec) return errno_error(ec.value(), "mkdir " + path);
    return ok();
  }
  Status sync_dir(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno_error(errno, "open dir " + path);
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return errno_error(err, "fsync dir " + path);
    return ok();
  }
  Status truncate(const std::string& path, uint64_t size) override {
    if (::truncate(path.c_str(), static_cast<off_t>(size)) != 0) return errno_error(errno, "truncate " + path);
    return ok();
  }
  Result<std::vector<std::string>> list_dir(const std::string& path) override {
    DIR* dir = ::opendir(path.c_str());
    if (dir == nullptr) return errno_error(errno, "opendir " + path);
    std::vector<std::string> names;
    while (dirent* e = ::readdir(dir)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
    ::closedir(dir);
    std::sort(names.begin(), names.end());
    return names;
  }
  bool exists(const std::string& path) override {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
  }
  Result<uint64_t> file_size(const std::string& path) override {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return errno_error(errno, "stat " + path);
    return static_cast<uint64_t>(st.st_size);
  }
  Result<uint64_t> disk_usage(const std::string& path) override {
    std::error_code ec;
    uint64_t total = 0;
    for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      std::error_code fec;
      if (it->is_regular_file(fec)) total += it->file_size(fec);
    }
    if (ec) return errno_error(ec.value(), "walk " + path);
    return total;
  }
  Result<uint64_t> disk_available(const std::string& path) override {
    struct statvfs st {};
    if (::statvfs(path.c_str(), &st) != 0) return errno_error(errno, "statvfs " + path);
    return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  }
  int64_t now_ns() override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch()).count();
  }
  int64_t monotonic_ns() override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch()).count();
  }
};

}  // namespace

std::unique_ptr<Env> make_posix_env() { return std::make_unique<PosixEnv>(); }

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  if (dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

}  // namespace fieldline::core
