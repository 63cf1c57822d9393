"""The notebooks' egress rule: the nft text it generates, installing and removing it with the
real `nft`, a clear error when that is impossible, and the spawner refusing to start then; the
private mount namespace hiding local services' sockets; the workspace env's settings."""

from __future__ import annotations

import ctypes
import json
import logging
import os
import secrets
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from tornado import web

from tests.e2e.conftest import REQUIRE_EGRESS
from tre.hub import egress, mounts
from tre.hub.egress import EgressError, EgressPolicy, Endpoint
from tre.hub.spawner import TRESpawner, lab_args
from tre.hub.workspace import LAB_OVERRIDES, NETWORK_NOTE, write_kernel_config, write_lab_settings

POLICY = EgressPolicy(
    table="tre_workspace",
    gid=1234,
    allowed=(Endpoint("127.0.0.1", 8000), Endpoint("127.0.0.1", 8081), Endpoint("::1", 8000)),
)

needs_nft = pytest.mark.skipif(
    (os.geteuid() != 0 or egress.nft_path() is None) and not REQUIRE_EGRESS,
    reason="needs root and nftables (apt-get install nftables); CI requires them",
)


def test_the_ruleset_confines_the_group_to_the_allowed_endpoints() -> None:
    assert egress.ruleset(POLICY) == (
        "table inet tre_workspace\n"
        "delete table inet tre_workspace\n"
        "table inet tre_workspace {\n"
        "\tchain output {\n"
        "\t\ttype filter hook output priority filter; policy accept;\n"
        "\t\tmeta skgid 1234 jump researchers\n"
        "\t}\n"
        "\tchain researchers {\n"
        "\t\tmeta l4proto tcp ct state established accept\n"
        "\t\tip daddr 127.0.0.1 tcp dport 8000 accept\n"
        "\t\tip daddr 127.0.0.1 tcp dport 8081 accept\n"
        "\t\tip6 daddr ::1 tcp dport 8000 accept\n"
        "\t\tmeta l4proto tcp reject with tcp reset\n"
        "\t\treject with icmpx type admin-prohibited\n"
        "\t}\n"
        "}\n"
    )


def test_with_nothing_allowed_everything_new_is_rejected() -> None:
    text = egress.ruleset(EgressPolicy("t1", 5, ()))
    assert "daddr" not in text and text.index("established") < text.index("reject")


@pytest.mark.parametrize(
    ("table", "gid"), [("tre workspace", 5), ("1table", 5), ("t;flush ruleset", 5), ("t", 0)]
)
def test_policies_that_could_inject_or_catch_root_are_refused(table: str, gid: int) -> None:
    with pytest.raises(ValueError):
        EgressPolicy(table, gid, ())


@pytest.mark.parametrize(
    ("address", "port"), [("localhost", 80), ("127.0.0.1; flush ruleset", 80), ("::1", 0)]
)
def test_endpoints_are_literal_addresses_and_ports(address: str, port: int) -> None:
    with pytest.raises(ValueError):
        Endpoint(address, port)


def test_endpoints_resolve_hosts_and_urls() -> None:
    assert egress.url_endpoint("http://127.0.0.1:8000/api") == ("127.0.0.1", 8000)
    assert egress.url_endpoint("https://tre.example") == ("tre.example", 443)
    assert egress.url_endpoint("http://[::1]:9") == ("::1", 9)
    found = egress.endpoints([("localhost", 8000), ("127.0.0.1", 8000), ("127.0.0.1", 81)])
    assert Endpoint("127.0.0.1", 8000) in found and Endpoint("127.0.0.1", 81) in found
    assert len(found) == len(set(found))
    with pytest.raises(EgressError, match=r"cannot resolve 'no-such-host\.invalid'"):
        egress.endpoints([("no-such-host.invalid", 80)])
    with pytest.raises(ValueError):
        egress.url_endpoint("ftp://127.0.0.1")


@needs_nft
def test_the_table_is_installed_replaced_and_removed() -> None:
    table = f"tre_unit_{secrets.token_hex(3)}"
    try:
        egress.install(EgressPolicy(table, 54321, (Endpoint("127.0.0.1", 8000),)))
        egress.install(EgressPolicy(table, 54321, (Endpoint("127.0.0.1", 9000),)))  # replaced
        listed = egress.installed(table)
        assert listed is not None
        assert "skgid 54321" in listed and "dport 9000" in listed and "dport 8000" not in listed
        assert "reject with tcp reset" in listed
    finally:
        egress.remove(table)
    assert egress.installed(table) is None
    egress.remove(table)  # absent: nothing to do, no error


