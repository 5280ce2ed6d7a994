"""Command line of the trainer (no third-party CLI framework: ``main(argv)``).

``python -m deidvid.train [options]``            train or resume a run
``python -m deidvid.train export --run DIR``     write weights/ae_<arch>.safetensors + manifest
``python -m deidvid.train validate --run DIR``   validation metrics of a run's checkpoint
``python -m deidvid.train evaluate [--methods ...]``  anonymise + verify on the validation split
``python -m deidvid.train pack --out FILE``      the training cache as one small file (WebP frames)
``python -m deidvid.train unpack --pack FILE``   ... and back, on the machine that trains
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
        parser.add_argument("--note", default="", help="free text for the manifest (e.g. the lr schedule)")
        args = parser.parse_args(argv[1:])
        from deidvid.train.export import export_run

        entry = export_run(args.run, args.name, note=args.note)
        print(json.dumps({"file": entry["file"], "sha256": entry["sha256"]}))
        return 0
    if argv and argv[0] in ("pack", "unpack"):
        from deidvid.train import pack

        parser = argparse.ArgumentParser(prog=f"python -m deidvid.train {argv[0]}")
        parser.add_argument("--cache", type=Path, default=Path(TrainConfig.cache_dir))
        if argv[0] == "pack":
            parser.add_argument("--out", type=Path, required=True)
            parser.add_argument("--quality", type=int, default=85, help="WebP quality of the frames")
            parser.add_argument("--max-stills", type=int, default=0, help="0: all")
            args = parser.parse_args(argv[1:])
            counts = pack.pack_cache(args.cache, args.out, args.quality, args.max_stills)
        else:
            parser.add_argument("--pack", type=Path, required=True)
            args = parser.parse_args(argv[1:])
            counts = pack.unpack_cache(args.pack, args.cache)
        print(json.dumps(counts))
        return 0
    if argv and argv[0] == "evaluate":
        from deidvid.tools.evaluate import main as evaluate_main

        return evaluate_main(argv[1:])
    if argv and argv[0] == "validate":
        parser = argparse.ArgumentParser(prog="python -m deidvid.train validate")
        parser.add_argument("--run", type=Path, required=True)
        parser.add_argument("--threads", type=int, default=0)
        parser.add_argument("--clips-per-video", type=int, default=0, help="0: all cached clips")
        parser.add_argument("--id-frames", type=int, default=16, help="scored frames per clip")
        parser.add_argument("--strength", type=float, default=0.0, help="residual: override (RMS, 0..1)")
        parser.add_argument("--json", type=Path, default=None, help="also write the result here")
        # A run trained elsewhere (a GPU box) recorded that machine's device and paths.
        parser.add_argument("--device", default="auto")
        parser.add_argument("--cache-dir", default=TrainConfig.cache_dir)
        parser.add_argument("--data-root", default="", help="default: ../shared/data")
        args = parser.parse_args(argv[1:])
        from deidvid.train.loop import STATE, Trainer

        cfg = TrainConfig.from_dict(json.loads((args.run / STATE).read_text())["config"])
        cfg.out, cfg.threads, cfg.val_id_frames = str(args.run), args.threads, args.id_frames
        cfg.device, cfg.cache_dir, cfg.data_root, cfg.workers = args.device, args.cache_dir, args.data_root, 0
        cfg.val_clips_per_video = args.clips_per_video or 10**6
        if cfg.threads:
            import torch

            torch.set_num_threads(cfg.threads)
        trainer = Trainer(cfg)
        if args.strength:
            import dataclasses

            trainer.model.config = dataclasses.replace(trainer.model.config, strength=args.strength)
        result = trainer.validate_and_record()
        text = json.dumps(result, indent=1)
        if args.json:
            args.json.write_text(text + "\n")
        print(text)
        return 0
    cfg = TrainConfig(**vars(_train_parser().parse_args(argv)))
    from deidvid.train.loop import train

    result = train(cfg)
    if result:
        print(json.dumps(result["mean"]))
    return 0
