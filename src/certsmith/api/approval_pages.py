"""The pages of email approval links: GET shows what would be approved, only POST approves.

Link scanners and previews open links with GET, so GET never changes anything. The token in the
path is the credential: there are no cookies and no other state, and the pages load nothing else.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ..services.public.email_validation import ApprovalView, EmailValidation
from ..services.wiring import Container

__all__ = ["approval_routes", "approval_routes_for"]

_STYLE = ("body{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;color:#222}"
          "th{text-align:left;padding-right:1rem;vertical-align:top}td{word-break:break-all}"
          "button{font-size:1.1rem;padding:.5rem 1.5rem;margin-top:1rem}.refused{color:#a00}.approved{color:#060}")
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
HEADERS = {
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
    "Content-Security-Policy": f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
_GONE = ("expired", "used", "closed")  # the link was good once: 410; malformed or altered: 400


def _document(title: str, body: str, status: int) -> Response:
    text = (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"robots\" content=\"noindex\">"
            f"<meta name=\"viewport\" content=\"width=device-width\"><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>")
    return HTMLResponse(text, status, headers=HEADERS)


def _facts(view: ApprovalView) -> str:
    rows = [("Domain", view.domain_name), ("Validation domain", view.validation_domain), ("Account", view.account_id),
            ("Certificate", view.certificate_arn), ("Names", ", ".join(view.names))]
    if view.expires_at is not None:
        rows.append(("Link valid until", f"{view.expires_at:%Y-%m-%d %H:%M} UTC"))
    cells = "".join(f"<tr><th>{html.escape(label)}</th><td>{html.escape(value or '')}</td></tr>" for label, value in rows)
    return f"<table>{cells}</table>"


def render(view: ApprovalView) -> Response:
    """The HTML page of a view; every value is escaped."""
    if view.state == "refused":
        status = 410 if view.reason in _GONE else 400
        return _document("This approval link cannot be used",
                         f"<p class=\"refused\">{html.escape(view.message)}</p>"
                         f"<p>Reason: {html.escape(view.reason or 'refused')}. Nothing was approved.</p>", status)
    if view.state == "approved":
        if view.waiting_for:
            after = ("<p>The certificate is issued once every name is approved; still waiting for: "
                     f"{html.escape(', '.join(view.waiting_for))}.</p>")
        else:
            after = "<p>Every name is approved: certsmith now issues the certificate.</p>"
        return _document("Approved", f"<p class=\"approved\">{html.escape(view.domain_name or '')} is approved.</p>"
                                     f"{_facts(view)}{after}", 200)
    return _document(f"Approve a certificate for {view.domain_name}",
                     "<p>A certificate was requested that includes this name. Approve it only if you expected "
                     "this request; otherwise close this page and nothing is issued.</p>"
                     f"{_facts(view)}<form method=\"post\"><button type=\"submit\">Approve</button></form>", 200)


def approval_routes_for(service: EmailValidation) -> list[Route]:
    """``GET /approve/{token}`` shows the page, ``POST /approve/{token}`` approves."""

    async def approval(request: Request) -> Response:
        token = str(request.path_params["token"])
        if request.method == "POST":
            view = await asyncio.to_thread(service.approve, token)
        else:
            view = await asyncio.to_thread(service.page, token)
        return render(view)

    return [Route("/approve/{token}", approval, methods=["GET", "POST"])]


def approval_routes(container: Container) -> list[Route]:
    """The approval pages of the container's email validation (mount them before any catch-all route)."""
    return approval_routes_for(container.email_validation)
