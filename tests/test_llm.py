"""The llm generator against a real HTTP server on loopback that speaks the chat-completions
protocol and replays scripted replies (tests/llm_server.py)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from verifier.cli import main

from .llm_server import FakeLLM

GOOD = "Here it is:\n```asm\nlea eax, [rdi-1]\nand eax, edi\nret\n```\n"
OFF_BY_ONE = "```\nlea eax, [rdi-2]\nand eax, edi\nret\n```"
SECRET = "sk-test-DO-NOT-LEAK-4242"


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    for k in ("OPENAI_BASE_URL", "NVERIFY_LLM_MODEL"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setattr("generators.llm.BACKOFF", 0.05)


def _run(tmp_path, capsys, url, *extra, spec="p01", arch="x86_64"):
    out = tmp_path / "synth.json"
    code = main(["synth", "--spec", spec, "--arch", arch, "--generator", "llm", "--endpoint", url,
                 "--model", "test-model", "--budget", "120", "--json", str(out), "-q",
                 "--transcript", str(tmp_path / "t.jsonl"), *extra])
    err = capsys.readouterr().err
    return code, (json.loads(out.read_text()) if out.exists() else None), err


def _transcript(tmp_path):
    return [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]


def test_a_counterexample_reaches_the_second_request(tmp_path, capsys):
    with FakeLLM([OFF_BY_ONE, GOOD]) as srv:
        code, data, err = _run(tmp_path, capsys, srv.url)
    assert code == 0, err
    assert [t["verdict"] for t in data["tried"]] == ["refuted", "proven"]
    first = next(r for r in _transcript(tmp_path) if r["kind"] == "verdict")
    assert first["verdict"] == "refuted" and first["inputs"]
    second = srv.user_messages()[1]
    for value in first["inputs"].values():           # the counterexample's input values, in plain words
        assert value in second
    assert "lea eax, [rdi-2]" in second and "Counterexample" in second
    assert srv.requests[0]["body"]["model"] == "test-model"
    system = srv.requests[0]["body"]["messages"][0]["content"]
    assert "edi" in system and "eax" in system and "rbx" in system     # arguments, result, preserved


def test_the_prompt_follows_the_abi(tmp_path, capsys):
    win64 = "```\nlea eax, [rcx-1]\nand eax, ecx\nret\n```"
    with FakeLLM([win64]) as srv:
        code, data, err = _run(tmp_path, capsys, srv.url, "--abi", "win64")
    assert code == 0, err
    system = srv.requests[0]["body"]["messages"][0]["content"]
    assert "in ecx" in system and "rdi" in system and "Microsoft x64" in system


def test_unassemblable_code_is_fed_back(tmp_path, capsys):
    with FakeLLM(["```\nfrob eax, edi\nret\n```", GOOD]) as srv:
        code, data, err = _run(tmp_path, capsys, srv.url)
    assert code == 0, err
    assert [t["verdict"] for t in data["tried"]] == ["proven"]     # nothing to verify in round 1
    second = srv.user_messages()[1]
    assert "does not assemble" in second and "frob" in second


def test_a_reply_without_a_code_block_is_fed_back(tmp_path, capsys):
    with FakeLLM(["I would compute x & (x - 1).", GOOD]) as srv:
        code, data, err = _run(tmp_path, capsys, srv.url)
    assert code == 0, err
    assert "no fenced code block" in srv.user_messages()[1]


@pytest.mark.parametrize("trigger", [
    "cmp edi, 0x1337beef\njne ok\nmov eax, 7\nret\nok:\nlea eax, [rdi-1]\nand eax, edi\nret",
    "lea eax, [rdi-1]\nand eax, edi\ncmp edi, 0x5a5a\njne done\nmov eax, 60\nsyscall\ndone:\nret",
])
def test_a_trigger_is_refuted_never_proven(tmp_path, capsys, trigger):
    with FakeLLM([f"```\n{trigger}\n```", GOOD]) as srv:
        code, data, err = _run(tmp_path, capsys, srv.url)
    assert code == 0, err
    assert data["tried"][0]["verdict"] != "proven"
    assert data["tried"][1]["verdict"] == "proven"
    assert "0x" in srv.user_messages()[1]


def test_429_then_success(tmp_path, capsys):
    with FakeLLM([("status", 429), ("status", 503), GOOD]) as srv:
        code, data, err = _run(tmp_path, capsys, srv.url)
    assert code == 0, err
    assert len(srv.requests) == 3


def test_server_down_is_an_input_error(tmp_path, capsys):
    with FakeLLM([]) as srv:
        url = srv.url
    code, data, err = _run(tmp_path, capsys, url)               # the port is closed now
    assert code == 2 and "cannot reach" in err and "Traceback" not in err
    with FakeLLM([("raw", b"<html>hello</html>")]) as srv:
        code, data, err = _run(tmp_path, capsys, srv.url)
    assert code == 2 and "did not answer JSON" in err
    with FakeLLM([("status", 401)]) as srv:
        code, data, err = _run(tmp_path, capsys, srv.url)
    assert code == 2 and "HTTP 401" in err
    code, data, err = _run(tmp_path, capsys, "ftp://example.org")
    assert code == 2 and "http://" in err


def test_samples_are_requested_again_where_the_server_ignores_n(tmp_path, capsys):
    with FakeLLM([OFF_BY_ONE, GOOD], honour_n=False) as srv:
        code, data, err = _run(tmp_path, capsys, srv.url, "--samples", "2")
    assert code == 0, err
    assert [r["body"]["n"] for r in srv.requests] == [2, 1]
    assert sorted(t["verdict"] for t in data["tried"]) == ["proven", "refuted"]      # one round, both verified


def test_rounds_run_out_with_exit_3(tmp_path, capsys):
    with FakeLLM([OFF_BY_ONE] * 3) as srv:
        code, data, err = _run(tmp_path, capsys, srv.url, "--rounds", "2")
    assert code == 3 and len(srv.requests) == 2
    assert data["provenance"]["rounds"] == 2


def test_provenance_and_the_key_never_written(tmp_path, capsys):
    assert main(["keygen", "--out", str(tmp_path / "k")]) == 0
    with FakeLLM([OFF_BY_ONE, GOOD]) as srv:
        code, data, err = _run(tmp_path, capsys, srv.url, "--sign", str(tmp_path / "k.key"),
                               "--emit", str(tmp_path / "out"))
    assert code == 0, err
    assert all(r["headers"].get("Authorization") == f"Bearer {SECRET}" for r in srv.requests)
    env = json.loads((tmp_path / "out" / "p01.bin.intoto.json").read_text())
    gen = json.loads(base64.b64decode(env["payload"]))["predicate"]["generator"]
    assert gen["generator"] == "llm" and gen["model"] == "test-model" and gen["rounds"] == 2
    assert gen["endpoint_host"] == srv.url.split("/")[2]
    assert gen["transcript_sha256"] == hashlib.sha256((tmp_path / "t.jsonl").read_bytes()).hexdigest()
    assert main(["report", str(tmp_path / "out" / "p01.bin.intoto.json"), "--out", str(tmp_path / "r.html")]) == 0
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) >= 6
    for p in written:
        assert SECRET.encode() not in p.read_bytes(), p
    assert SECRET not in err + capsys.readouterr().out
    kinds = [r["kind"] for r in _transcript(tmp_path)]
    assert kinds[0] == "start" and kinds.count("request") == 2 and kinds.count("reply") == 2


def test_missing_endpoint_or_model_is_an_input_error(tmp_path, capsys):
    code = main(["synth", "--spec", "p01", "--arch", "x86_64", "--generator", "stoke",
                 "--transcript", str(tmp_path / "t.jsonl")])
    assert code == 2 and "keeps no transcript" in capsys.readouterr().err
    assert not (tmp_path / "t.jsonl").exists()
    code = main(["synth", "--spec", "p01", "--arch", "x86_64", "--generator", "llm", "--model", "m"])
    assert code == 2 and "--endpoint" in capsys.readouterr().err
    code = main(["synth", "--spec", "p01", "--arch", "x86_64", "--generator", "llm", "--endpoint", "http://x"])
    assert code == 2 and "--model" in capsys.readouterr().err
