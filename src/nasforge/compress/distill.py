"""Knowledge distillation: soft-logit KD, hard-label KD and FitNets feature hints.

Distillation joins training as a Trainer callback: before each step the teacher (in eval
mode, without gradients) labels ``state.inputs`` — the very batch, augmented or not, that
the student is about to see — and after the loss the callback replaces ``state.loss`` with
the distillation objective::

    import nasforge as nf

    distiller = nf.build("compressor", "distill", teacher=teacher, temperature=4.0)
    student = distiller.apply(student, nf.Trainer(data, epochs=30))

Papers: Hinton, Vinyals & Dean (2015), "Distilling the knowledge in a neural network";
Romero et al. (2015), "FitNets: hints for thin deep nets"; Beyer et al. (2022),
"Knowledge distillation: a good teacher is patient and consistent".
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from nasforge.compress.base import Compressor
from nasforge.data.loaders import TensorLoader
from nasforge.ensemble import Ensemble
from nasforge.errors import ConfigError, close_matches
from nasforge.registry import register
from nasforge.train.augment import Augment, AugmentedLoader, in_memory
from nasforge.train.callbacks import Callback, TrainState
from nasforge.train.config import TrainConfig
from nasforge.validation import check_bool, check_choice, check_int, check_number

if TYPE_CHECKING:
    from nasforge.train.engine import Engine

__all__ = [
    "DistillationCallback",
    "Distiller",
    "HintAdapter",
    "TeacherEnsemble",
    "hard_kd_loss",
    "hint_loss",
    "soft_kd_loss",
]

logger = logging.getLogger(__name__)

_MODES = ("soft", "hard")


# ---------------------------------------------------------------------------- losses
def soft_kd_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, *, temperature: float = 4.0
) -> torch.Tensor:
    """Hinton et al.'s soft-target loss: ``T^2 * KL(softmax(t/T) || softmax(s/T))``.

    The KL divergence is averaged over the batch; the ``T^2`` factor keeps its gradients
    on the scale of the cross-entropy's whatever the temperature (Hinton et al. 2015, 2.1).

    >>> s, t = torch.zeros(2, 3), torch.zeros(2, 3)
    >>> float(soft_kd_loss(s, t, temperature=2.0))
    0.0
    """
    log_p_student = F.log_softmax(student_logits / temperature, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits / temperature, dim=1)
    kl = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
    return kl * temperature**2


def hard_kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the student against the teacher's top-1 labels (hard-label KD)."""
    return F.cross_entropy(student_logits, teacher_logits.argmax(dim=1))


def hint_loss(student_feature: torch.Tensor, teacher_feature: torch.Tensor) -> torch.Tensor:
    """FitNets hint loss: mean squared error between (adapted) student and teacher features."""
    return F.mse_loss(student_feature, teacher_feature)


