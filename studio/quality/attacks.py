"""Gradient attacks (FGSM, PGD) through ``captum.robust``, run where the model's network lives.

:func:`adversarial` needs the network itself (``Model.torch_module``), so it
runs in this process for a trusted model and in the sandbox worker for an
untrusted one (the worker's ``attack`` request; ``RemoteModel.attack``). Both
paths call this same function, so they give the same perturbed inputs.
"""

from __future__ import annotations

import numpy as np

from studio.errors import StudioError

GRADIENT_ATTACKS = ("fgsm", "pgd")
PGD_STEPS = 10
MARGIN_WEIGHT = 1e-20
"""Weight of the logit margin beside cross-entropy in the attacks' loss (only felt where CE's gradient is 0)."""


def epsilon(attack: str, severity: int, kind: str) -> dict:
    """The attack's parameters at one severity: images in pixel units on [0, 1], tables in column stds."""
    if attack not in GRADIENT_ATTACKS:
        raise StudioError(f"{attack} is not a gradient attack; choose from {', '.join(GRADIENT_ATTACKS)}")
    params = {"epsilon_stds": 0.1 * severity} if kind == "tabular" else {"epsilon": 0.05 * severity, "clip": [0, 1]}
    if attack == "pgd":
        params.update(steps=PGD_STEPS, step_size_of_epsilon=0.25, norm="Linf", random_start=False)
    return params


def adversarial(model, x: np.ndarray, kind: str, attack: str, severity: int, target, scale=None) -> np.ndarray:
    """Perturb ``x`` against each row's ``target`` class with FGSM or PGD (untargeted, L-inf).

    FGSM: Goodfellow, Shlens and Szegedy (2015), ``captum.robust.FGSM``.
    PGD: Madry et al. (2018), ``captum.robust.PGD`` with :data:`PGD_STEPS` steps of epsilon / 4, no random
    start (so the result is deterministic). The loss is the negative log of the model's probability of
    ``target``, computed from the logits (cross-entropy) where the model gives logits: from a probability
    that float32 holds as exactly 1.0 (a confident classifier) the gradient is 0 and the attack would move
    nothing. Every non-zero gradient's sign counts, as in the papers (captum's default drops |g| < 1e-6,
    which is all of a confident classifier's: its attacks moved no pixel). Images stay in [0, 1]; tables step
    in units of each column's std (``scale``).

    Parameters
    ----------
    model : Model
        A differentiable classifier in this process (``torch_module``).
    x : ndarray of shape (n, n_features) or (n, C, H, W)
        Raw inputs (images in [0, 1]).
    kind : {"tabular", "image"}
    attack : {"fgsm", "pgd"}
    severity : int
        epsilon = 0.05 x severity on pixels, or 0.1 x severity column stds.
    target : array-like of int, shape (n,)
        The class each row is pushed away from (usually its clean prediction).
    scale : ndarray of shape (n_features,), optional
        Tables: each column's std; zeros count as 1.

    Returns
    -------
    ndarray of x's shape and dtype.
    """
    import torch
    from captum.robust import FGSM, PGD

    if not getattr(model, "differentiable", False) or not model.is_classifier:
        raise StudioError(f"{attack} needs a differentiable classifier (a torch model with classes)")
    params = epsilon(attack, severity, kind)
    logits = bool(getattr(model, "applies_softmax", False))
    net = model.torch_module("logits" if logits else "probabilities")
    x = np.asarray(x)
    dev = torch.device(getattr(model, "device", "cpu") or "cpu")
    t = torch.as_tensor(np.asarray(target, dtype=np.int64), device=dev)

    def loss(out, tgt):
        if logits:  # log_softmax of the logits: a float32 probability of 1.0 has no gradient, its logits do
            ce = torch.nn.functional.cross_entropy(out, tgt, reduction="none")
            # where softmax underflows (a margin over ~100), CE's gradient is exactly 0: the logit margin
            # (Carlini and Wagner 2017), 1e-20 as large, gives the direction there and vanishes beside CE's
            own = out.gather(1, tgt[:, None])[:, 0]
            other = out.masked_fill(torch.nn.functional.one_hot(tgt, out.shape[1]).bool(), float("-inf")).amax(1)
            return ce + MARGIN_WEIGHT * (other - own)
        return torch.nn.functional.nll_loss(torch.log(out.clamp_min(1e-12)), tgt, reduction="none")

    if kind == "image":
        forward, eps, bounds, unit = net, params["epsilon"], (0.0, 1.0), 1.0
        z = torch.as_tensor(x, dtype=torch.float32, device=dev)
    else:
        std = torch.as_tensor(np.where(np.asarray(scale) > 0, scale, 1.0), dtype=torch.float32, device=dev)
        unit = std

        def forward(zz):  # zz: inputs in column-std units
            return net(zz * std)

        z = torch.as_tensor(x, dtype=torch.float32, device=dev) / std
        eps, bounds = params["epsilon_stds"], (float("-inf"), float("inf"))
    if attack == "fgsm":
        fgsm = FGSM(forward, loss_func=loss, lower_bound=bounds[0], upper_bound=bounds[1])
        fgsm.zero_thresh = 0.0  # the sign of any gradient (captum treats |g| < 1e-6 as 0: a confident model's)
        adv = fgsm.perturb(z, eps, t)
    else:
        pgd = PGD(forward, loss_func=loss, lower_bound=bounds[0], upper_bound=bounds[1])
        pgd.fgsm.zero_thresh = 0.0
        adv = pgd.perturb(z, eps, eps * params["step_size_of_epsilon"], params["steps"], t, random_start=False,
                          norm="Linf")
    return (adv.detach() * unit).cpu().numpy().astype(x.dtype)
