// Checkpoints of the streaming detectors: each saves what it has learnt and loads it back,
// refusing bytes that do not fit (sizes beyond its windows, truncation).
#include <algorithm>
#include <cstring>
#include <span>

#include "fieldline/analytics/detectors.h"
#include "fieldline/core/crc32c.h"
#include "fieldline/core/errc.h"

namespace fieldline::analytics {

namespace {

constexpr char kMagic[4] = {'F', 'L', 'D', 'T'};
constexpr uint8_t kVersion = 3;  // 2: the likelihood's long run is exponentially weighted; compact seasonal slots
                                 // 3: an ensemble's daily deviations; EWMA through the likelihood

void put_double(std::string& out, double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, 8);
  core::put_u64(out, bits);
}
bool get_double(core::ByteReader& in, double& d) {
  auto bits = in.u64();
  if (!bits) return false;
  std::memcpy(&d, &*bits, 8);
  return true;
}
bool get_int(core::ByteReader& in, int64_t& v) {
  auto x = in.varint();
  if (!x) return false;
  v = *x;
  return true;
}
template <typename T>
bool get_count(core::ByteReader& in, T& v, uint64_t at_most) {
  auto x = in.uvarint();
  if (!x || *x > at_most) return false;
  v = static_cast<T>(*x);
  return true;
}

void put_value(std::string& out, double v) { put_double(out, v); }
void put_value(std::string& out, int64_t v) { core::put_varint(out, v); }
bool get_value(core::ByteReader& in, double& v) { return get_double(in, v); }
bool get_value(core::ByteReader& in, int64_t& v) { return get_int(in, v); }

// A ring buffer (the oldest at `next` once full) is saved oldest first, as a counted list...
template <typename Ring>  // a std::vector or std::span
void put_ring(std::string& out, const Ring& ring, size_t next) {
  core::put_uvarint(out, ring.size());
  for (size_t i = 0; i < ring.size(); ++i) put_value(out, ring[(next + i) % ring.size()]);
}
// ...and loaded as a plain list (its oldest first, so `next` starts at 0).
template <typename T>
bool get_ring(core::ByteReader& in, std::vector<T>& ring, size_t& next, size_t at_most) {
  size_t n = 0;
  if (!get_count(in, n, at_most)) return false;
  ring.clear();
  next = 0;
  for (size_t i = 0; i < n; ++i) {
    T x;
    if (!get_value(in, x)) return false;
    ring.push_back(x);
  }
  return true;
}

}  // namespace

void EwStats::save(std::string& out) const {
  put_double(out, mean);
  put_double(out, var);
  core::put_uvarint(out, n);
  put_double(out, unweighted);
}
bool EwStats::load(core::ByteReader& in) {
  return get_double(in, mean) && get_double(in, var) && get_count(in, n, UINT64_MAX) && get_double(in, unweighted);
}

void RobustZ::save(std::string& out) const {
  put_ring(out, recent_, recent_next_);
  put_double(out, previous_);
  out.push_back(has_previous_ ? 1 : 0);
  core::put_varint(out, last_ts_);
  put_double(out, scale_);
  core::put_uvarint(out, scale_age_);
}
bool RobustZ::load(core::ByteReader& in) {
  if (!get_ring(in, recent_, recent_next_, window_)) return false;
  sorted_.assign(recent_.begin(), recent_.end());
  std::sort(sorted_.begin(), sorted_.end());
  if (!get_double(in, previous_)) return false;
  auto flag = in.u8();  // read in the order save() wrote
  if (!flag || !get_int(in, last_ts_) || !get_double(in, scale_) || !get_count(in, scale_age_, 15)) return false;
  has_previous_ = *flag != 0;
  return true;
}

void Ewma::save(std::string& out) const {
  stats_.save(out);
  core::put_varint(out, last_ts_);
}
bool Ewma::load(core::ByteReader& in) { return stats_.load(in) && get_int(in, last_ts_); }

void Cusum::save(std::string& out) const {
  stats_.save(out);
  put_double(out, up_);
  put_double(out, down_);
  core::put_varint(out, last_ts_);
}
bool Cusum::load(core::ByteReader& in) {
  return stats_.load(in) && get_double(in, up_) && get_double(in, down_) && get_int(in, last_ts_);
}

