// The constraints the benchmarks use (kr-bench structured, kr-engine-bench
// --constrained): an API-shaped JSON Schema (an order: nested objects, an
// array of objects, enums, bounded strings and numbers, formats) and a long
// bounded regex. Plain constants; any thread.
#pragma once

namespace kr::bench {

// An API response's shape: an order with customer, line items and status.
inline constexpr const char* kBenchOrderSchema = R"({
  "type": "object",
  "properties": {
    "order_id": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{6}$"},
    "created": {"type": "string", "format": "date"},
    "customer": {
      "type": "object",
      "properties": {
        "name": {"type": "string", "maxLength": 40},
        "email": {"type": "string", "format": "email", "maxLength": 60},
        "tier": {"enum": ["free", "pro", "enterprise"]}
      },
      "required": ["name", "email", "tier"],
      "additionalProperties": false
    },
    "items": {
      "type": "array",
      "items": {
        "type": "object",
        "properties": {
          "sku": {"type": "string", "maxLength": 16},
          "quantity": {"type": "integer", "minimum": 1, "maximum": 1000},
          "unit_price": {"type": "number", "minimum": 0, "maximum": 100000},
          "tags": {"type": "array", "items": {"type": "string", "maxLength": 12}, "maxItems": 4}
        },
        "required": ["sku", "quantity", "unit_price"],
        "additionalProperties": false
      },
      "minItems": 1,
      "maxItems": 20
    },
    "status": {"enum": ["pending", "paid", "shipped", "cancelled"]},
    "notes": {"anyOf": [{"type": "null"}, {"type": "string", "maxLength": 200}]}
  },
  "required": ["order_id", "created", "customer", "items", "status", "notes"],
  "additionalProperties": false
})";

// Words, a number, then up to twenty comma-separated words and a full stop.
inline constexpr const char* kBenchRegex = "([A-Z][a-z]{2,10} ){3,8}[0-9]{1,4}(, [a-z]{3,12}){0,20}\\.";

}  // namespace kr::bench
