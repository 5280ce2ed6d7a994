"""Command line of the trainer (no third-party CLI framework: ``main(argv)``).

``python -m deidvid.train [options]``            train or resume a run
``python -m deidvid.train export --run DIR``     write weights/ae_<arch>.safetensors + manifest
``python -m deidvid.train validate --run DIR``   validation metrics of a run's checkpoint
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import fields
from pathlib import Path

from deidvid.train.loop import TrainConfig


def _train_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m deidvid.train", description="Train the de-identification AE.")
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        default = getattr(defaults, f.name)
        flag = "--" + f.name.replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        else:
            parser.add_argument(flag, type=type(default), default=default)
    return parser


def main(argv: list[str] | None = None) -> int:
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if argv and argv[0] == "export":
        parser = argparse.ArgumentParser(prog="python -m deidvid.train export")
        parser.add_argument("--run", type=Path, required=True)
        parser.add_argument("--name", default=None, help="manifest name (default ae_<arch>)")
        args = parser.parse_args(argv[1:])
        from deidvid.train.export import export_run

        entry = export_run(args.run, args.name)
        print(json.dumps({"file": entry["file"], "sha256": entry["sha256"]}))
        return 0
    if argv and argv[0] == "validate":
        parser = argparse.ArgumentParser(prog="python -m deidvid.train validate")
        parser.add_argument("--run", type=Path, required=True)
        parser.add_argument("--threads", type=int, default=0)
        args = parser.parse_args(argv[1:])
        from deidvid.train.loop import STATE, Trainer

        cfg = TrainConfig.from_dict(json.loads((args.run / STATE).read_text())["config"])
        cfg.out, cfg.threads = str(args.run), args.threads
        if cfg.threads:
            import torch

            torch.set_num_threads(cfg.threads)
        print(json.dumps(Trainer(cfg).validate(), indent=1))
        return 0
    cfg = TrainConfig(**vars(_train_parser().parse_args(argv)))
    from deidvid.train.loop import train

    result = train(cfg)
    if result:
        print(json.dumps(result["mean"]))
    return 0
