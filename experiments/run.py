"""One run: (backbone, method, task, train size, seed, data seed, hyper-parameters) -> one JSON record.

    python -m experiments.run --backbone minilm --method compacter --task rte --train-size 1000 \
        --set epochs=5 learning_rate=3e-3

Settings are layered by OmegaConf (``make_run_config``): ``RunConfig``'s defaults, the
method's YAML (catalog/configs/methods/), a profile's settings, then ``--set`` — a deep
merge onto ``RunConfig`` as a structured-config schema, so every value is typed (``3e-3`` is a
number wherever it is written), an unknown key names the valid ones, a wrong type names the
field, and ``--set method_options.n=8`` (or ``'method_options={n: 8}'``) changes one option and
keeps the others. Method options are checked against the method's config dataclass in
``compacter/``, which holds their defaults. OmegaConf rather than Hydra or jsonargparse: the
configs are plain dataclasses already, the sweep needs merges of in-memory layers (profile
sections, blocks, variants) more than a CLI framework, and Hydra would take over the working
directory and logging of every run. The run trains with Lightning, keeps the best
checkpoint by the mean validation score, tests it, and writes the record atomically to
the results directory — ``status: ok``, or ``status: failed`` with the error. The same
fields go to Weights & Biases (offline unless W&B is configured; ``wandb sync`` uploads).
A killed run started again resumes from its last checkpoint (experiments/training.py).
With ``--set devices=N`` Lightning's DDP starts one process per device by re-running this
command; rank zero alone writes the record, the trained weights and the W&B run.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import json
import logging
import os
import platform
import re
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from catalog.backbones import check_pooling
from catalog.methods import method_config
from catalog.record import RecordError, RunRecord
from catalog.tasks import get_task
from compacter.configs import CONFIGS
from experiments.provenance import provenance

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunConfig:
    backbone: str = "minilm"
    method: str = "compacter"                # the method config's name, what tables show
    peft_method: str | None = None           # what compacter.apply gets, when it differs (prompt_r -> prompt)
    task: str = "rte"
    train_size: int | None = None          # None = the full training split
    seed: int = 42                         # drives initialisation, dropout and batch order
    data_seed: int = 42                    # drives the splits and low-resource subsets (the paper's data_seed)
    method_options: dict = field(default_factory=dict)
    learning_rate: float = 3e-4
    epochs: int = 20
    val_every_n_epochs: int = 1            # validate (and checkpoint) every n epochs; n must divide epochs
    val_check_steps: int | None = None     # or every n optimizer steps, across epochs; n must divide the run's steps
    val_size: int | None = None            # validate on this many examples of the validation split (a fixed subset)
    batch_size: int = 32
    accumulate_grad_batches: int = 1       # batches per optimizer step (the paper: 2 for prompt tuning, SAID)
    eval_batch_size: int = 64
    warmup_steps: int = 500                # linear warm-up, then linear decay to 0 (Hugging Face's schedule)
    warmup_ratio: float | None = None      # when set, overrides warmup_steps: this share of the run's steps
    warmup_clamped: bool = False           # shorten warmup_steps to a shorter run (the paper does not)
    weight_decay: float = 0.0
    gradient_clip_val: float | None = 1.0
    max_source_length: int = 128
    max_target_length: int = 8
    add_task_prefix: bool = False
    pooling: str = "auto"                  # encoder heads: "auto" (as the checkpoint was trained), "mean", "cls"
    # where things are / go (not part of the run's identity)
    profile: str = "adhoc"
    results_dir: str = "results/adhoc"
    glue_dir: str | None = None
    superglue_dir: str | None = None
    hf_data_dir: str | None = None
    save_trained_weights: bool = True
    resume_checkpoint_interval_s: float = 60.0  # last.ckpt after an epoch, at most this often; 0: every epoch
    wandb_project: str = "compacter-bench"
    wandb_mode: str | None = None          # None: online if W&B is configured, else offline; or "disabled"
    accelerator: str = "auto"
    devices: int | str = 1
    precision: str = "32-true"
    limit_train_batches: int | float | None = None   # for smoke tests only

    IDENTITY_EXCLUDES = ("profile", "results_dir", "glue_dir", "superglue_dir", "hf_data_dir",
                         "save_trained_weights", "resume_checkpoint_interval_s", "wandb_project", "wandb_mode",
                         "accelerator", "devices")
    # Fields added after runs were published: left out of the identity while unset, so those runs keep their ids.
    IDENTITY_WHEN_SET = ("val_check_steps", "val_size")

    def __post_init__(self) -> None:
        if self.train_size is not None and self.train_size < 1:
            raise ValueError(f"train_size must be a positive number of examples or null (full), got {self.train_size}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.accumulate_grad_batches < 1:
            raise ValueError(f"accumulate_grad_batches must be >= 1, got {self.accumulate_grad_batches}")
        if self.warmup_ratio is not None and self.warmup_clamped:
            raise ValueError("warmup_clamped applies to warmup_steps; with warmup_ratio set the warm-up is "
                             "already a share of the run: set one of them")
        check_pooling(self.pooling)
        if self.val_every_n_epochs < 1 or self.epochs % self.val_every_n_epochs:
            raise ValueError(f"val_every_n_epochs={self.val_every_n_epochs} must be >= 1 and divide "
                             f"epochs={self.epochs} (the last epoch is always validated); valid: "
                             f"{[n for n in range(1, self.epochs + 1) if self.epochs % n == 0]}")
        if self.val_check_steps is not None and (self.val_check_steps < 1 or self.val_every_n_epochs != 1):
            raise ValueError(f"val_check_steps={self.val_check_steps} must be >= 1 and replaces val_every_n_epochs "
                             f"(set to {self.val_every_n_epochs}): set one of them")
        if self.resume_checkpoint_interval_s < 0:
            raise ValueError(f"resume_checkpoint_interval_s must be >= 0 seconds (0: after every epoch), "
                             f"got {self.resume_checkpoint_interval_s}")
        if self.val_size is not None and self.val_size < 1:
            raise ValueError(f"val_size must be a positive number of examples or null (all), got {self.val_size}")

    def identity(self) -> dict[str, Any]:
        """Fields that define the run: two configs with equal identity are the same run."""
        return {k: v for k, v in dataclasses.asdict(self).items()
                if k not in self.IDENTITY_EXCLUDES and not (k in self.IDENTITY_WHEN_SET and v is None)}

    @property
    def run_id(self) -> str:
        digest = hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:8]
        size = "full" if self.train_size is None else self.train_size
        # a backbone given as a path or Hub name contributes its last component; the digest keeps ids unique
        backbone = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(self.backbone).name)
        return f"{backbone}-{self.method}-{self.task}-n{size}-s{self.seed}-{digest}"

    @property
    def record_path(self) -> Path:
        return Path(self.results_dir) / f"{self.run_id}.json"


def make_run_config(method: str, *layers: Mapping[str, Any], **overrides: Any) -> RunConfig:
    """The method's YAML config, then each of ``layers``, then ``overrides``: deep-merged onto
    ``RunConfig`` as OmegaConf's schema, so a partial ``method_options`` keeps the options it
    does not name, a numeric string becomes a number, and an unknown key or a wrong type is a
    ``ValueError`` that names the valid keys or the field.

    A config file may name another library method (``prompt_r.yaml`` has ``method: prompt``):
    the run is then called by the file name and applies the method the file names."""
    from_file = method_config(method)
    library_method = from_file.pop("method", method)
    named = {"method": method, "peft_method": library_method if library_method != method else None}
    values = _merged(RunConfig, "run setting", [from_file, *layers, overrides, named])
    values["method_options"] = method_options_of(library_method, values["method_options"])
    return RunConfig(**values)


def method_options_of(method: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` checked, typed and completed by the method's config dataclass
    (``compacter.configs``), the one source of their defaults: every option enters the run's
    identity, so a changed default is a different run, and a method YAML states only what
    differs from the dataclass."""
    if method not in CONFIGS:
        raise ValueError(f"unknown method {method!r}; choose one of: {', '.join(CONFIGS)}")
    schema = CONFIGS[method]
    if "method" in options:  # the dataclass's own field, set from the method's name
        raise ValueError(f"method {method!r}: 'method' is not a method option; valid options: "
                         f"{', '.join(sorted(_fields(schema) - {'method'}))}")
    typed = _merged(schema, f"{method} option", [options])
    # constructed once: a config completes what it derives from its options (peft's: its own defaults)
    resolved = dataclasses.asdict(schema(**{**typed, "method": method}))
    return {name: value for name, value in resolved.items() if name != "method"}


