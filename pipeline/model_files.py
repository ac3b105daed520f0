"""A trained model folder checked as one whole: model.keras carries the record of what the model
was trained on (class names in score order, frame size, flow settings, convnets), and model.json
holds the same record and model.keras's sha256. An edit to either file (reordered class names,
another frame size) or a damaged model.keras is then an error naming the file, never other
labels or scores."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Mapping

from pipeline.cache import file_checksum

MODEL_FILE = "model.keras"
RECORD_FILE = "model.json"
CARRIED = "videolstm-record.json"
"""The entry of model.keras's zip archive that carries the record (Keras reads only its own)."""
CHECKSUM = "model_sha256"
"""The key of model.keras's sha256 in model.json."""


def seal(folder: str | os.PathLike, record: Mapping, extra: Mapping) -> None:
    """Make a folder holding a saved model.keras whole: ``record`` (ModelRecord.as_json) is
    carried inside model.keras, and model.json holds ``extra`` (TrainModel's description and
    run facts), the record and model.keras's sha256."""
    folder = Path(folder)
    model = folder / MODEL_FILE
    with zipfile.ZipFile(model) as archive:
        entries = [(info, archive.read(info)) for info in archive.infolist()
                   if info.filename != CARRIED]
    partial = folder / f".{MODEL_FILE}.partial-{os.getpid()}"
    with zipfile.ZipFile(partial, "w") as archive:
        for info, data in entries:
            archive.writestr(info, data)
        archive.writestr(CARRIED, json.dumps(dict(record), sort_keys=True))
    os.replace(partial, model)
    (folder / RECORD_FILE).write_text(json.dumps(
        {**extra, **record, CHECKSUM: file_checksum(model)}, indent=2, sort_keys=True) + "\n")


def carried_record(model: Path) -> dict | None:
    """The record model.keras carries; None for one saved before folders were sealed. A file
    that is not a readable .keras archive is an error naming it."""
    try:
        with zipfile.ZipFile(model) as archive:
            if CARRIED not in archive.namelist():
                return None
            return json.loads(archive.read(CARRIED))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise ValueError(f"{model}: damaged, not a readable .keras archive ({error}); restore "
                         "the model folder or retrain the model") from None


def check(folder: Path, data: Mapping) -> None:
    """Refuse a model folder that is not whole: model.keras missing, damaged or not the file
    whose sha256 model.json (parsed as ``data``) records, or a model.json whose record differs
    from the one model.keras carries (edited or damaged). A model.keras that carries no
    record was trained before folders were sealed and must be retrained."""
    model, where = folder / MODEL_FILE, folder / RECORD_FILE
    if not model.is_file():
        raise FileNotFoundError(f"{model} does not exist: the model folder is incomplete; "
                                f"restore it or retrain the model")
    carried = carried_record(model)
    if carried is None:
        raise ValueError(f"{model} carries no record of what it was trained on: it was trained "
                         "before model folders were checked as a whole; retrain it (luigi "
                         "--module tasks TrainModel ...) to apply it with predict")
    actual = file_checksum(model)
    if data.get(CHECKSUM) != actual:
        raise ValueError(f"{model}: sha256 {actual} is not the {data.get(CHECKSUM, '<none>')} "
                         f"that {where} records: one of the two files was changed or damaged "
                         "after training; restore the model folder or retrain the model")
    for key, value in sorted(carried.items()):
        if data.get(key, "<missing>") != value:
            raise ValueError(f"{where}: {key} = {_shown(data.get(key, '<missing>'))} is not the "
                             f"{_shown(value)} that {model} was trained with: model.json was "
                             "edited or damaged; restore the model folder or retrain")


def _shown(value, limit: int = 120) -> str:
    """A value as JSON, cut to ``limit`` characters for a one-line message."""
    text = json.dumps(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
