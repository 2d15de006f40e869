"""The `torii` command: `torii run`, `torii crds`, `torii check`, `torii import`."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import socket
import sys
from pathlib import Path

from torii import crds


def pod_priority(pod_name: str) -> int:
    """A stable priority per pod: kopf freezes replicas with equal priorities, so they must differ."""
    return 1 + int(hashlib.sha256(pod_name.encode()).hexdigest()[:8], 16) % 1_000_000


def cmd_crds(args: argparse.Namespace) -> int:
    if args.write:
        for path in crds.write_all(Path(args.write)):
            print(f"wrote {path}")
        return 0
    sys.stdout.write("\n---\n".join(crds.render(r) for r in crds.RESOURCES))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from torii.kube_hide import hide_unused_modules

    hide_unused_modules()  # before kopf is imported
    import kopf

    from torii import heap
    from torii.connections import bound_kopf_connections, connection_limit
    from torii.logs import secure_logging
    from torii.operator import SharedMemo, build_registry
    from torii.settings import LogFormat, load_settings

    settings = load_settings(Path(args.config) if args.config else None)
    kopf.configure(
        verbose=args.verbose,
        log_format=kopf.LogFormat.JSON if settings.log_format == LogFormat.JSON else kopf.LogFormat.PLAIN,
        log_prefix=True,
    )
    secure_logging()
    namespaces = args.namespace or settings.namespaces
    priority = args.priority
    if args.priority_from_pod_name:
        priority = pod_priority(os.environ.get("POD_NAME") or socket.gethostname())
    metrics_port = args.metrics_port if args.metrics_port is not None else settings.metrics_port
    if metrics_port is not None:
        from torii import metrics

        metrics.serve(metrics_port, args.metrics_addr or settings.metrics_bind_address)
    registry = build_registry(settings)
    bound_kopf_connections(connection_limit(namespaces))
    heap.settle()  # everything imported by now
    asyncio.run(
        kopf.operator(
            registry=registry,
            standalone=args.standalone,
            priority=priority,
            # Naming a peering object makes peering mandatory in kopf: only when running with peers.
            peering_name=None if args.standalone else args.peering,
            clusterwide=not namespaces,
            namespaces=namespaces,
            liveness_endpoint=args.liveness,
            memo=SharedMemo(),
        )
    )
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from torii.check import check_all
    from torii.settings import load_settings

    try:
        settings = load_settings(Path(args.config) if args.config else None)
    except ValueError as exc:
        print(f"configuration invalid:\n{exc}", file=sys.stderr)
        return 2
    return asyncio.run(check_all(settings))


def cmd_import(args: argparse.Namespace) -> int:
    return asyncio.run(run_import(args))


async def run_import(args: argparse.Namespace) -> int:
    from torii import kube
    from torii.gateways.errors import GatewayError
    from torii.gateways.registry import build_gateways
    from torii.importer.run import import_gateway, import_tyk_operator, list_api_definitions
    from torii.settings import load_settings

    settings = load_settings(Path(args.config) if args.config else None)
    gateways = await build_gateways(settings, kube.read_secret_key, read_ca=kube.read_ca_bundle)
    try:
        driver = gateways.get(args.gateway)
        if args.from_tyk_operator:
            result = await import_tyk_operator(driver, await list_api_definitions(args.namespace))
        else:
            result = await import_gateway(driver, kinds=args.kind, namespace=args.namespace)
    except GatewayError as exc:
        print(f"import failed: {exc.reason}: {exc.message}", file=sys.stderr)
        return 1
    finally:
        await gateways.aclose()
    if args.output:
        for path in result.write(Path(args.output)):
            print(f"wrote {path}", file=sys.stderr)
    else:
        sys.stdout.write(result.stream())
        sys.stdout.flush()
    for skipped in result.skipped:
        print(f"not imported: {skipped.source}: {skipped.reason}", file=sys.stderr)
    print(f"{len(result.manifests)} manifests, {len(result.skipped)} objects not imported", file=sys.stderr)
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="torii", description="Kubernetes operator for API gateways.")
    sub = top.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the operator")
    run.add_argument("--config", help="operator configuration file (YAML); also TORII_CONFIG_FILE")
    run.add_argument("--namespace", "-n", action="append", help="watch only these namespaces (repeatable)")
    run.add_argument("--standalone", action="store_true", help="no peering with other replicas")
    run.add_argument("--priority", type=int, default=0, help="peering priority (replicas need distinct ones)")
    run.add_argument(
        "--priority-from-pod-name",
        action="store_true",
        help="derive a distinct peering priority from $POD_NAME (replicas of one Deployment)",
    )
    run.add_argument("--peering", default="torii", help="peering object name (replicas > 1: hot standby)")
    run.add_argument("--liveness", default=None, help="health endpoint, e.g. http://0.0.0.0:8080/healthz")
    run.add_argument("--metrics-port", type=int, default=None, help="serve Prometheus metrics on this port")
    run.add_argument(
        "--metrics-addr", default=None, help="metrics bind address (default: metricsBindAddress, 127.0.0.1)"
    )
    run.add_argument("--verbose", "-v", action="store_true")
    run.set_defaults(func=cmd_run)

    crds_cmd = sub.add_parser("crds", help="print the CRDs (or write them to a directory)")
    crds_cmd.add_argument("--write", metavar="DIR", help="write one file per CRD into DIR")
    crds_cmd.set_defaults(func=cmd_crds)

    check = sub.add_parser("check", help="validate the configuration and connect to every gateway")
    check.add_argument("--config", help="operator configuration file (YAML); also TORII_CONFIG_FILE")
    check.set_defaults(func=cmd_check)

    imp = sub.add_parser(
        "import",
        help="write manifests that adopt what a gateway already holds",
        description="Read the gateway's admin API and write one manifest per API and key, adopting the object "
        "in place (spec.adopt). Objects that cannot be represented are listed on stderr with the reason.",
    )
    imp.add_argument("--config", help="operator configuration file (YAML); also TORII_CONFIG_FILE")
    imp.add_argument("--gateway", help="gateway connection to read (default: the default gateway)")
    imp.add_argument("--namespace", "-n", help="namespace of the manifests (--from-tyk-operator: read only this one)")
    imp.add_argument(
        "--kind",
        choices=("apis", "keys", "all"),
        default="all",
        help="what to import: apis, keys (with OAuth clients) or all (default)",
    )
    imp.add_argument("--output", "-o", metavar="DIR", help="write one file per manifest into DIR (default: stdout)")
    imp.add_argument(
        "--from-tyk-operator",
        action="store_true",
        help="convert tyk-operator ApiDefinitions (tyk.tyk.io) into GatewayAPIs adopting the same Tyk APIs",
    )
    imp.set_defaults(func=cmd_import)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
