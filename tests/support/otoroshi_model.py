"""Otoroshi's admin API (routes, services) and its proxy, as far as the driver's unit tests need it."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

from torii.gateways.base import ObjectRef
from torii.gateways.otoroshi import OtoroshiDriver
from torii.models.gatewayapi import GatewayAPISpec

REF = ObjectRef("shop", "catalog")
CLIENT_ID, CLIENT_SECRET = "admin-id", "admin-secret-value"


class OtoroshiModel:
    """Otoroshi's admin API for routes and services (`/api/routes`, `/api/services`), and its proxy."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, dict[str, Any]]] = {"routes": {}, "services": {}}
        self.methods: list[str] = []
        self.exists_on_post = False
        self.proxied: list[str] = []
        self.served_by: list[str] = []  # which object answered each proxied request ("" for no route)

    @property
    def services(self) -> dict[str, dict[str, Any]]:
        return self.objects["services"]

    @property
    def routes(self) -> dict[str, dict[str, Any]]:
        return self.objects["routes"]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.headers["Host"] == "api.oto.tools":
            return self.proxy(request)
        assert request.headers["Host"] == "otoroshi-api.oto.tools"
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return httpx.Response(401, json={"error": "unauthorized"})
        self.methods.append(request.method)
        _, _, kind, *rest = request.url.path.split("/")
        store = self.objects[kind]
        if not rest and request.method == "POST":
            body = json.loads(request.content)
            if self.exists_on_post and body["id"] not in store:  # created concurrently (an answer was lost)
                store[body["id"]] = body
            if self.exists_on_post or body["id"] in store:
                return httpx.Response(400, json={"error": "not_found", "error_description": "Entity already exists"})
            store[body["id"]] = {**body, "sendOtoroshiHeadersBack": True} if kind == "services" else body
            return httpx.Response(201, json=store[body["id"]])
        if not rest and request.method == "GET":
            return httpx.Response(200, json=list(store.values()))
        oid = rest[0]
        if request.method == "GET":
            if oid not in store:
                return httpx.Response(404, json={"error": "not_found"})
            return httpx.Response(200, json=store[oid])
        if request.method == "PUT":
            if oid not in store:  # Otoroshi's PUT never creates
                return httpx.Response(404, json={"error": "not_found", "error_description": "Entity not found"})
            store[oid] = json.loads(request.content)
            return httpx.Response(200, json=store[oid])
        if request.method == "DELETE":
            if store.pop(oid, None) is None:
                return httpx.Response(404, json={"error": "not_found"})
            return httpx.Response(200, json={"deleted": True})
        return httpx.Response(405)

    def proxy(self, request: httpx.Request) -> httpx.Response:
        """Client traffic: routed to an enabled service or route by path prefix, else Otoroshi's "no route"."""
        self.proxied.append(request.url.path)
        for service in self.services.values():
            if service["enabled"] and request.url.path.startswith(service["matchingRoot"]):
                self.served_by.append(f"service:{service['id']}")
                return httpx.Response(200, json={"served": service["id"]})
        for route in self.routes.values():
            path = "/" + route["frontend"]["domains"][0].partition("/")[2]
            if route["enabled"] and request.url.path.startswith(path):
                self.served_by.append(f"route:{route['id']}")
                return httpx.Response(200, json={"served": route["id"]})
        self.served_by.append("")
        return httpx.Response(404, headers={"Otoroshi-Error-Msg": "no route found !"}, json={})


def spec(**overrides: Any) -> GatewayAPISpec:
    return GatewayAPISpec.model_validate(
        {"listenPath": "/catalog/", "upstream": {"url": "http://catalog.shop:8080/v1"}, **overrides}
    )


def make_driver(model: OtoroshiModel, entity: str = "routes", **options: Any) -> OtoroshiDriver:
    return OtoroshiDriver(
        "otoroshi", "http://oto.test", CLIENT_ID, CLIENT_SECRET, transport=httpx.MockTransport(model),
        state_sync_seconds=0, entity=entity, **options,
    )  # fmt: skip
