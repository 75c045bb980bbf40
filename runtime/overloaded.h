// Overloaded{lambdas...}: one visitor from several lambdas, for std::visit over message variants.
// Listing one lambda per alternative (no generic catch-all) makes a missing case a compile error.
#pragma once

namespace runahead::runtime {

template <typename... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <typename... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

}  // namespace runahead::runtime
