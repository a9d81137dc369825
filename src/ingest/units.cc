#include "fieldline/ingest/units.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "fieldline/ingest/decode.h"

namespace fieldline::ingest {
namespace {

// Base dimensions: length, mass, time, current, temperature, amount, luminous intensity.
constexpr size_t kDims = 7;
using Dims = std::array<int, kDims>;
enum : size_t { L, M, T, I, TH, N, J };

// A unit as a factor to the base units (m, g, s, A, K, mol, cd) and their exponents. Only
// the two temperature scales have an offset (base = value * factor + offset).
struct Unit {
  double factor = 1;
  Dims dims{};
  double offset = 0;
  bool special = false;      // Cel, [degF]: may not be combined
  bool logarithmic = false;  // B, [pH]: valid, not convertible
};

Unit base(size_t d) {
  Unit u;
  u.dims[d] = 1;
  return u;
}
Unit times(Unit a, const Unit& b) {
  a.factor *= b.factor;
  for (size_t i = 0; i < kDims; ++i) a.dims[i] += b.dims[i];
  a.logarithmic = a.logarithmic || b.logarithmic;
  return a;
}
Unit power(Unit a, int e) {
  a.factor = std::pow(a.factor, e);
  for (auto& d : a.dims) d *= e;
  return a;
}
Unit scaled(Unit a, double f) {
  a.factor *= f;
  return a;
}
Unit per(const Unit& a, const Unit& b) { return times(a, power(b, -1)); }

struct Atom {
  Unit unit;
  bool metric;  // takes prefixes
};

const std::map<std::string, Atom, std::less<>>& atoms() {
  static const auto table = [] {
    std::map<std::string, Atom, std::less<>> t;
    const Unit m = base(L), g = base(M), s = base(T), A = base(I), K = base(TH), mol = base(N), cd = base(J), one{};
    const Unit kg = scaled(g, 1e3);
    const Unit newton = per(times(kg, m), power(s, 2));
    const Unit pascal = per(newton, power(m, 2));
    const Unit joule = times(newton, m);
    const Unit watt = per(joule, s);
    const Unit volt = per(watt, A);
    const Unit coulomb = times(A, s);
    const Unit weber = times(volt, s);
    const Unit litre = scaled(power(m, 3), 1e-3);
    const Unit minute = scaled(s, 60), hour = scaled(s, 3600), day = scaled(s, 86400);
    const Unit deg = scaled(one, 3.14159265358979323846 / 180);
    auto metric = [&t](const char* name, Unit u) { t[name] = {u, true}; };
    auto plain = [&t](const char* name, Unit u) { t[name] = {u, false}; };
    metric("m", m);
    metric("s", s);
    metric("g", g);
    metric("A", A);
    metric("K", K);
    metric("mol", scaled(mol, 1));
    metric("cd", cd);
    metric("rad", one);
    metric("sr", one);
    metric("l", litre);
    metric("L", litre);
    metric("Hz", power(s, -1));
    metric("N", newton);
    metric("Pa", pascal);
    metric("bar", scaled(pascal, 1e5));
    metric("J", joule);
    metric("W", watt);
    metric("V", volt);
    metric("C", coulomb);
    metric("Ohm", per(volt, A));
    metric("S", per(A, volt));
    metric("F", per(coulomb, volt));
    metric("Wb", weber);
    metric("H", per(weber, A));
    metric("T", per(weber, power(m, 2)));
    metric("lm", cd);
    metric("lx", per(cd, power(m, 2)));
    metric("t", scaled(g, 1e6));
    metric("eV", scaled(joule, 1.602176634e-19));
    metric("Bq", power(s, -1));
    metric("Gy", per(joule, kg));
    metric("Sv", per(joule, kg));
    metric("ar", scaled(power(m, 2), 100));
    metric("kat", per(mol, s));
    metric("U", scaled(per(mol, minute), 1e-6));
    Unit cel = K;
    cel.offset = 273.15;
    cel.special = true;
    plain("Cel", cel);  // UCUM allows prefixes on Cel; nobody means millidegrees Celsius
    Unit bel{};
    bel.logarithmic = true;
    metric("B", bel);
    plain("[pH]", bel);
    Unit fahrenheit = scaled(K, 5.0 / 9.0);
    fahrenheit.offset = 459.67 * 5.0 / 9.0;
    fahrenheit.special = true;
    plain("[degF]", fahrenheit);
    plain("[degR]", scaled(K, 5.0 / 9.0));
    plain("min", minute);
    plain("h", hour);
    plain("d", day);
    plain("wk", scaled(day, 7));
    plain("mo", scaled(day, 30.4375));
    plain("a", scaled(day, 365.25));
    plain("deg", deg);
    plain("'", scaled(deg, 1.0 / 60));
    plain("''", scaled(deg, 1.0 / 3600));
    plain("%", scaled(one, 1e-2));
    plain("[ppth]", scaled(one, 1e-3));
    plain("[ppm]", scaled(one, 1e-6));
    plain("[ppb]", scaled(one, 1e-9));
    plain("[pptr]", scaled(one, 1e-12));
    plain("[psi]", scaled(pascal, 6894.757293168361));
    plain("atm", scaled(pascal, 101325));
    plain("[in_i]", scaled(m, 0.0254));
    plain("[ft_i]", scaled(m, 0.3048));
    plain("[yd_i]", scaled(m, 0.9144));
    plain("[mi_i]", scaled(m, 1609.344));
    plain("[kn_i]", scaled(per(m, hour), 1852));
    plain("[gal_us]", scaled(litre, 3.785411784));
    plain("[gal_br]", scaled(litre, 4.54609));
    plain("[lb_av]", scaled(g, 453.59237));
    plain("[oz_av]", scaled(g, 28.349523125));
    plain("[HP]", scaled(watt, 745.69987158227022));
    plain("[Btu_IT]", scaled(joule, 1055.05585262));
    plain("cal", scaled(joule, 4.184));
    plain("[cal]", scaled(joule, 4.184));
    return t;
  }();
  return table;
}

const std::vector<std::pair<std::string_view, double>> kPrefixes = {
    {"da", 1e1}, {"Y", 1e24}, {"Z", 1e21}, {"E", 1e18}, {"P", 1e15}, {"T", 1e12}, {"G", 1e9},   {"M", 1e6},   {"k", 1e3}, {"h", 1e2},
    {"d", 1e-1}, {"c", 1e-2}, {"m", 1e-3}, {"u", 1e-6}, {"n", 1e-9}, {"p", 1e-12}, {"f", 1e-15}, {"a", 1e-18}, {"z", 1e-21}, {"y", 1e-24}};

// What people write instead of UCUM.
const std::map<std::string_view, std::string_view, std::less<>> kSuggestions = {
    {"degC", "Cel"}, {"°C", "Cel"}, {"C°", "Cel"}, {"celsius", "Cel"}, {"degF", "[degF]"}, {"°F", "[degF]"},
    {"kWh", "kW.h"}, {"Wh", "W.h"}, {"MWh", "MW.h"}, {"rpm", "/min or {rev}/min"}, {"RPM", "/min or {rev}/min"},
    {"psi", "[psi]"}, {"ppm", "[ppm]"}, {"ppb", "[ppb]"}, {"sec", "s"}, {"hr", "h"}, {"hrs", "h"}, {"mins", "min"},
    {"lpm", "L/min"}, {"m3h", "m3/h"}, {"kph", "km/h"}, {"mph", "[mi_i]/h"}, {"ohm", "Ohm"}, {"hz", "Hz"}};

// An atom, or a metric prefix and a metric atom. Whole atoms win ("min" is minutes, "cd"
// candela, "Pa" pascal), then prefixes ("mm", "kW", "hPa", "dB").
const Unit* simple_unit(std::string_view s, Unit& out) {
  const auto& t = atoms();
  if (auto it = t.find(s); it != t.end()) {
    out = it->second.unit;
    return &out;
  }
  for (const auto& [p, f] : kPrefixes) {
    if (s.size() <= p.size() || !s.starts_with(p)) continue;
    auto it = t.find(s.substr(p.size()));
    if (it != t.end() && it->second.metric) {
      out = scaled(it->second.unit, f);
      return &out;
    }
  }
  return nullptr;
}

class UcumParser {
 public:
  explicit UcumParser(std::string_view s) : s_(s) {}
  Result<Unit> parse() {
    if (s_.empty()) return fail("empty unit");
    bool inverse = false;
    if (peek() == '/') {
      ++pos_;
      inverse = true;
    }
    FL_TRY(t, term());
    if (pos_ != s_.size()) return fail("unexpected '" + std::string(1, s_[pos_]) + "'");
    if (special_combined_ || (inverse && t.special)) return combine_error();
    if (inverse) t = power(t, -1);
    return t;
  }

