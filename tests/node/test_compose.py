"""A static check of docker-compose.yml and the Dockerfile (no Docker engine runs here).

The compose file is JSON-compatible YAML, so it is read with ``json`` after its comment lines.
Every ``liquide`` command it runs must exist in the CLI with the options it passes (walking the
click tree), the peer URLs must name the other services on their container port, the peers must
form the line A – B – C, and the healthcheck must hit a route the node serves.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
from aiohttp import web

from node import _api
from node.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    doc = json.loads(body)
    assert isinstance(doc, dict)
    return doc


def _commands(script: str) -> list[list[str]]:
    """The ``liquide …`` invocations of a shell script (one per line, up to a redirection)."""
    out = []
    for line in script.splitlines():
        for part in re.split(r"\|\||&&|;", line):
            words = shlex.split(part.split(">")[0])
            if words and words[0] == "exec":
                words = words[1:]
            if words and words[0] == "liquide":
                out.append(words[1:])
    return out


def _resolve(words: list[str]) -> tuple[click.Command, list[str]]:
    cmd: click.Command = main
    rest = list(words)
    while isinstance(cmd, click.Group) and rest and not rest[0].startswith("-"):
        sub = cmd.commands.get(rest[0])
        assert sub is not None, f"no command {rest[0]!r} under {cmd.name!r}"
        cmd, rest = sub, rest[1:]
    return cmd, rest


def _check_options(cmd: click.Command, args: list[str]) -> dict[str, str]:
    known = {opt: p for p in cmd.params if isinstance(p, click.Option) for opt in p.opts}
    values: dict[str, str] = {}
    it = iter(args)
    for a in it:
        if a.startswith("--"):
            p = known.get(a)
            assert p is not None, f"{cmd.name}: no option {a}"
            if not getattr(p, "is_flag", False):
                values[a] = next(it)
    return values


def _services() -> dict[str, Any]:
    services = _compose()["services"]
    assert set(services) == {"city-a", "city-b", "city-c"}
    return services


def test_every_liquide_command_exists_with_its_options() -> None:
    for name, svc in _services().items():
        script = svc["command"][0]
        assert svc["entrypoint"] == ["sh", "-c"]
        cmds = _commands(script)
        assert cmds[0][:2] == ["node", "init"], name
        assert cmds[-1][:2] == ["node", "serve"], name
        for words in cmds:
            cmd, rest = _resolve(words)
            assert not isinstance(cmd, click.Group), words
            _check_options(cmd, rest)


def test_ports_volumes_and_peer_line() -> None:
    services = _services()
    host_ports = set()
    origins = {}
    for name, svc in services.items():
        cmds = {tuple(c[:2]): c for c in _commands(svc["command"][0])}
        init = _check_options(*_resolve(cmds[("node", "init")]))
        serve = _check_options(*_resolve(cmds[("node", "serve")]))
        assert init["--port"] == serve["--port"] == "8470"
        assert serve["--host"] == "0.0.0.0"
        assert init["--data"] == serve["--data"] == "/data"
        origins[name] = init["--origin"]
        (mapping,) = svc["ports"]
        host, hport, cport = mapping.split(":")
        assert (host, cport) == ("127.0.0.1", "8470")
        host_ports.add(hport)
        assert any(v.endswith(":/data") for v in svc["volumes"])
        assert "keys:/keys" in svc["volumes"]
    assert len(host_ports) == 3
    assert len(set(origins.values())) == 3
    edges = set()
    for name, svc in services.items():
        for words in _commands(svc["command"][0]):
            if words[:3] != ["node", "peer", "add"]:
                continue
            cmd, rest = _resolve(words)
            url = rest[0]
            opts = _check_options(cmd, rest[1:])
            parts = urlsplit(url)
            assert parts.scheme == "http"
            assert parts.path == "/"
            assert parts.port == 8470
            assert parts.hostname in services
            assert opts["--origin"] == origins[parts.hostname]
            peer_letter = parts.hostname.removeprefix("city-")
            assert opts["--key-file"] == f"/keys/{peer_letter}.json"
            edges.add(frozenset((name, parts.hostname)))
    assert edges == {frozenset(("city-a", "city-b")), frozenset(("city-b", "city-c"))}
    assert set(_compose()["volumes"]) >= {"a-data", "b-data", "c-data", "keys"}


def test_healthcheck_hits_a_route_the_node_serves() -> None:
    app = web.Application()
    _api.add_routes(app)
    routes = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    for svc in _services().values():
        test = svc["healthcheck"]["test"]
        assert test[0] == "CMD"
        (url,) = re.findall(r"https?://[^'\" ]+", " ".join(test))
        parts = urlsplit(url)
        assert parts.port == 8470
        assert parts.path in routes
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    (url,) = re.findall(r"https?://[^'\" ]+", dockerfile)
    assert urlsplit(url).path in routes
    assert 'ENTRYPOINT ["liquide"]' in dockerfile
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1))  # type: ignore[union-attr]
    assert _resolve(cmd)[0].name == "serve"
