#pragma once
// Published<T>: immutable objects by name (a profile's contract, a device's calibrations)
// that ingestion reads on every shard. A publisher replaces an entry with a new object as a
// whole; a reader keeps a shard-local copy of the map and refreshes it when the generation
// moves, so the hot path takes one atomic load and no lock, and never sees half an update.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace fieldline::ingest {

template <typename T>
class Published {
 public:
  using Map = std::unordered_map<std::string, std::shared_ptr<const T>>;

  // Sets (or, with null, removes) `name`'s object unless `keep(current)` says the current one
  // stays (e.g. a newer version is already there).
  template <typename Keep>
  void publish(const std::string& name, std::shared_ptr<const T> object, Keep keep) {
    std::lock_guard lock(mu_);
    auto it = map_.find(name);
    if (it != map_.end() && keep(*it->second)) return;
    if (object) map_[name] = std::move(object);
    else if (it != map_.end()) map_.erase(it);
    generation_.fetch_add(1, std::memory_order_release);
  }
  std::shared_ptr<const T> find(const std::string& name) const {
    std::lock_guard lock(mu_);
    auto it = map_.find(name);
    return it == map_.end() ? nullptr : it->second;
  }
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  Map snapshot(uint64_t& generation) const {
    std::lock_guard lock(mu_);
    generation = generation_.load(std::memory_order_acquire);
    return map_;
  }

 private:
  mutable std::mutex mu_;
  Map map_;
  std::atomic<uint64_t> generation_{0};
};

}  // namespace fieldline::ingest
