"""Many clients at once, progress of a running job, and interrupt, against a live server (webuiapi for the client
side of progress and interrupt)."""
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests
import webuiapi


def test_twenty_concurrent_clients_all_get_their_images(base, needs_generation):
    def one(i):
        r = requests.post(base + "/sdapi/v1/txt2img",
                          json={"prompt": f"client {i}", "steps": 2, "width": 64, "height": 64, "seed": 1000 + i},
                          timeout=600)
        return r.status_code, json.loads(r.json()["info"])
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(one, range(20)))
    assert [status for status, _ in answers] == [200] * 20
    assert [info["seed"] for _, info in answers] == [1000 + i for i in range(20)]
    assert [info["prompt"] for _, info in answers] == [f"client {i}" for i in range(20)]


def test_progress_reports_the_running_job_and_interrupt_ends_it(server, needs_generation):
    api = webuiapi.WebUIApi(host="127.0.0.1", port=server.port)
    result = {}

    def long_job():
        started = time.time()
        r = requests.post(server.url + "/sdapi/v1/txt2img",
                          json={"prompt": "long", "steps": 1000, "width": 256, "height": 256, "seed": 3}, timeout=600)
        result["status"], result["body"], result["seconds"] = r.status_code, r.json(), time.time() - started

    worker = threading.Thread(target=long_job)
    worker.start()
    seen = None
    deadline = time.time() + 120
    while time.time() < deadline:
        p = requests.get(server.url + "/sdapi/v1/progress", timeout=30).json()
        if p["state"]["sampling_step"] >= 2:
            seen = p
            break
        time.sleep(0.05)
    assert seen is not None, "the running job never showed up in /progress"
    assert 0 < seen["progress"] < 1 and seen["state"]["sampling_steps"] == 1000 and seen["state"]["job"] == "txt2img"
    api.interrupt()
    worker.join(timeout=120)
    assert result["status"] == 200
    info = json.loads(result["body"]["info"])
    assert len(result["body"]["images"]) == 1 and info["seed"] == 3
    idle = requests.get(server.url + "/sdapi/v1/progress", timeout=30).json()
    assert idle["progress"] == 0 and idle["state"]["job_count"] == 0
