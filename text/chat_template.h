// Chat prompts from a model's chat template (tokenizer.chat_template).
//
// Templates are Jinja programs; this is not a Jinja engine. It recognizes the ChatML form
// (<|im_start|>role\ncontent<|im_end|>\n, then <|im_start|>assistant\n for the reply),
// including a default system message that the template inserts when the conversation has
// none (SmolLM2, Qwen2). Any other template is refused with an error saying so.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace runahead::text {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

class ChatTemplate {
 public:
  // Recognizes `jinja`; `source` names where it came from in errors.
  [[nodiscard]] static Result<ChatTemplate> parse(std::string_view jinja,
                                                  const std::string& source);

  // The prompt text, ending with the assistant's opening when `add_generation_prompt`.
  std::string apply(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;

  const std::string& default_system() const { return default_system_; }

 private:
  std::string default_system_;  // empty: none inserted
};

}  // namespace runahead::text
