"""``POST /twilio/status``: Twilio's signed status callbacks (DESIGN §7), into the one outcome path.

The signature (``X-Twilio-Signature``) is checked against ``DIALER_PUBLIC_URL`` + path + query — the URL
Twilio was given — with the auth token of the attempt's provider; anything unsigned, wrongly signed or
about an unknown attempt is 403 and changes nothing. Repeated and out-of-order callbacks are harmless
(the attempt's compare-and-set decides), and the answer is immediate (Twilio waits at most 15 s).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from dialer.errors import Forbidden
from dialer.web.auth import service_of

router = APIRouter(tags=["twilio"])


@router.post("/twilio/status", status_code=204)
async def twilio_status(
    request: Request, signature: Annotated[str, Header(alias="X-Twilio-Signature")] = ""
) -> Response:
    """A call's status change from Twilio (form-encoded, signed)."""
    svc = service_of(request)
    public = svc.core.settings.public_url
    if not public:
        raise Forbidden("status callbacks need DIALER_PUBLIC_URL (the URL Twilio signs)")
    query = request.scope.get("query_string", b"").decode("latin-1")
    url = f"{public.rstrip('/')}{request.url.path}" + (f"?{query}" if query else "")
    form = await request.form()
    params = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    ref = request.query_params.get("ref", "")
    request.state.account = ref.partition("|")[0] or None
    await run_in_threadpool(svc.engine.record_callback, ref, url, params, signature)
    return Response(status_code=204)
