"""A small OpenAI-compatible chat-completions server on loopback that replays scripted replies.

Each script step is one HTTP answer: a reply text (or a list of texts, one per choice), or
("status", code) for an error, or ("raw", bytes) for something that is not the protocol. Every
request is recorded (path, headers, JSON body) so tests can look at what the client sent.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeLLM:
    def __init__(self, script: list[Any], honour_n: bool = True) -> None:
        self.script = list(script)
        self.honour_n = honour_n
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):      # quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                step = server.script.pop(0) if server.script else "```\nret\n```"
                if isinstance(step, tuple) and step[0] == "status":
                    return self._send(step[1], {"error": {"message": "slow down" if step[1] == 429 else "oops"}},
                                      {"Retry-After": "0"} if step[1] == 429 else {})
                if isinstance(step, tuple) and step[0] == "raw":
                    return self._send_raw(200, step[1])
                texts = step if isinstance(step, list) else [step]
                if not server.honour_n:
                    texts = texts[:1]
                choices = [{"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
                           for i, t in enumerate(texts)]
                self._send(200, {"id": "x", "object": "chat.completion", "model": body.get("model"),
                                 "choices": choices})

            def _send(self, code, obj, headers=None):
                self._send_raw(code, json.dumps(obj).encode(), headers)

            def _send_raw(self, code, data, headers=None):
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeLLM:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def user_messages(self) -> list[str]:
        return [m["content"] for r in self.requests if r["body"] for m in r["body"]["messages"] if m["role"] == "user"]
