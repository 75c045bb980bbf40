#include "model/gguf_model.h"

namespace runahead {

Result<HostModel> load_gguf_model(const std::string& path) {
  return make_error(ErrorCode::kUnsupported, path + ": GGUF loading is not built yet");
}

}  // namespace runahead
