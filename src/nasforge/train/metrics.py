"""Classification metrics from a confusion matrix accumulated on the model's device."""

from __future__ import annotations

import torch

METRICS: tuple[str, ...] = ("accuracy", "macro_f1", "macro_precision", "macro_recall")


class ConfusionMatrix:
    """Running ``num_classes x num_classes`` confusion matrix (rows: truth, cols: prediction).

    Updates stay on the device (no host synchronisation per batch); :meth:`compute` reads
    the numbers once at the end.
    """

    def __init__(self, num_classes: int, device: torch.device | str = "cpu") -> None:
        self.num_classes = num_classes
        self.matrix = torch.zeros(num_classes * num_classes, dtype=torch.long, device=device)

    def update(self, logits: torch.Tensor, targets: torch.Tensor) -> None:
        predictions = logits.argmax(dim=1)
        index = targets.long() * self.num_classes + predictions
        self.matrix += torch.bincount(index, minlength=self.num_classes**2)

    def compute(self) -> dict[str, float]:
        cm = self.matrix.view(self.num_classes, self.num_classes).double().cpu()
        true_positive = cm.diag()
        predicted = cm.sum(0)
        actual = cm.sum(1)
        total = cm.sum().clamp(min=1)
        precision = true_positive / predicted.clamp(min=1)
        recall = true_positive / actual.clamp(min=1)
        f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
        present = actual > 0  # macro averages over the classes present in the targets
        return {
            "accuracy": float(true_positive.sum() / total),
            "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
            "macro_precision": float(precision[present].mean()) if present.any() else 0.0,
            "macro_recall": float(recall[present].mean()) if present.any() else 0.0,
        }
