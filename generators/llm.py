"""`llm`: a language model proposes assembly through any OpenAI-compatible chat-completions
endpoint; the verifier refutes it with a concrete counterexample; the model tries again with
that counterexample in hand, until a candidate is PROVEN or the rounds or the budget run out.

Each round is one request (`n` = --samples; where the server ignores `n`, more requests until
there are K replies) whose user message holds the spec and every earlier attempt with its
outcome: the assembler error, "no code block", or the verdict, reason and counterexample in
plain words. The model is as untrusted as any generator: everything it writes goes through
keystone and then the full pipeline.

The API key (OPENAI_API_KEY) is sent as a Bearer token and nowhere else: not in the
transcript, the result JSON, reports, attestations or any message.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from . import Candidate, Feedback, Task

_FENCE = re.compile(r"```[^\n`]*\n(.*?)```", re.S)
RETRIES = 5                 # on 429 and 5xx, with exponential backoff (or the server's Retry-After)
BACKOFF = 1.0               # seconds before the first retry


class EndpointError(Exception):
    """The endpoint cannot be reached or does not speak the protocol (an input error, exit 2)."""


@dataclass
class Attempt:
    round: int
    sample: int
    text: str                      # the code block as the model wrote it ("" when none)
    outcome: str = "pending"       # what the model is told, in plain words
    verdict: str | None = None


@dataclass
class Conversation:
    """What was said, in order, as JSON-able records (the transcript); never the key."""
    records: list[dict[str, Any]] = field(default_factory=list)

    def add(self, **record: Any) -> None:
        self.records.append({"t": round(time.time(), 3), **record})

    def jsonl(self) -> bytes:
        return b"".join(json.dumps(r, sort_keys=True).encode() + b"\n" for r in self.records)


class Client:
    """POST {endpoint}/chat/completions, with timeouts and retries on 429/5xx."""

    def __init__(self, endpoint: str, key: str | None, timeout: float) -> None:
        self.url = endpoint.rstrip("/") + "/chat/completions"
        self.key, self.timeout = key, timeout

    def complete(self, body: dict[str, Any], deadline: float) -> dict[str, Any]:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        delay = BACKOFF
        for attempt in range(RETRIES + 1):
            req = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            timeout = max(1.0, min(self.timeout, deadline - time.monotonic()))
            try:
                with urllib.request.urlopen(req, timeout=timeout) as resp:
                    raw = resp.read()
            except urllib.error.HTTPError as e:
                if (e.code == 429 or e.code >= 500) and attempt < RETRIES and time.monotonic() + delay < deadline:
                    wait = _retry_after(e.headers.get("Retry-After")) or delay
                    time.sleep(min(wait, max(0.0, deadline - time.monotonic())))
                    delay *= 2
                    continue
                detail = _error_detail(e)
                raise EndpointError(f"{self.url} answered HTTP {e.code}{': ' + detail if detail else ''}") from None
            except urllib.error.URLError as e:
                raise EndpointError(f"cannot reach {self.url}: {getattr(e, 'reason', e)}") from None
            except TimeoutError:
                if attempt < RETRIES and time.monotonic() + delay < deadline:
                    continue
                raise EndpointError(f"{self.url} did not answer within {timeout:.0f} s") from None
            except OSError as e:
                raise EndpointError(f"cannot reach {self.url}: {e.strerror or e}") from None
            try:
                reply = json.loads(raw)
            except ValueError:
                raise EndpointError(f"{self.url} did not answer JSON (is it an OpenAI-compatible endpoint? it said: "
                                    f"{raw[:120]!r})") from None
            if not isinstance(reply, dict) or not isinstance(reply.get("choices"), list):
                raise EndpointError(f"{self.url} answered JSON without 'choices': not the chat-completions protocol")
            return reply
        raise EndpointError(f"{self.url}: still failing after {RETRIES} retries")


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _error_detail(e: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(e.read() or b"{}")
        msg = body.get("error", {}).get("message") if isinstance(body.get("error"), dict) else body.get("error")
        return str(msg)[:200] if msg else ""
    except Exception:  # noqa: BLE001 - the status code alone is still a clear error
        return ""


def replies(reply: dict[str, Any]) -> list[str]:
    """The text of each choice; a choice without text counts as an empty reply."""
    out = []
    for c in reply["choices"]:
        msg = c.get("message") if isinstance(c, dict) else None
        content = msg.get("content") if isinstance(msg, dict) else None
        out.append(content if isinstance(content, str) else "")
    return out


def code_block(text: str) -> str | None:
    """The first fenced code block's body, or None."""
    m = _FENCE.search(text)
    return m.group(1).strip("\n") if m else None


# --- prompts --------------------------------------------------------------------------------------

