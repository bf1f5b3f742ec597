"""deploy/run-embedded.sh stops what it started, whatever the workers do with the signals.

The script's processes are stand-ins here (small bash programs named celery and gunicorn in a
fake virtual environment), so the stop path is exercised in seconds and exactly: one worker that
ignores TERM and QUIT, as a pool process stuck where no signal handler runs would, and one that
stops when asked. tests/integration/test_embedded_default.py runs the real processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.live_hub import wait_until

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "run-embedded.sh"

# The validation worker ignores both of the script's requests to stop, and so does a process it
# started; the gpu worker stops on TERM. Each writes its pid where the test finds it.
FAKE_CELERY = r"""#!/usr/bin/env bash
while (($#)); do
  case $1 in
    --pidfile) echo $$ > "$2"; shift ;;
    --hostname) host=$2; shift ;;
  esac
  shift
done
if [[ $host == validation@* ]]; then
  trap '' TERM QUIT
  bash -c 'trap "" TERM QUIT; echo $$ > "$MEDIGAN_DATA_DIR/stuck-child.pid"
    while :; do sleep 0.1; done' &
  echo "stuck worker running"
else
  trap 'echo "gpu worker stopped on TERM"; exit 0' TERM
  echo "gpu worker running"
fi
while :; do sleep 0.1; done
"""
FAKE_GUNICORN = r"""#!/usr/bin/env bash
trap 'exit 0' TERM
echo $$ > "$MEDIGAN_DATA_DIR/gunicorn.pid"
while :; do sleep 0.1; done
"""


def _fake_venv(root: Path) -> Path:
    bin_dir = root / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name, text in (("celery", FAKE_CELERY), ("gunicorn", FAKE_GUNICORN)):
        program = bin_dir / name
        program.write_text(text)
        program.chmod(0o755)
    return bin_dir.parent


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


def _pid(path: Path) -> int | None:
    text = path.read_text().strip() if path.exists() else ""
    return int(text) if text else None


def test_a_worker_that_ignores_term_and_quit_is_killed_with_what_it_started(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    env = {
        **os.environ,
        "VENV": str(_fake_venv(tmp_path)),
        "MEDIGAN_DATA_DIR": str(data),
        "WORKER_STOP_GRACE_SECONDS": "1",
    }
    process = subprocess.Popen(
        ["bash", str(SCRIPT)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, which the test can end whole
    )
    try:
        pid_files = [data / name for name in ("gunicorn.pid", "stuck-child.pid")]
        pid_files += [data / f"worker-{name}.pid" for name in ("validation", "gpu")]
        wait_until("every process started", lambda: all(_pid(path) for path in pid_files), 20)
        gunicorn, stuck_child, validation, gpu = (_pid(path) or 0 for path in pid_files)

        started = time.monotonic()
        os.kill(gunicorn, signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
        stopped_in = time.monotonic() - started
    finally:
        if process.poll() is None:
            os.killpg(os.getpgid(process.pid), signal.SIGKILL)

    assert process.returncode == 0, stderr
    # TERM, a second of grace, QUIT, another second, then ABRT and KILL a second apart.
    assert stopped_in < 10
    assert not any(_alive(pid) for pid in (validation, stuck_child, gpu))
    assert "the validation worker did not stop within 2 s of Ctrl-C; killing it" in stderr
    assert str(stuck_child) in stderr  # named among the processes it started
    assert "gpu worker did not stop" not in stderr
    assert "gpu worker stopped on TERM" in (data / "log" / "worker-gpu.log").read_text()
