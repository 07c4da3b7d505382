"""The README's Python code blocks run as written, in order (the later ones continue the
first), from a folder holding the demonstrations file they read."""
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def python_blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_code_blocks_run_as_written(tmp_path, cartpole_demos):
    from jaxrl_align.data import demonstrations

    blocks = python_blocks()
    assert len(blocks) >= 2
    demonstrations.save_demos(tmp_path / "runs" / "quickstart" / "demos.npz", cartpole_demos,
                              env_id="seals/CartPole-v0", source="controller")
    script = tmp_path / "readme.py"
    script.write_text("\n".join(blocks))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                                      os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