def system_prompt(task: Task, abi) -> str:
    from verifier.describe import machine_model

    m = machine_model(task.spec, abi, task.arch)
    sig = task.spec.signature
    syntax = "Intel syntax (as `nasm`/`objdump -M intel` write it, no directives)" if task.arch == "x86_64" \
        else "GNU assembler syntax for AArch64 (as `objdump` writes it, no directives)"
    lines = [
        f"You write machine code for one function, {sig.name}, on {task.arch} under the {m['abi']['summary']} "
        "calling convention. A formal verifier will check your code against a specification for every input; "
        "it is rejected if it is wrong for any input.",
        "",
        "Arguments:",
        *[f"- {p['type']}: {p['passed']}" + (f"; {p['upper_bits']}" if p.get("upper_bits", "none") != "none"
                                             else "") for p in m["parameters"]],
        f"Result: {m['returns']['type']} in {m['returns']['register']}." if m["returns"] else "No result.",
        "Stack: " + "; ".join(m["stack"]) + ".",
        "You must preserve: " + ", ".join(m["preserved"]) + ".",
        "Every other register and flag holds an arbitrary value at entry: never read one you have not written.",
        "Forbidden: " + "; ".join(m["forbidden"]) + ". Do not test for particular input values to take "
        "shortcuts; the code must be right for every input allowed by pre.",
        "The function must end by returning (ret) to its caller.",
        "",
        f"Reply with exactly one fenced code block (```) holding the function body in {syntax}: one instruction "
        "per line, labels allowed, no comments needed, nothing after the code block.",
    ]
    return "\n".join(lines)


def user_prompt(task: Task, attempts: list[Attempt]) -> str:
    sp = task.spec
    lines = [
        f"Write {sp.signature.name}.",
        f"C signature: {sp.signature.text if hasattr(sp.signature, 'text') else sp.signature.name}",
        f"Precondition (SMT-LIB, over the arguments): {sp.pre}",
        "Postcondition (SMT-LIB; `ret` is the result): " + (" AND ".join(sp.post) if sp.post else "true"),
        "Bit-vector operations are unsigned unless named bvs…; numbers like #x0000001f are hexadecimal.",
    ]
    if attempts:
        lines += ["", "Your earlier attempts, all rejected:"]
        for a in attempts:
            body = a.text if a.text else "(no code block)"
            lines += ["", f"Attempt {a.round}.{a.sample}:", "```", body, "```", f"Outcome: {a.outcome}"]
        lines += ["", "Write a corrected version."]
    return "\n".join(lines)


def describe_feedback(fb: Feedback) -> str:
    """A verdict, its reason and its counterexample, in plain words for the model."""
    if fb.verdict == "proven":
        return "PROVEN."
    words = f"{fb.verdict.upper()}" + (f" ({fb.reason})" if fb.reason else "")
    if fb.message:
        words += f": {fb.message.rstrip('.')}."
    cex = fb.counterexample or {}
    inputs = cex.get("inputs") or {}
    if inputs:
        words += " Counterexample: with " + ", ".join(f"{k} = {_plain(v)}" for k, v in inputs.items())
        actual, expected = cex.get("actual"), cex.get("expected")
        if actual:
            words += f", your code gave {_plain(actual)}"
        if isinstance(expected, dict) and "violates" in expected:
            words += f", which breaks {expected['violates']}"
        elif expected:
            words += f", where the spec expects {_plain(expected)}"
        words += "."
    return words


def _plain(v: Any) -> str:
    if isinstance(v, str) and v.startswith("0x"):
        try:
            n = int(v, 16)
            return f"{v} ({n})" if n < 1 << 20 else v
        except ValueError:
            return v
    if isinstance(v, dict):
        return ", ".join(f"{k} = {_plain(x)}" for k, x in v.items())
    return str(v)


# --- the generator ------------------------------------------------------------------------------

