"""AdapterHub adapters in and out (compacter.convert) against fixtures AdapterHub itself wrote
(tests/fixtures/adapterhub/make_fixtures.py, adapters 1.3 in its own venv): the same tiny BERT,
each adapter's tensors random, its layer norms off 1 / 0, AdapterHub's outputs recorded."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import BertForSequenceClassification, BertModel

import compacter
from compacter.convert import from_adapterhub, load_adapterhub, read_adapterhub, to_adapterhub
from compacter.convert.__main__ import main
from tests.tiny_models import tiny_t5

FIXTURES = Path(__file__).parent / "fixtures" / "adapterhub"
# fixture -> our method: AdapterHub's Compacter as it ships (gelu), Compacter++ and Pfeiffer with
# AdapterHub's layer-norm order and site set to ours, Houlsby as it ships, the PHM-adapter
MAPPED = {"compacter": "compacter", "compacterpp": "compacterpp", "houlsby": "adapter", "pfeiffer": "pfeiffer",
          "phm": "phm"}


def base(cls=BertModel):
    return cls.from_pretrained(FIXTURES / "base").eval()


def hidden(model) -> torch.Tensor:
    with torch.no_grad():
        return model(**load_file(FIXTURES / "inputs.safetensors")).last_hidden_state


def recorded(fixture: str) -> torch.Tensor:
    return load_file(FIXTURES / fixture / "hub_outputs.safetensors")["last_hidden_state"]


def hub_files(folder: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    config = json.loads((folder / "adapter_config.json").read_text())
    if (folder / "adapter.safetensors").is_file():
        return config, load_file(folder / "adapter.safetensors")
    return config, torch.load(folder / "pytorch_adapter.bin", weights_only=True)


@pytest.mark.parametrize("fixture", MAPPED)
def test_converted_adapterhub_adapter_reproduces_adapterhubs_outputs(fixture, tmp_path):
    conversion = from_adapterhub(FIXTURES / fixture, tmp_path)
    model = compacter.load_trained(base(), tmp_path)
    assert conversion.config.method == MAPPED[fixture]
    assert (hidden(model) - recorded(fixture)).abs().max() <= 1e-5
    assert (hidden(base()) - recorded(fixture)).abs().max() > 0.5  # the adapter matters: a lost one shows


def test_adapterhub_adapter_loads_into_a_model_with_a_head(tmp_path):
    model = base(BertForSequenceClassification)  # adapters under bert., Compacter's shared A on the root
    conversion = load_adapterhub(model, FIXTURES / "compacter")
    assert conversion.name == "hub_compacter" and model.compacter_shared_rules.rules.shape == (4, 4, 4)
    assert (hidden(model.bert) - recorded("compacter")).abs().max() <= 1e-5


@pytest.mark.parametrize("fixture", MAPPED)
def test_exported_adapter_is_the_folder_adapterhub_wrote(fixture, tmp_path):
    from_adapterhub(FIXTURES / fixture, tmp_path / "ours")
    name = json.loads((FIXTURES / fixture / "adapter_config.json").read_text())["name"]
    to_adapterhub(tmp_path / "ours", tmp_path / "hub", name=name, model_name="tiny-bert")
    (config, tensors), (hub_config, hub_tensors) = hub_files(tmp_path / "hub"), hub_files(FIXTURES / fixture)
    assert config == hub_config
    assert sorted(tensors) == sorted(hub_tensors)
    assert all(torch.equal(tensors[key], hub_tensors[key]) for key in tensors)


def test_an_adapter_trained_here_exports_and_comes_back(tmp_path):
    model = compacter.apply(base(), "compacter", reduction_factor=8, train_layer_norms=False)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.normal_(0.0, 0.5)
    compacter.save_trained(model, tmp_path / "ours")
    to_adapterhub(tmp_path / "ours", tmp_path / "hub", name="mine")
    assert (tmp_path / "hub" / "pytorch_adapter.bin").is_file()  # what load_adapter reads by default
    from_adapterhub(tmp_path / "hub", tmp_path / "back")
    assert torch.equal(hidden(compacter.load_trained(base(), tmp_path / "back")), hidden(model))


def edited(tmp_path: Path, fixture: str, **changes) -> Path:
    """A copy of ``fixture`` whose adapter_config.json has ``changes`` (``config`` keys, or top-level
    ones prefixed ``top_``; None deletes)."""
    folder = tmp_path / fixture
    shutil.copytree(FIXTURES / fixture, folder)
    saved = json.loads((folder / "adapter_config.json").read_text())
    for key, value in changes.items():
        target, key = (saved, key[4:]) if key.startswith("top_") else (saved["config"], key)
        target.pop(key) if value is None else target.__setitem__(key, value)
    (folder / "adapter_config.json").write_text(json.dumps(saved))
    return folder


@pytest.mark.parametrize("fixture, changes, named", [
    ("seq_bn", {}, "original_ln_before=True"),  # AdapterHub's Pfeiffer as it ships: two differences
    ("seq_bn", {}, "AdapterHub's Pfeiffer sits after the feed-forward block"),
    ("compacterpp", {"original_ln_before": True}, "LN(x + h + A(LN(x + h)))"),  # its Compacter++ as it ships
    ("compacter", {"mh_adapter": True, "output_adapter": False}, "after attention only"),
    ("compacter", {"factorized_phm_W": False}, "factorized_phm_W=False"),
    ("phm", {"factorized_phm_rule": True}, "factorized_phm_rule=True"),
    ("houlsby", {"scaling": 2.0}, "scaling=2.0"),
    ("houlsby", {"leave_out": [0]}, "leave_out=[0]"),
    ("houlsby", {"ln_after": True}, "ln_after=True"),
    ("houlsby", {"is_parallel": True}, "is_parallel=True"),
    ("houlsby", {"reduction_factor": {"0": 8, "default": 16}}, "one integer for every layer"),
    ("houlsby", {"non_linearity": "leakyrelu"}, "non_linearity='leakyrelu'"),
    ("houlsby", {"architecture": "lora"}, "'lora' adapter"),
    ("houlsby", {"top_model_type": "t5"}, "model type 't5'"),
])
def test_adapterhub_variant_that_computes_otherwise_is_refused_with_the_difference(fixture, changes, named, tmp_path):
    with pytest.raises(ValueError) as refused:
        read_adapterhub(edited(tmp_path, fixture, **changes))
    assert named in str(refused.value)


def test_training_only_differences_convert_with_notes(tmp_path):
    conversion, _ = read_adapterhub(edited(tmp_path, "compacter", dropout=0.1, learn_phm=False))
    notes = " ".join(conversion.notes)
    assert conversion.config.train_layer_norms is False
    assert all(word in notes for word in ("freezes the backbone's layer norms", "dropout=0.1", "learn_phm=False"))


def test_unversioned_adapter_transformers_config_reads_gelu_as_adapterhub_does(tmp_path):
    conversion, _ = read_adapterhub(edited(tmp_path, "compacter", top_version=None))
    assert conversion.config.activation == "gelu_new"  # adapters' ACTIVATION_RENAME for pre-version configs


def test_compacter_folder_without_its_shared_rule_is_refused(tmp_path):
    folder = edited(tmp_path, "compacter")
    tensors = torch.load(folder / "pytorch_adapter.bin", weights_only=True)
    del tensors["bert.shared_parameters.hub_compacter.phm_rule"]  # as save_adapter writes it from a bare model
    torch.save(tensors, folder / "pytorch_adapter.bin")
    with pytest.raises(ValueError, match="shared A"):
        read_adapterhub(folder)


def test_export_refuses_trained_layer_norms_and_a_head_unless_dropped(tmp_path):
    compacter.save_trained(compacter.apply(base(), "compacter", reduction_factor=8), tmp_path / "norms")
    with pytest.raises(ValueError, match="train_layer_norms=False"):
        to_adapterhub(tmp_path / "norms", tmp_path / "out", name="x")
    with_head = compacter.apply(base(BertForSequenceClassification), "adapter", reduction_factor=8,
                                train_layer_norms=False)
    compacter.save_trained(with_head, tmp_path / "head")
    with pytest.raises(ValueError, match="drop_head=True"):
        to_adapterhub(tmp_path / "head", tmp_path / "out", name="x")
    conversion = to_adapterhub(tmp_path / "head", tmp_path / "out", name="x", drop_head=True)
    assert "left behind: classifier.weight" in conversion.notes
    _, tensors = hub_files(tmp_path / "out")
    assert len(tensors) == 16 and all(".adapters.x." in key for key in tensors)  # 2 layers × 2 sites × 4


@pytest.mark.parametrize("method", ["lowrank", "adapterdrop", "bitfit"])
def test_export_refuses_methods_adapterhub_lacks(method, tmp_path):
    options = {"reduction_factor": 8, "train_layer_norms": False} if method != "bitfit" else {}
    compacter.save_trained(compacter.apply(base(), method, **options), tmp_path / "ours")
    with pytest.raises(ValueError, match="no AdapterHub counterpart"):
        to_adapterhub(tmp_path / "ours", tmp_path / "hub", name="x")


def test_export_refuses_a_t5_adapter(tmp_path):
    compacter.save_trained(compacter.apply(tiny_t5(), "adapter", reduction_factor=8, train_layer_norms=False),
                           tmp_path / "ours")
    with pytest.raises(ValueError, match="outside BERT's layout.*block.0.layer.0.SelfAttention.adapter"):
        to_adapterhub(tmp_path / "ours", tmp_path / "hub", name="x")


def test_cli_converts_and_refuses_with_the_reason(tmp_path, capsys):
    assert main(["from-adapterhub", str(FIXTURES / "phm"), str(tmp_path / "ours")]) == 0
    assert main(["to-adapterhub", str(tmp_path / "ours"), str(tmp_path / "hub"), "--name", "hub_phm"]) == 0
    assert main(["from-adapterhub", str(FIXTURES / "seq_bn"), str(tmp_path / "refused")]) == 2
    out, err = capsys.readouterr()
    assert "phm (AdapterHub name 'hub_phm')" in out and "note: AdapterHub freezes" in out
    assert "refused:" in err and "original_ln_before=True" in err and not (tmp_path / "refused").exists()
