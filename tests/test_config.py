"""Config layering (OmegaConf): deep merges, dotted overrides, typed values, errors that name
the valid keys or the field — through ``make_run_config``, ``--set`` and profiles."""

import json

import pytest

import catalog.profile
from experiments.run.config import make_run_config
from experiments.run.layers import parse_overrides
from experiments.run.recipe import _completed, _completed_in_child, method_recipe
from catalog.profile import Profile, load_profile
from experiments.sweep.grid import run_configs


# every option of the method's dataclass, as a run's identity records them
ADAPTER_DEFAULTS = {"reduction_factor": 32, "activation": "gelu_new", "n": None, "shared_rules_init_std": 1e-4,
                    "train_layer_norms": True}


def test_method_yamls_state_only_what_differs_from_the_dataclass_defaults():
    assert make_run_config("adapter").method_options == ADAPTER_DEFAULTS
    assert make_run_config("phm").method_options == {**ADAPTER_DEFAULTS, "n": 12}
    assert make_run_config("prompt_r").method_options == {"num_tokens": 100, "init": "random"}


def test_a_partial_method_options_override_keeps_prompt_rs_random_init():
    config = make_run_config("prompt_r", parse_overrides(["method_options={num_tokens: 20}"]))
    assert config.method_options == {"num_tokens": 20, "init": "random"}
    assert (config.method, config.library_method) == ("prompt_r", "prompt")


def test_profile_layers_deep_merge_method_options():
    block = {"backbones": ["minilm"], "tasks": ["rte"], "train_sizes": [100], "seeds": [1]}
    profile = Profile(name="t", description="", blocks=[
        {**block, "methods": ["prompt_r"]},
        {**block, "methods": ["adapter"], "settings": {"method_options": {"activation": "relu"}},
         "variants": [{"learning_rate": 0.1}]}],
        method_settings={"prompt_r": {"method_options": {"num_tokens": 50}, "batch_size": 4},
                         "adapter": {"method_options": {"reduction_factor": 16}}})
    prompt_r, adapter = run_configs(profile)
    assert prompt_r.method_options == {"num_tokens": 50, "init": "random"} and prompt_r.batch_size == 4
    # the profile's method settings, then the block's, key by key within method_options
    assert adapter.method_options == {**ADAPTER_DEFAULTS, "reduction_factor": 16, "activation": "relu"}
    assert adapter.learning_rate == 0.1


def test_a_dotted_override_sets_one_option_and_keeps_the_others():
    config = make_run_config("compacter", parse_overrides(["method_options.n=8", "epochs=4"]))
    assert config.method_options == {**ADAPTER_DEFAULTS, "n": 8}
    assert config.epochs == 4


def test_numeric_strings_are_numbers_in_set_in_yaml_and_in_method_options(tmp_path, monkeypatch):
    assert parse_overrides(["learning_rate=3e-3", "train_size=null"]) == {"learning_rate": 0.003, "train_size": None}
    # given as a string from Python, the schema still makes it a number
    config = make_run_config("adapter", learning_rate="3e-3", method_options={"shared_rules_init_std": "1e-5"})
    assert config.learning_rate == 0.003 and config.method_options["shared_rules_init_std"] == 1e-5
    (tmp_path / "p.yaml").write_text(
        "runs: [{backbones: [minilm], methods: [adapter], tasks: [rte], train_sizes: [100], seeds: [1]}]\n"
        "defaults: {learning_rate: 3e-3, method_options: {shared_rules_init_std: 1e-5}}\n")
    monkeypatch.setattr(catalog.profile, "PROFILE_DIR", tmp_path)
    [config] = run_configs(load_profile("p"))
    assert config.learning_rate == 0.003 and config.method_options["shared_rules_init_std"] == 1e-5


def test_unknown_keys_name_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown run setting 'epoch'; valid: .*\bepochs\b"):
        make_run_config("compacter", epoch=3)
    with pytest.raises(ValueError, match=r"unknown compacter option 'nn'; valid: activation, n, reduction_factor"):
        make_run_config("compacter", parse_overrides(["method_options.nn=3"]))
    with pytest.raises(ValueError, match=r"unknown prompt option 'n'; valid: init, num_tokens"):
        make_run_config("prompt_r", method_options={"n": 3})


def test_a_wrong_type_names_the_field():
    with pytest.raises(ValueError, match=r"run setting epochs: Value 'abc' .* Integer"):
        make_run_config("compacter", parse_overrides(["epochs=abc"]))
    with pytest.raises(ValueError, match=r"compacter option n: Value 'four' .* Integer"):
        make_run_config("compacter", method_options={"n": "four"})



def test_the_run_applies_the_recipe_the_benchmark_and_the_param_table_apply():
    assert make_run_config("lora").recipe == method_recipe("lora")
    prompt_r = method_recipe("prompt_r")
    assert (prompt_r.library_method, prompt_r.options, prompt_r.learning_rate, prompt_r.add_task_prefix) == (
        "prompt", {"num_tokens": 100, "init": "random"}, 0.03, True)
    # a layer changes what it names and keeps the rest, as for a run
    assert method_recipe("phm", {"method_options": {"reduction_factor": 16}, "epochs": 3}).options == {
        **ADAPTER_DEFAULTS, "n": 12, "reduction_factor": 16}


def test_a_recipe_checks_its_options_wherever_it_is_used():
    with pytest.raises(ValueError, match="unknown compacter option 'nn'; valid: .*reduction_factor"):
        method_recipe("compacter", {"method_options": {"nn": 3}})


def test_peft_options_completed_in_a_child_process_are_those_completed_here():
    """What a torch-free process (the sweep's supervisor, make plan) gets for a peft row."""
    typed = {"peft_config": {"peft_type": "LORA", "r": 4, "target_modules": ["query", "value"]}}
    assert _completed_in_child("peft", json.dumps(typed)) == _completed("peft", typed)
    with pytest.raises(ValueError, match="PREFIX_TUNING is a prompt-learning method"):
        _completed_in_child("peft", json.dumps({"peft_config": {"peft_type": "PREFIX_TUNING"}}))


def test_a_methods_per_task_settings_win_over_the_task_sections_and_lose_to_the_block():
    block = {"backbones": ["minilm"], "methods": ["phm", "adapter"], "train_sizes": [100], "seeds": [1]}
    profile = Profile(name="t", description="", blocks=[
        {**block, "tasks": ["sst2", "stsb"]},
        {**block, "tasks": ["rte"], "settings": {"learning_rate": 0.5}}],
        method_settings={"phm": {"learning_rate": 1e-3, "tasks": {"stsb": {"learning_rate": 3e-3}}}},
        task_settings={"stsb": {"learning_rate": 1e-2}})
    rates = {(c.method, c.task): c.learning_rate for c in run_configs(profile)}
    assert rates == {("phm", "sst2"): 1e-3, ("phm", "stsb"): 3e-3,  # the method's own STS-B rate
                     ("adapter", "sst2"): make_run_config("adapter").learning_rate, ("adapter", "stsb"): 1e-2,
                     ("phm", "rte"): 0.5, ("adapter", "rte"): 0.5}
