// The chat page's assets as the server hands them out: what is served, with
// which types and headers, and that nothing else is.
#include "server/webui.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>

namespace kr {
namespace {

std::string header(const HttpResponse& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return "";
}

std::string source_file(const std::string& rel) {
  std::ifstream in(std::string(KR_SOURCE_DIR) + "/src/server/webui/" + rel, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Webui, RootServesThePageAsBuilt) {
  HttpResponse r;
  ASSERT_TRUE(webui_asset("/", &r));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  // The embedded bytes are the source file's (the build re-embeds on change).
  EXPECT_EQ(r.body, source_file("index.html"));
  EXPECT_NE(header(r, "Content-Security-Policy").find("script-src 'self'"), std::string::npos);
  EXPECT_EQ(header(r, "X-Content-Type-Options"), "nosniff");
  HttpResponse again;
  ASSERT_TRUE(webui_asset("/index.html", &again));
  EXPECT_EQ(again.body, r.body);
}

TEST(Webui, AssetsHaveTheirTypes) {
  const std::pair<const char*, const char*> cases[] = {{"app.js", "text/javascript; charset=utf-8"},
                                                      {"markdown.js", "text/javascript; charset=utf-8"},
                                                      {"style.css", "text/css; charset=utf-8"}};
  for (const auto& [name, type] : cases) {
    HttpResponse r;
    ASSERT_TRUE(webui_asset(std::string("/webui/") + name, &r)) << name;
    EXPECT_EQ(r.content_type, type) << name;
    EXPECT_EQ(r.body, source_file(name)) << name;
  }
}

TEST(Webui, EverythingThePageLinksIsServed) {
  // Every same-origin src/href in the page must resolve to an embedded asset, and
  // nothing may come from another origin (no CDN).
  HttpResponse page;
  ASSERT_TRUE(webui_asset("/", &page));
  const std::regex ref(R"((?:src|href)="([^"]*)\")");
  int local = 0;
  for (auto it = std::sregex_iterator(page.body.begin(), page.body.end(), ref); it != std::sregex_iterator(); ++it) {
    const std::string url = (*it)[1];
    if (url.rfind("data:", 0) == 0 || url.rfind("#", 0) == 0) continue;
    EXPECT_EQ(url.find("//"), std::string::npos) << "external reference " << url;
    HttpResponse r;
    EXPECT_TRUE(webui_asset(url, &r)) << url << " is linked but not embedded";
    ++local;
  }
  EXPECT_GE(local, 2);
}

TEST(Webui, UnknownPathsAreNotHandled) {
  for (const char* p : {"/v1/models", "/webui/", "/webui/nope.js", "/webui/index.html", "/webui/../CMakeLists.txt",
                        "/app.js", "/index.htm", ""}) {
    HttpResponse r;
    r.status = 999;
    EXPECT_FALSE(webui_asset(p, &r)) << p;
    EXPECT_EQ(r.status, 999) << p;
  }
}

}  // namespace
}  // namespace kr
