// StopMatcher: finds stop strings in streamed text without ever releasing a
// byte of one. Text that could still become the start of a stop string is
// held back until the next push() decides it (or flush() at the end), so a
// stop string that spans several tokens never leaks into the output.
//
// Threading: one instance per generated choice, used by one thread at a time.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kr {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);

  // Appends `text`; returns the text that is now safe to emit. After a stop
  // string was found, stopped() is true, the returned text ends right before
  // it, and later pushes return "".
  std::string push(std::string_view text);
  // End of generation: releases the held-back tail (nothing if stopped).
  std::string flush();
  bool stopped() const { return stopped_; }
  // Which stop string matched ("" when none).
  const std::string& matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;  // held back: a suffix that is a proper prefix of some stop string
  bool stopped_ = false;
  std::string matched_;
};

}  // namespace kr
