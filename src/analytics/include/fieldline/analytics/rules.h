#pragma once
// Rules: declarative conditions over a device's metrics, its detectors' scores and its tags,
// evaluated as samples arrive (no scripting language). A condition reads like
//
//   temperature > 80 for 5m
//   score(vibration) >= 0.8 and tag.site == "north"
//   rate(pressure) < -0.5 or not (current > 2 and flow > 10)
//
// with comparisons (> >= < <= == !=) of numbers, metric values, `score(metric)` (the latest
// detector score), `rate(metric)` (change per second between its last two samples) and
// `tag.<key>` strings; `and`, `or`, `not` and parentheses; and an optional `for DURATION`
// (s, m, h, d) that the whole condition must hold before the rule fires. A rule clears when
// its `clear` condition holds (hysteresis: fire above 80, clear below 75), or, without one,
// as soon as its condition no longer does. A metric that has not been seen makes a
// comparison false.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fieldline/core/result.h"

namespace fieldline::analytics::rules {

struct Expr;

// A parsed condition. Errors name the column and what was expected there.
struct Condition {
  std::shared_ptr<const Expr> expr;
  int64_t for_ns = 0;
  std::string text;
};
Result<Condition> parse_condition(std::string_view text);

struct Rule {
  std::string name, severity = "warning";
  Condition when;
  std::optional<Condition> clear;
};
Result<Rule> make_rule(std::string name, std::string_view when, std::string_view clear = {}, std::string severity = "warning");

struct Transition {
  enum class Kind { fired, cleared } kind;
  std::string rule, severity;
  int64_t at_ns = 0;
  std::string condition;  // the condition that held
};

// One device's rules and what they have seen. Owned by the device's shard.
class Evaluator {
 public:
  explicit Evaluator(std::vector<Rule> rules, std::map<std::string, std::string> tags = {});
  // A sample of `metric` (with its detector score); returns the rules that fired or cleared.
  std::vector<Transition> observe(const std::string& metric, int64_t ts_ns, double value, double score = 0);
  bool active(std::string_view rule) const;

  struct Seen {
    int64_t ts = 0, previous_ts = 0;
    double value = 0, previous = 0, score = 0;
    bool has_previous = false;
  };

 private:
  struct State {
    bool active = false;
    int64_t true_since = INT64_MIN;
  };
  std::vector<Rule> rules_;
  std::vector<State> states_;
  std::map<std::string, std::string> tags_;
  std::map<std::string, Seen, std::less<>> seen_;
};

}  // namespace fieldline::analytics::rules
