// OpenAI-style error objects: {"error": {"message", "type", "param", "code"}} with the HTTP status
// that goes with them.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace runahead::http {

struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // the request field at fault; empty: null
  std::string code;   // a machine-readable code; empty: null
};

// 400 invalid_request_error naming the field at fault.
ApiError invalid_request(std::string message, std::string param = {}, std::string code = {});

nlohmann::json error_json(const ApiError& error);

}  // namespace runahead::http
