"""--api-server-stop enables server-stop / server-restart / server-kill."""
import time

import requests

from conftest import Server


def test_server_stop_ends_the_process():
    s = Server("--api-server-stop")
    try:
        assert requests.post(s.url + "/sdapi/v1/server-restart", timeout=30).status_code == 501
        r = requests.post(s.url + "/sdapi/v1/server-stop", timeout=30)
        assert r.status_code == 200 and r.text == "Stopping."
        deadline = time.time() + 10
        while s.proc.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert s.proc.returncode == 0
    finally:
        s.stop()
