"""``python -m sim``: the command line and its clean shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from sim.__main__ import _delivery, build_parser, main
from sim.config import SandboxConfig

ROOT = Path(__file__).resolve().parents[2]


def test_parser_defaults() -> None:
    """The CLI listens on 127.0.0.1:8080 with no scenario and no fixed seed unless told otherwise."""
    args = build_parser().parse_args([])
    assert (args.host, args.port, args.scenario, args.seed) == ("127.0.0.1", 8080, None, None)


def test_bad_scenario_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A scenario with an unknown key is refused with exit status 2 and a message naming the key."""
    scenario = tmp_path / "bad.yaml"
    scenario.write_text("callee:\n  answr: 0.5\n")
    assert main(["--port", "0", "--scenario", str(scenario)]) == 2
    assert "answr" in capsys.readouterr().err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_runs_until_signalled_then_exits_cleanly(signum: int) -> None:
    """The sandbox prints one line when listening, serves the API for the EXOTEL_* account, and exits 0 on a signal."""
    scenario = ROOT / "sim" / "scenarios" / "demo.yaml"
    env = {**os.environ, "EXOTEL_ACCOUNT_SID": "acct-from-env"}
    process = subprocess.Popen(
        [sys.executable, "-m", "sim", "--port", "0", "--seed", "3", "--scenario", str(scenario)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "listening on http://127.0.0.1:" in line and "account acct-from-env" in line and "seed 3" in line
        url = line.split("listening on ")[1].split()[0]
        response = httpx.get(f"{url}/sim/v1/summary", timeout=5)
        assert response.json()["seed"] == 3
        process.send_signal(signum)
        assert process.wait(timeout=10) == 0
        assert process.stderr is not None and process.stderr.read() == ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_tls_flags_override_the_scenarios_delivery(tmp_path: Path) -> None:
    """--tls, --ca-file, --client-cert and --client-key set the delivery section; secrets stay in the scenario file."""
    scenario = tmp_path / "tls.yaml"
    scenario.write_text("delivery:\n  bearer_token: from-the-file\n")
    args = build_parser().parse_args(["--tls", "--ca-file", "ca.pem", "--client-cert", "c.pem", "--client-key", "c.key"])
    policy = _delivery(SandboxConfig.from_yaml(scenario).delivery, args)
    assert (policy.tls, policy.ca_file, policy.client_cert_file, policy.client_key_file) == (True, "ca.pem", "c.pem", "c.key")
    assert policy.bearer_token == "from-the-file"


def test_an_unreadable_ca_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A CA file that cannot be read stops the sandbox with exit status 2 and one line naming the file."""
    assert main(["--port", "0", "--ca-file", str(tmp_path / "nope.pem")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "delivery.ca_file: cannot read" in err and "nope.pem" in err
