"""The one error type of the SDK, with the stable codes of docs/errors.md plus the client's own."""
from __future__ import annotations

import email.utils
from typing import Any

#: Codes only the client produces (same as the Node SDK's CLIENT_ERROR_CODES).
CLIENT_ERROR_CODES = (
    "INVALID_SIGNATURE",
    "TOKEN_MISMATCH",
    "NETWORK_ERROR",
    "BAD_RESPONSE",
    "CLOCK_TAMPERED",
    "NOT_CHECKED_OUT",
    "CLOSED",
)

#: The longest Retry-After the SDK honours, seconds.
MAX_RETRY_AFTER = 600.0


class FloatingLicenseError(Exception):
    """Raised by every SDK call; ``code`` is a server error code or one of CLIENT_ERROR_CODES."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        details: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.request_id = request_id
        self.details: dict[str, Any] = details or {}
        #: seconds the server asked to wait (Retry-After), if any
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        """True for failures worth retrying: network, 5xx, 429, an answer that is not floatd's."""
        if self.code == "NETWORK_ERROR":
            return True
        if self.code == "RATE_LIMITED" or self.status == 429:
            return True
        if self.status is not None:
            return self.status >= 500
        return self.code == "BAD_RESPONSE"


def parse_retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` (seconds or an HTTP date) as seconds from ``now`` (epoch seconds)."""
    if not value:
        return None
    v = value.strip()
    if v.isdigit():
        secs = float(v)
    else:
        try:
            dt = email.utils.parsedate_to_datetime(v)
        except (TypeError, ValueError):
            return None
        secs = dt.timestamp() - now
    return min(MAX_RETRY_AFTER, max(0.0, secs))


def error_from_response(status: int, body: Any, retry_after: float | None) -> FloatingLicenseError:
    e = body.get("error") if isinstance(body, dict) else None
    if isinstance(e, dict) and isinstance(e.get("code"), str):
        details = {k: v for k, v in e.items() if k not in ("code", "message", "requestId")}
        after = retry_after
        if after is None and isinstance(details.get("retryAfterSeconds"), (int, float)):
            after = min(MAX_RETRY_AFTER, float(details["retryAfterSeconds"]))
        return FloatingLicenseError(
            e["code"],
            str(e.get("message", e["code"])),
            status=status,
            request_id=e.get("requestId") if isinstance(e.get("requestId"), str) else None,
            details=details,
            retry_after=after,
        )
    if status == 429:
        return FloatingLicenseError("RATE_LIMITED", "the server asks to slow down (HTTP 429)", status=429, retry_after=retry_after)
    if status >= 500:
        return FloatingLicenseError("SERVICE_UNAVAILABLE", f"the server answered HTTP {status}", status=status)
    return FloatingLicenseError("BAD_RESPONSE", f"unexpected answer HTTP {status} (is the server URL a floatd server?)", status=status)
