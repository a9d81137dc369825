#pragma once

#include <string>

namespace fieldline::app {

// fieldline eval cmapss: RUL on NASA C-MAPSS through a server of this binary (see the .cc);
// prints RMSE and the PHM08 score beside the published results (`format`: table or json).
// Exit 0, or 1 when the platform failed or its training set differs from the files', 2 for
// unreadable data.
int eval_cmapss(const std::string& dir, const std::string& subset, const std::string& format);

}  // namespace fieldline::app
