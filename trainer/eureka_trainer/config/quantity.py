"""Kubernetes resource quantities (`cpu: 500m`, `memory: 32Gi`), checked where the spec is read.

The grammar is the API server's (k8s.io/apimachinery/pkg/api/resource/quantity.go):

    <quantity>  ::= <signedNumber><suffix>
    <suffix>    ::= <binarySI> | <decimalExponent> | <decimalSI>
    <binarySI>  ::= Ki | Mi | Gi | Ti | Pi | Ei
    <decimalSI> ::= m | "" | k | M | G | T | P | E
    <decimalExponent> ::= "e" <signedNumber> | "E" <signedNumber>

A resource request is never negative, so the sign is left out. The same pattern goes into the CRD
schema, so `cpu: two` is refused alike by `eureka validate`, `eureka run` and `kubectl apply`
(without it the string reached the RayJob and failed only when the pods were created).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
QUANTITY_PATTERN = rf"^\+?{_NUMBER}(?:[KMGTPE]i|[mkMGTPE]|[eE][+-]?{_NUMBER})?$"
"""A non-negative Kubernetes quantity."""
_QUANTITY = re.compile(QUANTITY_PATTERN)


def check_quantity(value: str) -> str:
    """`value` when it is a quantity; otherwise an error that shows the accepted forms."""
    if not _QUANTITY.match(value):
        raise PydanticCustomError(
            "quantity",
            "{value} is not a Kubernetes quantity (e.g. 4, 500m, 1.5, 32Gi, 512Mi)",
            {"value": repr(value)},
        )
    return value


Quantity = Annotated[
    str,
    AfterValidator(check_quantity),
    Field(json_schema_extra={"pattern": QUANTITY_PATTERN}),
]
"""A `str` field holding a resource quantity (the CRD carries the pattern too)."""