void Flatline::save(std::string& out) const {
  put_double(out, last_);
  core::put_uvarint(out, run_);
  core::put_uvarint(out, longest_);
  core::put_uvarint(out, changes_);
  core::put_uvarint(out, seen_);
}
bool Flatline::load(core::ByteReader& in) {
  return get_double(in, last_) && get_count(in, run_, UINT64_MAX) && get_count(in, longest_, UINT64_MAX) &&
         get_count(in, changes_, UINT64_MAX) && get_count(in, seen_, UINT64_MAX);
}

void Seasonal::save(std::string& out) const {
  core::put_uvarint(out, slots_.size());
  for (const auto& s : slots_) {
    put_double(out, s.mean);
    put_double(out, s.var);
    put_double(out, s.unweighted);
    core::put_varint(out, s.last_period);
    core::put_uvarint(out, s.periods);
    core::put_uvarint(out, s.samples);
  }
  overall_.save(out);
  core::put_varint(out, last_ts_);
}
bool Seasonal::load(core::ByteReader& in) {
  size_t n = 0;
  if (!get_count(in, n, slots_.size()) || n != slots_.size()) return false;
  for (auto& s : slots_) {
    double var = 0, unweighted = 0;
    int64_t last_period = 0;
    size_t periods = 0, samples = 0;
    if (!get_double(in, s.mean) || !get_double(in, var) || !get_double(in, unweighted) || !get_int(in, last_period) ||
        !get_count(in, periods, UINT32_MAX) || !get_count(in, samples, UINT32_MAX) || last_period < INT32_MIN ||
        last_period > INT32_MAX) {
      return false;
    }
    s.var = static_cast<float>(var);
    s.unweighted = static_cast<float>(unweighted);
    s.last_period = static_cast<int32_t>(last_period);
    s.periods = static_cast<uint32_t>(periods);
    s.samples = static_cast<uint32_t>(samples);
  }
  return overall_.load(in) && get_int(in, last_ts_);
}

void Silence::save(std::string& out) const {
  put_ring(out, std::span<const int64_t>(intervals_.data(), intervals_count_), intervals_next_);
  core::put_uvarint(out, since_median_);
  core::put_varint(out, last_ts_);
  core::put_varint(out, usual_);
}
bool Silence::load(core::ByteReader& in) {
  std::vector<int64_t> intervals;
  size_t next = 0;
  if (!get_ring(in, intervals, next, kIntervals)) return false;
  std::copy(intervals.begin(), intervals.end(), intervals_.begin());
  intervals_count_ = static_cast<uint32_t>(intervals.size());
  intervals_next_ = 0;
  return get_count(in, since_median_, UINT32_MAX) && get_int(in, last_ts_) && get_int(in, usual_);
}

void LikelihoodScore::save(std::string& out) const {
  put_ring(out, recent_, recent_next_);
  long_.save(out);
}
bool LikelihoodScore::load(core::ByteReader& in) {
  if (!get_ring(in, recent_, recent_next_, short_window_)) return false;
  short_sum_ = 0;
  for (double x : recent_) short_sum_ += x;
  return long_.load(in);
}

void Likelihood::save(std::string& out) const {
  inner_->save(out);
  score_.save(out);
}
bool Likelihood::load(core::ByteReader& in) { return inner_->load(in) && score_.load(in); }

// The same bytes as when each member was a detector of its own (a Likelihood saves its inner
// detector, then itself): checkpoints from before stay readable.
void Ensemble::save(std::string& out) const {
  core::put_uvarint(out, count_);
  for (size_t i = 0; i < count_; ++i) {
    const Member m = order_[i];
    core::put_string(out, detector_names()[static_cast<size_t>(m)]);
    member(m).save(out);
    if (const auto* likelihood = likelihood_of(m)) likelihood->save(out);
  }
  core::put_uvarint(out, quiet_for_);
  deviations_.save(out);
}
bool Ensemble::load(core::ByteReader& in) {
  size_t n = 0;
  if (!get_count(in, n, count_) || n != count_) return false;
  for (size_t i = 0; i < count_; ++i) {
    const Member m = order_[i];
    auto name = in.string();
    if (!name || *name != detector_names()[static_cast<size_t>(m)] || !member(m).load(in)) return false;
    if (auto* likelihood = likelihood_of(m); likelihood && !likelihood->load(in)) return false;
  }
  return get_count(in, quiet_for_, refractory_) && deviations_.load(in);
}

