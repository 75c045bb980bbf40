// ChatML templates: SmolLM2's (with its default system turn), plain ChatML, and refusals.
#include <gtest/gtest.h>

#include "text/chat_template.h"

namespace runahead::text {
namespace {

// tokenizer.chat_template of SmolLM2-135M-Instruct.
const char* const kSmolLM2 =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}";

TEST(ChatTemplate, SmolLM2InsertsItsDefaultSystemTurn) {
  auto chat = ChatTemplate::parse(kSmolLM2, "test");
  ASSERT_TRUE(chat) << chat.error().to_string();
  EXPECT_EQ(chat->apply({{"user", "Hi"}}, true),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
            "Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(chat->apply({{"system", "Be brief."}, {"user", "Hi"}}, false),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
}

TEST(ChatTemplate, PlainChatML) {
  auto chat = ChatTemplate::parse(
      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
      "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}",
      "test");
  ASSERT_TRUE(chat);
  EXPECT_TRUE(chat->default_system().empty());
  EXPECT_EQ(chat->apply({{"user", "a"}, {"assistant", "b"}}, true),
            "<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\nb<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(ChatTemplate, OtherFormsAreRefusedByName) {
  auto chat = ChatTemplate::parse("{{ bos_token }}[INST] {{ message['content'] }} [/INST]",
                                  "model.gguf: tokenizer.chat_template");
  ASSERT_FALSE(chat);
  EXPECT_EQ(chat.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(chat.error().message.find("model.gguf: tokenizer.chat_template"), std::string::npos);
  EXPECT_NE(chat.error().message.find("ChatML"), std::string::npos);
}

}  // namespace
}  // namespace runahead::text
