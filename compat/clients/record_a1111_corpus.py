"""Records what the real A1111 v1.10.1 answers to every corpus case into fixtures/api/a1111_corpus.json.

Made with: /work/a1111-reference/start.sh (PORT=7871, --ckpt-dir with an unloadable dummy checkpoint,
--no-download-sd-model), then `python3 compat/clients/record_a1111_corpus.py http://127.0.0.1:7871`.
Only validation-stage answers are meaningful (no model is loaded, so anything reaching generation fails).
"""
import json
import sys
import urllib.request
import urllib.error
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from corpus import CASES  # noqa: E402


def send(base, case):
    data = None
    headers = {}
    if "json" in case:
        data = json.dumps(case["json"]).encode()
        headers["Content-Type"] = "application/json"
    elif "raw" in case:
        data = case["raw"]
        headers["Content-Type"] = case["content_type"]
    req = urllib.request.Request(base + case["path"], data=data, method=case["method"], headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def main():
    base = sys.argv[1].rstrip("/")
    out = {}
    for case in CASES:
        if case["id"] == "huge-body":
            continue
        status, body = send(base, case)
        out[case["id"]] = {"status": status, "body": body[:2000]}
        print(case["id"], status, body[:120])
    path = Path(__file__).parents[2] / "fixtures" / "api" / "a1111_corpus.json"
    path.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