class Llm:
    name = "llm"
    version = "1.0"
    description = "a language model behind an OpenAI-compatible endpoint, with the verifier's counterexamples"

    def start(self, task: Task) -> None:
        from verifier.arch import select_abi
        from verifier.errors import UsageError

        o = task.options
        self.task = task
        self.endpoint = o.get("endpoint") or os.environ.get("OPENAI_BASE_URL")
        self.model = o.get("model") or os.environ.get("NVERIFY_LLM_MODEL")
        if not self.endpoint:
            raise UsageError("the llm generator needs --endpoint URL (or OPENAI_BASE_URL), e.g. "
                             "http://localhost:11434/v1 for Ollama")
        parsed = urllib.parse.urlparse(self.endpoint)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise UsageError(f"--endpoint {self.endpoint!r}: give an http:// or https:// URL, e.g. "
                             "https://api.openai.com/v1")
        if not self.model:
            raise UsageError("the llm generator needs --model NAME (or NVERIFY_LLM_MODEL)")
        self.rounds = int(o.get("rounds") or 5)
        self.samples = int(o.get("samples") or 1)
        self.temperature = float(o["temperature"]) if o.get("temperature") is not None else 0.7
        self.abi = select_abi(task.arch, "raw", o.get("abi"))     # candidates are raw code, as synth loads them
        self.client = Client(self.endpoint, os.environ.get("OPENAI_API_KEY") or None,
                             float(o.get("request_timeout") or 120.0))
        self.deadline = time.monotonic() + task.budget
        self.round = 0
        self.attempts: list[Attempt] = []
        self.queue: list[tuple[Candidate, Attempt]] = []
        self.pending: dict[int, Attempt] = {}      # id(candidate) -> its attempt, until verified
        self.conversation = Conversation()
        self.system = system_prompt(task, self.abi)
        self.conversation.add(kind="start", model=self.model, endpoint_host=parsed.netloc, arch=task.arch,
                              abi=self.abi.name, spec=task.spec.signature.name, rounds=self.rounds,
                              samples=self.samples, temperature=self.temperature)

    # -- the protocol
    def propose(self) -> Candidate | None:
        while not self.queue:
            if self.round >= self.rounds or time.monotonic() >= self.deadline:
                return None
            self._ask()
        cand, attempt = self.queue.pop(0)
        self.pending[id(cand)] = attempt
        return cand

    def propose_batch(self) -> list[Candidate]:
        """Every assembled reply of the next round, for the loop to verify in parallel."""
        first = self.propose()
        if first is None:
            return []
        batch = [first]
        while self.queue and (cand := self.propose()) is not None:
            batch.append(cand)
        return batch

    def feedback(self, candidate: Candidate, fb: Feedback) -> None:
        attempt = self.pending.pop(id(candidate), None)
        if attempt is None:
            return
        attempt.outcome, attempt.verdict = describe_feedback(fb), fb.verdict
        self.conversation.add(kind="verdict", round=attempt.round, sample=attempt.sample, verdict=fb.verdict,
                              reason=fb.reason, outcome=attempt.outcome,
                              inputs=(fb.counterexample or {}).get("inputs") or {})
        if fb.verdict == "proven":
            self.queue.clear()                 # done: the first proof ends the search
            self.rounds = self.round

    def stats(self) -> dict:
        return {"proposals": len(self.attempts), "best_cost": None, "rounds": self.round}

    def provenance(self) -> dict[str, Any]:
        return {"model": self.model, "endpoint_host": urllib.parse.urlparse(self.endpoint).netloc,
                "rounds": self.round, "samples": self.samples, "temperature": self.temperature,
                "transcript_sha256": hashlib.sha256(self.conversation.jsonl()).hexdigest()}

    def transcript(self) -> bytes:
        return self.conversation.jsonl()

    # -- one round
    def _ask(self) -> None:
        from verifier.errors import UsageError

        from .hand import assemble

        self.round += 1
        messages = [{"role": "system", "content": self.system},
                    {"role": "user", "content": user_prompt(self.task, [a for a in self.attempts
                                                                        if a.verdict != "proven"])}]
        texts: list[str] = []
        while len(texts) < self.samples and time.monotonic() < self.deadline:
            want = self.samples - len(texts)
            body = {"model": self.model, "messages": messages, "temperature": self.temperature, "n": want}
            self.conversation.add(kind="request", round=self.round, n=want, messages=messages)
            try:
                reply = self.client.complete(body, self.deadline)
            except EndpointError as e:
                raise UsageError(f"llm endpoint: {e}") from None
            got = replies(reply)[:want]
            if not got:
                raise UsageError(f"llm endpoint: {self.client.url} answered with no choices")
            for text in got:
                self.conversation.add(kind="reply", round=self.round, sample=len(texts) + 1, content=text)
                texts.append(text)
        for k, text in enumerate(texts, 1):
            code = code_block(text)
            attempt = Attempt(self.round, k, code or "")
            self.attempts.append(attempt)
            if code is None:
                attempt.outcome = "your reply had no fenced code block (```), so nothing was verified."
                self.conversation.add(kind="no-code", round=self.round, sample=k)
                continue
            try:
                blob = assemble(self.task.arch, code, f"attempt {self.round}.{k}")
            except Exception as e:  # noqa: BLE001 - an assembler error is fed back, not fatal
                attempt.outcome = f"it does not assemble: {e}"
                self.conversation.add(kind="assembler-error", round=self.round, sample=k, error=str(e))
                continue
            self.queue.append((Candidate(blob, note=code), attempt))
