"""UEC-RL's hyper-parameter defaults (the authors' released code), torch-free:
:class:`~uec_repro.config.UECConfig` takes its field defaults from here, and
:class:`~uec_repro.training.RunSettings` its help, so each value is written once
(docs/paper.md#hyper-parameters)."""

EXPLORATION_GROUP_FACTOR = 4  # G' = 4 x G unless exploration_generations is set
EXPLORATION_TEMPERATURE = 1.2  # t'
REPLAY_CAPACITY = 2.0  # s', in multiples of B0
REPLAY_FREQUENCY = 5  # f_replay, in training steps
LEARNING_RATE = 2e-4  # AdamW, for LoRA adapters (the authors' 1e-6 is for full fine-tuning)
