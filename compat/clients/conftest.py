"""Starts sdapi servers for the client suite. The binary comes from $SDAPI_BIN (scripts/compat-test.sh builds it),
the models from $SDAPI_MODELS (default: the repository's Models/ with the embedded random test model)."""
import base64
import io
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, *extra, models=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = tempfile.mkdtemp(prefix="sdapi-compat-")
        binary = os.environ.get("SDAPI_BIN", str(ROOT / ".build/debug/sdapi"))
        models = models or os.environ.get("SDAPI_MODELS", str(ROOT / "Models"))
        self.log = open(Path(self.data) / "server.log", "w")
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--models-dir", models,
                                      "--data-dir", self.data, *extra], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sdapi exited with {self.proc.returncode}; log in {self.log.name}")
            try:
                requests.get(self.url + "/sdapi/v1/loras", timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("sdapi did not start within 60 s")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


@pytest.fixture(scope="session")
def server():
    s = Server()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def base(server):
    return server.url


@pytest.fixture(scope="session")
def auth_server():
    s = Server("--api-auth", "alice:s3cret,bob:pa:ss")
    yield s
    s.stop()


@pytest.fixture(scope="session")
def generation_available(base):
    """The server makes images (a build without the engine fails these tests instead of skipping them)."""
    r = requests.post(base + "/sdapi/v1/txt2img", json={"steps": 1, "width": 64, "height": 64}, timeout=600)
    assert r.status_code == 200, r.text
    return True


@pytest.fixture
def needs_generation(generation_available):
    assert generation_available


def png_with_text(text=None, size=(8, 8), mode="RGB"):
    from PIL import Image, PngImagePlugin
    img = Image.new(mode, size, color=(10, 20, 30) if mode == "RGB" else 128)
    info = None
    if text is not None:
        info = PngImagePlugin.PngInfo()
        info.add_text("parameters", text)
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=info)
    return base64.b64encode(buf.getvalue()).decode()
