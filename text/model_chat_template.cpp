#include "text/model_chat_template.h"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "model/gguf.h"

namespace runahead::text {

Result<std::string> load_chat_template_source(const std::string& model) {
  if (std::filesystem::is_directory(model)) {
    const std::string path = model + "/tokenizer_config.json";
    std::ifstream in(path);
    const nlohmann::json config = nlohmann::json::parse(in, nullptr, false);
    if (!in || config.is_discarded() || !config.contains("chat_template") ||
        !config.at("chat_template").is_string()) {
      return make_error(ErrorCode::kNotFound, path + ": no chat_template string");
    }
    return config.at("chat_template").get<std::string>();
  }
  auto file = GgufFile::open(model);
  if (!file) return file.error();
  const GgufValue* jinja = (*file)->find("tokenizer.chat_template");
  if (jinja == nullptr || jinja->as_string() == nullptr) {
    return make_error(ErrorCode::kNotFound,
                      model + ": metadata key tokenizer.chat_template is missing");
  }
  return *jinja->as_string();
}

}  // namespace runahead::text