@needs_nft
def test_without_privileges_the_error_says_what_is_needed() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child drops to nobody and tries
        os.close(read)
        message = "installed"
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            egress.install(EgressPolicy(f"tre_unit_{os.getpid()}", 54321, ()))
        except EgressError as exc:
            message = str(exc)
        finally:
            os.write(write, message.encode())
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        message = pipe.read()
    os.waitpid(pid, 0)
    assert message.startswith("cannot install the notebook network rule: nft refused")
    assert "root with CAP_NET_ADMIN" in message


def _spawner(**config: object) -> TRESpawner:
    user = SimpleNamespace(name="ada", url="/user/ada/")
    return TRESpawner(user=user, egress_table=f"tre_unit_{secrets.token_hex(3)}", **config)


def test_a_spawn_is_refused_when_the_rule_cannot_be_installed() -> None:
    spawner = _spawner(egress_allow=["http://no-such-host.invalid:8000"])
    with pytest.raises(web.HTTPError) as refused:
        spawner._confine_network(54321)
    assert refused.value.status_code == 503
    shown = refused.value.jupyterhub_message  # type: ignore[attr-defined]
    assert "network rule could not be installed" in shown and "administrator" in shown
    with pytest.raises(web.HTTPError):
        _spawner(egress_allow=[])._confine_network(54321)


def test_the_opt_out_starts_anyway_and_says_so_loudly(caplog: pytest.LogCaptureFixture) -> None:
    spawner = _spawner(egress_allow=["http://no-such-host.invalid:8000"], egress_required=False)
    spawner.log = logging.getLogger("test_egress_opt_out")
    with caplog.at_level(logging.WARNING, logger="test_egress_opt_out"):
        spawner._confine_network(54321)
    assert any("UNRESTRICTED NETWORK" in r.getMessage() for r in caplog.records)


def test_kernels_use_unix_sockets() -> None:
    assert "--KernelManager.transport=ipc" in lab_args(60)


def test_jupyterlab_news_and_update_checks_are_overridden_off(tmp_path: Path) -> None:
    path = write_lab_settings(tmp_path)
    assert path == tmp_path / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    notification = json.loads(path.read_text())["@jupyterlab/apputils-extension:notification"]
    assert notification == {"fetchNews": "false", "checkForUpdates": False}
    assert LAB_OVERRIDES["@jupyterlab/apputils-extension:notification"] == notification
    assert path.stat().st_mode & 0o777 == 0o644


def test_the_kernel_config_is_valid_python_with_the_note(tmp_path: Path) -> None:
    # What the note does inside a real kernel is tested in test_hub.py.
    path = write_kernel_config(tmp_path)
    assert path == tmp_path / "etc" / "ipython" / "ipython_kernel_config.py"
    namespace: dict[str, object] = {"c": SimpleNamespace(InteractiveShellApp=SimpleNamespace())}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    (code,) = namespace["c"].InteractiveShellApp.exec_lines  # type: ignore[attr-defined]
    compile(code, "exec_lines", "exec")
    assert repr(NETWORK_NOTE) in code
    assert path.stat().st_mode & 0o777 == 0o644


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mount namespaces need root")


@needs_root
def test_hidden_folders_are_empty_in_the_server_namespace_only(tmp_path: Path) -> None:
    assert mounts.problem() is None
    kept = Path("/run") / f"tre-unit-{secrets.token_hex(3)}" / "runtime"
    kept.mkdir(parents=True)
    (kept / "conn.json").write_text("{}")
    before = sorted(os.listdir("/run"))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child hides /run as a notebook server's preexec does
        os.close(read)
        try:
            mounts.hide(ctypes.CDLL(None, use_errno=True), ["/run", "/no/such"], [str(kept)])
            seen = {"run": sorted(os.listdir("/run")), "kept": sorted(os.listdir(kept))}
        except Exception as exc:  # reported to the parent
            seen = {"error": repr(exc)}
        os.write(write, json.dumps(seen).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        seen = json.loads(pipe.read())
    os.waitpid(pid, 0)
    try:
        assert seen == {"run": [kept.parent.name], "kept": ["conn.json"]}
        assert sorted(os.listdir("/run")) == before  # the host's /run is untouched
    finally:
        shutil.rmtree(kept.parent)
