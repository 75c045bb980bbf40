// The flags of a coordinator, declared once: `runahead coordinator` offers all of them, the
// commands that run a coordinator in their own process (`local`, `bench`) those that apply there.
#pragma once

#include <CLI/CLI.hpp>

#include "runahead/coordinator.h"

namespace runahead::cli {

enum class CoordinatorFlagScope {
  // `runahead coordinator`: where it listens, its queue, worker health and planning.
  kAll,
  // How requests are planned: --partition, --min-tokens-per-worker and --profile.
  kPlanning,
  // --profile alone, for commands that name each request's partition scheme themselves.
  kProfile,
};

// Registers the flags of `scope` on `command`, bound to `config` (which must outlive parsing);
// the defaults shown are the values `config` holds now.
void add_coordinator_flags(CLI::App* command, CoordinatorConfig& config,
                           CoordinatorFlagScope scope);

}  // namespace runahead::cli
