#include "model/hf_checkpoint.h"

namespace runahead {

Result<HostModel> load_hf_checkpoint(const std::string& directory) {
  return make_error(ErrorCode::kUnsupported, directory + ": Hugging Face loading is not built yet");
}

}  // namespace runahead
