"""Checks of the HTTP API, run by http_api_test.sh against a live SmolLM2 cluster."""
import json
import os
import subprocess
import time
import urllib.error
import urllib.request

import openai
from prometheus_client.parser import text_string_to_metric_families

BASE = os.environ["HTTP_BASE"]
KEY = "test-key-1"
MODEL = "SmolLM2-135M-Instruct.Q4_1"
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print("ok  ", name)
    else:
        failed += 1
        print("FAIL", name, detail)


def post(path, body, key=KEY):
    request = urllib.request.Request(BASE + path, data=body.encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", "Bearer " + key)
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def is_error(answer, status, code=None):
    got, body = answer
    err = body.get("error", {})
    return got == status and {"message", "type", "param", "code"} <= err.keys() and (
        code is None or err["code"] == code)


client = openai.OpenAI(base_url=BASE + "/v1", api_key=KEY, max_retries=0, timeout=300)

# Greedy text over HTTP equals `runahead generate`.
plain = client.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=8,
                                  temperature=0)
check("greedy completion equals runahead generate",
      plain.choices[0].text == os.environ["EXPECTED_TEXT"],
      repr((plain.choices[0].text, os.environ["EXPECTED_TEXT"])))
check("usage", plain.usage.completion_tokens == 8 and plain.usage.prompt_tokens > 0)
streamed = "".join(c.choices[0].text for c in client.completions.create(
    model=MODEL, prompt="The capital of France is", max_tokens=8, temperature=0, stream=True)
    if c.choices)
check("streamed completion equals the plain one", streamed == plain.choices[0].text,
      repr(streamed))
chat = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}],
                                      max_tokens=6, temperature=0, logprobs=True, top_logprobs=2)
check("chat completion", chat.choices[0].message.content and
      len(chat.choices[0].logprobs.content[0].top_logprobs) == 2)
chunks = list(client.chat.completions.create(
    model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=6, temperature=0,
    stream=True, stream_options={"include_usage": True}))
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
check("streamed chat equals plain chat and ends with usage",
      text == chat.choices[0].message.content and chunks[-1].usage is not None, repr(text))

# Raw SSE with curl -N.
raw = subprocess.run(["curl", "-sN", BASE + "/v1/completions", "-H", "Authorization: Bearer " + KEY,
                      "-d", json.dumps({"model": MODEL, "prompt": "Hello", "max_tokens": 3,
                                        "stream": True})], capture_output=True, text=True).stdout
events = [line for line in raw.split("\n\n") if line]
check("curl -N sees data: events ending with [DONE]",
      events and all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]", raw)

# Errors.
check("bad JSON 400", is_error(post("/v1/completions", "{bad"), 400, "invalid_json"))
check("unknown field 400", is_error(post("/v1/completions", json.dumps(
    {"model": MODEL, "prompt": "a", "no_such_field": 1})), 400, "unknown_parameter"))
check("huge max_tokens 400", is_error(post("/v1/completions", json.dumps(
    {"model": MODEL, "prompt": "a", "max_tokens": 10 ** 9})), 400))
check("wrong key 401", is_error(post("/v1/completions", json.dumps(
    {"model": MODEL, "prompt": "a"}), key="wrong"), 401, "invalid_api_key"))
check("missing key 401", is_error(post("/v1/completions", json.dumps(
    {"model": MODEL, "prompt": "a"}), key=None), 401, "invalid_api_key"))

# A client that disconnects mid-stream frees the worker.
stream = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=4000,
                                   temperature=0, stream=True, extra_body={"ignore_eos": True})
for i, _ in enumerate(stream):
    if i >= 3:
        break
stream.close()
start = time.monotonic()
after = client.completions.create(model=MODEL, prompt="Hello", max_tokens=4, temperature=0)
waited = time.monotonic() - start
check("after a disconnect the next request completes promptly", waited < 30, f"{waited:.1f} s")

# /metrics parses with prometheus_client.
with urllib.request.urlopen(BASE + "/metrics") as response:
    families = {f.name: f for f in text_string_to_metric_families(response.read().decode())}
samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
           for f in families.values() for s in f.samples}
check("metrics: histograms and counters",
      "runahead_time_to_first_token_seconds" in families and
      "runahead_inter_token_latency_seconds" in families and
      samples.get(("runahead_http_requests_total", (("outcome", "cancelled"),)), 0) >= 1 and
      "runahead_worker_heartbeat_age_seconds" in families, sorted(families))

print(f"{passed} passed, {failed} failed")
raise SystemExit(1 if failed else 0)