def _merged(schema: type, what: str, layers: list) -> dict[str, Any]:
    """``layers`` deep-merged in order onto the dataclass ``schema``, as plain Python values."""
    try:
        return OmegaConf.to_container(OmegaConf.merge(_structured(schema), *layers), resolve=True)
    except ConfigKeyError as error:
        valid = sorted(_fields(schema) - {"method"})  # ``method`` is named by the config file, not set
        raise ValueError(f"unknown {what} {error.full_key!r}; valid: {', '.join(valid)}") from None
    except ValidationError as error:
        reason = error.msg.splitlines()[0]
        raise ValueError(f"{what} {error.full_key}: {reason}") from None


@functools.cache
def _structured(schema: type):
    """The schema's typed OmegaConf node, built once (a paper plan merges onto it ~2500 times;
    ``merge`` copies it, never changes it)."""
    return OmegaConf.structured(schema)


def _fields(schema: type) -> set[str]:
    return {f.name for f in dataclasses.fields(schema)}


def identity_fields(config: RunConfig) -> dict[str, Any]:
    """What every record says of its run, also one whose process died before it could write its own."""
    return {"run_id": config.run_id, "profile": config.profile, "backbone": config.backbone,
            "method": config.method, "task": config.task, "train_size": config.train_size, "seed": config.seed,
            "data_seed": config.data_seed, "config": config.identity()}


