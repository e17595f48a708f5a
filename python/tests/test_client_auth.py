"""lakehouse.Client against a server with API keys (a second server,
started on a data dir where `lakehouse auth` created them)."""

import json
import shutil
import subprocess
import tempfile

import pytest

import lakehouse
from conftest import Server


def create_key(binary, data_dir, *args, env=None):
    out = subprocess.run([binary, "--data-dir", data_dir, "-O", "json", "auth", *args],
                         capture_output=True, text=True, check=True,
                         env=dict(env or {}, PATH="/usr/bin:/bin", HOME=data_dir))
    return json.loads(out.stdout)["key"]


@pytest.fixture(scope="module")
def keyed(lakehouse_bin):
    """A server with keys: admin, alice (writer) and bob (reader)."""
    data_dir = tempfile.mkdtemp(prefix="lakehouse-pytest-auth-")
    keys = {
        "admin": create_key(lakehouse_bin, data_dir, "init", "--user", "root"),
        "alice": create_key(lakehouse_bin, data_dir, "key", "create", "--user", "alice", "--role", "writer"),
        "bob": create_key(lakehouse_bin, data_dir, "key", "create", "--user", "bob", "--role", "reader"),
    }
    s = Server(lakehouse_bin, data_dir)
    try:
        yield s, keys
    finally:
        s.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def test_missing_and_bad_keys_are_unauthenticated(keyed, monkeypatch):
    s, _ = keyed
    monkeypatch.delenv("LAKEHOUSE_API_KEY", raising=False)
    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", s.data_dir + "/nothing")
    for key in (None, "lh_not_a_key", "x"):
        with lakehouse.Client(s.addr, api_key=key) as cl:
            for fn in (cl.get_branches, lambda: cl.query("SELECT 1")):
                with pytest.raises(lakehouse.UnauthenticatedError) as e:
                    fn()
                assert e.value.class_name == "unauthenticated" and e.value.exit_code == 5
                assert e.value.hint


def test_roles(keyed, monkeypatch):
    s, keys = keyed
    with lakehouse.Client(s.addr, api_key=keys["bob"]) as bob:
        assert bob.info()["user"] == "bob"
        assert bob.has_branch("main")
        assert bob.query("SELECT 1 AS x").num_rows == 1
        with pytest.raises(lakehouse.PermissionDeniedError) as e:
            bob.create_branch("bob.dev")
        assert e.value.class_name == "permission_denied"
    monkeypatch.setenv("LAKEHOUSE_API_KEY", keys["alice"])
    with lakehouse.Client(s.addr) as alice:
        assert alice.info()["user_role"] == "writer"
        alice.create_branch("alice.dev")
        commit = alice.create_namespace("alice_ns", "alice.dev")
        assert commit.author == "alice"  # the key's user, whatever the client claims
        with pytest.raises(lakehouse.PermissionDeniedError):
            alice.create_branch("bob.dev")
        assert alice.merge_branch("alice.dev", "main").outcome in ("fast-forward", "merge")
    with lakehouse.Client(s.addr, api_key=keys["admin"]) as admin:
        admin.create_branch("bob.dev")
        admin.delete_branch("bob.dev")


def test_key_actions(keyed):
    s, keys = keyed
    with lakehouse.Client(s.addr, api_key=keys["admin"]) as admin:
        k = admin.create_api_key("carol", "reader", expires_in=3600)
        assert k["key"].startswith("lh_") and k["user"] == "carol" and k["status"] == "active"
        listed = {x["id"]: x for x in admin.get_api_keys()}
        assert k["id"] in listed and "key" not in listed[k["id"]]
        with lakehouse.Client(s.addr, api_key=k["key"]) as carol:
            assert carol.info()["user"] == "carol"
            with pytest.raises(lakehouse.PermissionDeniedError):
                carol.create_api_key("dave", "admin")
            assert admin.revoke_api_key(k["id"])["status"] == "revoked"
            with pytest.raises(lakehouse.UnauthenticatedError) as e:
                carol.get_branches()
            assert "revoked" in e.value.message
        with pytest.raises(lakehouse.InvalidArgumentError):
            admin.create_api_key("erin", "emperor")


def test_key_actions_on_a_server_without_keys(server):
    with lakehouse.Client(server.addr) as cl:
        assert cl.get_api_keys() == []
        with pytest.raises(lakehouse.FailedPreconditionError) as e:
            cl.create_api_key("alice", "writer")
        assert "auth init" in e.value.hint
