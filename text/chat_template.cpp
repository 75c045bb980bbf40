#include "text/chat_template.h"

namespace runahead::text {

Result<ChatTemplate> ChatTemplate::parse(std::string_view jinja, const std::string& source) {
  if (jinja.find("<|im_start|>") == std::string_view::npos ||
      jinja.find("<|im_end|>") == std::string_view::npos) {
    return make_error(ErrorCode::kUnsupported,
                      source +
                          ": the chat template is not in the ChatML form (<|im_start|>role "
                          "... <|im_end|>), the only form supported");
  }
  ChatTemplate chat;
  // A literal system turn in the template is the default used when none is given.
  constexpr std::string_view kSystemOpen = "<|im_start|>system\n";
  const size_t open = jinja.find(kSystemOpen);
  if (open != std::string_view::npos) {
    const size_t begin = open + kSystemOpen.size();
    const size_t end = jinja.find("<|im_end|>", begin);
    const std::string_view text = jinja.substr(begin, end - begin);
    // A system turn built from variables ({{ ... }}) is not a literal default.
    if (end != std::string_view::npos && text.find("{{") == std::string_view::npos &&
        text.find("{%") == std::string_view::npos && text.find('\'') == std::string_view::npos) {
      chat.default_system_ = std::string(text);
    }
  }
  return chat;
}

std::string ChatTemplate::apply(const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt) const {
  std::string out;
  if (!default_system_.empty() && (messages.empty() || messages.front().role != "system")) {
    out += "<|im_start|>system\n" + default_system_ + "<|im_end|>\n";
  }
  for (const ChatMessage& message : messages) {
    out += "<|im_start|>" + message.role + "\n" + message.content + "<|im_end|>\n";
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

}  // namespace runahead::text
