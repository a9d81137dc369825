#pragma once
// UCUM units (the case-sensitive form): syntax, and conversion between units of the same
// dimension, so a reading sent in one unit can be stored in the unit its contract names.

#include <array>
#include <string_view>

#include "fieldline/core/result.h"

namespace fieldline::ingest {

// Checks a unit expression: atoms with metric prefixes, '.' and '/' products, integer
// exponents, parentheses, numeric factors and {annotations}, e.g. "Cel", "mm/s", "kW.h",
// "m3/h", "[ppm]", "%", "1/min", "W/(m2.K)". Fails naming the offending part, with a
// suggestion for the usual mistakes ("degC" -> "Cel", "kWh" -> "kW.h").
Status validate_ucum(std::string_view unit);

// `v` to 15 significant digits, for values that went through a scale or a conversion: 68
// [degF] is 20 Cel and 215 x 0.1 is 21.5, not the ...0000007 that binary arithmetic leaves.
// No sensor reading carries more precision.
double round_to_15_digits(double v);

// value_in_to = value_in_from * scale + shift.
struct UnitConversion {
  double scale = 1, shift = 0;
  double apply(double v) const { return v * scale + shift; }
};

// The conversion from one unit to another of the same dimension ("Cel" -> "[degF]",
// "m3/h" -> "L/min", "kW.h" -> "J"). Fails for different dimensions, for logarithmic units
// (B, dB, [pH]) and for Cel or [degF] inside a product or with an exponent (their zero is
// not at 0 K, so "Cel/s" has no single meaning; use K).
Result<UnitConversion> unit_conversion(std::string_view from, std::string_view to);

}  // namespace fieldline::ingest
