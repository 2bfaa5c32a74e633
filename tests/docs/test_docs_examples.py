"""Every Python code sample in README.md and docs/*.md runs, so the docs cannot rot.

Each ```python block runs in its own interpreter (``__name__`` is not
``"__main__"``, so ``if __name__ == "__main__": sio.run()`` stays quiet) and
must finish in time with exit status 0. A block right after an HTML comment
``<!-- docs-test: redis -->`` gets a private redis-server, its URL in the
environment variable ``REDIS_URL``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from support.procs import REPO_ROOT

BLOCK = re.compile(
    r"(<!--\s*docs-test:\s*(?P<mark>[\w-]+)\s*-->\s*\n)?```python\n(?P<code>.*?)```", re.S
)


def samples() -> list[tuple[str, str, str | None]]:
    found = []
    for path in [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]:
        text = path.read_text()
        for n, match in enumerate(BLOCK.finditer(text), 1):
            line = text[: match.start()].count("\n") + 1
            found.append((f"{path.name}:{line}#{n}", match["code"], match["mark"]))
    return found


SAMPLES = samples()


def test_there_are_samples() -> None:
    assert len(SAMPLES) >= 5


@pytest.mark.parametrize(("name", "code", "mark"), SAMPLES, ids=[s[0] for s in SAMPLES])
def test_sample_runs(
    name: str, code: str, mark: str | None, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    if mark == "redis":
        port = request.getfixturevalue("redis_server")
        env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    elif mark is not None:
        raise AssertionError(f"unknown docs-test mark {mark!r} in {name}")
    script = tmp_path / "sample.py"
    script.write_text(code)
    runner = f"import runpy; runpy.run_path({str(script)!r}, run_name='docs_sample')"
    result = subprocess.run(
        [sys.executable, "-c", runner],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
    )
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
