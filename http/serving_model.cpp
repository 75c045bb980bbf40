#include "http/serving_model.h"

#include <chrono>
#include <filesystem>

#include "text/model_chat_template.h"

namespace runahead::http {

Result<ServingModel> ServingModel::load(const std::string& path, const std::string& name) {
  if (path.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the HTTP API needs the model's tokenizer: name the model file or "
                      "checkpoint with --model PATH");
  }
  ServingModel model;
  auto tokenizer = text::load_tokenizer(path);
  if (!tokenizer) {
    return make_error(tokenizer.error().code,
                      "the HTTP API's tokenizer: " + tokenizer.error().message);
  }
  model.tokenizer = std::move(tokenizer).value();
  model.name = name;
  if (model.name.empty()) {
    std::filesystem::path file(path);
    model.name =
        file.has_filename() ? file.stem().string() : file.parent_path().filename().string();
  }
  model.created = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  auto source = text::load_chat_template_source(path);
  if (!source) {
    model.chat_unavailable = source.error().message;
    return model;
  }
  auto chat = text::ChatTemplate::parse(*source, path + ": chat template");
  if (!chat) {
    model.chat_unavailable = chat.error().message;
    return model;
  }
  model.chat = std::move(chat).value();
  return model;
}

}  // namespace runahead::http
