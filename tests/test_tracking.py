"""W&B for a run (``experiments.run.tracking``): online only where W&B is configured."""

import pytest

from experiments.run.config import RunConfig
from experiments.run.tracking import wandb_mode


@pytest.mark.parametrize("netrc, mode", [
    ("machine api.wandb.ai\n  login user\n  password 0123abcd\n", "online"),  # what `wandb login` writes
    ("machine github.com login me password api.wandb.ai\n", "offline"),  # the host named, as another's password
    ("# api.wandb.ai, once\nmachine example.org login me password secret\n", "offline"),
    (None, "offline"),
])
def test_a_run_goes_online_only_with_a_wandb_login_in_netrc(netrc, mode, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    if netrc is not None:
        (tmp_path / ".netrc").write_text(netrc)
        (tmp_path / ".netrc").chmod(0o600)  # netrc refuses a password file others can read
    assert wandb_mode(RunConfig()) == mode
