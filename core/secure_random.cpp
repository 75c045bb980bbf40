#include "core/secure_random.h"

#include <sys/random.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace runahead {

Status fill_secure_random(std::span<uint8_t> out) {
  size_t filled = 0;
  while (filled < out.size()) {
    // Blocks only until the kernel's pool is first initialized at boot.
    const ssize_t got = ::getrandom(out.data() + filled, out.size() - filled, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return make_error(ErrorCode::kUnavailable,
                        std::string("getrandom failed: ") + std::strerror(errno));
    }
    filled += static_cast<size_t>(got);
  }
  return Status::ok();
}

}  // namespace runahead
