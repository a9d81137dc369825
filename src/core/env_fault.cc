#include <map>
#include <mutex>

#include "fieldline/core/env.h"
#include "fieldline/core/errc.h"

namespace fieldline::core {

namespace {
Error crashed_error() { return make_error(Errc::crashed, "process crashed (injected)"); }
}  // namespace

struct FaultInjectionEnv::State {
  std::mutex mu;
  std::map<std::string, uint64_t> synced_size;  // path -> bytes known durable
  int appends_until_failure = -1;
  int failures_left = 0;
  Errc failure = Errc::io_error;
  bool fail_syncs = false;
  bool crashed = false;
};

namespace {
class FaultFile final : public WritableFile {
 public:
  FaultFile(std::unique_ptr<WritableFile> base, FaultInjectionEnv::State& state) : base_(std::move(base)), state_(state) {}
  Status append(std::span<const char> data) override {
    {
      std::lock_guard lock(state_.mu);
      if (state_.crashed) return make_error(Errc::crashed, "process crashed (injected)");
      if (state_.appends_until_failure == 0 && state_.failures_left > 0) {
        --state_.failures_left;
        return make_error(state_.failure, "injected failure appending to " + base_->path());
      }
      if (state_.appends_until_failure > 0) --state_.appends_until_failure;
    }
    return base_->append(data);
  }
  Status sync() override {
    {
      std::lock_guard lock(state_.mu);
      if (state_.crashed) return make_error(Errc::crashed, "process crashed (injected)");
      if (state_.fail_syncs) return make_error(Errc::io_error, "injected failure syncing " + base_->path());
    }
    uint64_t size = base_->size();
    FL_TRY_STATUS(base_->sync());
    std::lock_guard lock(state_.mu);
    auto& s = state_.synced_size[base_->path()];
    s = std::max(s, size);
    return ok();
  }
  Status close() override { return base_->close(); }
  uint64_t size() const override { return base_->size(); }
  const std::string& path() const override { return base_->path(); }

 private:
  std::unique_ptr<WritableFile> base_;
  FaultInjectionEnv::State& state_;
};
}  // namespace

FaultInjectionEnv::FaultInjectionEnv(Env& base) : base_(base), state_(std::make_unique<State>()) {}
FaultInjectionEnv::~FaultInjectionEnv() = default;

void FaultInjectionEnv::fail_appends(int after_appends, int count, Errc error) {
  std::lock_guard lock(state_->mu);
  state_->appends_until_failure = after_appends;
  state_->failures_left = count;
  state_->failure = error;
}

void FaultInjectionEnv::fail_syncs(bool fail) {
  std::lock_guard lock(state_->mu);
  state_->fail_syncs = fail;
}

Result<std::unique_ptr<WritableFile>> FaultInjectionEnv::open_writable(const std::string& path, bool truncate) {
  if (is_crashed()) return crashed_error();
  FL_TRY(file, base_.open_writable(path, truncate));
  {
    std::lock_guard lock(state_->mu);
    auto it = state_->synced_size.find(path);
    if (truncate || it == state_->synced_size.end()) state_->synced_size[path] = truncate ? 0 : file->size();
  }
  return std::unique_ptr<WritableFile>(std::make_unique<FaultFile>(std::move(file), *state_));
}

void FaultInjectionEnv::crash() {
  std::lock_guard lock(state_->mu);
  state_->crashed = true;
}
void FaultInjectionEnv::restart() {
  std::lock_guard lock(state_->mu);
  state_->crashed = false;
}
bool FaultInjectionEnv::is_crashed() const {
  std::lock_guard lock(state_->mu);
  return state_->crashed;
}
Status FaultInjectionEnv::remove(const std::string& path) {
  if (is_crashed()) return crashed_error();
  return base_.remove(path);
}
Status FaultInjectionEnv::remove_all(const std::string& path) {
  if (is_crashed()) return crashed_error();
  return base_.remove_all(path);
}
Status FaultInjectionEnv::create_dirs(const std::string& path) {
  if (is_crashed()) return crashed_error();
  return base_.create_dirs(path);
}
Status FaultInjectionEnv::sync_dir(const std::string& path) {
  if (is_crashed()) return crashed_error();
  return base_.sync_dir(path);
}
Status FaultInjectionEnv::truncate(const std::string& path, uint64_t size) {
  if (is_crashed()) return crashed_error();
  return base_.truncate(path, size);
}

Status FaultInjectionEnv::rename(const std::string& from, const std::string& to) {
  if (is_crashed()) return crashed_error();
  FL_TRY_STATUS(base_.rename(from, to));
  std::lock_guard lock(state_->mu);
  auto it = state_->synced_size.find(from);
  if (it != state_->synced_size.end()) {
    state_->synced_size[to] = it->second;
    state_->synced_size.erase(it);
  }
  return ok();
}

Status FaultInjectionEnv::drop_unsynced() {
  std::lock_guard lock(state_->mu);
  for (const auto& [path, synced] : state_->synced_size) {
    if (!base_.exists(path)) continue;
    auto size = base_.file_size(path);
    if (size && *size > synced) FL_TRY_STATUS(base_.truncate(path, synced));
  }
  return ok();
}

}  // namespace fieldline::core
