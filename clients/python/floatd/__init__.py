"""floatd: Python client SDK for the floatd floating-license server."""
from .clock import Clock, FakeClock, SystemClock
from .environment import detect_environment, machine_environment
from .errors import CLIENT_ERROR_CODES, FloatingLicenseError
from .fingerprint import device_fingerprint, hash_machine_id
from .http import AnswerVerifier, Ed25519AnswerVerifier, MessageSignatureVerifier, SessionKeyVerifier, SignedAnswer
from .license import (
    VIOLATION_CODES,
    CheckinResult,
    CheckoutDenied,
    CheckoutGranted,
    CheckoutResult,
    FloatingLicense,
    LicenseStatus,
    RetryPolicy,
    Violation,
)
from .session_keys import SessionKey

__all__ = [
    "AnswerVerifier", "CLIENT_ERROR_CODES", "CheckinResult", "CheckoutDenied", "CheckoutGranted", "CheckoutResult",
    "Clock", "Ed25519AnswerVerifier", "FakeClock", "MessageSignatureVerifier", "FloatingLicense", "FloatingLicenseError", "LicenseStatus",
    "RetryPolicy", "SessionKey", "SessionKeyVerifier", "SignedAnswer", "SystemClock", "VIOLATION_CODES", "Violation", "detect_environment", "device_fingerprint",
    "hash_machine_id", "machine_environment",
]
__version__ = "0.1.0"
