#include <filesystem>
#include <fstream>

#include "model/gguf_model.h"
#include "model/hf_checkpoint.h"
#include "model/host_model.h"

namespace runahead {

Result<HostModel> load_model(const std::string& path) {
  std::error_code error;
  const auto status = std::filesystem::status(path, error);
  if (error || !std::filesystem::exists(status)) {
    return make_error(ErrorCode::kNotFound, path + ": no such file or directory");
  }
  if (std::filesystem::is_directory(status)) return load_hf_checkpoint(path);
  char magic[4] = {};
  std::ifstream file(path, std::ios::binary);
  file.read(magic, sizeof magic);
  if (file.gcount() == 4 && std::string(magic, 4) == "GGUF") return load_gguf_model(path);
  return make_error(ErrorCode::kUnsupported,
                    path +
                        ": neither a checkpoint directory (config.json + safetensors) nor a "
                        "GGUF file");
}

}  // namespace runahead
