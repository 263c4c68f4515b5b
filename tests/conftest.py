import os

import pytest
import torch
from hypothesis import settings

settings.register_profile("ci", max_examples=20, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=20, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    """A private runs/ root (SIMS_RUNS) for each test."""
    root = tmp_path / "runs"
    monkeypatch.setenv("SIMS_RUNS", str(root))
    return root
