"""The supervisor's promises: a dead child is restarted with backoff and said so, and no child outlives its parent, not even a SIGKILLed one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dialstream.app.supervisor import ProcessSpec, Supervisor, describe_exit
from tests.dialstream.app.processes import alive, pids_in_groups
from tests.utils import wait_for

SLEEPER = Supervisor.python("-c", "import time; time.sleep(600)")


def test_a_child_that_dies_is_restarted_after_a_backoff_with_one_line(tmp_path: Path) -> None:
    """A SIGKILLed child is reported once with how it died and started again; its log keeps both lives."""
    lines: list[str] = []
    with Supervisor(tmp_path) as supervisor:
        supervisor.start(ProcessSpec("sleeper", SLEEPER))
        first = supervisor.pid("sleeper")
        supervisor.kill("sleeper")
        wait_for(lambda: supervisor.heal(lines.append) or lines, timeout=10)
        assert lines == [f"sleeper died (killed by SIGKILL); restarting it in 1s (restart 1, log {tmp_path / 'sleeper.log'})"]
        second = wait_for(lambda: supervisor.heal(lines.append) or supervisor.pid("sleeper"), timeout=10)
        assert second != first and alive(second) and len(lines) == 1
        supervisor.kill("sleeper")
        wait_for(lambda: supervisor.heal(lines.append) or len(lines) == 2, timeout=10)
        assert "restarting it in 2s (restart 2" in lines[1]


def test_a_restarted_child_is_ready_only_once_its_new_life_says_so(tmp_path: Path) -> None:
    """Readiness by text after a restart is read from the new life's output, not from the
    predecessor's line earlier in the same log."""
    flag = tmp_path / "speak"
    flag.touch()
    # Says it is ready only while the flag exists, then sleeps.
    code = f"import os, time; os.path.exists({str(flag)!r}) and print('up and ready', flush=True); time.sleep(600)"
    with Supervisor(tmp_path / "logs") as supervisor:
        supervisor.start(ProcessSpec("speaker", Supervisor.python("-c", code), ready_text="up and ready"))
        supervisor.wait_ready()
        assert supervisor.ready("speaker")
        first = supervisor.pid("speaker")
        flag.unlink()
        supervisor.kill("speaker")
        wait_for(lambda: supervisor.heal(lambda line: None) or supervisor.pid("speaker") not in (None, first), timeout=10)
        assert not supervisor.ready("speaker")
        assert "up and ready" in supervisor.log_path("speaker").read_text()  # the first life's line is still there
        flag.touch()
        supervisor.kill("speaker")
        wait_for(lambda: supervisor.heal(lambda line: None) or supervisor.ready("speaker"), timeout=15)


def test_exit_codes_read_as_words() -> None:
    """Negative codes name the signal; others are exit statuses."""
    assert describe_exit(-9) == "killed by SIGKILL"
    assert describe_exit(3) == "exit status 3"


PARENT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from dialstream.app.supervisor import ProcessSpec, Supervisor
    supervisor = Supervisor(Path(sys.argv[1]))
    for name in ("a", "b"):
        supervisor.start(ProcessSpec(name, Supervisor.python("-c", "import time; time.sleep(600)")))
    print(" ".join(str(supervisor.pid(name)) for name in ("a", "b")), flush=True)
    time.sleep(600)
    """
)


@pytest.fixture
def parent(tmp_path: Path):
    """A process running a Supervisor with two children; it and every pid it reports are killed afterwards."""
    process = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    children = [int(pid) for pid in process.stdout.readline().split()]
    yield process, children
    process.kill()
    process.wait()
    process.stdout.close()
    for pid in pids_in_groups(children):
        os.kill(pid, signal.SIGKILL)


def test_children_die_with_a_sigkilled_parent(parent) -> None:
    """SIGKILL of the supervising process leaves none of its children (nor their process groups) running."""
    process, children = parent
    assert len(children) == 2 and all(alive(pid) for pid in children)
    process.kill()
    process.wait()
    wait_for(lambda: not pids_in_groups(children), timeout=10)
