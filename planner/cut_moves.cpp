#include "planner/cut_moves.h"

namespace runahead {

std::vector<std::vector<int>> cut_moves(size_t interior) {
  std::vector<std::vector<int>> moves;
  if (interior <= 4) {
    size_t combos = 1;
    for (size_t i = 0; i < interior; ++i) combos *= 3;
    for (size_t code = 0; code < combos; ++code) {
      std::vector<int> move(interior);
      size_t rest = code;
      bool any = false;
      for (size_t i = 0; i < interior; ++i) {
        move[i] = static_cast<int>(rest % 3) - 1;
        rest /= 3;
        any = any || move[i] != 0;
      }
      if (any) moves.push_back(std::move(move));
    }
    return moves;
  }
  for (size_t i = 0; i < interior; ++i) {
    for (int sign : {-1, 1}) {
      std::vector<int> move(interior, 0);
      move[i] = sign;
      moves.push_back(move);
      if (i + 1 < interior) {
        move[i + 1] = sign;
        moves.push_back(move);
        move[i + 1] = -sign;
        moves.push_back(move);
      }
    }
  }
  return moves;
}

}  // namespace runahead
