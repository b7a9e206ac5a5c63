"""Run by ``tests/test_multiprocess.py`` in one process or under ``torchrun``: train the toy policy for a few
steps and write what each process ends with to ``<out>/rank<k>.safetensors`` (its trainable weights) and
``<out>/rank<k>.json`` (its buffers, random state and, from the main process, the metrics rows).

``--rollouts fixed`` replaces the rollouts with the same made-up global batch in any number of processes, so
two launches differ in how the update is split across processes and in nothing else. ``--vision`` trains the
tiny Qwen2.5-VL of ``tiny_vlm.py`` on its image task instead of the toy policy on ``arith``.
"""

import argparse
import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import set_seed

from uec_repro.config import method_config
from uec_repro.layout import METRICS_FILE
from uec_repro.models import LoraSettings, cast_trainable_to_fp32, load_policy
from uec_repro.rewards import accuracy_reward
from uec_repro.settings import launched_processes
from uec_repro.tasks import load_task
from uec_repro.trainer import Sample, UECTrainer

GLOBAL_BATCH = 16  # B0, whatever the number of processes


class FixedRollouts(UECTrainer):
    """Rollouts replaced by made-up samples that depend on the step only, one more than B0 so that one
    mini-batch holds a single sample (and one process gets none of it)."""

    def _rollout(self, inputs):
        generator = torch.Generator().manual_seed(1000 + self.state.global_step)
        vocabulary = len(self.processing_class)

        def tokens(low: int, high: int) -> torch.Tensor:
            length = int(torch.randint(low, high, (1,), generator=generator))
            return torch.randint(4, vocabulary, (length,), generator=generator)

        samples = []
        for index in range(GLOBAL_BATCH + 1):
            advantage = float(torch.randn(1, generator=generator))
            samples.append(
                Sample(
                    prompt_ids=tokens(4, 9),
                    completion_ids=tokens(2, 17),
                    advantage=advantage,
                    reward=float(advantage > 0),
                    truncated=False,
                    exploration=index % 4 == 0,
                )
            )
        return samples


def digest(samples: list[Sample]) -> str:
    """A hash of everything the buffers hold, to compare the processes' copies."""
    hashed = hashlib.sha256()
    for sample in samples:
        for value in vars(sample).values():
            for part in value.values() if isinstance(value, dict) else [value]:
                hashed.update(
                    part.numpy().tobytes() if isinstance(part, torch.Tensor) else repr(part).encode()
                )
    return hashed.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("policy")
    parser.add_argument("out", type=Path)
    parser.add_argument("--rollouts", choices=["fixed", "real"], required=True)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--overrides", type=json.loads, default={})
    parser.add_argument("--vision", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    set_seed(0)
    if args.vision:
        from tiny_vlm import image_task, seven_reward, tiny_vlm

        model, tokenizer = tiny_vlm(Path(args.policy))
        train, reward = image_task(tokenizer, 64), seven_reward
    else:
        model, tokenizer = load_policy(args.policy, lora=LoraSettings(r=4, alpha=8, dropout=0.0))
        train, reward = load_task("arith", "train", n=64, seed=0, tokenizer=tokenizer), accuracy_reward
    config = method_config(
        "uec_rl",
        output_dir=str(args.out / "run"),
        use_cpu=True,
        max_steps=args.steps,
        num_generations=4,
        per_device_train_batch_size=GLOBAL_BATCH // launched_processes(),
        max_completion_length=24,
        seed=0,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        gradient_checkpointing=False,
        validation_every=0,
        **args.overrides,
    )
    trainer_class = FixedRollouts if args.rollouts == "fixed" else UECTrainer
    trainer = trainer_class(
        model=model, reward_funcs=[reward], args=config, train_dataset=train, processing_class=tokenizer
    )
    cast_trainable_to_fp32(trainer.model)
    before = {name: p.detach().clone() for name, p in trainer.model.named_parameters() if p.requires_grad}
    trainer.train()
    rank = trainer.accelerator.process_index
    weights = {
        name: p.detach().contiguous() for name, p in trainer.model.named_parameters() if p.requires_grad
    }
    save_file(weights, str(args.out / f"rank{rank}.safetensors"))
    metrics = args.out / "run" / METRICS_FILE
    report = {
        "processes": trainer.accelerator.num_processes,
        "batch_size": trainer.batch_size,
        "changed": sorted(name for name in weights if not torch.equal(weights[name], before[name])),
        "batch_buffer": digest(trainer.batch_buffer.contents()) if trainer.batch_buffer else None,
        "replay_buffer": digest(trainer.replay_buffer.contents()) if trainer.replay_buffer else None,
        "replay_size": len(trainer.replay_buffer or ()),
        "replay_with_images": sum(s.images is not None for s in trainer.replay_buffer.contents())
        if trainer.replay_buffer
        else 0,
        "python_random": repr(trainer._rng.getstate()),
        "rows": [json.loads(line) for line in metrics.read_text().splitlines()] if rank == 0 else None,
    }
    (args.out / f"rank{rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main()
