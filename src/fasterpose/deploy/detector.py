"""torchvision's Faster R-CNN MobileNetV3-Large FPN as a person detector, from local weights only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

DETECTOR = "fasterrcnn_mobilenet_v3_large_fpn"
NO_BOXES_HELP = (
    "no person boxes: pass --detector DET.onnx (an ultralytics YOLOv8/YOLO11, YOLOX or RTMDet ONNX file), "
    "--boxes DETECTIONS.json (COCO detections format), --whole-image (one "
    "person filling each image), or --detector-weights FILE (torchvision's COCO weights for "
    f"{DETECTOR}, e.g. fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth; or place that file in the torch "
    "hub cache, {cache}). Nothing is downloaded."
)


def hub_checkpoints() -> Path:
    """torch hub's checkpoint cache folder."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_detector_weights(explicit: str | None) -> Path | None:
    """``--detector-weights`` or the torch hub cache copy of torchvision's COCO weights (no download)."""
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            raise FileNotFoundError(f"detector weights not found: {p}")
        return p
    from torchvision.models.detection import FasterRCNN_MobileNet_V3_Large_FPN_Weights as W

    cached = hub_checkpoints() / Path(W.COCO_V1.url).name
    return cached if cached.is_file() else None


class PersonDetector:
    """torchvision's Faster R-CNN MobileNetV3-Large FPN, person class only, from a local state dict."""

    def __init__(self, weights: Path, threshold: float) -> None:
        from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_fpn

        self.model = fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None, num_classes=91)
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            self.model.load_state_dict(state)
        except Exception as exc:  # noqa: BLE001 - many failure types; one clear message
            raise ValueError(
                f"{weights}: not a {DETECTOR} COCO state dict ({exc.__class__.__name__}: {str(exc)[:200]})"
            ) from exc
        self.model.eval()
        self.threshold = threshold

    @torch.inference_mode()
    def __call__(self, image: np.ndarray) -> np.ndarray:
        """RGB uint8 (H, W, 3) -> person boxes (P, 5) xywh+score."""
        x = torch.from_numpy(image).permute(2, 0, 1).float().div_(255.0)
        det = self.model([x])[0]
        keep = (det["labels"] == 1) & (det["scores"] >= self.threshold)
        xyxy = det["boxes"][keep].numpy()
        xywh = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
        return np.concatenate([xywh, det["scores"][keep].numpy()[:, None]], axis=1).astype(np.float32)