def failed_record(config: RunConfig, error: str, **fields: Any) -> RunRecord:
    """The record of a run that ended without results (an exception here, or a worker or array
    task that died: the launcher knows only the cause)."""
    return RunRecord(**identity_fields(config), status="failed", error=error, **fields)


def run(config: RunConfig) -> RunRecord:
    """Train, select, test; write and return the record. Never raises for a failed run."""
    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    fields: dict[str, Any] = {"provenance": provenance(config), "started_at": started.isoformat(),
                              "machine": machine_info()}
    logger = None
    try:
        from experiments.training import train_and_test  # heavy imports only when a run happens
        logger = make_wandb_logger(config)  # Lightning's WandbLogger creates the W&B run on rank zero only
        fields.update(train_and_test(config, logger))
        status, error = "ok", None
    except KeyboardInterrupt:
        raise  # a killed sweep leaves no record: the run is redone on resume
    except Exception as exception:  # noqa: BLE001 — any failure is recorded, the sweep goes on
        status, error = "failed", f"{type(exception).__name__}: {exception}"
        fields["traceback"] = traceback.format_exc(limit=8)
        log.error("run %s failed: %s", config.run_id, error)
    if status == "failed" and _global_rank() != 0:
        # Lightning's launcher kills rank zero within seconds of this rank's exit, before it could
        # say why: this rank's record is the run's, and names the rank
        error = f"rank {_global_rank()}: {error}"
    record = RunRecord(**identity_fields(config), **fields, status=status, error=error,
                       wall_time_s=time.perf_counter() - clock, finished_at=datetime.now(timezone.utc).isoformat())
    if _global_rank() == 0:
        from experiments.training import remove_checkpoints

        if record.status == "failed":
            record = _failed_rank_record(config, started) or record
        write_record(record, config.record_path)
        remove_checkpoints(config)  # only now: a run killed before its record exists resumes from them
        if logger is not None:
            finish_wandb(logger, record)
    elif record.status == "failed":
        write_record(record, config.record_path)
    return record


def _failed_rank_record(config: RunConfig, started: datetime) -> RunRecord | None:
    """The record another rank of this attempt wrote when it failed: its error is the cause, the
    collective that then failed on rank zero its consequence."""
    try:
        other = read_record(config.record_path)
    except RecordError:
        return None
    if other and other.status == "failed" and (other.finished_at or "") >= started.isoformat():
        return other
    return None


def _global_rank() -> int:
    """This process's DDP rank: set by the strategy once a Trainer runs, read from the launcher's
    environment (RANK / LOCAL_RANK / SLURM_PROCID) before that."""
    from lightning.pytorch.utilities import rank_zero_only

    return rank_zero_only.rank


