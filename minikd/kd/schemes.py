"""The lecture's training schemes beyond offline KD: online (mutual) and self-distillation.

- **Offline** (the hands-on): a pre-trained teacher, frozen; the student learns from its
  outputs with ``kd.kd_loss``.
- **Online, deep mutual learning** (Zhang, Xiang, Hospedales, Lu, "Deep Mutual Learning",
  CVPR 2018): K ≥ 2 peers train *at the same time*, no pre-trained teacher. Peer k minimises
  its cross-entropy plus the mean KL divergence from each other peer's prediction to its own::

      L_k = L_CE(y, p_k) + 1/(K − 1) · Σ_{l ≠ k} D_KL(p_l ‖ p_k)

  with the other peers' p_l as constants in L_k (each peer has its own optimizer step).
- **Self-distillation, "Be Your Own Teacher"** (Zhang, Song, Gao, Chen, Bao, Ma, ICCV 2019):
  auxiliary classifiers on shallower blocks learn from the network's own deepest exit. With
  exits z_1 … z_K (z_K the deepest) and λ, T as in logit KD::

      L = L_CE(y, p_K) + Σ_{k < K} [(1 − λ) · L_CE(y, p_k) + λ · T² · D_KL(p_K^T ‖ p_k^T)]

  (p^T: softmax at temperature T; the deepest exit's prediction is a constant target for
  the shallow ones). The paper adds a feature hint ‖F_k − F_K‖²; pass ``features`` for it.
- **Born-again networks** (Furlanello et al., ICML 2018) and **multi-step KD** (Mirzadeh et
  al., AAAI 2020; PocketNet, Boutros et al., IEEE Access 2022) are offline KD repeated: a
  generation (or an assistant, or a teacher checkpoint) becomes the next teacher, with the
  same ``kd.kd_loss``.
"""

from __future__ import annotations

from ..checks import check_number, check_temperature
from ..ops.loss import mse_loss
from .logits import DistillationKL, as_tensor, check_weight, constant, hard_loss


def dml_losses(logits, target, T=1.0):
    """Deep mutual learning: one loss per peer, L_k = L_CE(y, p_k) + mean_{l≠k} T²·D_KL(p_l^T ‖ p_k^T).

    ``logits``: a list of K ≥ 2 peers' logits, each (N, C); ``target``: labels (N,). The KL
    terms use the other peers' logits as constants, so ``sum(losses).backward()`` gives each
    peer exactly its own gradient. T = 1 is the paper's (then T² = 1). Raises ValueError for
    fewer than two peers, logits of different shapes, or labels that do not fit them.
    """
    T = check_temperature(T, "dml_losses")
    peers = [as_tensor(z) for z in logits]
    if len(peers) < 2:
        raise ValueError(f"dml_losses: online distillation needs at least two peers; got {len(peers)}")
    shapes = {tuple(z.shape) for z in peers}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"dml_losses: every peer's logits must be (N, C), all the same shape; got {sorted(shapes)}")
    losses = []
    for k, z_k in enumerate(peers):
        hard = hard_loss(z_k, target, "dml_losses")   # first: bad labels, or an empty batch, named here
        kl = [DistillationKL.apply(z_k, constant(z_l, like=z_k), T=T) for l, z_l in enumerate(peers) if l != k]
        mimicry = sum(kl[1:], kl[0]) * (T * T / len(kl))
        losses.append(hard + mimicry)
    return losses


def self_distillation_loss(exits, target, T=3.0, lam=0.5, features=None, hint=0.0):
    """"Be Your Own Teacher": the deepest exit learns from the labels, every shallower exit from
    the labels and from the deepest exit's softened prediction (a constant):

        L = L_CE(y, p_K) + Σ_{k<K} [(1 − λ)·L_CE(y, p_k) + λ·T²·D_KL(p_K^T ‖ p_k^T)] (+ hint·‖F_k − F_K‖²)

    ``exits``: logits of the K ≥ 2 exits, shallowest first, each (N, C); ``features``: optional
    list of the exits' features, same shapes as each other (after the exits' own adapters), for
    the hint term with weight ``hint``. Raises ValueError for fewer than two exits, shapes that
    differ, features not one per exit or not of the logits' N, a ``hint`` > 0 without features,
    labels that do not fit the logits, or λ outside [0, 1]; TypeError for exits of different dtypes.
    """
    T = check_temperature(T, "self_distillation_loss")
    lam = check_weight(lam, "self_distillation_loss")
    hint = check_number(hint, "self_distillation_loss", "hint", low=0)
    zs = [as_tensor(z) for z in exits]
    if len(zs) < 2:
        raise ValueError(f"self_distillation_loss: needs at least two exits (shallow ones and the deepest); "
                         f"got {len(zs)}")
    if len({tuple(z.shape) for z in zs}) != 1:
        raise ValueError(f"self_distillation_loss: every exit's logits must have one shape; got "
                         f"{[tuple(z.shape) for z in zs]}")
    if len({z.dtype for z in zs}) != 1:   # exits of one network: a float64 one would promote the whole loss
        raise TypeError(f"self_distillation_loss: every exit's logits must have one dtype; got "
                        f"{[str(z.dtype) for z in zs]}")
    if hint > 0 and features is None:
        raise ValueError(f"self_distillation_loss: the hint term (hint={hint}) needs the exits' features; got "
                         "features=None")
    if features is not None:
        features = [as_tensor(f, like=zs[0]) for f in features]
        shapes = [tuple(f.shape) for f in features]
        if len(features) != len(zs) or len(set(shapes)) != 1 or shapes[0][:1] != tuple(zs[0].shape[:1]):
            raise ValueError(f"self_distillation_loss: features must be one per exit ({len(zs)}), all of one shape, "
                             f"with the logits' N = {zs[0].shape[0]} samples first; got {shapes}")
    deepest = zs[-1]
    total = hard_loss(deepest, target, "self_distillation_loss")
    for k, z_k in enumerate(zs[:-1]):
        soft = DistillationKL.apply(z_k, constant(deepest, like=z_k), T=T)
        total = total + hard_loss(z_k, target, "self_distillation_loss") * (1 - lam) + soft * (lam * T * T)
        if features is not None and hint > 0:
            total = total + mse_loss(features[k], constant(features[-1], like=features[k])) * hint
    return total


__all__ = ["dml_losses", "self_distillation_loss"]
