#!/usr/bin/env python3
"""An application that holds a floating seat while it runs.

    FLOATD_URL=https://licenses.example.com LICENSE_KEY=XXXXX-... python3 examples/app.py --seconds 3600
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from floatd import FloatingLicense, FloatingLicenseError, Violation


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60, help="how long to 'work'")
    ap.add_argument("--wait", action="store_true", help="wait for a free seat")
    args = ap.parse_args()
    lic = FloatingLicense(server_url=os.environ["FLOATD_URL"], license_key=os.environ["LICENSE_KEY"],
                          state_dir=os.environ.get("FLOATD_STATE_DIR"), app_version="1.0.0")

    def on_violation(v: Violation) -> None:
        # the SDK never ends the process: the application decides (save work, go read-only, ...)
        print(f"license problem: {v.code}: {v.message}", file=sys.stderr)

    lic.on("violation", on_violation)
    lic.on("reacquired", lambda s: print("license back", file=sys.stderr))
    try:
        seat = lic.checkout(wait=args.wait, timeout=600 if args.wait else None)
    except FloatingLicenseError as e:
        print(f"cannot get a license: {e.code}: {e.message}", file=sys.stderr)
        return 69
    if not seat.ok:
        print(seat.message, file=sys.stderr)
        return 75
    with lic:  # checks in when the block ends (and at exit, should the program stop early)
        s = lic.status()
        print(f"licensed ({seat.source}); seats {s.seats_used}/{s.seats_total}; lease {s.lease_id}")
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            time.sleep(min(1.0, end - time.monotonic()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
