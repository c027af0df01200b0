// Operators, literals, access, slicing, tests, methods and builtin functions.
#include <gtest/gtest.h>

#include <ctime>

#include "tokenizer/jinja/test_util.h"

namespace kr::jinja {
namespace {

using testing::render;

TEST(JinjaExpressions, Literals) {
  EXPECT_EQ(render(R"({{ 'a\'b' }}|{{ "tab\there" }}|{{ '\u00e9\n' }}|{{ 'x' 'y' }})"), "a'b|tab\there|é\n|xy");
  EXPECT_EQ(render("{{ [1, 'a', none, True, 2.50] }}"), "[1, 'a', None, True, 2.5]");
  EXPECT_EQ(render("{{ {'k': [1, (2, 3)], 'q': \"it's\"} }}"), "{'k': [1, (2, 3)], 'q': \"it's\"}");
  EXPECT_EQ(render("{{ (1,) }}{{ () }}{{ 1e3 }}{{ 1_000 }}{{ 0.1 + 0.2 }}"), "(1,)()1000.010000.30000000000000004");
  EXPECT_EQ(render("{{ False }}{{ false }}{{ None }}"), "FalseFalseNone");
}

TEST(JinjaExpressions, Arithmetic) {
  EXPECT_EQ(render("{{ 7 + 2 }} {{ 7 - 2 }} {{ 7 * 2 }} {{ 7 / 2 }} {{ 7 // 2 }} {{ 7 % 2 }} {{ 2 ** 10 }}"),
            "9 5 14 3.5 3 1 1024");
  EXPECT_EQ(render("{{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 4 / 2 }} {{ 1.5 * 2 }} {{ -(3) }} {{ +4 }}"),
            "-4 2 -2 2.0 3.0 -3 4");
  EXPECT_EQ(render("{{ 'ab' * 3 }} {{ [0] * 2 }} {{ 'a' ~ 1 ~ none }} {{ [1] + [2] }} {{ 'x' + 'y' }}"),
            "ababab [0, 0] a1None [1, 2] xy");
  EXPECT_EQ(render("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 2 * 3 ~ 4 }} {{ 10 - 2 - 3 }}"), "7 9 64 5");
  EXPECT_EQ(render("{{ 9223372036854775807 + 1 }}"), "ERROR: integer overflow at line 1");
  EXPECT_EQ(render("{{ '%s has %d items (%.2f%%)' % ('x', 3, 12.345) }}|{{ '%r' % 'q' }}"), "x has 3 items (12.35%)|'q'");
  EXPECT_EQ(render("{{ '%s %s' % 1 }}"), "ERROR: TypeError: not enough arguments for format string at line 1");
}

TEST(JinjaExpressions, ComparisonsAndLogic) {
  EXPECT_EQ(render("{{ 1 == 1.0 }}{{ 1 != 2 }}{{ 'a' < 'b' }}{{ 2 <= 2 }}{{ 3 > 4 }}{{ 3 >= 3 }}{{ [1,2] == [1,2] }}"),
            "TrueTrueTrueTrueFalseTrueTrue");
  EXPECT_EQ(render("{{ 1 < 2 < 3 }}{{ 3 > 2 > 2 }}"), "TrueFalse");
  EXPECT_EQ(render("{{ 'b' in 'abc' }}{{ 2 in [1, 2] }}{{ 'k' in {'k': 1} }}{{ 3 not in [1] }}{{ 'x' in missing }}"),
            "TrueTrueTrueTrueFalse");
  EXPECT_EQ(render("{{ 0 or 'x' }}|{{ 1 and 'y' }}|{{ '' and 1 }}|{{ not 0 }}|{{ not [1] }}"), "x|y||True|False");
  EXPECT_EQ(render("{{ 'y' if 1 > 0 else 'n' }}{{ 'y' if 0 else 'n' }}[{{ 'y' if false }}]"), "yn[]");
  EXPECT_EQ(render("{{ not 1 == 2 }}{{ not x is defined }}"), "TrueTrue");
  EXPECT_EQ(render("{{ 'a' < 1 }}").rfind("ERROR: TypeError", 0), 0u);
}

TEST(JinjaExpressions, AttributeAndItemAccess) {
  const std::string ctx = R"({"m": {"role": "user", "parts": [{"t": "x"}, {"t": "y"}]}, "xs": [10, 20, 30]})";
  EXPECT_EQ(render("{{ m.role }}{{ m['role'] }}{{ m.parts[1].t }}{{ m['parts'][-1]['t'] }}{{ xs.0 }}", ctx), "useruseryy10");
  EXPECT_EQ(render("[{{ m.nothing }}][{{ xs[9] }}][{{ m.nothing is defined }}]", ctx), "[][][False]");
  EXPECT_EQ(render("{{ 'héllo'[1] }}{{ 'abc'[-1] }}"), "éc");
}

TEST(JinjaExpressions, Slicing) {
  const std::string ctx = R"({"xs": [0, 1, 2, 3, 4, 5]})";
  EXPECT_EQ(render("{{ xs[1:3] }}{{ xs[:2] }}{{ xs[4:] }}{{ xs[-2:] }}{{ xs[::2] }}", ctx), "[1, 2][0, 1][4, 5][4, 5][0, 2, 4]");
  EXPECT_EQ(render("{{ xs[::-1] }}{{ xs[4:1:-1] }}{{ xs[::-2] }}{{ xs[10:] }}{{ xs[-100:1] }}", ctx),
            "[5, 4, 3, 2, 1, 0][4, 3, 2][5, 3, 1][][0]");
  EXPECT_EQ(render("{{ 'hello'[1:4] }}{{ 'héllo'[::-1] }}{{ 'abc'[:-1] }}"), "ellolléhab");
  EXPECT_EQ(render("{{ xs[::0] }}", ctx), "ERROR: ValueError: slice step cannot be zero at line 1");
}

TEST(JinjaExpressions, Tests) {
  const std::string ctx = R"({"s": "x", "n": 3, "f": 1.5, "l": [1], "d": {}, "b": true, "z": null})";
  EXPECT_EQ(render("{{ s is defined }}{{ q is undefined }}{{ z is none }}{{ s is string }}{{ n is number }}"
                   "{{ f is number }}{{ n is integer }}{{ f is integer }}{{ f is float }}", ctx),
            "TrueTrueTrueTrueTrueTrueTrueFalseTrue");
  EXPECT_EQ(render("{{ d is mapping }}{{ l is mapping }}{{ l is iterable }}{{ s is iterable }}{{ n is iterable }}"
                   "{{ l is sequence }}{{ b is boolean }}{{ b is true }}{{ b is false }}{{ n is boolean }}", ctx),
            "TrueFalseTrueTrueFalseTrueTrueTrueFalseFalse");
  EXPECT_EQ(render("{{ n is odd }}{{ n is even }}{{ n is divisibleby 3 }}{{ n is equalto 3 }}{{ n is eq(4) }}"
                   "{{ 1 is in [1, 2] }}{{ s is not none }}{{ n is gt 2 }}{{ n is lt(2) }}", ctx),
            "TrueFalseTrueTrueFalseTrueTrueTrueFalse");
  EXPECT_EQ(render("{{ z is sameas none }}{{ 'ab' is lower }}{{ 'AB' is upper }}", ctx), "TrueTrueTrue");
}

TEST(JinjaExpressions, StringMethods) {
  EXPECT_EQ(render("[{{ '  a b  '.strip() }}][{{ 'xxaxx'.strip('x') }}][{{ '\\n\\na'.lstrip('\\n') }}][{{ 'a  '.rstrip() }}]"),
            "[a b][a][a][a]");
  EXPECT_EQ(render("{{ 'a,b,,c'.split(',') }}{{ ' a  b '.split() }}{{ 'a b c'.split(' ', 1) }}"),
            "['a', 'b', '', 'c']['a', 'b']['a', 'b c']");
  EXPECT_EQ(render("{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith('bc') }}{{ 'abc'.startswith(('x', 'a')) }}{{ 'abc'.endswith('zz') }}"),
            "TrueTrueTrueFalse");
  EXPECT_EQ(render("{{ 'aXa'.replace('a', 'b') }}{{ 'aaa'.replace('a', 'b', 2) }}{{ 'Hi'.upper() }}{{ 'Hi'.lower() }}"),
            "bXbbbaHIhi");
  EXPECT_EQ(render("{{ 'hello world'.title() }}{{ 'hELLO'.capitalize() }}{{ 'abcb'.find('b') }}{{ 'abc'.find('z') }}"
                   "{{ 'abcb'.rfind('b') }}{{ 'banana'.count('an') }}"),
            "Hello WorldHello1-132");
  EXPECT_EQ(render("{{ '-'.join(['a', 'b']) }}{{ '{} and {}'.format(1, 'x') }}{{ '{name}!'.format(name='n') }}{{ '{{}}'.format() }}"),
            "a-b1 and xn!{}");
  EXPECT_EQ(render("{{ 'a'.nope() }}"), "ERROR: UndefinedError: 'str object' has no attribute 'nope' at line 1");
}

TEST(JinjaExpressions, DictMethods) {
  const std::string ctx = R"({"d": {"a": 1, "b": 2}})";
  EXPECT_EQ(render("{{ d.get('a') }}{{ d.get('z') }}{{ d.get('z', 9) }}{{ d.keys() | list }}{{ d.values() | list }}{{ d.items() | list }}", ctx),
            "1None9['a', 'b'][1, 2][('a', 1), ('b', 2)]");
}

TEST(JinjaExpressions, BuiltinFunctions) {
  EXPECT_EQ(render("{{ range(3) | list }}{{ range(1, 4) | list }}{{ range(5, 0, -2) | list }}"), "[0, 1, 2][1, 2, 3][5, 3, 1]");
  EXPECT_EQ(render("{% set ns = namespace(a=1) %}{{ ns.a }}{{ dict(x=1) }}"), "1{'x': 1}");
  EXPECT_EQ(render("{{ strftime_now('%Y') | length }}"), "4");
  char year[8];
  std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  std::strftime(year, sizeof(year), "%Y", &local);
  EXPECT_EQ(render("{{ strftime_now('%Y') }}"), year);
  // The Llama 3.1 pattern: a context date_string wins over the default.
  const std::string t = "{% if not date_string is defined %}{% set date_string = '26 Jul 2024' %}{% endif %}{{ date_string }}";
  EXPECT_EQ(render(t), "26 Jul 2024");
  EXPECT_EQ(render(t, R"({"date_string": "01 Jan 2025"})"), "01 Jan 2025");
}

}  // namespace
}  // namespace kr::jinja
