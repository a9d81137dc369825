#include "fieldline/analytics/rules.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <variant>

#include "fieldline/core/errc.h"

namespace fieldline::analytics::rules {

// An operand: a number, a string, a metric's value, score or rate, or a tag.
struct Operand {
  enum class Kind { number, text, value, score, rate, tag } kind = Kind::number;
  double number = 0;
  std::string name;  // text, metric or tag key
};

struct Expr {
  enum class Kind { compare, both, either, negate } kind = Kind::compare;
  Operand left, right;
  std::string op;  // > >= < <= == !=
  std::shared_ptr<const Expr> a, b;
};

namespace {

constexpr size_t kMaxDepth = 32;

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Result<Condition> condition() {
    Condition c;
    c.text = std::string(text_);
    FL_TRY(expr, either(0));
    c.expr = std::move(expr);
    skip();
    if (word("for")) {
      skip();
      const size_t start = pos_;
      while (pos_ < text_.size() && (std::isdigit(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '.')) ++pos_;
      double n = 0;
      auto [p, ec] = std::from_chars(text_.data() + start, text_.data() + pos_, n);
      if (ec != std::errc() || p != text_.data() + pos_ || pos_ == start) return error("a duration such as 5m after 'for'");
      int64_t unit = 0;
      if (pos_ < text_.size()) {
        switch (text_[pos_]) {
          case 's': unit = 1'000'000'000LL; break;
          case 'm': unit = 60'000'000'000LL; break;
          case 'h': unit = 3'600'000'000'000LL; break;
          case 'd': unit = 86'400'000'000'000LL; break;
        }
      }
      if (unit == 0) return error("a unit (s, m, h or d) after the duration");
      ++pos_;
      if (!(n >= 0) || n * static_cast<double>(unit) > 9e18) return error("a duration of at most a few centuries");
      c.for_ns = static_cast<int64_t>(n * static_cast<double>(unit));
    }
    skip();
    if (pos_ != text_.size()) return error("the end of the condition, or 'and', 'or', 'for'");
    return c;
  }

 private:
  Error error(const std::string& expected) const {
    return core::make_error(core::Errc::invalid_argument, "condition '" + std::string(text_.substr(0, 200)) + "', column " +
                                                              std::to_string(pos_ + 1) + ": expected " + expected);
  }
  void skip() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  // Consumes a keyword (followed by a non-identifier character).
  bool word(std::string_view w) {
    skip();
    if (text_.substr(pos_, w.size()) != w) return false;
    const size_t end = pos_ + w.size();
    if (end < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[end])) || text_[end] == '_')) return false;
    pos_ = end;
    return true;
  }
  std::string identifier() {
    skip();
    const size_t start = pos_;
    while (pos_ < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_' ||
                                   text_[pos_] == '.' || text_[pos_] == '-' || text_[pos_] == '/')) {
      ++pos_;
    }
    return std::string(text_.substr(start, pos_ - start));
  }

  // `or` binds looser than `and`; both associate to the left.
  Result<std::shared_ptr<const Expr>> either(size_t depth) { return chain(depth, "or", Expr::Kind::either); }
  Result<std::shared_ptr<const Expr>> both(size_t depth) { return chain(depth, "and", Expr::Kind::both); }
  Result<std::shared_ptr<const Expr>> chain(size_t depth, std::string_view keyword, Expr::Kind kind) {
    auto next = [&]() { return kind == Expr::Kind::either ? both(depth) : unary(depth); };
    FL_TRY(left, next());
    while (word(keyword)) {
      FL_TRY(right, next());
      auto e = std::make_shared<Expr>();
      e->kind = kind;
      e->a = std::move(left);
      e->b = std::move(right);
      left = std::move(e);
    }
    return left;
  }
  Result<std::shared_ptr<const Expr>> unary(size_t depth) {
    if (depth > kMaxDepth) return error("fewer nested parentheses and 'not's (at most 32)");
    if (word("not")) {
      FL_TRY(inner, unary(depth + 1));
      auto e = std::make_shared<Expr>();
      e->kind = Expr::Kind::negate;
      e->a = std::move(inner);
      return std::shared_ptr<const Expr>(std::move(e));
    }
    skip();
    if (pos_ < text_.size() && text_[pos_] == '(') {
      ++pos_;
      FL_TRY(inner, either(depth + 1));
      skip();
      if (pos_ >= text_.size() || text_[pos_] != ')') return error("')'");
      ++pos_;
      return inner;
    }
    return comparison();
  }
  Result<std::shared_ptr<const Expr>> comparison() {
    auto e = std::make_shared<Expr>();
    FL_TRY(left, operand());
    e->left = std::move(left);
    skip();
    for (std::string_view op : {">=", "<=", "==", "!=", ">", "<"}) {
      if (text_.substr(pos_, op.size()) == op) {
        e->op = std::string(op);
        pos_ += op.size();
        break;
      }
    }
    if (e->op.empty()) return error("a comparison (> >= < <= == !=)");
    FL_TRY(right, operand());
    e->right = std::move(right);
    const bool left_text = e->left.kind == Operand::Kind::text || e->left.kind == Operand::Kind::tag;
    const bool right_text = e->right.kind == Operand::Kind::text || e->right.kind == Operand::Kind::tag;
    if (left_text != right_text) return error("the same kind on both sides (a tag compares with a string)");
    if (left_text && e->op != "==" && e->op != "!=") return error("== or != between strings");
    return std::shared_ptr<const Expr>(std::move(e));
  }
  Result<Operand> operand() {
    skip();
    Operand o;
    if (pos_ >= text_.size()) return error("a metric, number, string, score(...), rate(...) or tag.<key>");
    const char c = text_[pos_];
    if (c == '"') {
      const size_t end = text_.find('"', pos_ + 1);
      if (end == std::string_view::npos) return error("a closing '\"'");
      o.kind = Operand::Kind::text;
      o.name = std::string(text_.substr(pos_ + 1, end - pos_ - 1));
      pos_ = end + 1;
      return o;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '+' || c == '.') {
      const size_t start = pos_;
      if (c == '-' || c == '+') ++pos_;
      while (pos_ < text_.size() && (std::isdigit(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '.' ||
                                     text_[pos_] == 'e' || text_[pos_] == 'E' ||
                                     ((text_[pos_] == '-' || text_[pos_] == '+') && (text_[pos_ - 1] == 'e' || text_[pos_ - 1] == 'E')))) {
        ++pos_;
      }
      const char* first = text_.data() + start + (c == '+' ? 1 : 0);
      auto [p, ec] = std::from_chars(first, text_.data() + pos_, o.number);
      if (ec != std::errc() || p != text_.data() + pos_ || !std::isfinite(o.number)) {
        pos_ = start;
        return error("a number");
      }
      return o;
    }
    const std::string id = identifier();
    if (id.empty()) return error("a metric, number, string, score(...), rate(...) or tag.<key>");
    skip();
    if ((id == "score" || id == "rate") && pos_ < text_.size() && text_[pos_] == '(') {
      ++pos_;
      o.kind = id == "score" ? Operand::Kind::score : Operand::Kind::rate;
      o.name = identifier();
      skip();
      if (o.name.empty() || pos_ >= text_.size() || text_[pos_] != ')') return error("a metric name and ')'");
      ++pos_;
      return o;
    }
    if (id.starts_with("tag.") && id.size() > 4) {
      o.kind = Operand::Kind::tag;
      o.name = id.substr(4);
      return o;
    }
    if (id == "and" || id == "or" || id == "not" || id == "for") return error("an operand before '" + id + "'");
    o.kind = Operand::Kind::value;
    o.name = id;
    return o;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

using Seen = Evaluator::Seen;

// The operand's value, or nothing when its metric has not been seen (a false comparison).
std::optional<std::variant<double, std::string>> value_of(const Operand& o, const std::map<std::string, Seen, std::less<>>& seen,
                                                          const std::map<std::string, std::string>& tags) {
  switch (o.kind) {
    case Operand::Kind::number: return o.number;
    case Operand::Kind::text: return o.name;
    case Operand::Kind::tag: {
      auto it = tags.find(o.name);
      if (it == tags.end()) return std::nullopt;
      return it->second;
    }
    default: break;
  }
  auto it = seen.find(o.name);
  if (it == seen.end()) return std::nullopt;
  const Seen& s = it->second;
  if (o.kind == Operand::Kind::value) return s.value;
  if (o.kind == Operand::Kind::score) return s.score;
  if (!s.has_previous || s.ts <= s.previous_ts) return std::nullopt;
  return (s.value - s.previous) / (static_cast<double>(s.ts - s.previous_ts) / 1e9);
}

bool holds(const Expr& e, const std::map<std::string, Seen, std::less<>>& seen, const std::map<std::string, std::string>& tags) {
  switch (e.kind) {
    case Expr::Kind::both: return holds(*e.a, seen, tags) && holds(*e.b, seen, tags);
    case Expr::Kind::either: return holds(*e.a, seen, tags) || holds(*e.b, seen, tags);
    case Expr::Kind::negate: return !holds(*e.a, seen, tags);
    case Expr::Kind::compare: break;
  }
  auto l = value_of(e.left, seen, tags), r = value_of(e.right, seen, tags);
  if (!l || !r || l->index() != r->index()) return false;
  if (e.op == "==") return *l == *r;
  if (e.op == "!=") return *l != *r;
  const double x = std::get<double>(*l), y = std::get<double>(*r);
  if (e.op == ">") return x > y;
  if (e.op == ">=") return x >= y;
  if (e.op == "<") return x < y;
  return x <= y;
}

}  // namespace

Result<Condition> parse_condition(std::string_view text) { return Parser(text).condition(); }

Result<Rule> make_rule(std::string name, std::string_view when, std::string_view clear, std::string severity) {
  if (name.empty()) return core::make_error(core::Errc::invalid_argument, "a rule needs a name");
  Rule r;
  r.name = std::move(name);
  r.severity = std::move(severity);
  FL_TRY(w, parse_condition(when));
  r.when = std::move(w);
  if (!clear.empty()) {
    FL_TRY(c, parse_condition(clear));
    if (c.for_ns != 0) return core::make_error(core::Errc::invalid_argument, "rule '" + r.name + "': a clear condition takes no 'for'");
    r.clear = std::move(c);
  }
  return r;
}

Evaluator::Evaluator(std::vector<Rule> rules, std::map<std::string, std::string> tags)
    : rules_(std::move(rules)), states_(rules_.size()), tags_(std::move(tags)) {}

bool Evaluator::active(std::string_view rule) const {
  for (size_t i = 0; i < rules_.size(); ++i) {
    if (rules_[i].name == rule) return states_[i].active;
  }
  return false;
}

std::vector<Transition> Evaluator::observe(const std::string& metric, int64_t ts, double value, double score) {
  std::vector<Transition> out;
  if (!std::isfinite(value)) return out;
  auto it = seen_.find(metric);
  if (it == seen_.end()) it = seen_.emplace(metric, Seen{}).first;
  Seen& s = it->second;
  if (s.ts != 0 && ts > s.ts) {
    s.previous = s.value;
    s.previous_ts = s.ts;
    s.has_previous = true;
  }
  if (ts >= s.ts) {
    s.ts = ts;
    s.value = value;
    s.score = score;
  }
  for (size_t i = 0; i < rules_.size(); ++i) {
    const Rule& r = rules_[i];
    State& st = states_[i];
    if (!st.active) {
      if (!holds(*r.when.expr, seen_, tags_)) {
        st.true_since = INT64_MIN;
        continue;
      }
      if (st.true_since == INT64_MIN || ts < st.true_since) st.true_since = ts;
      if (ts - st.true_since >= r.when.for_ns) {
        st.active = true;
        out.push_back({Transition::Kind::fired, r.name, r.severity, ts, r.when.text});
      }
    } else {
      const bool clears = r.clear ? holds(*r.clear->expr, seen_, tags_) : !holds(*r.when.expr, seen_, tags_);
      if (clears) {
        st.active = false;
        st.true_since = INT64_MIN;
        out.push_back({Transition::Kind::cleared, r.name, r.severity, ts, r.clear ? r.clear->text : r.when.text});
      }
    }
  }
  return out;
}

}  // namespace fieldline::analytics::rules
