// Statements, whitespace control, loops, macros, namespaces and parse errors.
#include <gtest/gtest.h>

#include "tokenizer/jinja/test_util.h"

namespace kr::jinja {
namespace {

using testing::render;

TEST(JinjaStatements, OutputTextAndComments) {
  EXPECT_EQ(render("a{{ 1 + 2 }}b{# note #}c"), "a3bc");
  EXPECT_EQ(render("{{ x }}|{{ none }}|{{ true }}|{{ 1.5 }}", R"({"x": "hi"})"), "hi|None|True|1.5");
  EXPECT_EQ(render("[{{ missing }}]"), "[]");
}

TEST(JinjaStatements, IfElifElse) {
  const std::string t = "{% if n == 1 %}one{% elif n == 2 %}two{% else %}many{% endif %}";
  EXPECT_EQ(render(t, R"({"n": 1})"), "one");
  EXPECT_EQ(render(t, R"({"n": 2})"), "two");
  EXPECT_EQ(render(t, R"({"n": 7})"), "many");
  EXPECT_EQ(render("{% if missing %}y{% endif %}"), "");
}

TEST(JinjaStatements, ForLoopVariables) {
  EXPECT_EQ(render("{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}"
                   "{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}",
                   R"({"xs": ["a", "b"]})"),
            "1021TrueFalse2;2110FalseTrue2;");
  EXPECT_EQ(render("{% for x in xs %}{{ loop.previtem }}>{{ x }}>{{ loop.nextitem }} {% endfor %}",
                   R"({"xs": [1, 2, 3]})"),
            ">1>2 1>2>3 2>3> ");
}

TEST(JinjaStatements, ForFilterElseDictAndUnpacking) {
  EXPECT_EQ(render("{% for x in xs if x is odd %}{{ x }}{{ loop.index }} {% endfor %}", R"({"xs": [1,2,3,4,5]})"),
            "11 32 53 ");
  EXPECT_EQ(render("{% for x in xs %}{{ x }}{% else %}empty{% endfor %}", R"({"xs": []})"), "empty");
  EXPECT_EQ(render("{% for k in d %}{{ k }}{% endfor %}", R"({"d": {"b": 1, "a": 2}})"), "ba");
  EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }},{% endfor %}", R"({"d": {"b": 1, "a": 2}})"),
            "b=1,a=2,");
  EXPECT_EQ(render("{% for k, v in d | items %}{{ k }}{{ v }}{% endfor %}", R"({"d": {"x": 1}})"), "x1");
  EXPECT_EQ(render("{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }} {% endfor %}"), "3 7 ");
  EXPECT_EQ(render("{% for c in 'hé!' %}[{{ c }}]{% endfor %}"), "[h][é][!]");
  EXPECT_EQ(render("{% for a, b in [[1, 2, 3]] %}{% endfor %}").rfind("ERROR: ValueError: cannot unpack", 0), 0u);
}

TEST(JinjaStatements, BreakContinueAndScoping) {
  EXPECT_EQ(render("{% for i in range(10) %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}"), "012");
  EXPECT_EQ(render("{% for i in range(5) %}{% if i is even %}{% continue %}{% endif %}{{ i }}{% endfor %}"), "13");
  // A set inside a loop does not leak out of it (why namespace() exists).
  EXPECT_EQ(render("{% set x = 1 %}{% for i in range(3) %}{% set x = i %}{% endfor %}{{ x }}"), "1");
  // A set inside an if does.
  EXPECT_EQ(render("{% if true %}{% set x = 5 %}{% endif %}{{ x }}"), "5");
}

TEST(JinjaStatements, SetForms) {
  EXPECT_EQ(render("{% set a, b = 1, 2 %}{{ a }}{{ b }}"), "12");
  EXPECT_EQ(render("{% set t = 1, 2 %}{{ t }}"), "(1, 2)");
  EXPECT_EQ(render("{% set x %}hello {{ 1 }}{% endset %}[{{ x }}]"), "[hello 1]");
  EXPECT_EQ(render("{% set ns = namespace(n=0, s='') %}{% for i in range(4) %}{% set ns.n = ns.n + i %}"
                   "{% set ns.s = ns.s ~ i %}{% endfor %}{{ ns.n }} {{ ns.s }}"),
            "6 0123");
  EXPECT_EQ(render("{% set d = {'a': 1} %}{% set d.a = 2 %}"),
            "ERROR: cannot assign attribute 'a' on a non-namespace object at line 1");
}

TEST(JinjaStatements, Macros) {
  EXPECT_EQ(render("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}"
                   "{{ greet('Ann') }} {{ greet('Bob', '?') }} {{ greet(punct='.', name='Cy') }}"),
            "Hi Ann! Hi Bob? Hi Cy.");
  EXPECT_EQ(render("{% set g = 'global' %}{% macro m() %}{{ g }}{% endmacro %}{{ m() }}"), "global");
  EXPECT_EQ(render("{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1, 2) }}").rfind("ERROR: TypeError: macro 'm' takes 1", 0), 0u);
  EXPECT_EQ(render("{% macro m(a) %}{{ a }}{% endmacro %}{{ m(b=1) }}"),
            "ERROR: TypeError: macro 'm' has no parameter 'b' at line 1");
  EXPECT_EQ(render("{% macro box() %}[{{ caller() }}]{% endmacro %}{% call box() %}inside{% endcall %}"), "[inside]");
  EXPECT_EQ(render("{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(3) }}"), "321");
}

