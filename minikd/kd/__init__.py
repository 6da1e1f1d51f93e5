"""Knowledge distillation: ``from minikd import kd``.

Logit-based (response-based) distillation, Hinton et al. (2015)::

    p_t = softmax(z_t / T),  p_s = softmax(z_s / T)
    L_KD = (1 − λ) · L_CE(y, p_s) + λ · T² · L_KL(p_t, p_s)

    loss = kd.kd_loss(student(x), teacher(x), y, T=3.0, lam=0.5)

Feature-based distillation, with an adapter g(·) that aligns F_S with F_T::

    L_Total = λ · ‖F_T − g(F_S)‖² + (1 − λ) · L_CE

    adapter = kd.make_adapter((64,), (128,))            # LinearAdapter(64 → 128)
    loss = kd.feature_kd_loss(logits_s, F_S, F_T, y, adapter, lam=0.5)

Relation-based KD (RKD, Park et al. 2019): ``rkd_distance_loss``, ``rkd_angle_loss``, and ``rkd_loss``,
the paper's weighted sum of the two (25 and 50).
Online and self-distillation: ``dml_losses`` (deep mutual learning), ``self_distillation_loss``.
AdaDistill (Boutros et al. 2024): ``margin_logits``, ``adadistill_alpha``, ``distill_centres``.
QUD (Kolf et al. 2024): ``qud_loss`` with an ``EmbeddingQueue`` of teacher embeddings.
Data-free KD on synthetic x̃, L_DFKD = D_KL(T(x̃) ‖ S(x̃)): ``dfkd_loss``; DAFL (Chen et al. 2019):
``dafl_losses``, ``dafl_generator_loss``; DeepInversion (Yin et al. 2020): ``BNStatistics``,
``total_variation``, ``l2_prior``; activation maximisation: ``activation_maximisation_loss``,
``diversity_loss``, ``random_shift`` (with ``roll``); Adaptive DeepInversion's ``competition_loss``
(1 − ``js_divergence``); ``random_affine`` (augmenting scenario 1's
images); ``freeze_teacher``, and the input checks
``check_generator_output``, ``check_class_labels``.

``docs/distillation.md`` walks through them, and the lecture's recap exercises.
"""

from .contrastive import EmbeddingQueue, qud_loss
from .data_free import (
    BNStatistics,
    activation_maximisation_loss,
    check_class_labels,
    check_generator_output,
    competition_loss,
    dafl_generator_loss,
    dafl_losses,
    dfkd_loss,
    diversity_loss,
    freeze_teacher,
    js_divergence,
    l2_prior,
    random_affine,
    random_shift,
    roll,
    total_variation,
)
from .features import (
    ConvAdapter,
    InterpolateAdapter,
    LinearAdapter,
    feature_kd_loss,
    feature_loss,
    make_adapter,
)
from .logits import kd_loss, kl_divergence, soft_loss, softmax_with_temperature
from .margin import adadistill_alpha, distill_centres, margin_logits
from .relation import rkd_angle_loss, rkd_distance_loss, rkd_loss
from .schemes import dml_losses, self_distillation_loss

__all__ = [
    "BNStatistics", "activation_maximisation_loss", "check_class_labels", "check_generator_output",
    "competition_loss", "dafl_generator_loss", "dafl_losses", "dfkd_loss", "diversity_loss", "freeze_teacher",
    "js_divergence", "l2_prior", "random_affine", "random_shift", "roll", "total_variation",
    "ConvAdapter", "EmbeddingQueue", "InterpolateAdapter", "LinearAdapter", "adadistill_alpha", "distill_centres",
    "dml_losses", "feature_kd_loss", "feature_loss", "kd_loss", "kl_divergence", "make_adapter", "margin_logits",
    "qud_loss", "rkd_angle_loss", "rkd_distance_loss", "rkd_loss", "self_distillation_loss", "soft_loss",
    "softmax_with_temperature",
]
