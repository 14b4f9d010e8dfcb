"""A fast yes/no check of an object against a CRD's schema, for the emulator's hot path.

The emulator validates every create like an API server (a 422 on a bad RayJob or RLJob).
`jsonschema` walks KubeRay's RayJob schema (240 kB, pod templates) in about 1 ms per object and
was half of the emulator's CPU while the operator benchmark's 500 RayJobs were created; an API
server does this in microseconds, so that cost distorted what the benchmark measures.

`compile_check(schema)` turns the schema into nested closures once. It implements the keywords
that CRD schemas use with `jsonschema.Draft4Validator`'s exact semantics (no format checker, as
the emulator's validator has none; unknown keywords and `x-kubernetes-*` ignored, as jsonschema
ignores them). It never decides alone that an object is invalid: the emulator then asks
jsonschema, for its verdict and its error message. A keyword it does not implement makes the
check answer "no" for that part, which only costs the slow path. tests/integration/operator/
test_structural.py holds it to jsonschema's verdicts on valid objects and on thousands of
mutated ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[Any], bool]

# Draft 4 types as jsonschema's draft-4 type checker has them (bool is not a number, 1.0 is not
# an integer).
TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda x: isinstance(x, dict),
    "array": lambda x: isinstance(x, list),
    "string": lambda x: isinstance(x, str),
    "boolean": lambda x: isinstance(x, bool),
    "integer": lambda x: isinstance(x, int) and not isinstance(x, bool),
    "number": lambda x: isinstance(x, (int, float)) and not isinstance(x, bool),
    "null": lambda x: x is None,
}

# Annotations and keywords that jsonschema's Draft4Validator does not validate (no format checker).
IGNORED = frozenset({"description", "default", "format", "nullable", "title", "example"})


def _never(_: Any) -> bool:
    return False


def _always(_: Any) -> bool:
    return True


def _type(value: Any, schema: Mapping[str, Any]) -> Check:
    names = [value] if isinstance(value, str) else value
    if not all(isinstance(n, str) and n in TYPES for n in names):
        return _never
    if len(names) == 1:
        return TYPES[names[0]]
    tests = [TYPES[n] for n in names]
    return lambda x: any(t(x) for t in tests)


def _properties(value: Mapping[str, Any], schema: Mapping[str, Any]) -> Check:
    subs = {name: compile_check(sub) for name, sub in value.items()}

    def check(x: Any) -> bool:
        if not isinstance(x, dict):
            return True
        # An object has a few of the schema's many properties (a PodSpec has ~40): walk its keys.
        for name, item in x.items():
            sub = subs.get(name)
            if sub is not None and not sub(item):
                return False
        return True

    return check


def _additional(value: Any, schema: Mapping[str, Any]) -> Check:
    if schema.get("patternProperties"):
        return _never  # not used by CRD schemas here: the slow path handles it
    known = frozenset(schema.get("properties") or ())
    if value is True or value == {}:
        return _always
    if value is False:
        return lambda x: not isinstance(x, dict) or all(k in known for k in x)
    sub = compile_check(value)
    return lambda x: not isinstance(x, dict) or all(sub(v) for k, v in x.items() if k not in known)


def _required(value: list[str], schema: Mapping[str, Any]) -> Check:
    return lambda x: not isinstance(x, dict) or all(name in x for name in value)


def _items(value: Any, schema: Mapping[str, Any]) -> Check:
    if not isinstance(value, dict):
        return _never  # tuple validation: not used by CRD schemas
    sub = compile_check(value)

    def check(x: Any) -> bool:
        if isinstance(x, list):
            for item in x:
                if not sub(item):
                    return False
        return True

    return check


def _any_of(value: list[Mapping[str, Any]], schema: Mapping[str, Any]) -> Check:
    subs = [compile_check(s) for s in value]
    return lambda x: any(s(x) for s in subs)


def _all_of(value: list[Mapping[str, Any]], schema: Mapping[str, Any]) -> Check:
    subs = [compile_check(s) for s in value]
    return lambda x: all(s(x) for s in subs)


_TRUE, _FALSE = object(), object()


def _unbool(x: Any) -> Any:
    return _TRUE if x is True else _FALSE if x is False else x


def _same(a: Any, b: Any) -> bool:
    """jsonschema's equality for a scalar `a`: True is not 1, 1 is 1.0, strings only strings."""
    if isinstance(a, str) or isinstance(b, str):
        return bool(a == b)
    return bool(_unbool(a) == _unbool(b))


def _enum(value: list[Any], schema: Mapping[str, Any]) -> Check:
    if not all(v is None or isinstance(v, (str, int, float)) for v in value):
        return _never  # lists or objects in an enum: left to jsonschema
    return lambda x: any(_same(v, x) for v in value)


def _pattern(value: str, schema: Mapping[str, Any]) -> Check:
    compiled = re.compile(value)
    return lambda x: not isinstance(x, str) or compiled.search(x) is not None


def _is_number(x: Any) -> bool:
    return TYPES["number"](x)


def _minimum(value: Any, schema: Mapping[str, Any]) -> Check:
    if schema.get("exclusiveMinimum") is True:
        return lambda x: not _is_number(x) or x > value
    return lambda x: not _is_number(x) or x >= value


def _maximum(value: Any, schema: Mapping[str, Any]) -> Check:
    if schema.get("exclusiveMaximum") is True:
        return lambda x: not _is_number(x) or x < value
    return lambda x: not _is_number(x) or x <= value


def _exclusive(value: Any, schema: Mapping[str, Any]) -> Check:
    # Draft 4: a boolean modifier of minimum/maximum (handled there); alone it does nothing.
    return _always if isinstance(value, bool) else _never


def _sized(kind: str, compare: Callable[[int, int], bool]) -> Callable[[Any, Any], Check]:
    test = TYPES[kind]

    def build(value: Any, schema: Mapping[str, Any]) -> Check:
        return lambda x: not test(x) or compare(len(x), value)

    return build


KEYWORDS: dict[str, Callable[[Any, Mapping[str, Any]], Check]] = {
    "type": _type,
    "properties": _properties,
    "additionalProperties": _additional,
    "required": _required,
    "items": _items,
    "anyOf": _any_of,
    "allOf": _all_of,
    "enum": _enum,
    "pattern": _pattern,
    "minimum": _minimum,
    "maximum": _maximum,
    "exclusiveMinimum": _exclusive,
    "exclusiveMaximum": _exclusive,
    "minLength": _sized("string", lambda n, v: n >= v),
    "maxLength": _sized("string", lambda n, v: n <= v),
    "minItems": _sized("array", lambda n, v: n >= v),
    "maxItems": _sized("array", lambda n, v: n <= v),
    "minProperties": _sized("object", lambda n, v: n >= v),
    "maxProperties": _sized("object", lambda n, v: n <= v),
}


def compile_check(schema: Any) -> Check:
    """True when `schema` (a Draft 4 / CRD schema) surely accepts the instance."""
    if schema is True or schema == {}:
        return _always
    if not isinstance(schema, Mapping):
        return _never
    checks: list[Check] = []
    for key, value in schema.items():
        build = KEYWORDS.get(key)
        if build is not None:
            checks.append(build(value, schema))
        elif key not in IGNORED and not key.startswith("x-kubernetes-"):
            return _never  # a keyword this module does not know: leave it to jsonschema
    if len(checks) == 1:
        return checks[0]

    def check_all(x: Any) -> bool:
        for check in checks:  # noqa: SIM110 (a loop: all() over a generator costs twice as much)
            if not check(x):
                return False
        return True

    return check_all
