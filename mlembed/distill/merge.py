"""Weight-space ensembling of a trained student with its start (WiSE-FT: Wortsman et al., CVPR 2022).

Distillation moves a pretrained student toward the teacher's space on the data it sees, and away from what
its start knew elsewhere (other languages, other STS sets). Averaging the weights of the start and the
trained student, ``start + alpha * (trained - start)``, keeps most of what training gained while giving back
much of what it cost (fine-tuned and pretrained weights are linearly connected: WiSE-FT's finding).
``mlembed distill --merge-start 0.5`` does it after training, before the dev figures and the save; the result
is a plain model of the same shape.
"""

from __future__ import annotations

from typing import Any


def interpolate(model: Any, start: Any, alpha: float) -> int:
    """Move ``model``'s floating-point weights to ``start + alpha * (model - start)``, in place. ``start`` is a
    model of the same architecture (e.g. the student before training), or a mapping of some of ``model``'s
    weight names to their start values (``start_weights``: the weights training can move, all a merge needs).
    Returns how many tensors changed (equal ones, such as a frozen embedding matrix, are left as they are).

    Example:
        >>> import torch
        >>> trained, start = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
        >>> with torch.no_grad():
        ...     _ = trained.weight.fill_(1.0), start.weight.fill_(0.0), trained.bias.fill_(2.0), start.bias.fill_(2.0)
        >>> interpolate(trained, start, 0.25), trained.weight.tolist(), trained.bias.tolist()
        (1, [[0.25, 0.25]], [2.0])
    """
    import torch

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha {alpha}: expected a weight from 0 (the start) to 1 (the trained model)")
    whole = hasattr(start, "state_dict")
    theirs = start.state_dict() if whole else start
    ours = model.state_dict()
    differ = set(ours) ^ set(theirs) if whole else set(theirs) - set(ours)
    if differ:
        raise ValueError(
            f"the start and the trained student differ in their weights (e.g. {sorted(differ)[:3]}): cannot merge"
        )
    changed = 0
    with torch.no_grad():
        for name, other in theirs.items():
            tensor = ours[name]
            if tensor.shape != other.shape:
                raise ValueError(f"{name}: shape {tuple(tensor.shape)} in the student, {tuple(other.shape)} at start")
            if not tensor.is_floating_point() or torch.equal(tensor, other):
                continue
            tensor.lerp_(other.to(tensor.dtype), 1.0 - alpha)  # tensor + (1 - alpha) * (start - tensor)
            changed += 1
    return changed


def start_weights(model: Any) -> dict[str, Any]:
    """Copies of the weights of ``model`` that training can move (``requires_grad``): taken before training,
    they are what :func:`interpolate` needs, without a second copy of the whole model (e5-small's frozen word
    embeddings are 96M of its 118M weights).

    Example:
        >>> import torch
        >>> layer = torch.nn.Linear(2, 1)
        >>> _ = layer.bias.requires_grad_(False)
        >>> sorted(start_weights(layer))
        ['weight']
    """
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
