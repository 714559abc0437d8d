"""Tokens with permissions: created once, limited to what they carry, revoked at once."""

from __future__ import annotations

import json

import httpx


def test_token_life_cycle(make_station) -> None:  # type: ignore[no-untyped-def]
    station = make_station([])
    created = station.cli("token", "create", "viewer", "--permission", "processes:view", "--json")
    assert created.returncode == 0, created.stderr
    token = json.loads(created.stdout)["token"]
    headers = {"Authorization": f"Bearer {token}"}

    mesh = httpx.get(f"{station.api}/api/v1/mesh/nodes", headers=headers, timeout=5)
    assert mesh.status_code == 403
    assert "lacks" in mesh.json()["detail"]

    listed = json.loads(station.cli("token", "list", "--json").stdout)
    assert [t["name"] for t in listed["tokens"]] == ["viewer"]
    assert "token" not in listed["tokens"][0] and "token_sha256" not in listed["tokens"][0]

    duplicate = station.cli("token", "create", "viewer", "--permission", "processes:view")
    assert duplicate.returncode == 1
    unknown = station.cli("token", "create", "other", "--permission", "launch:missiles")
    assert unknown.returncode == 2

    assert station.cli("token", "revoke", "viewer").returncode == 0
    revoked = httpx.get(f"{station.api}/api/v1/mesh/nodes", headers=headers, timeout=5)
    assert revoked.status_code == 401
    assert station.cli("token", "revoke", "viewer").returncode == 4
