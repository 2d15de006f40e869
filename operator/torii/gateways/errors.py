"""Typed gateway errors. Their class drives retries: permanent errors are reported and not hammered.

Messages name the gateway, the operation and what the gateway said; never a credential or a header.
"""

from __future__ import annotations

from torii.retry import RetryPolicy


class GatewayError(Exception):
    """Base class. `reason` becomes the Ready condition's reason."""

    reason = "GatewayError"
    retryable = True
    retry_policy = RetryPolicy.BACKOFF

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class RetryableGatewayError(GatewayError):
    """5xx, 429, timeouts, refused connections: retried with backoff."""

    reason = "GatewayUnavailable"
    retry_policy = RetryPolicy.UNAVAILABLE


class AuthenticationError(RetryableGatewayError):
    """The gateway refused the admin credentials (401/403). Retried slowly: the Secret may be fixed."""

    reason = "GatewayCredentialsRefused"
    retry_policy = RetryPolicy.BACKOFF


class PermanentGatewayError(GatewayError):
    """The gateway rejected what we sent (4xx): retrying the same request cannot help."""

    reason = "GatewayRejected"
    retryable = False
    retry_policy = RetryPolicy.NONE


class ListenPathConflict(GatewayError):
    """Another object on the gateway (a GatewayAPI or a foreign API) already serves this listen path. Not
    retried with backoff, but looked at again by every drift pass: it converges once the path is free."""

    reason = "ListenPathConflict"
    retryable = False
    retry_policy = RetryPolicy.NONE


class AdoptionFailed(GatewayError):
    """The gateway object a resource adopts (spec.adopt) is missing, or is not what the resource says it is.
    Not retried with backoff, but looked at again by every drift pass."""

    reason = "AdoptionFailed"
    retryable = False
    retry_policy = RetryPolicy.NONE


class UnsafeId(PermanentGatewayError):
    """An id, key or client id that would not stay one admin-URL path segment (a `/`, `..`, an escape)."""

    reason = "InvalidReference"


class OwnershipConflict(GatewayError):
    """The gateway object is managed by another Torii object (or, where Torii would create or adopt it, by
    nobody Torii knows). Torii never writes, revokes or deletes it. The message names neither the owner nor its
    namespace. Not retried with backoff; every drift pass looks again (the other object may go away)."""

    reason = "OwnershipConflict"
    retryable = False
    retry_policy = RetryPolicy.NONE


class PolicyViolation(GatewayError):
    """The object breaks the tenancy policy of its gateway connection (operator configuration). Its message
    names the field and the rule. Not retried: a spec change (or a policy change and restart) re-checks it."""

    reason = "PolicyViolation"
    retryable = False
    retry_policy = RetryPolicy.NONE


class Unsupported(PermanentGatewayError):
    """The gateway type has no equivalent of a requested feature."""

    reason = "Unsupported"


class ConfigurationError(PermanentGatewayError):
    """Operator configuration is wrong (unknown gateway name, missing credentials)."""

    reason = "GatewayNotConfigured"
