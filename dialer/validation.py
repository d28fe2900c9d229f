"""Turn pydantic errors into one user message that names the field (``contacts.3.phone: ...``)."""

from __future__ import annotations

import json
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


def parse_json(text: str, where: str = "") -> Any:
    """JSON a user handed in (a campaign file, a contacts file), or a refusal naming it: not JSON, nested
    too deeply, or an integer longer than Python converts (4300 digits)."""
    prefix = f"{where}: " if where else ""
    try:
        return json.loads(text)
    except RecursionError:
        raise InvalidRequest(f"{prefix}not valid JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, or a number too long to convert
        raise InvalidRequest(f"{prefix}not valid JSON: {exc}") from None
