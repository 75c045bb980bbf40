// Stop strings over streamed text: text is released only once it cannot be the start of a stop
// string, so a stop string split across tokens never reaches the client.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace runahead::http {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);

  // Adds generated text; returns what may be sent now. After a stop string was found, returns
  // the text before it and ignores everything later.
  std::string push(std::string_view text);
  // The text still held back (none once stopped).
  std::string finish();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace runahead::http