# --------------------------------------------------------------------------- adapters
class HintAdapter(nn.Module):
    """Maps a student feature map onto the shape of a teacher's (FitNets' "regressor").

    A 1x1 convolution (or a linear layer for ``(N, C)`` features) changes the channel count
    when it differs; the teacher's feature is average-pooled to the student's spatial size
    when that differs. With equal shapes the adapter is the identity and has no parameters.
    """

    def __init__(self, student_shape: torch.Size, teacher_shape: torch.Size) -> None:
        super().__init__()
        if len(student_shape) != len(teacher_shape) or len(student_shape) not in (1, 2, 3, 4):
            raise ConfigError(
                f"cannot match a student feature of shape {tuple(student_shape)} to a teacher "
                f"feature of shape {tuple(teacher_shape)} (per sample). HINT: pick layers "
                "whose outputs are both vectors (C,) or both feature maps (C, ...) of the "
                "same rank",
                field="hints",
            )
        self.spatial = tuple(student_shape[1:])
        self.pool = tuple(teacher_shape[1:]) != self.spatial
        cs, ct = student_shape[0], teacher_shape[0]
        self.project: nn.Module
        if cs == ct:
            self.project = nn.Identity()
        elif len(student_shape) == 1:
            self.project = nn.Linear(cs, ct)
        else:
            conv = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[len(student_shape) - 2]
            self.project = conv(cs, ct, kernel_size=1)

    def forward(
        self, student_feature: torch.Tensor, teacher_feature: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(adapted student feature, teacher feature at the student's size)``."""
        if self.pool:
            pool = (F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d)
            teacher_feature = pool[len(self.spatial) - 1](teacher_feature, self.spatial)
        return self.project(student_feature), teacher_feature


class TeacherEnsemble(Ensemble):
    """Several trained teachers as one: the log of their averaged class probabilities.

    ``log(mean_i softmax(teacher_i(x)))`` is a valid logit vector (softmax recovers the
    averaged probabilities), so the ensemble can be passed wherever a teacher is expected::

        teacher = TeacherEnsemble([teacher_a, teacher_b, teacher_c])
        nf.Distiller(teacher=teacher, temperature=2.0).apply(student, trainer)

    It is :class:`nf.Ensemble(teachers, combine="probabilities") <nasforge.Ensemble>`.
    Note that a temperature then softens the averaged distribution, not each member's.
    Feature hints name layers as ``members.<i>.<layer>``.
    """

    def __init__(self, teachers: Iterable[nn.Module]) -> None:
        try:
            super().__init__(teachers, combine="probabilities")
        except ConfigError:
            raise ConfigError.invalid(
                "TeacherEnsemble.teachers", teachers, "a non-empty list of nn.Module"
            ) from None


def _module(model: nn.Module, name: str, owner: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules:
        names = [n for n in modules if n]
        raise ConfigError(
            f"hints: the {owner} has no layer {name!r}."
            + close_matches(name, names)
            + f" HINT: use names from {owner}.named_modules(), e.g. {names[:4]}",
            field="hints",
        )
    return modules[name]


# ---------------------------------------------------------------------------- callback
class DistillationCallback(Callback):
    """Trainer callback that adds a teacher's knowledge to the student's loss.

    The loss becomes ``(1 - alpha) * task_loss + alpha * kd + hint_weight * sum(hints)``,
    where ``kd`` is :func:`soft_kd_loss` (``mode="soft"``) or :func:`hard_kd_loss`
    (``mode="hard"``) and ``task_loss`` is the Trainer's own loss on the targets.

    The teacher runs in eval mode under ``torch.no_grad`` on ``state.inputs`` in
    ``on_batch_begin``, so it sees the same (augmented) view as the student. Its parameters
    are frozen during the fit and restored afterwards.

    ``cache_teacher=True`` stores the teacher's logits per input sample (keyed by the
    sample's bytes) during the first epoch and reuses them after; this is only valid when
    the loader yields the same samples every epoch (no random augmentation). A sample never
    seen before after the first epoch raises :class:`~nasforge.ConfigError`.

    Example::

        kd = DistillationCallback(teacher=teacher, temperature=4.0, alpha=0.9)
        nf.Trainer(data, epochs=30).fit(student, callbacks=[kd])
    """

    def __init__(
        self,
        *,
        teacher: nn.Module,
        mode: str = "soft",
        temperature: float = 4.0,
        alpha: float = 0.9,
        hints: Sequence[tuple[str, str]] = (),
        hint_weight: float = 1.0,
        cache_teacher: bool = False,
    ) -> None:
        _validate(teacher, mode, temperature, alpha, hints, hint_weight, cache_teacher)
        self.teacher = teacher
        self.mode = check_choice(mode, "mode", _MODES)
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        self.hints = [tuple(pair) for pair in hints]
        self.hint_weight = float(hint_weight)
        self.cache_teacher = cache_teacher
        self.adapters = nn.ModuleList()
        self.cache: dict[bytes, torch.Tensor] = {}
        self.cache_hits = 0
        self._teacher_logits: torch.Tensor | None = None
        self._features: dict[tuple[str, int], torch.Tensor] = {}
        self._handles: list[Any] = []
        self._frozen: list[tuple[nn.Parameter, bool]] = []
        self._first_epoch = 0
        self._adapter_group: dict[str, Any] | None = None

    # ------------------------------------------------------------------ hooks
    def on_fit_begin(self, trainer: Engine, state: TrainState) -> None:
        if state.model is self.teacher:
            raise ConfigError(
                "the student and the teacher are the same module. HINT: distil into a "
                "fresh (smaller) model, or copy.deepcopy the teacher first",
                field="teacher",
            )
        self.teacher.to(trainer.device)
        self.teacher.eval()
        self._frozen = [(p, p.requires_grad) for p in self.teacher.parameters()]
        for p, _ in self._frozen:
            p.requires_grad_(False)
        self._first_epoch = len(state.history)  # > 0 when resuming from a checkpoint
        self._features.clear()
        for i, (student_layer, teacher_layer) in enumerate(self.hints):
            s_mod = _module(state.model, student_layer, "student")
            t_mod = _module(self.teacher, teacher_layer, "teacher")
            self._handles.append(s_mod.register_forward_hook(self._capture(("student", i))))
            self._handles.append(t_mod.register_forward_hook(self._capture(("teacher", i))))
        self._adapter_group = None
        if self.adapters:  # built in an earlier fit: train them with this fit's optimizer
            self._attach_adapters(state.optimizer)

    def on_batch_begin(self, trainer: Engine, state: TrainState) -> None:
        if self.teacher.training:  # someone switched it back; the teacher must stay in eval
            self.teacher.eval()
        inputs = state.inputs
        if self.cache_teacher:
            self._teacher_logits = self._cached_logits(inputs, state)
            return
        with torch.no_grad():
            self._teacher_logits = self.teacher(inputs)

    def on_loss(self, trainer: Engine, state: TrainState) -> None:
        teacher_logits = self._teacher_logits
        if teacher_logits is None:  # pragma: no cover - on_batch_begin always runs first
            raise RuntimeError("on_loss ran before on_batch_begin")
        student_logits = state.outputs
        if self.mode == "soft":
            kd = soft_kd_loss(student_logits, teacher_logits, temperature=self.temperature)
        else:
            kd = hard_kd_loss(student_logits, teacher_logits)
        loss = kd if self.alpha == 1.0 else (1 - self.alpha) * state.loss + self.alpha * kd
        if self.hints:
            loss = loss + self.hint_weight * self._hint_loss(state)
        state.loss = loss
        self._teacher_logits = None

    def on_fit_end(self, trainer: Engine, state: TrainState) -> None:
        self.close()

    def close(self) -> None:
        """Remove the feature hooks and unfreeze the teacher (``on_fit_end`` calls this)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._features.clear()
        for p, flag in self._frozen:
            p.requires_grad_(flag)
        self._frozen.clear()

    # --------------------------------------------------------------- helpers
    def _capture(self, key: tuple[str, int]) -> Any:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            if isinstance(output, tuple | list):
                output = output[0]
            if key[0] == "teacher" or torch.is_grad_enabled():  # skip the student's eval
                self._features[key] = output

        return hook

    def _hint_loss(self, state: TrainState) -> torch.Tensor:
        if not self.adapters:
            self._build_adapters(state)
        elif self._adapter_group is not None:  # follow the schedule of the student's lr
            self._adapter_group["lr"] = state.optimizer.param_groups[0]["lr"]
        total = torch.zeros((), device=state.outputs.device)
        for i, adapter in enumerate(self.adapters):
            student, teacher = adapter(
                self._features[("student", i)], self._features[("teacher", i)]
            )
            total = total + hint_loss(student, teacher)
        return total

    def _build_adapters(self, state: TrainState) -> None:
        device = state.outputs.device
        for i, (student_layer, teacher_layer) in enumerate(self.hints):
            s_shape = self._features[("student", i)].shape[1:]
            t_shape = self._features[("teacher", i)].shape[1:]
            self.adapters.append(HintAdapter(s_shape, t_shape).to(device))
            logger.info(
                "hint %s %s -> teacher %s %s",
                student_layer,
                tuple(s_shape),
                teacher_layer,
                tuple(t_shape),
            )
        self._attach_adapters(state.optimizer)

    def _attach_adapters(self, optimizer: torch.optim.Optimizer) -> None:
        """Let the adapters learn alongside the student, with its optimizer's settings."""
        params = list(self.adapters.parameters())
        if params:
            template = {k: v for k, v in optimizer.param_groups[0].items() if k != "params"}
            optimizer.add_param_group({**template, "params": params})
            self._adapter_group = optimizer.param_groups[-1]

    def _cached_logits(self, inputs: torch.Tensor, state: TrainState) -> torch.Tensor:
        flat = inputs.detach().reshape(inputs.shape[0], -1).cpu().contiguous().numpy()
        keys = [row.tobytes() for row in flat]
        missing = [i for i, k in enumerate(keys) if k not in self.cache]
        if missing:
            if state.epoch > self._first_epoch:
                raise ConfigError(
                    f"cache_teacher=True, but in epoch {state.epoch + 1} the loader yielded "
                    f"{len(missing)} sample(s) the teacher did not see in the first epoch, "
                    "so the loader is not deterministic (random augmentation?). HINT: set "
                    "cache_teacher=False",
                    field="cache_teacher",
                )
            with torch.no_grad():
                fresh = self.teacher(inputs[missing])
            for j, i in enumerate(missing):
                self.cache[keys[i]] = fresh[j].detach().clone()
        self.cache_hits += len(keys) - len(missing)
        return torch.stack([self.cache[k] for k in keys])


def _validate(
    teacher: Any,
    mode: str,
    temperature: float,
    alpha: float,
    hints: Any,
    hint_weight: float,
    cache_teacher: bool,
) -> None:
    if not isinstance(teacher, nn.Module):
        raise ConfigError.invalid("teacher", type(teacher).__name__, "a trained torch.nn.Module")
    check_choice(mode, "mode", _MODES, hint="'soft' (Hinton KD) or 'hard' (top-1 labels)")
    check_number(temperature, "temperature", low=0, low_open=True, hint="try 1-8")
    check_number(alpha, "alpha", low=0, high=1, hint="the weight of the distillation term")
    if (
        isinstance(hints, str)
        or not isinstance(hints, Sequence)
        or not all(
            isinstance(p, tuple | list) and len(p) == 2 and all(isinstance(n, str) for n in p)
            for p in hints
        )
    ):
        raise ConfigError.invalid(
            "hints",
            hints,
            "a list of (student_layer, teacher_layer) name pairs",
            "e.g. [('features.2', 'features.4')]",
        )
    for _, teacher_layer in hints:
        _module(teacher, teacher_layer, "teacher")
    check_number(hint_weight, "hint_weight", low=0)
    check_bool(cache_teacher, "cache_teacher")
    if cache_teacher and hints:
        raise ConfigError.invalid(
            "cache_teacher",
            cache_teacher,
            "False when hints are used",
            "hints need the teacher's features of every batch, which are not cached",
        )


# -------------------------------------------------------------------------- compressor
@register("compressor", "distill")
class Distiller(Compressor):
    """Knowledge distillation from a teacher while fine-tuning with the Trainer.

    ``mode="soft"`` is Hinton et al.'s (2015) KD (temperature ``T``, weight ``alpha``, the
    ``T^2`` scaling); ``mode="hard"`` trains on the teacher's top-1 labels. ``hints`` adds
    FitNets (Romero et al. 2015) feature hints between named layers, with a learned 1x1
    adapter when the shapes differ. ``augment`` draws a new augmented view of every batch
    which teacher and student both see — with ``alpha=1`` and a long schedule this is the
    "patient and consistent" teacher of Beyer et al. (2022). ``unlabeled`` adds a transfer
    set (Hinton et al. 2015): inputs without labels, shuffled in with the training data,
    on which the student learns the teacher's outputs (their targets are the teacher's
    top-1 labels, which only the ``1 - alpha`` task term reads). ``benchmarks/distill.py``
    measures what each ingredient gains over a matched student trained alone. ``training``
    (a :class:`~nasforge.train.TrainConfig`, or a mapping of its fields) replaces the
    Trainer's training options for this step, e.g. ``training={"epochs": 300,
    "lr_schedule": "cosine"}``; ``epochs`` alone is a shorthand for the number of epochs.

    Example::

        import nasforge as nf
        from nasforge.train.augment import Compose, RandomShift, GaussianNoise

        distiller = nf.build(
            "compressor", "distill", teacher=teacher, alpha=1.0, temperature=2.0,
            augment=Compose(RandomShift(4), GaussianNoise(0.05)), epochs=300,
        )
        student = distiller.apply(student, nf.Trainer(data, lr_schedule="cosine"))
    """

    name = "distill"

    def __init__(
        self,
        *,
        teacher: nn.Module,
        mode: str = "soft",
        temperature: float = 4.0,
        alpha: float = 0.9,
        hints: Sequence[tuple[str, str]] = (),
        hint_weight: float = 1.0,
        augment: Augment | None = None,
        unlabeled: torch.Tensor | np.ndarray | TensorDataset | None = None,
        cache_teacher: bool = False,
        epochs: int | None = None,
        training: TrainConfig | Mapping[str, Any] | None = None,
    ) -> None:
        _validate(teacher, mode, temperature, alpha, hints, hint_weight, cache_teacher)
        if augment is not None and not isinstance(augment, Augment):
            raise ConfigError.invalid(
                "augment", augment, "an Augment or None", "see nasforge.train.augment"
            )
        if cache_teacher and augment is not None:
            raise ConfigError.invalid(
                "cache_teacher",
                cache_teacher,
                "False when augment is set",
                "augmentation shows the teacher new inputs every step, so there is "
                "nothing to cache",
            )
        self.training = _training_options(training)
        self.epochs = check_int(epochs, "epochs", low=1, optional=True)
        self.unlabeled = None if unlabeled is None else _transfer_set(unlabeled)
        self.teacher = teacher
        self.mode = check_choice(mode, "mode", _MODES)
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        self.hints = [tuple(p) for p in hints]
        self.hint_weight = float(hint_weight)
        self.augment = augment
        self.cache_teacher = cache_teacher
        self.callback: DistillationCallback | None = None

    def apply(self, model: nn.Module, trainer: Engine) -> nn.Module:
        """Fine-tune ``model`` (the student) in place under the teacher; return it."""
        if self.training:
            trainer = trainer.with_options(**self.training)
        callback = DistillationCallback(
            teacher=self.teacher,
            mode=self.mode,
            temperature=self.temperature,
            alpha=self.alpha,
            hints=self.hints,
            hint_weight=self.hint_weight,
            cache_teacher=self.cache_teacher,
        )
        self.callback = callback
        train_data = None
        if self.augment is not None or self.unlabeled is not None:
            if trainer.train_data is None:
                raise ConfigError(
                    "distill needs training data. HINT: pass it to Trainer(train_data, ...)",
                    field="train_data",
                )
            purpose = "to augment" if self.unlabeled is None else "to add a transfer set to"
            x, y = in_memory(trainer.train_data, purpose)
            if self.unlabeled is not None:
                x, y = self._add_transfer_set(x, y, trainer)
            if self.augment is not None:
                train_data = AugmentedLoader(
                    x, y, transform=self.augment, batch_size=trainer.batch_size, seed=trainer.seed
                )
            else:
                train_data = TensorLoader(
                    x, y, batch_size=trainer.batch_size, shuffle=True, seed=trainer.seed
                )
        try:
            trainer.fit(model, train_data, epochs=self.epochs, callbacks=[callback])
        finally:
            callback.close()
        return model

    def _add_transfer_set(
        self, x: torch.Tensor, y: torch.Tensor, trainer: Engine
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The training data with the transfer set appended, labelled by the teacher."""
        unlabeled = self.unlabeled
        assert unlabeled is not None
        if tuple(unlabeled.shape[1:]) != tuple(x.shape[1:]):
            raise ConfigError.invalid(
                "unlabeled",
                f"samples of shape {tuple(unlabeled.shape[1:])}",
                f"samples shaped like the training inputs, {tuple(x.shape[1:])}",
            )
        if y.dtype != torch.long or y.dim() != 1:
            raise ConfigError.invalid(
                "unlabeled",
                f"training targets of dtype {y.dtype} and shape {tuple(y.shape)}",
                "integer class labels (N,) in the training data, to add a transfer set to",
            )
        was_training = self.teacher.training
        self.teacher.to(trainer.device).eval()
        with torch.no_grad():
            labels = torch.cat(
                [
                    self.teacher(chunk.to(trainer.device)).argmax(1).cpu()
                    for chunk in unlabeled.split(trainer.eval_batch_size)
                ]
            )
        self.teacher.train(was_training)
        logger.info("transfer set: %d unlabelled samples labelled by the teacher", len(labels))
        return torch.cat([x, unlabeled.to(x.dtype)]), torch.cat([y, labels.to(y.device)])

    def __repr__(self) -> str:
        transfer = None if self.unlabeled is None else len(self.unlabeled)
        return (
            f"Distiller(mode={self.mode!r}, temperature={self.temperature}, alpha={self.alpha}, "
            f"hints={self.hints!r}, augment={self.augment!r}, unlabeled={transfer}, "
            f"epochs={self.epochs})"
        )


def _training_options(training: Any) -> dict[str, Any]:
    """The training options a Distiller overrides, checked now rather than mid-pipeline."""
    if training is None:
        return {}
    if isinstance(training, TrainConfig):
        return training.to_dict()
    if not isinstance(training, Mapping):
        raise ConfigError.invalid("training", training, "a TrainConfig, a mapping or None")
    TrainConfig.from_dict(training, field="training")
    return dict(training)


def _transfer_set(unlabeled: Any) -> torch.Tensor:
    """The ``unlabeled`` inputs as a float tensor ``(N, ...)``; a clear error otherwise."""
    if isinstance(unlabeled, TensorDataset):
        unlabeled = unlabeled.tensors[0]
    if not isinstance(unlabeled, torch.Tensor | np.ndarray):
        raise ConfigError.invalid(
            "unlabeled",
            type(unlabeled).__name__,
            "inputs without labels: a tensor or numpy array (N, ...), or a TensorDataset",
        )
    tensor = torch.as_tensor(unlabeled)
    if tensor.dim() < 2 or len(tensor) == 0 or not tensor.is_floating_point():
        raise ConfigError.invalid(
            "unlabeled",
            f"{tensor.dtype} of shape {tuple(tensor.shape)}",
            "a non-empty float array of inputs (N, ...) shaped like the training samples",
        )
    return tensor.float()
