"""The credential state one GatewayKey reconcile moves through: what it read (the Secret as Torii recognises it,
the status record), and its writes of them, in the order crash safety asks for (status record, Secret, then the
gateway)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from torii.gateways.base import Credential, CredentialKind, GatewayDriver, ObjectRef
from torii.kube import Owner, SecretView
from torii.models.gatewaykey import GatewayKeySpec, GatewayKeyStatus, KeyType
from torii.reconcile.context import ReconcileContext
from torii.reconcile.credentials import (
    credentials_in,
    digest,
    new_credential,
    recognised,
    secret_data,
    template_annotations,
)
from torii.reconcile.outcome import Event


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def fmt(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class KeyWork:
    """One reconcile of a GatewayKey: what it read, and the credential state it moves through."""

    ref: ObjectRef
    owner: Owner
    spec: GatewayKeySpec
    status: GatewayKeyStatus
    driver: GatewayDriver
    secret_name: str
    view: SecretView | None
    current: Credential | None = None  # recognised credential in the Secret
    previous: Credential | None = None  # recognised rotated-out credential, in its grace period
    revoke_at: datetime | None = None
    applied_rotation: int = 0
    events: list[Event] = field(default_factory=list)
    fresh: Credential | None = None  # a credential with a new id chosen in this reconcile (KeyRequest.fresh)

    @property
    def kind(self) -> CredentialKind:
        return self.driver.keys.credential_kind

    @property
    def form(self) -> KeyType:
        return self.spec.type

    def new_credential(self, client_id: str = "") -> Credential:
        """A new credential; with a new id too unless `client_id` (a CLIENT keeps its id across rotations)."""
        cred = new_credential(self.kind, client_id, form=self.form, ref=self.ref)
        self.fresh = cred if not client_id else None
        return cred

    @property
    def wanted_rotation(self) -> int:
        return self.spec.rotation.generation if self.spec.rotation else 0

    @property
    def grace(self) -> int:
        return self.spec.rotation.grace_period_seconds if self.spec.rotation else 0

    def digest(self, cred: Credential | None) -> str | None:
        return digest(self.owner.uid, cred) if cred is not None else None


def read_credentials(work: KeyWork) -> bool:
    """Fill `work.current`/`previous` from the Secret with what Torii recognises (status record); True when the
    Secret holds a credential Torii does not recognise (written by somebody else: it is not used)."""
    status = work.status
    work.applied_rotation = status.rotation_generation if status.rotation_generation is not None else (
        work.wanted_rotation)  # fmt: skip
    work.revoke_at = parse_time(status.previous_key_revoke_at)
    if work.view is None:
        return False
    current, previous = credentials_in(work.kind, work.view.data, form=work.form)
    uid = work.owner.uid
    if recognised(work.kind, uid, current, status.credential_digest):
        work.current = current
    elif current is not None and status.previous_credential_digest == work.digest(current):
        # A rotation recorded in status whose Secret write did not happen: the old credential is still the
        # current one in the Secret. It becomes the previous one again, and a new credential is issued below.
        work.previous = current
        return False
    recorded = status.previous_credential_digest
    # Nothing recorded at all: an object from before the record existed, trusted with Torii-shaped credentials.
    if recognised(work.kind, uid, previous, recorded) and (recorded or status.credential_digest is None):
        work.previous = previous
    return current is not None and work.current is None


async def record(ctx: ReconcileContext, work: KeyWork, **fields: Any) -> None:
    """Set status fields and write them NOW (before the Secret and the gateway see what they describe)."""
    for name, value in fields.items():
        setattr(work.status, name, value)
    wire = work.status.to_wire()
    await ctx.record({k: wire.get(k) for k in (GatewayKeyStatus.model_fields[n].alias or n for n in fields)})


async def write_secret(ctx: ReconcileContext, work: KeyWork) -> None:
    """The Secret with the current (and previous) credential, the template's labels and annotations."""
    assert work.current is not None
    template = work.spec.secret_template
    version = await ctx.secrets.write(
        work.ref.namespace, work.secret_name, work.owner,
        secret_data(work.kind, work.current, work.previous, form=work.form),
        labels=dict(template.labels) if template else {}, annotations=template_annotations(template),
        create=work.view is None, resource_version=work.view.resource_version if work.view else "",
    )  # fmt: skip
    work.view = SecretView(work.secret_name, {}, {}, {}, (work.owner.uid,), version)


def metadata_drifted(work: KeyWork) -> bool:
    template = work.spec.secret_template
    if work.view is None or template is None:
        return False
    return bool(
        template.labels.items() - work.view.labels.items()
        or template_annotations(template).items() - work.view.annotations.items()
    )


async def issue(ctx: ReconcileContext, work: KeyWork, cred: Credential, **fields: Any) -> None:
    """A credential Torii chose: recorded in status, then stored in the Secret, before any gateway sees it.

    The first credential of an object needs no record ahead: with none recorded, a credential of the shape
    Torii issues is recognised, and nothing older exists to revoke. (One apiserver write less per new key.)"""
    work.current = cred
    fields |= {"credential_digest": work.digest(cred), "previous_credential_digest": work.digest(work.previous)}
    first = work.status.credential_digest is None and work.status.key_id is None and work.previous is None
    if first:
        for name, value in fields.items():
            setattr(work.status, name, value)
    else:
        await record(ctx, work, **fields)
    await write_secret(ctx, work)
