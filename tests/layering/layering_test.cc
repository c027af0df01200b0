// The module order of docs/architecture.md, enforced: every #include "module/..."
// under src/ must name the file's own module or one it may depend on (directly
// or through others). The order is read from the ```layers block of
// docs/architecture.md, so the document and the check cannot drift apart.
// Angle-bracket includes (the standard library, nlohmann, gtest, CUDA) are not
// modules and are not checked.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace kr {
namespace {

namespace fs = std::filesystem;

// module -> the modules it may include (transitively closed, itself included).
using Rules = std::map<std::string, std::set<std::string>>;

// Parses the ```layers block: one "module: dep dep ..." line per module.
// Returns false (and sets *error) on a malformed block or an unknown dependency.
bool parse_rules(const std::string& doc, Rules* rules, std::string* error) {
  const size_t open = doc.find("```layers\n");
  if (open == std::string::npos) return *error = "no ```layers block", false;
  const size_t begin = open + 10, end = doc.find("```", begin);
  if (end == std::string::npos) return *error = "the ```layers block is not closed", false;
  std::map<std::string, std::vector<std::string>> direct;
  std::istringstream lines(doc.substr(begin, end - begin));
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) return *error = "no ':' in \"" + line + "\"", false;
    const std::string module = line.substr(0, colon);
    std::istringstream deps(line.substr(colon + 1));
    std::vector<std::string>& d = direct[module];
    for (std::string dep; deps >> dep;) d.push_back(dep);
  }
  for (const auto& [module, deps] : direct)
    for (const std::string& dep : deps)
      if (!direct.count(dep)) return *error = module + " depends on unknown module " + dep, false;
  // Transitive closure (the order has no cycles: a module reaching itself is an error).
  for (const auto& [module, deps] : direct) {
    std::set<std::string>& reach = (*rules)[module];
    std::vector<std::string> todo(deps.begin(), deps.end());
    while (!todo.empty()) {
      const std::string m = todo.back();
      todo.pop_back();
      if (m == module) return *error = "the order has a cycle through " + module, false;
      if (!reach.insert(m).second) continue;
      for (const std::string& next : direct[m]) todo.push_back(next);
    }
    reach.insert(module);
  }
  return true;
}

struct Include {
  int line = 0;
  std::string path;  // as written between the quotes
};

std::vector<Include> quoted_includes(const fs::path& file) {
  static const std::regex kInclude(R"re(^\s*#\s*include\s*"([^"]+)")re");
  std::vector<Include> out;
  std::ifstream in(file);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    std::smatch m;
    if (std::regex_search(line, m, kInclude)) out.push_back({n, m[1]});
  }
  return out;
}

bool is_source(const fs::path& p) {
  static const std::set<std::string> kExt = {".h", ".hpp", ".cc", ".cpp", ".cu", ".cuh", ".inc"};
  return kExt.count(p.extension().string()) != 0;
}

// One line per violation: "src/a/x.cc:12: includes "b/y.h": a may include only ...".
std::vector<std::string> check_tree(const fs::path& root, const Rules& rules) {
  std::vector<std::string> problems;
  const fs::path src = root / "src";
  for (const auto& entry : fs::recursive_directory_iterator(src)) {
    if (!entry.is_regular_file() || !is_source(entry.path())) continue;
    const fs::path rel = fs::relative(entry.path(), root);
    const fs::path in_src = fs::relative(entry.path(), src);
    const std::string module = in_src.begin()->string();
    auto allowed = rules.find(module);
    if (allowed == rules.end() || std::distance(in_src.begin(), in_src.end()) < 2) {
      problems.push_back(rel.string() + ": in unknown module '" + module + "' (not in docs/architecture.md)");
      continue;
    }
    for (const Include& inc : quoted_includes(entry.path())) {
      const std::string where = rel.string() + ":" + std::to_string(inc.line) + ": includes \"" + inc.path + "\"";
      const size_t slash = inc.path.find('/');
      if (slash == std::string::npos) {
        // A file beside the includer belongs to the same module.
        if (!fs::exists(entry.path().parent_path() / inc.path))
          problems.push_back(where + ": not a module path (write \"module/file.h\")");
        continue;
      }
      const std::string target = inc.path.substr(0, slash);
      if (!rules.count(target)) {
        problems.push_back(where + ": unknown module '" + target + "'");
      } else if (!allowed->second.count(target)) {
        std::string may;
        for (const std::string& m : allowed->second)
          if (m != module) may += (may.empty() ? "" : ", ") + m;
        problems.push_back(where + ": " + module + " may include only " + (may.empty() ? "itself" : may));
      }
    }
  }
  std::sort(problems.begin(), problems.end());
  return problems;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Layering, SourceTreeFollowsTheModuleOrder) {
  const fs::path root = KR_SOURCE_DIR;
  Rules rules;
  std::string error;
  ASSERT_TRUE(parse_rules(read_file(root / "docs/architecture.md"), &rules, &error)) << error;
  ASSERT_TRUE(rules.count("base") && rules.count("server")) << "the ```layers block lost its modules";
  std::string all;
  for (const std::string& p : check_tree(root, rules)) all += "  " + p + "\n";
  EXPECT_TRUE(all.empty()) << "includes against the module order of docs/architecture.md:\n" << all;
}

// The checker itself, on a made-up tree: it must catch a wrong-way include, an
// unknown module and a file outside any module, and accept a transitive one.
TEST(Layering, CheckerCatchesViolations) {
  const std::string doc = "x\n```layers\nbase:\nbackend: base\nmodel: backend\nengine: model\nbench: engine\n```\n";
  Rules rules;
  std::string error;
  ASSERT_TRUE(parse_rules(doc, &rules, &error)) << error;
  EXPECT_TRUE(rules["engine"].count("base"));  // through model and backend
  EXPECT_FALSE(rules["base"].count("engine"));

  const fs::path root = fs::temp_directory_path() / ("kr_layering_" + std::to_string(::getpid()));
  fs::remove_all(root);
  auto write = [&](const std::string& rel, const std::string& text) {
    fs::create_directories((root / rel).parent_path());
    std::ofstream(root / rel) << text;
  };
  write("src/base/a.h", "#include <vector>\n#include \"b.h\"\n");
  write("src/base/b.h", "\n");
  write("src/engine/e.cc", "#include \"base/a.h\"\n#include \"model/m.h\"\n  #  include \"bench/x.h\"\n");
  write("src/model/m.h", "#include \"tokenizer/t.h\"\n#include \"nothere.h\"\n");
  write("src/stray.cc", "\n");
  write("src/tools/t.cc", "\n");
  const std::vector<std::string> got = check_tree(root, rules);
  fs::remove_all(root);
  const std::vector<std::string> want = {
      "src/engine/e.cc:3: includes \"bench/x.h\": engine may include only backend, base, model",
      "src/model/m.h:1: includes \"tokenizer/t.h\": unknown module 'tokenizer'",
      "src/model/m.h:2: includes \"nothere.h\": not a module path (write \"module/file.h\")",
      "src/stray.cc: in unknown module 'stray.cc' (not in docs/architecture.md)",
      "src/tools/t.cc: in unknown module 'tools' (not in docs/architecture.md)",
  };
  EXPECT_EQ(got, want);

  EXPECT_FALSE(parse_rules("```layers\na: b\n```", &rules, &error));
  EXPECT_FALSE(parse_rules("```layers\na: b\nb: a\n```", &rules, &error));
}

}  // namespace
}  // namespace kr
