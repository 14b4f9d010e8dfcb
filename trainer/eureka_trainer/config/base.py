"""The pydantic base every RLJob section derives from: camelCase in YAML, unknown fields refused."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError


class ApiModel(BaseModel):
    """Base of every RLJob section.

    Fields are snake_case in Python and camelCase in YAML (as Kubernetes does); a field the model
    does not declare is an error, so a typo never passes silently.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_default=True,
        use_attribute_docstrings=True,
    )

    def to_yaml_dict(self) -> dict[str, object]:
        """The section as it appears in YAML: camelCase keys, defaults filled in."""
        return self.model_dump(by_alias=True, mode="json", exclude_none=True)


def field_error(path: str, message: str) -> PydanticCustomError:
    """An error that names the field it is about, relative to the model that raises it.

    Raised from a model validator, pydantic would place it on the model itself; the loader
    appends `path` so the user reads e.g. `spec.algorithm.filter.lower`.
    """
    return PydanticCustomError("field", "{path}: {message}", {"path": path, "message": message})
