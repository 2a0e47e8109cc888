"""Shared fixtures. The real GLUE/SuperGLUE files live outside the repo (../shared/data,
never copied in); a run that lacks them skips those tests locally but fails in CI, where
a silent skip would hide that nothing was checked."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of the shared real data (env ``COMPACTER_SHARED_DATA`` overrides ../shared/data)."""
    path = Path(os.environ.get("COMPACTER_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not (path / "glue").is_dir() or not (path / "superglue").is_dir():
        message = f"shared GLUE/SuperGLUE data not found at {path} (set COMPACTER_SHARED_DATA)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """Tiny task files written for this project, in the original release formats."""
    return FIXTURES
