"""--api-auth: HTTP Basic on every route A1111 protects; loras/refresh-loras stay open (A1111's Lora extension
registers them on the app directly). The 401 bodies are A1111's (checked against the reference build with
--api-auth); A1111 drops the WWW-Authenticate header in its exception handler, we keep it."""
import requests


def test_missing_credentials(auth_server):
    r = requests.get(auth_server.url + "/sdapi/v1/options", timeout=30)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == "Basic"
    assert r.json()["detail"] == "Not authenticated"


def test_wrong_password(auth_server):
    r = requests.get(auth_server.url + "/sdapi/v1/sd-models", auth=("alice", "wrong"), timeout=30)
    assert r.status_code == 401
    assert r.json() == {"error": "HTTPException", "detail": "Incorrect username or password", "body": "",
                        "errors": ""}


def test_unknown_user(auth_server):
    assert requests.get(auth_server.url + "/sdapi/v1/sd-models", auth=("mallory", "s3cret"),
                        timeout=30).status_code == 401


def test_good_credentials_and_colon_in_password(auth_server):
    assert requests.get(auth_server.url + "/sdapi/v1/options", auth=("alice", "s3cret"), timeout=30).status_code == 200
    assert requests.get(auth_server.url + "/sdapi/v1/options", auth=("bob", "pa:ss"), timeout=30).status_code == 200


def test_post_routes_protected(auth_server):
    assert requests.post(auth_server.url + "/sdapi/v1/txt2img", json={}, timeout=30).status_code == 401
    assert requests.post(auth_server.url + "/sdapi/v1/png-info", json={}, timeout=30).status_code == 401


def test_lora_routes_open(auth_server):
    assert requests.get(auth_server.url + "/sdapi/v1/loras", timeout=30).status_code == 200
    assert requests.post(auth_server.url + "/sdapi/v1/refresh-loras", timeout=30).status_code == 200


def test_cmd_flags_do_not_leak_credentials(auth_server):
    flags = requests.get(auth_server.url + "/sdapi/v1/cmd-flags", auth=("alice", "s3cret"), timeout=30).json()
    assert "s3cret" not in str(flags)
