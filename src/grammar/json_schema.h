// JSON Schema -> Grammar (and the free-JSON grammar of response_format
// json_object).
//
// Supported (at least what OpenAI's strict mode accepts):
//   type (one or a list): object, array, string, number, integer, boolean, null;
//   properties (generated in schema order), required, additionalProperties
//   (false, true or a schema; absent = no extra properties when `properties`
//   is given, any object otherwise);
//   enum, const, anyOf, allOf (merged), oneOf (only when its branches are
//   provably disjoint), $ref to "#" / "#/$defs/..." / any local JSON pointer,
//   recursion included, $defs / definitions;
//   items (schema or false), prefixItems, minItems, maxItems, uniqueItems:false;
//   string minLength, maxLength, pattern (see regex_parser.h), format
//   date, time, date-time, uuid, email, ipv4, ipv6, hostname, uri;
//   number/integer minimum, maximum, exclusiveMinimum, exclusiveMaximum
//   (draft-4 boolean form too), multipleOf 1 on integers.
// Annotations are ignored: title, description, default, examples, $schema,
// $id, $comment, deprecated, readOnly, writeOnly, nullable, discriminator,
// contentEncoding, contentMediaType, x-*.
// Everything else is an error naming the keyword and where it is: never a
// silently looser grammar. A schema (or enum) that no value satisfies is an
// error. Limits: schema text size and nesting depth (options).
//
// Output shape: no whitespace before the first or after the last character;
// between tokens at most a bounded run ("" | " " | "\n" then up to
// max_indent spaces or tabs), so output cannot run away in whitespace.
//
// Pure functions; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/status.h"
#include "grammar/grammar_ir.h"

namespace kr::grammar {

struct JsonSchemaOptions {
  size_t max_schema_bytes = 256 * 1024;
  uint32_t max_depth = 64;       // nesting of the schema document
  bool whitespace = true;        // false: compact JSON only
  uint32_t max_indent = 20;      // spaces/tabs after a newline
};

StatusOr<Grammar> compile_json_schema(std::string_view schema_json, const JsonSchemaOptions& options = {});
// The same into an existing grammar: sets the body of `rule`; the helper rules
// it adds are named "json--..." (front ends resolve names with their own maps,
// never through Grammar::find_rule, so these never clash).
Status compile_json_schema_into(Grammar& g, uint32_t rule, std::string_view schema_json,
                                const JsonSchemaOptions& options = {});
// Any JSON object (response_format {"type": "json_object"}).
Grammar json_object_grammar(const JsonSchemaOptions& options = {});
// Any JSON value.
Grammar json_value_grammar(const JsonSchemaOptions& options = {});

}  // namespace kr::grammar
