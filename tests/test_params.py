"""``make params``: the trainable-parameter table (``experiments.bench.params``)."""

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_the_committed_param_table_is_what_make_params_writes(tmp_path):
    from experiments.bench.params import main as param_table

    param_table(["--out", str(tmp_path)])
    for name in ("params.csv", "params.md"):
        assert (tmp_path / name).read_text() == (REPO / "reports" / name).read_text(), (
            f"reports/{name} is stale: run make params and commit it")
