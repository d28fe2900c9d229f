"""Turn pydantic errors into one user message that names the field (``contacts.3.phone: ...``)."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from dialer.errors import InvalidRequest

M = TypeVar("M", bound=BaseModel)


MAX_PROBLEMS = 20  # a list of 100,000 bad contacts is told by its first problems and a count


def problems(exc: ValidationError) -> list[dict[str, str]]:
    """Each problem as {"field": "contacts.3.phone", "message": "..."} (field '' for the whole request);
    past ``MAX_PROBLEMS`` one last entry says how many more there are."""
    out = []
    errors = exc.errors()
    for err in errors[:MAX_PROBLEMS]:
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if err["type"] == "extra_forbidden":
            msg = "unknown field (check its spelling)"
        if loc and msg.startswith(f"{loc}:"):
            msg = msg[len(loc) + 1 :].strip()
        field, _, rest = msg.partition(": ")
        if not loc and rest and " " not in field:  # a model-level error that names its field itself
            loc, msg = field, rest
        out.append({"field": loc, "message": msg})
    if len(errors) > MAX_PROBLEMS:
        out.append({"field": "", "message": f"and {len(errors) - MAX_PROBLEMS} more problems"})
    return out


def describe(exc: ValidationError) -> str:
    return "; ".join(f"{p['field']}: {p['message']}" if p["field"] else p["message"] for p in problems(exc))


def validate(model: type[M], data: Any) -> M:
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(describe(exc), problems(exc)) from None
