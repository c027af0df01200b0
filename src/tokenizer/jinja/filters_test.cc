// Filters, including transformers' tojson.
#include <gtest/gtest.h>

#include "tokenizer/jinja/test_util.h"

namespace kr::jinja {
namespace {

using testing::render;

TEST(JinjaFilters, Strings) {
  EXPECT_EQ(render("[{{ '  a \\n' | trim }}][{{ 'xxaxx' | trim('x') }}][{{ 'aB' | upper }}][{{ 'aB' | lower }}]"),
            "[a][a][AB][ab]");
  EXPECT_EQ(render("{{ 'hELLO wORLD' | capitalize }}|{{ 'hello wORLD-foo' | title }}|{{ 3 | string }}|{{ 'a<b>&\"' | e }}"),
            "Hello world|Hello World-Foo|3|a&lt;b&gt;&amp;&#34;");
  EXPECT_EQ(render("{{ 'aXbX' | replace('X', '-') }}{{ 'a' | safe }}{{ 'x' | escape }}"), "a-b-ax");
  EXPECT_EQ(render("{{ 'a\\nb\\n\\nc' | indent(2) }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'a\\n\\nb' | indent(width=1, blank=true) }}"),
            "a\n  b\n\n  c|  a\n  b|a\n \n b");
  EXPECT_EQ(render("{{ 'éßπж' | upper }}|{{ 'ÉΠЖ' | lower }}|{{ 'Ünï'.upper() }}"), "ÉSSΠЖ|éπж|ÜNÏ");
  // \u3000 (ideographic space) is whitespace to Python's strip.
  EXPECT_EQ(render("[{{ '\\u3000a\\u00a0' | trim }}]"), "[a]");
}

TEST(JinjaFilters, Sequences) {
  const std::string ctx = R"({"xs": [3, 1, 2], "e": [], "d": {"b": 2, "A": 1}})";
  EXPECT_EQ(render("{{ xs | length }}{{ 'héllo' | length }}{{ d | count }}{{ missing | length }}", ctx), "3520");
  EXPECT_EQ(render("{{ xs | first }}{{ xs | last }}[{{ e | first }}]{{ 'abc' | first }}", ctx), "32[]a");
  EXPECT_EQ(render("{{ xs | join(', ') }}|{{ xs | join }}|{{ xs | list }}|{{ 'ab' | list }}", ctx), "3, 1, 2|312|[3, 1, 2]|['a', 'b']");
  EXPECT_EQ(render("{{ xs | reverse | list }}{{ 'abc' | reverse }}{{ xs | sort }}{{ xs | sort(reverse=true) }}", ctx),
            "[2, 1, 3]cba[1, 2, 3][3, 2, 1]");
  EXPECT_EQ(render("{{ d | dictsort }}{{ d | dictsort(by='value', reverse=true) }}{{ d | items | list }}", ctx),
            "[('A', 1), ('b', 2)][('b', 2), ('A', 1)][('b', 2), ('A', 1)]");
  EXPECT_EQ(render("{{ [1, 2, 1, 3, 2] | unique | list }}{{ ['a', 'A'] | unique | list }}{{ xs | min }}{{ xs | max }}{{ xs | sum }}", ctx),
            "[1, 2, 3]['a']136");
}

TEST(JinjaFilters, SelectAndMap) {
  const std::string ctx =
      R"({"ms": [{"role": "system", "n": 1}, {"role": "user", "n": 2}, {"role": "user", "n": 3, "x": true}]})";
  EXPECT_EQ(render("{{ ms | selectattr('role', 'equalto', 'user') | map(attribute='n') | list }}", ctx), "[2, 3]");
  EXPECT_EQ(render("{{ ms | rejectattr('role', 'equalto', 'user') | map(attribute='role') | join }}", ctx), "system");
  EXPECT_EQ(render("{{ ms | selectattr('x') | list | length }}{{ ms | selectattr('x', 'defined') | list | length }}", ctx), "11");
  EXPECT_EQ(render("{{ [1, 2, 3, 4] | select('odd') | list }}{{ [1, 2, 3, 4] | reject('odd') | list }}{{ [0, 1, ''] | select | list }}"),
            "[1, 3][2, 4][1]");
  EXPECT_EQ(render("{{ ['a', 'b'] | map('upper') | list }}{{ ms | map(attribute='zz', default='-') | join }}", ctx), "['A', 'B']---");
  EXPECT_EQ(render("{{ ['code', 'x'] | reject('equalto', 'code') | join(', ') }}"), "x");
}

TEST(JinjaFilters, NumbersAndDefaults) {
  EXPECT_EQ(render("{{ '42' | int }}{{ 'x' | int }}{{ 'x' | int(7) }}{{ 3.9 | int }}{{ '1.5' | float }}{{ 2 | float }}"),
            "420731.52.0");
  EXPECT_EQ(render("{{ -3 | abs }}{{ (-2.5) | abs }}{{ 2.567 | round(2) }}{{ 2.5 | round }}{{ 2.1 | round(method='ceil') }}"
                   "|{{ 7 | round }}|{{ 3.5 | round }}"),
            "32.52.572.03.0|7|4.0");
  EXPECT_EQ(render("{{ missing | default('d') }}{{ '' | default('d') }}{{ '' | default('d', true) }}{{ 0 | d('z', boolean=true) }}"),
            "ddz");
}

TEST(JinjaFilters, ToJson) {
  const std::string ctx = R"({"t": {"name": "f", "args": {"b": [1, 2.5, null, true], "a": "é\"\n"}}, "e": {}})";
  EXPECT_EQ(render("{{ t | tojson }}", ctx), R"({"name": "f", "args": {"b": [1, 2.5, null, true], "a": "é\"\n"}})");
  EXPECT_EQ(render("{{ t.args | tojson(indent=2) }}", ctx),
            "{\n  \"b\": [\n    1,\n    2.5,\n    null,\n    true\n  ],\n  \"a\": \"é\\\"\\n\"\n}");
  EXPECT_EQ(render("{{ t.args | tojson(separators=(',', ':'), sort_keys=true) }}", ctx),
            R"({"a":"é\"\n","b":[1,2.5,null,true]})");
  EXPECT_EQ(render("{{ t.args.a | tojson(ensure_ascii=true) }}{{ e | tojson }}{{ [] | tojson }}", ctx), R"("\u00e9\"\n"{}[])");
  EXPECT_EQ(render("{{ '😀' | tojson(ensure_ascii=true) }}{{ '\\u0001' | tojson }}"), R"("\ud83d\ude00""\u0001")");
  EXPECT_EQ(render("{{ missing | tojson }}"), "ERROR: TypeError: Object of type Undefined is not JSON serializable at line 1");
}

}  // namespace
}  // namespace kr::jinja
