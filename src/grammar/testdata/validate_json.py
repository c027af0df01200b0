#!/usr/bin/env python3
"""Validates JSON documents against the schema corpus with the `jsonschema`
package (Debian's python3-jsonschema), a validator kr-serve does not write.

usage: validate_json.py CORPUS.jsonl DOCS.jsonl
  CORPUS.jsonl: one {"name", "schema", ...} per line
  DOCS.jsonl:   one {"schema": <index into CORPUS>, "doc": "<JSON text>"} per line
Prints one line per document: "valid", "invalid <reason>" or "unparsable".

Formats are checked. jsonschema checks "date-time" and "time" only when the
rfc3339-validator package is installed (Debian does not package it); then they
are checked here with the standard library's datetime parser plus RFC 3339's
required "T" separator and UTC offset.
"""
import datetime
import json
import re
import sys

import jsonschema
from jsonschema import validators


def make_format_checker(cls):
    # The draft's own format checker (a plain FormatChecker() would mix in
    # older drafts' meanings, e.g. draft 3's "time"), plus the two above.
    checker = jsonschema.FormatChecker(formats=())
    checker.checkers = dict(cls.FORMAT_CHECKER.checkers)
    if "date-time" not in checker.checkers:
        @checker.checks("date-time", raises=ValueError)
        def is_datetime(value):
            if not isinstance(value, str):
                return True
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", value):
                raise ValueError("not RFC 3339")
            datetime.datetime.fromisoformat(re.sub("[Zz]$", "+00:00", value).replace("t", "T"))
            return True
    if "time" not in checker.checkers:
        @checker.checks("time", raises=ValueError)
        def is_time(value):
            if not isinstance(value, str):
                return True
            if not re.fullmatch(r"\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", value):
                raise ValueError("not RFC 3339 full-time")
            datetime.time.fromisoformat(re.sub("[Zz]$", "+00:00", value))
            return True
    return checker


def main():
    corpus = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8") if line.strip()]
    compiled = []
    for entry in corpus:
        schema = entry["schema"]
        cls = validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        cls.check_schema(schema)
        compiled.append(cls(schema, format_checker=make_format_checker(cls)))
    out = []
    for line in open(sys.argv[2], encoding="utf-8"):
        if not line.strip():
            continue
        item = json.loads(line)
        try:
            doc = json.loads(item["doc"])
        except ValueError:
            out.append("unparsable")
            continue
        errors = list(compiled[item["schema"]].iter_errors(doc))
        out.append("valid" if not errors else "invalid " + errors[0].message.replace("\n", " ")[:200])
    sys.stdout.write("\n".join(out) + ("\n" if out else ""))


if __name__ == "__main__":
    main()
