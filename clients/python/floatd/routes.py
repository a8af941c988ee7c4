"""The client routes of floatd's wire contract, mirrored from packages/protocol/src/routes/client.ts
(tests/test_routes.py checks they still match the declarations there)."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    #: "license": the key is sent and the answer is signed; "none": public
    auth: str
    optional_body: bool = False

    def url(self, params: dict[str, str] | None = None, query: dict[str, str] | None = None) -> str:
        p = self.path
        for k, v in (params or {}).items():
            p = p.replace(":" + k, quote(str(v), safe=""))
        q = {k: v for k, v in (query or {}).items() if v is not None}
        return p + ("?" + urlencode(q) if q else "")


checkout = Route("POST", "/v1/client/checkout", "license")
offline_checkout = Route("POST", "/v1/client/offline-checkout", "license")
heartbeat = Route("POST", "/v1/client/leases/:leaseId/heartbeat", "license")
checkin = Route("POST", "/v1/client/leases/:leaseId/checkin", "license")
change_features = Route("POST", "/v1/client/leases/:leaseId/features", "license")
return_offline = Route("POST", "/v1/client/leases/:leaseId/return", "license", optional_body=True)
sync_device = Route("POST", "/v1/client/devices/sync", "license")
license_info = Route("GET", "/v1/client/license", "license")
jwks = Route("GET", "/.well-known/jwks.json", "none")

CLIENT_ROUTES = (checkout, offline_checkout, heartbeat, checkin, change_features, return_offline, sync_device, license_info)
