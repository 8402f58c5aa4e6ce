"""The code base passes its lint config (ruff.toml: pyflakes, pycodestyle, isort)."""
import os.path as osp
import shutil
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def test_ruff_finds_nothing():
    ruff = shutil.which('ruff') or osp.join(osp.dirname(sys.executable), 'ruff')
    if not osp.exists(ruff):
        pytest.fail('ruff is not installed: pip install -r requirements.txt (it lists ruff)')
    out = subprocess.run([ruff, 'check', '--no-cache', ROOT], capture_output=True, text=True,
                         cwd=ROOT)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
