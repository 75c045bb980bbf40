// Creates a backend from a device string: "cpu", "cuda" (GPU 0) or "cuda:N".
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "kernels/backend.h"

namespace runahead {

[[nodiscard]] Result<std::unique_ptr<Backend>> make_backend(const std::string& device);

}  // namespace runahead
