// Unguessable bytes from the kernel's CSPRNG (getrandom(2)), for secrets such as the
// per-request data-plane capability. No dependency beyond the C library.
#pragma once

#include <cstdint>
#include <span>

#include "core/status.h"

namespace runahead {

// Fills `out` entirely; kUnavailable naming the cause where the kernel cannot supply them.
[[nodiscard]] Status fill_secure_random(std::span<uint8_t> out);

}  // namespace runahead