 private:
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  Error fail(const std::string& why) const {
    std::string msg = "'" + std::string(s_) + "' is not a UCUM unit (" + why + " at character " + std::to_string(pos_ + 1) + ")";
    if (auto it = kSuggestions.find(s_); it != kSuggestions.end()) msg += "; did you mean '" + std::string(it->second) + "'?";
    return make_error(Errc::bad_contract, msg);
  }
  Error combine_error() const {
    return make_error(Errc::bad_contract, "'" + std::string(s_) +
                                              "': Cel and [degF] cannot be combined with other units or raised to a power; use K");
  }
  Result<Unit> term() {
    FL_TRY(left, component());
    Unit acc = left;
    while (peek() == '.' || peek() == '/') {
      bool divide = peek() == '/';
      ++pos_;
      FL_TRY(right, component());
      if (acc.special || right.special) special_combined_ = true;
      acc = divide ? per(acc, right) : times(acc, right);
      acc.special = false;
      acc.offset = 0;
    }
    return acc;
  }
  Result<Unit> annotation(Unit u) {
    size_t close = s_.find('}', pos_);
    if (close == std::string_view::npos) return fail("unclosed '{'");
    for (size_t i = pos_ + 1; i < close; ++i) {
      if (s_[i] == '{' || static_cast<unsigned char>(s_[i]) < 0x20 || static_cast<unsigned char>(s_[i]) > 0x7e) return fail("bad annotation");
    }
    pos_ = close + 1;
    return u;  // annotations carry no dimension: {rev}/min is 1/min
  }
  Result<Unit> component() {
    char c = peek();
    if (c == '(') {
      // Bounded nesting: a hostile unit string must not exhaust the stack.
      if (++depth_ > kMaxDepth) return fail("parentheses nested too deeply");
      ++pos_;
      FL_TRY(inner, term());
      --depth_;
      if (peek() != ')') return fail("missing ')'");
      ++pos_;
      return exponent(inner);
    }
    if (c == '{') return annotation(Unit{});
    if (c >= '0' && c <= '9') {
      size_t start = pos_;
      while (peek() >= '0' && peek() <= '9') ++pos_;
      if (pos_ - start > 15) return fail("numeric factor too long");
      Unit factor{};
      factor.factor = std::strtod(std::string(s_.substr(start, pos_ - start)).c_str(), nullptr);
      return factor;
    }
    size_t start = pos_;
    if (c == '[') {
      size_t close = s_.find(']', pos_);
      if (close == std::string_view::npos) return fail("unclosed '['");
      pos_ = close + 1;
    } else {
      while (pos_ < s_.size() && (std::isalpha(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '%' || s_[pos_] == '\'')) ++pos_;
      if (pos_ == start) return fail("expected a unit");
    }
    std::string_view name = s_.substr(start, pos_ - start);
    Unit u;
    if (!simple_unit(name, u)) {
      pos_ = start;
      return fail("unknown unit '" + std::string(name) + "'");
    }
    FL_TRY(with_exponent, exponent(u));
    if (peek() == '{') return annotation(with_exponent);
    return with_exponent;
  }
  Result<Unit> exponent(Unit u) {
    size_t start = pos_;
    int sign = 1;
    if (peek() == '+' || peek() == '-') {
      sign = peek() == '-' ? -1 : 1;
      ++pos_;
    }
    size_t digits = pos_;
    while (peek() >= '0' && peek() <= '9') ++pos_;
    if (pos_ == digits) {
      if (pos_ != start) return fail("sign without an exponent");
      return u;
    }
    if (pos_ - digits > 2) return fail("exponent too large");
    if (u.special) special_combined_ = true;
    int e = sign * std::stoi(std::string(s_.substr(digits, pos_ - digits)));
    return power(u, e);
  }

  static constexpr int kMaxDepth = 8;
  std::string_view s_;
  size_t pos_ = 0;
  int depth_ = 0;
  bool special_combined_ = false;
};

Result<Unit> resolve(std::string_view unit) {
  UcumParser parser(unit);
  return parser.parse();
}

}  // namespace

Status validate_ucum(std::string_view unit) {
  auto u = resolve(unit);
  if (!u) return u.error();
  return {};
}

Result<UnitConversion> unit_conversion(std::string_view from, std::string_view to) {
  FL_TRY(a, resolve(from));
  FL_TRY(b, resolve(to));
  if (a.logarithmic || b.logarithmic) {
    return make_error(Errc::bad_contract, "'" + std::string(a.logarithmic ? from : to) + "' is logarithmic: no conversion");
  }
  if (a.dims != b.dims) {
    return make_error(Errc::bad_contract, "'" + std::string(from) + "' cannot be converted to '" + std::string(to) +
                                              "' (different dimensions)");
  }
  // base = v * a.factor + a.offset; result = (base - b.offset) / b.factor.
  UnitConversion c;
  c.scale = a.factor / b.factor;
  c.shift = (a.offset - b.offset) / b.factor;
  return c;
}

double round_to_15_digits(double v) {
  if (v == 0 || !std::isfinite(v)) return v;
  // Scaling by an exact power of ten keeps this off the ingest path's printf/strtod (a
  // calibrated value is rounded per sample); the quotient of two exact doubles is correctly
  // rounded, so the result is the double nearest the 15-digit decimal.
  static constexpr double kPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                      1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  // The scaled value is rounded to a double first; when that lands exactly half-way, the
  // exact residual (fma) says which way the true value lies.
  // (fma only then: without hardware FMA it is a slow library call.)
  auto to_integer = [](double scaled, auto residual) {
    if (std::fabs(scaled - std::trunc(scaled)) != 0.5) return std::nearbyint(scaled);
    const double r = residual();
    if (r == 0) return std::nearbyint(scaled);
    return r > 0 ? std::ceil(scaled) : std::floor(scaled);
  };
  const int k = 14 - static_cast<int>(std::floor(std::log10(std::fabs(v))));
  if (k >= 0 && k <= 22) {
    const double p = kPow10[k], scaled = v * p;
    return to_integer(scaled, [&] { return std::fma(v, p, -scaled); }) / p;
  }
  if (k < 0 && k >= -22) {
    const double p = kPow10[-k], scaled = v / p;
    return to_integer(scaled, [&] { return std::fma(-scaled, p, v); }) * p;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  return std::strtod(buf, nullptr);
}

}  // namespace fieldline::ingest
