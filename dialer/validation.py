"""Turn pydantic errors into one user message that names the field (``contacts.3.phone: ...``)."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from dialer.errors import InvalidRequest

M = TypeVar("M", bound=BaseModel)


def describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if err["type"] == "extra_forbidden":
            msg = "unknown field (check its spelling)"
        parts.append(f"{loc}: {msg}" if loc and not msg.startswith(f"{loc}:") else msg)
    return "; ".join(parts)


def validate(model: type[M], data: Any) -> M:
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(describe(exc)) from None
