"""The library as a researcher installs it (`make check-library`): run by a fresh venv's python
outside the checkout, after `pip install torch==… .` and nothing else. Fails unless compacter
comes from site-packages, none of the suite's packages or dependencies can be imported, and an
adapted tiny BERT runs forward, saves, reloads and converts to AdapterHub's format."""

import importlib.util
import sys
import tempfile
from pathlib import Path

import torch
from transformers import BertConfig, BertModel

import compacter
from compacter.convert import to_adapterhub

SUITE = ("catalog", "experiments", "analysis", "lightning_modules")
SUITE_DEPENDENCIES = ("lightning", "wandb", "pandas", "plotly", "submitit", "matplotlib", "datasets", "peft")

site = Path(compacter.__file__).resolve().parents[1]
assert site.name == "site-packages", f"compacter imported from {compacter.__file__}, not an installed wheel"
present = [name for name in SUITE + SUITE_DEPENDENCIES if importlib.util.find_spec(name) is not None]
assert not present, f"installed with the library alone, yet importable: {present}"
assert not [name for name in SUITE if (site / name).exists()], "suite packages in site-packages"

torch.manual_seed(0)
config = BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
model = compacter.apply(BertModel(config).eval(), "compacter", reduction_factor=8, train_layer_norms=False)
ids = torch.randint(0, 64, (2, 7))
with torch.no_grad():
    out = model(input_ids=ids).last_hidden_state
with tempfile.TemporaryDirectory() as tmp:
    compacter.save_trained(model, tmp + "/ours")
    torch.manual_seed(0)
    reloaded = compacter.load_trained(BertModel(config).eval(), tmp + "/ours")
    with torch.no_grad():
        assert torch.equal(reloaded(input_ids=ids).last_hidden_state, out)
    to_adapterhub(tmp + "/ours", tmp + "/hub", name="check")
try:
    import compacter.peft  # noqa: F401
except ModuleNotFoundError as error:
    assert error.name == "peft", error
else:
    raise AssertionError("compacter.peft imported without peft installed")
print(f"python {sys.version.split()[0]}, torch {torch.__version__}: installed alone from {site}, "
      f"forward {tuple(out.shape)}, save/load/export ok; suite and its dependencies absent")
