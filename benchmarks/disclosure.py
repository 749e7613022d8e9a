"""What a report says about the set model it scored: everything that defines its recipe
(the Disclosure principle). Both harnesses print :func:`model_sentence` in their header and
store :func:`model_disclosure` in their manifest."""

from __future__ import annotations

import json
from pathlib import Path

from sdn.model import SDN

PRECISIONS = {"bf16": "bf16 autocast", "fp16": "fp16 autocast with loss scaling", "fp32": "fp32"}
# The θ step runs the generator under no_grad with the model in training mode (sdn/trainer.py,
# ThetaObjective): its BatchNorm normalises with the generated batch's statistics and updates
# its running statistics. No config field changes it.
THETA_STEP_GENERATOR_BN = "training mode (batch statistics; running statistics updated), no gradient"


def model_disclosure(model) -> dict:
    """For an SDN: preset, recipe, active aids (empty = the faithful recipe), training precision
    (``train.precision``; bf16 autocast by default; that of the last sitting: a restart from
    exported weights may change it, and the checkpoint's manifest lists each restart's
    ``config_changes``), memory format (``train.channels_last``)
    and the generator's BatchNorm mode in the θ step. For another set model: its class."""
    if not isinstance(model, SDN):
        return {"class": type(model).__name__}
    c = model.cfg
    return {
        "preset": c.preset,
        "recipe": c.recipe,
        "aids": c.aids.active(),
        "precision": c.train.precision,
        "channels_last": c.train.channels_last,
        "theta_step_generator_bn": THETA_STEP_GENERATOR_BN,
    }


def model_sentence(model, path=None) -> str:
    """The header's words for the scored model (``path``: its checkpoint, when it has one)."""
    info = model_disclosure(model)
    if "class" in info:
        return f"set model `{info['class']}` (an object, not an SDN checkpoint)"
    aids = json.dumps(info["aids"]) if info["aids"] else "none"
    name = f"`{Path(path).name}` " if path is not None else ""
    return (
        f"SDN {name}(preset {info['preset']}, recipe {info['recipe']}, aids: {aids}; trained in "
        f"{PRECISIONS[info['precision']]}, channels_last: {'yes' if info['channels_last'] else 'no'}; "
        f"generator BatchNorm in the θ step: {info['theta_step_generator_bn']})"
    )
