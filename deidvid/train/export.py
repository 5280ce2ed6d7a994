"""Export a training run's model to ``weights/ae_<arch>.safetensors`` with a manifest entry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deidvid.model.autoencoder import build_model
from deidvid.train.loop import TrainConfig, model_weights_from_run

INPUT_CONVENTION = (
    "clip [B,3,T,128,128] RGB float in [0,1] (uint8/255), the pipeline's tight 128x128 face "
    "crop; skin_mask [B,1,T,128,128] from the crop's dlib 68 landmarks (residual arch; "
    "canonical mask if omitted); output same shape in [0,1]"
)


def export_run(
    run: Path, name: str | None = None, weights_dir: Path | None = None, note: str = ""
) -> dict[str, Any]:
    """Write the run's model weights and manifest entry; returns the entry."""
    from safetensors.torch import save_file

    from deidvid.weights.manifest import sha256_file, update_manifest_entry
    from deidvid.weights.manifest import weights_dir as default_weights_dir

    tensors, state = model_weights_from_run(run)
    spec = state["model"]
    model = build_model(spec["arch"], spec.get("config"))
    model.load_state_dict(tensors)  # checks the tensors match the architecture
    name = name or f"ae_{spec['arch']}"
    folder = weights_dir or default_weights_dir()
    target = folder / f"{name}.safetensors"
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()},
        str(target),
        # One key: safetensors writes several in hash order, which made the sha256 differ run to run.
        metadata={"deidvid": json.dumps({"arch": spec["arch"], "config": spec.get("config", {}), "step": state["step"]})},
    )
    target.chmod(0o644)  # safetensors writes owner-only files
    validation = _last_validation(run)
    config = state["config"]
    entry = {
        "file": target.name,
        "sha256": sha256_file(target),
        "model": spec,
        "module": "deidvid.model.autoencoder." + ("ResidualAE" if spec["arch"] == "residual" else "PaperAE"),
        "parameters": state["parameters"],
        "input": INPUT_CONVENTION,
        "licence": (
            "MIT (deidvid's own training); trained on research-only data (UBFC-rPPG, LFW, GRID, "
            "ORL, web clips): see weights/MODEL_CARD.md"
        ),
        "training": {
            "command": f"python -m deidvid.train --arch {spec['arch']} --out {run} ...",
            "steps": state["step"],
            "wall_s": round(state["wall_s"], 1),
            "hardware": state["hardware"],
            "torch": state["torch"],
            "config": {k: config.get(k, TrainConfig.__dataclass_fields__[k].default) for k in (
                "batch", "clip_len", "id_frames", "lr", "weight_decay", "alpha", "beta", "gamma", "reg_lambda",
                "id_loss", "recognisers", "threshold", "margin", "rppg_method", "strength", "skin_projection",
                "rec_budget", "jitter", "resize_aug", "blur_aug", "seed", "channels", "workers", "init_weights",
            )},
            "validation": validation["mean"] if validation else None,
        },
    }
    if note:
        entry["training"]["note"] = note
    update_manifest_entry(name, entry)
    return entry


def _last_validation(run: Path) -> dict[str, Any] | None:
    path = run / "val.jsonl"
    if not path.exists():
        return None
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return json.loads(lines[-1]) if lines else None
