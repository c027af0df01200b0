// kr-tokenizer-bench --model DIR [--seconds S] [--out PATH]: single-thread
// encode throughput of DIR/tokenizer.json on procedurally generated English
// prose (~400 KB, seeded, so every run encodes the same text). Prints JSON
// and writes it to --out when given.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"

namespace {

// Varied prose: sentences from a word list, capitalised, with commas,
// contractions, numbers, quotes, parentheses and paragraph breaks.
std::string make_prose(size_t target_bytes) {
  static const char* kWords[] = {
      "the", "model", "server", "request", "token", "quickly", "returned", "a", "of", "and", "to", "in", "is",
      "was", "for", "with", "that", "on", "as", "at", "by", "from", "they", "we", "it", "this", "an", "be",
      "cache", "memory", "throughput", "latency", "scheduler", "batch", "prompt", "answer", "question", "river",
      "mountain", "village", "morning", "evening", "history", "science", "language", "children", "teacher",
      "government", "economy", "weather", "ancient", "modern", "beautiful", "difficult", "important", "quiet",
      "walked", "considered", "understood", "measured", "discovered", "explained", "remembered", "because",
      "although", "however", "therefore", "meanwhile", "nevertheless", "extraordinary", "unbelievably",
      "information", "communication", "responsibility", "international", "transformation", "Paris", "London",
      "Tokyo", "Alice", "Bob", "Professor", "Dr.", "Mr.", "e-mail", "well-known", "state-of-the-art"};
  static const char* kContractions[] = {"don't", "it's", "they're", "we've", "I'm", "she'll", "he'd", "can't"};
  std::mt19937 rng(12345);
  const auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  std::string out;
  out.reserve(target_bytes + 256);
  while (out.size() < target_bytes) {
    const size_t sentences = 3 + pick(5);
    for (size_t s = 0; s < sentences; ++s) {
      const size_t words = 6 + pick(18);
      for (size_t w = 0; w < words; ++w) {
        std::string word;
        const size_t r = pick(100);
        if (r < 6) {
          word = kContractions[pick(std::size(kContractions))];
        } else if (r < 10) {
          word = std::to_string(pick(100000));
          if (r == 9) word.append(".").append(std::to_string(pick(100)));
        } else {
          word = kWords[pick(std::size(kWords))];
        }
        if (w == 0 && word[0] >= 'a' && word[0] <= 'z') word[0] = static_cast<char>(word[0] - 32);
        if (w > 0) out += ' ';
        if (r == 11) { word.insert(0, 1, '"'); word.push_back('"'); }
        if (r == 12) { word.insert(0, 1, '('); word.push_back(')'); }
        out += word;
        if (w + 1 < words && pick(10) == 0) out += ',';
      }
      const size_t end = pick(10);
      out += end < 7 ? "." : end < 9 ? "?" : "!";
      out += ' ';
    }
    out += pick(3) == 0 ? "\n\n" : "\n";
  }
  return out;
}

int usage() {
  std::fprintf(stderr, "usage: kr-tokenizer-bench --model DIR [--seconds S] [--out PATH]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_dir, out_path;
  double seconds = 3.0;
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (std::strcmp(argv[i], "--model") == 0 && has_value) {
      model_dir = argv[++i];
    } else if (std::strcmp(argv[i], "--seconds") == 0 && has_value) {
      seconds = std::atof(argv[++i]);
      if (!(seconds > 0)) return usage();
    } else if (std::strcmp(argv[i], "--out") == 0 && has_value) {
      out_path = argv[++i];
    } else {
      return usage();
    }
  }
  if (model_dir.empty()) return usage();
  const std::string path = model_dir + "/tokenizer.json";
  const auto t_load = std::chrono::steady_clock::now();
  auto tok = kr::Tokenizer::load_from_file(path);
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();
  if (!tok.ok()) {
    std::fprintf(stderr, "kr-tokenizer-bench: cannot load %s: %s\n", path.c_str(), tok.status().to_string().c_str());
    return 1;
  }
  const std::string text = make_prose(400 * 1024);
  // Encode paragraph by paragraph (as requests arrive), timing whole passes.
  std::vector<std::string> paragraphs;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    end = end == std::string::npos ? text.size() : end + 1;
    paragraphs.push_back(text.substr(start, end - start));
    start = end;
  }
  size_t bytes = 0, tokens = 0, passes = 0;
  const auto t0 = std::chrono::steady_clock::now();
  double elapsed_s = 0;
  while (elapsed_s < seconds) {
    for (const std::string& p : paragraphs) {
      tokens += (*tok)->encode(p, /*parse_special=*/false).size();
      bytes += p.size();
    }
    ++passes;
    elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  nlohmann::json result = {
      {"model", model_dir},
      {"text_bytes", text.size()},
      {"passes", passes},
      {"seconds", elapsed_s},
      {"load_seconds", load_s},
      {"mb_per_s", static_cast<double>(bytes) / 1e6 / elapsed_s},
      {"tokens_per_s", static_cast<double>(tokens) / elapsed_s},
      {"bytes_per_token", static_cast<double>(bytes) / static_cast<double>(tokens)},
  };
  const std::string dumped = result.dump(2);
  std::printf("%s\n", dumped.c_str());
  if (!out_path.empty()) {
    std::ofstream out(out_path);
    out << dumped << "\n";
    if (!out) {
      std::fprintf(stderr, "kr-tokenizer-bench: cannot write %s\n", out_path.c_str());
      return 1;
    }
  }
  return 0;
}
