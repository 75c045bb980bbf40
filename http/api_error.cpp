#include "http/api_error.h"

namespace runahead::http {

ApiError invalid_request(std::string message, std::string param, std::string code) {
  return ApiError{.status = 400,
                  .message = std::move(message),
                  .type = "invalid_request_error",
                  .param = std::move(param),
                  .code = std::move(code)};
}

nlohmann::json error_json(const ApiError& error) {
  auto or_null = [](const std::string& value) {
    return value.empty() ? nlohmann::json(nullptr) : nlohmann::json(value);
  };
  return {{"error",
           {{"message", error.message},
            {"type", error.type},
            {"param", or_null(error.param)},
            {"code", or_null(error.code)}}}};
}

}  // namespace runahead::http
