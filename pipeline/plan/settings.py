"""The settings a plan reads, as plain values, so that counting and sizing are functions of
values rather than of the live config."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    """What decides a run's items, bytes and time: the config sections' values that matter."""

    shards: int
    replicates: int
    gpus: int
    frame_size: tuple[int, int]
    flow_backend: str
    flow_processes: int
    image_size: int
    feature_dtype: str
    finetune_epochs: int
    finetune_frames: int
    convnet_batch: int
    epochs: int
    batch_size: int
    snippet: int
    segments: int
    length: int
    hidden: int
    dense: int
    synthetic_size: tuple[int, int]

    @property
    def grid(self) -> int:
        """pool5's side at the configured VGG input (224 -> 7)."""
        return self.image_size // 32

    @property
    def dtype_bytes(self) -> int:
        return 2 if self.feature_dtype == "float16" else 4


def from_config() -> Settings:
    """The settings in force (luigi.cfg, then LUIGI_CONFIG_PATH)."""
    from pipeline import config
    run, convnet, train = config.run().validate(), config.convnet().validate(), config.train()
    evaluate, model = config.evaluate().validate(), config.model()
    return Settings(
        shards=run.shards, replicates=run.replicates, gpus=len(run.gpus()),
        frame_size=config.video().size(), flow_backend=config.flow().backend,
        flow_processes=config.flow().worker_count(), image_size=convnet.image_size,
        feature_dtype=convnet.dtype, finetune_epochs=convnet.finetune_epochs,
        finetune_frames=convnet.finetune_frames, convnet_batch=convnet.batch_size,
        epochs=train.validate().epochs, batch_size=train.batch_size, snippet=train.snippet,
        segments=evaluate.segments, length=evaluate.length, hidden=model.hidden,
        dense=model.dense,
        synthetic_size=(config.synthetic().width, config.synthetic().height))
