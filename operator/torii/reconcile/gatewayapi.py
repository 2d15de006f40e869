"""Reconcile one GatewayAPI with its gateway."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from torii.gateways.base import ConvergeResult, GatewayDriver
from torii.gateways.errors import GatewayError
from torii.models.common import ConditionStatus, SecretKeySelector
from torii.models.gatewayapi import AuthMode, GatewayAPISpec, GatewayAPIStatus, auth_modes
from torii.pem import KeyError_, certificate_only, public_key_pem, shared_secret, tls_pair
from torii.reconcile.context import ReconcileContext
from torii.reconcile.lifecycle import Subject, deleter, reconciler
from torii.reconcile.outcome import READY, Blocked, Cause, Event, Outcome, parse_spec, ready
from torii.tenancy.rules import check_api


async def converge(ctx: ReconcileContext, obj: Subject[GatewayAPIStatus]) -> Outcome:
    status, ref, cause, generation = obj.status, obj.ref, obj.cause, obj.generation
    spec = parse_spec(GatewayAPISpec, obj.raw_spec)
    driver = ctx.gateways.get(spec.gateway)
    status.gateway = driver.name
    await driver.ready()  # every admin endpoint known: an upstream may not point at any of them
    await check_api(ctx.connection(driver), ref.namespace, spec)
    spec = await with_jwt_key(ctx, ref.namespace, spec)
    spec = await with_client_certificate(ctx, ref.namespace, spec)
    spec = await with_allowed_certificates(ctx, ref.namespace, spec)
    spec = await with_pinned_keys(ctx, ref.namespace, spec)
    result = await driver.apis.converge_api(ref, spec, max_age=ctx.drift_view_age if cause.checks else 0.0)
    made = gateway_objects(spec)
    if gone := set(status.gateway_objects or []) - made:  # the API, as now served, names none of them
        await driver.apis.tidy(ref, result.gateway_id, jwt=JWT_OBJECTS in gone, certificates=CERT_OBJECTS in gone)
    status.gateway_objects = sorted(made) or None

    was_ready = (c := status.condition(READY)) is not None and c.status == ConditionStatus.TRUE
    status.gateway_id = result.gateway_id
    status.listen_path = spec.listen_path
    status.nodes = f"{result.nodes[0]}/{result.nodes[1]}" if result.nodes else None
    if cause == Cause.DRIFT:
        with contextlib.suppress(GatewayError):  # health figures are informative; the API itself is served
            status.health = await driver.apis.api_health(ref, result.gateway_id)
    if spec.active:
        reason, message = "Serving", f"gateway {driver.name} serves {spec.listen_path} as {result.gateway_id}"
        if result.nodes and result.nodes[1] > 1:
            message += f" on {result.nodes[0]}/{result.nodes[1]} nodes"
    else:
        reason, message = "Inactive", f"spec.active is false: gateway {driver.name} does not serve {spec.listen_path}"
    ready(status, generation, True, reason, "; ".join([message, *result.notes]))
    events = [change_event(spec, result, cause, was_ready, driver.name)] if result.changed else []
    return Outcome(status.to_wire(), events)


JWT_OBJECTS, CERT_OBJECTS = "jwt", "certificates"


def gateway_objects(spec: GatewayAPISpec) -> set[str]:
    """What the gateway holds for this spec besides the API itself (recorded in status, to remove later)."""
    made = set()
    if AuthMode.JWT in spec.modes and spec.jwt is not None and spec.jwt.shared:  # per-key JWT needs neither
        made.add(JWT_OBJECTS)
    tls = spec.upstream.tls
    if spec.mtls is not None or (tls is not None and (tls.client_certificate_secret_name or tls.pinned_public_keys)):
        made.add(CERT_OBJECTS)
    return made


async def with_jwt_key(ctx: ReconcileContext, namespace: str, spec: GatewayAPISpec) -> GatewayAPISpec:
    """`spec` with its JWT verification key read from spec.jwt.secretRef (a Secret of the object's own
    namespace), checked against the algorithm; Blocked says what to fix."""
    jwt = spec.jwt
    if AuthMode.JWT not in spec.modes or jwt is None or jwt.secret_ref is None:
        return spec
    ref = jwt.secret_ref
    view = await ctx.secrets.get(namespace, ref.name)
    if view is None or not view.data.get(ref.key):
        raise Blocked("WaitingForSecret", f"spec.jwt.secretRef: Secret {ref.name} has no entry {ref.key!r} (yet)",
                      retry=True)  # fmt: skip
    family = jwt.effective_algorithm.family
    try:
        key = shared_secret(view.data[ref.key]) if family == "HS" else public_key_pem(view.data[ref.key], family)
    except KeyError_ as exc:
        raise Blocked("InvalidSecret", f"spec.jwt.secretRef: Secret {ref.name} entry {ref.key!r} {exc} "
                      f"(spec.jwt.algorithm is {jwt.effective_algorithm.value})", retry=False) from None  # fmt: skip
    return spec.model_copy(update={"jwt": jwt.with_key(key)})


async def with_client_certificate(ctx: ReconcileContext, namespace: str, spec: GatewayAPISpec) -> GatewayAPISpec:
    """`spec` with the upstream client certificate read from spec.upstream.tls.clientCertificateSecretName (a
    kubernetes.io/tls Secret of the object's own namespace); Blocked says what to fix."""
    tls = spec.upstream.tls
    if tls is None or tls.client_certificate_secret_name is None:
        return spec
    name = tls.client_certificate_secret_name
    view = await ctx.secrets.get(namespace, name)
    if view is None or not (view.data.get("tls.crt") and view.data.get("tls.key")):
        raise Blocked("WaitingForSecret", f"spec.upstream.tls.clientCertificateSecretName: Secret {name} has no "
                      "tls.crt and tls.key (yet)", retry=True)  # fmt: skip
    try:
        chain, key = tls_pair(view.data["tls.crt"], view.data["tls.key"])
    except KeyError_ as exc:
        raise Blocked("InvalidSecret", f"spec.upstream.tls.clientCertificateSecretName: Secret {name} {exc}",
                      retry=False) from None  # fmt: skip
    upstream = spec.upstream.model_copy(update={"tls": tls.with_pair(chain, key)})
    return spec.model_copy(update={"upstream": upstream})


async def secret_entries(ctx: ReconcileContext, namespace: str, selectors: list[SecretKeySelector], field: str,
                         parse: Callable[[str], str]) -> tuple[str, ...]:  # fmt: skip
    """Each selected Secret entry of the object's own namespace, through `parse`; Blocked names `field[i]`."""
    values = []
    for i, ref in enumerate(selectors):
        where = f"{field}[{i}]: Secret {ref.name}"
        view = await ctx.secrets.get(namespace, ref.name)
        if view is None or not view.data.get(ref.key):
            raise Blocked("WaitingForSecret", f"{where} has no entry {ref.key!r} (yet)", retry=True)
        try:
            values.append(parse(view.data[ref.key]))
        except KeyError_ as exc:
            raise Blocked("InvalidSecret", f"{where} entry {ref.key!r} {exc}", retry=False) from None
    return tuple(values)


async def with_allowed_certificates(ctx: ReconcileContext, namespace: str, spec: GatewayAPISpec) -> GatewayAPISpec:
    """`spec` with the client certificates spec.mtls allows, read from Secrets of the object's own namespace."""
    if spec.mtls is None:
        return spec
    certificates = await secret_entries(ctx, namespace, spec.mtls.allowed, "spec.mtls.allowed", certificate_only)
    return spec.model_copy(update={"mtls": spec.mtls.with_certificates(certificates)})


async def with_pinned_keys(ctx: ReconcileContext, namespace: str, spec: GatewayAPISpec) -> GatewayAPISpec:
    """`spec` with the public keys spec.upstream.tls.pinnedPublicKeys names (a certificate's, or a public key)."""
    tls = spec.upstream.tls
    if tls is None or not tls.pinned_public_keys:
        return spec
    pins = await secret_entries(ctx, namespace, tls.pinned_public_keys, "spec.upstream.tls.pinnedPublicKeys",
                                lambda text: public_key_pem(text, None))  # fmt: skip
    return spec.model_copy(update={"upstream": spec.upstream.model_copy(update={"tls": tls.with_pins(pins)})})


def change_event(spec: GatewayAPISpec, result: ConvergeResult, cause: Cause, was_ready: bool, gateway: str) -> Event:
    if cause == Cause.DRIFT or (cause == Cause.RESUME and was_ready):
        reason, what = "DriftRepaired", "restored on" if result.created else "repaired on"
    elif spec.adopt is not None and not was_ready and not result.created:
        reason, what = "Adopted", "adopted in place on"
    elif result.created:
        reason, what = "Created", "created on"
    else:
        reason, what = "Updated", "updated on"
    return Event("Normal", reason, f"API {result.gateway_id} {what} gateway {gateway}")


async def remove(ctx: ReconcileContext, obj: Subject[GatewayAPIStatus], driver: GatewayDriver) -> str:
    """Remove the API from its gateway (an adopted one under its own id)."""
    adopted = (obj.raw_spec.get("adopt") or {}).get("id")
    auth = obj.raw_spec.get("auth")
    auth_mode = AuthMode(auth) if auth in set(AuthMode) else AuthMode.KEYLESS
    made = set(obj.status.gateway_objects or [])  # what earlier specs made, and this one may not name
    if JWT_OBJECTS in made or AuthMode.JWT.value in auth_modes(obj.raw_spec):
        auth_mode = AuthMode.JWT
    tls = (obj.raw_spec.get("upstream") or {}).get("tls") or {}
    certificates = CERT_OBJECTS in made or bool(
        tls.get("clientCertificateSecretName") or tls.get("pinnedPublicKeys") or obj.raw_spec.get("mtls")
    )
    if await driver.apis.delete_api(obj.ref, adopted or None, auth=auth_mode, certificates=certificates):
        return f"API removed from gateway {driver.name}"
    return f"API already gone from gateway {driver.name}"


reconcile_api = reconciler(GatewayAPIStatus, converge, what="converge")
delete_api = deleter(GatewayAPIStatus, remove)