void Ensemble::DailyDeviations::save(std::string& out) const {
  for (size_t i = 0; i < 4; ++i) {
    core::put_varint(out, days_[i]);
    core::put_u64(out, slots_[i][0]);
    core::put_u64(out, slots_[i][1]);
  }
}
bool Ensemble::DailyDeviations::load(core::ByteReader& in) {
  for (size_t i = 0; i < 4; ++i) {
    auto day = in.varint();
    auto low = day ? in.u64() : std::nullopt;
    auto high = low ? in.u64() : std::nullopt;
    if (!high) return false;
    days_[i] = *day;
    slots_[i][0] = *low;
    slots_[i][1] = *high;
  }
  return true;
}

std::string checkpoint(const Detector& d) {
  std::string out(kMagic, 4);
  out.push_back(static_cast<char>(kVersion));
  std::string body;
  d.save(body);
  core::put_u32(out, core::crc32c(body.data(), body.size()));
  out += body;
  return out;
}

Status restore(Detector& d, std::string_view bytes) {
  auto bad = [](const std::string& why) { return core::make_error(core::Errc::corrupt, "detector checkpoint: " + why); };
  if (bytes.size() < 9 || std::memcmp(bytes.data(), kMagic, 4) != 0) return bad("not a detector checkpoint");
  if (static_cast<uint8_t>(bytes[4]) != kVersion) return bad("version " + std::to_string(static_cast<uint8_t>(bytes[4])) + " is not " + std::to_string(kVersion));
  const std::string_view body = bytes.substr(9);
  if (core::get_u32(bytes.data() + 5) != core::crc32c(body.data(), body.size())) return bad("checksum mismatch");
  core::ByteReader in(body);
  if (!d.load(in) || in.remaining() != 0) return bad("it does not fit this detector (another kind or configuration)");
  return {};
}

namespace {
constexpr char kFileMagic[] = "FLDS";
constexpr uint32_t kFileVersion = 1;
}  // namespace

std::string encode_detector_file(const std::vector<SavedDetectors>& entries) {
  std::string out(kFileMagic, 4);
  core::put_u32(out, kFileVersion);
  for (const auto& e : entries) {
    core::put_string(out, e.key);
    core::put_varint(out, e.document_version);
    core::put_string(out, e.ensemble);
    core::put_string(out, e.silence);
  }
  core::put_u32(out, core::crc32c(out.data(), out.size()));
  return out;
}

Result<std::vector<SavedDetectors>> decode_detector_file(std::string_view bytes) {
  auto bad = [](const std::string& why) { return core::make_error(core::Errc::corrupt, "detector file: " + why); };
  if (bytes.size() < 12 || bytes.substr(0, 4) != std::string_view(kFileMagic, 4)) return bad("not a detector file");
  if (core::get_u32(bytes.data() + 4) != kFileVersion) return bad("version " + std::to_string(core::get_u32(bytes.data() + 4)) + " is not 1");
  if (core::get_u32(bytes.data() + bytes.size() - 4) != core::crc32c(bytes.data(), bytes.size() - 4)) return bad("checksum mismatch");
  std::vector<SavedDetectors> out;
  core::ByteReader r(bytes.data() + 8, bytes.size() - 12);
  while (r.remaining() > 0) {
    auto key = r.string();
    auto version = key ? r.varint() : std::nullopt;
    auto ensemble = version ? r.string() : std::nullopt;
    auto silence = ensemble ? r.string() : std::nullopt;
    if (!silence) return bad("entry " + std::to_string(out.size()) + " is cut short");
    out.push_back({std::string(*key), *version, std::string(*ensemble), std::string(*silence)});
  }
  return out;
}

}  // namespace fieldline::analytics