TEST(JinjaStatements, FilterBlockRawAndGeneration) {
  EXPECT_EQ(render("{% filter upper %}abc {{ 'd' }}{% endfilter %}"), "ABC D");
  EXPECT_EQ(render("{% raw %}{{ not parsed }}{% endraw %}"), "{{ not parsed }}");
  EXPECT_EQ(render("{% generation %}x{% endgeneration %}"), "x");
}

TEST(JinjaWhitespace, TrimBlocksAndLstripBlocks) {
  // trim_blocks: the newline after a block tag goes; lstrip_blocks: indentation before it goes.
  EXPECT_EQ(render("{% if true %}\n  yes\n{% endif %}\nafter"), "  yes\nafter");
  EXPECT_EQ(render("<ul>\n    {% for i in [1, 2] %}\n    <li>{{ i }}</li>\n    {% endfor %}\n</ul>"),
            "<ul>\n    <li>1</li>\n    <li>2</li>\n</ul>");
  // Not for expressions: {{ }} keeps both.
  EXPECT_EQ(render("  {{ 1 }}\n2"), "  1\n2");
  // Comments follow the block rules.
  EXPECT_EQ(render("a\n  {# c #}\nb"), "a\nb");
  // lstrip only when the tag starts the line.
  EXPECT_EQ(render("x  {% if true %}y{% endif %}"), "x  y");
}

TEST(JinjaWhitespace, NewlineNormalisationAndTrailingNewline) {
  // Jinja's defaults: \r\n and \r become \n; one trailing newline of the source goes.
  EXPECT_EQ(render("{% if true %}\r\nx\r\ny{% endif %}"), "x\ny");
  EXPECT_EQ(render("a\n"), "a");
  EXPECT_EQ(render("a\n\n"), "a\n");
  EXPECT_EQ(render("  {% for x in [1, 2] %} {{ x }}{% endfor %}  \n"), " 1 2  ");
}

TEST(JinjaWhitespace, MinusAndPlusModifiers) {
  EXPECT_EQ(render("a  \n  {{- 'b' -}}  \n  c"), "abc");
  EXPECT_EQ(render("a\n\n{%- if true -%}\n\n b \n{%- endif %}"), "ab");
  EXPECT_EQ(render("{% if true +%}\nx{% endif %}"), "\nx");
  EXPECT_EQ(render("  {%+ if true %}x{% endif %}"), "  x");
}

TEST(JinjaErrors, UnsupportedConstructsNameTheConstructAndLine) {
  EXPECT_EQ(render("line1\n{{ x | foo }}"), "ERROR: chat template: unsupported filter 'foo' at line 2");
  EXPECT_EQ(render("\n\n{% include 'other.html' %}"), "ERROR: chat template: unsupported statement 'include' at line 3");
  EXPECT_EQ(render("{% if x is frobbable %}{% endif %}"), "ERROR: chat template: unsupported test 'frobbable' at line 1");
  EXPECT_EQ(render("{% for x in y %}"), "ERROR: chat template: missing '{% endfor %}' at line 1");
  EXPECT_EQ(render("{{ 'abc }}"), "ERROR: chat template: unterminated string literal at line 1");
  EXPECT_EQ(render("{% break %}"), "ERROR: chat template: 'break' outside a loop at line 1");
  EXPECT_EQ(render("{{ 1 + }}"), "ERROR: chat template: unexpected '}}' at line 1");
  EXPECT_EQ(render("{% endif %}"), "ERROR: chat template: unexpected 'endif' without an open block at line 1");
}

TEST(JinjaErrors, RuntimeErrors) {
  EXPECT_EQ(render("{{ raise_exception('bad input') }}"), "ERROR: bad input");
  EXPECT_EQ(render("{{ missing.attr }}"), "ERROR: UndefinedError: 'missing' is undefined at line 1");
  EXPECT_EQ(render("{{ [1].startswith('a') }}"), "ERROR: UndefinedError: 'list object' has no attribute 'startswith' at line 1");
  EXPECT_EQ(render("{{ 'a' + 1 }}"), "ERROR: TypeError: can only concatenate str (not \"int\") to str at line 1");
  EXPECT_EQ(render("{{ missing + 1 }}"), "ERROR: UndefinedError: 'missing' is undefined at line 1");
  EXPECT_EQ(render("{{ 1 // 0 }}"), "ERROR: ZeroDivisionError: integer division or modulo by zero at line 1");
  EXPECT_EQ(render("{{ x() }}", R"({"x": 1})"), "ERROR: TypeError: 'int object' is not callable at line 1");
}

}  // namespace
}  // namespace kr::jinja