def write_record(record: RunRecord, path: Path) -> None:
    """Atomic: a reader sees the old record or the new one, never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # one per writer: no two share a half-written file
    with tmp.open("w") as file:
        file.write(record.to_json())
        file.flush()
        os.fsync(file.fileno())  # on disk before the rename makes it the record (a crash then leaves the old one)
    os.replace(tmp, path)


def read_record(path: Path) -> RunRecord | None:
    """The record at ``path`` (None when there is none); ``RecordError`` when it is not a readable record."""
    return RunRecord.read(path) if path.is_file() else None


def record_status(config: RunConfig) -> str:
    """The run's record status ("ok", "failed"), "todo" without one, "corrupt" for an unreadable one
    (moved aside and run again by the next attempt that holds its lock)."""
    try:
        record = read_record(config.record_path)
    except RecordError:
        return "corrupt"
    return record.status if record else "todo"


def readable_record(config: RunConfig) -> RunRecord | None:
    """The run's record; an unreadable one is moved to ``<results>/corrupt/`` (named in a warning)
    and reads as none, so the run is done again. Call it holding the run's lock: unlocked, a
    reader could move aside the record another attempt is replacing."""
    try:
        return read_record(config.record_path)
    except RecordError as error:
        moved = quarantine(config.record_path, config)
        log.warning("%s; moved to %s, the run is done again", error, moved)
        return None


def quarantine(path: Path, config: RunConfig) -> Path:
    """``path`` (the run's record or one of its files) moved to ``<results>/corrupt/``, named by the
    run and the time, so no later quarantine overwrites it."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    name = path.name if path.name.startswith(config.run_id) else f"{config.run_id}-{path.name}"
    target = Path(config.results_dir) / "corrupt" / f"{name}.{stamp}"
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, target)
    return target


def machine_info() -> dict[str, Any]:
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return {"host": platform.node(), "cpu": _cpu_model(), "threads": torch.get_num_threads(), "device": device,
            "python": platform.python_version(), "torch": torch.__version__}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def wandb_mode(config: RunConfig) -> str:
    if config.wandb_mode:
        return config.wandb_mode
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    configured = os.environ.get("WANDB_API_KEY") or _netrc_has_wandb()
    return "online" if configured else "offline"


def _netrc_has_wandb() -> bool:
    netrc = Path.home() / ".netrc"
    return netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore")


def make_wandb_logger(config: RunConfig):
    mode = wandb_mode(config)
    if mode == "disabled":
        return None
    from lightning.pytorch.loggers import WandbLogger

    size = "full" if config.train_size is None else str(config.train_size)
    save_dir = Path(config.results_dir) / "wandb"
    save_dir.mkdir(parents=True, exist_ok=True)
    # Under `wandb agent` the agent owns the run's id and project; elsewhere the run id is ours, and
    # an attempt after a kill or a requeue resumes that W&B run rather than making a second one.
    placement = {} if os.environ.get("WANDB_SWEEP_ID") else {"project": config.wandb_project, "id": config.run_id,
                                                             "resume": "allow"}
    return WandbLogger(name=config.run_id, group=config.profile, job_type=config.task,
                       tags=[config.method, config.backbone, f"n={size}"], mode=mode, save_dir=str(save_dir),
                       config={**config.identity(), "profile": config.profile}, reinit="finish_previous",
                       **placement)


def finish_wandb(logger, record: RunRecord) -> None:
    """The record's W&B summary (``RunRecord.wandb_summary``) on the run, which then ends."""
    experiment = logger.experiment
    experiment.summary.update(record.wandb_summary())
    experiment.finish(exit_code=0 if record.status == "ok" else 1)


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs, as OmegaConf's dotted list: ``method_options.n=8`` sets one option,
    values are YAML (``3e-3`` a number, ``null``, lists, ``{num_tokens: 20}``)."""
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--set expects key=value, got {pair!r}")
    return OmegaConf.to_container(OmegaConf.from_dotlist(pairs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="One training run -> one JSON record.")
    parser.add_argument("--backbone", default="minilm")
    parser.add_argument("--method", required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--train-size", type=int, default=None, help="first N of a seeded shuffle of train")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--results-dir", default="results/adhoc")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override any run setting")
    parser.add_argument("--force", action="store_true", help="run again even if an ok record exists")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        flags = dict(backbone=args.backbone, task=args.task, train_size=args.train_size, seed=args.seed,
                     results_dir=args.results_dir, **data_dirs_from_env())
        config = make_run_config(args.method, flags, parse_overrides(args.set))
        get_task(config.task)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from experiments.locks import exclusive

    with exclusive(config) as instead:
        if instead and instead.status == "skipped":
            print(f"{config.run_id}: {instead.error}; not started", file=sys.stderr)
            return 1
        if instead and not args.force:
            print(f"{config.run_id}: already done ({config.record_path}); --force to run again")
            return 0
        record = run(config)
    print(json.dumps(record.model_dump(include={"run_id", "status", "error", "val", "test", "wall_time_s"}), indent=2))
    print(f"record: {config.record_path}")
    return 0 if record.status == "ok" else 1


def data_dirs_from_env() -> dict[str, str]:
    keys = {"GLUE_DIR": "glue_dir", "SUPERGLUE_DIR": "superglue_dir"}
    return {key: os.environ[env] for env, key in keys.items() if os.environ.get(env)}


if __name__ == "__main__":
    sys.exit(main())
