"""FasterPose: top-down pose estimation with a Low-to-High Regressor and regressive cross-entropy.

The main API is importable from the top level (loaded on first use, so ``import fasterpose`` stays
light)::

    from fasterpose import PoseModel, Predictor
    predictor = Predictor("runs/quickstart/last.pth")  # or an exported .onnx / .xml
    people = predictor("photo.jpg", boxes=[[x, y, w, h, score]])  # Results: a sequence of PosePrediction
    people = predictor(cv2.imread("photo.jpg"), boxes)  # arrays are BGR; channel_order="rgb" for RGB ones
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "PoseModel": "fasterpose.models.pose_model",
    "Predictor": "fasterpose.deploy.predictor",
    "PosePrediction": "fasterpose.evaluation.predictions",
    "load_config": "fasterpose.config",
    "Config": "fasterpose.config",
}
__all__ = ["Config", "PoseModel", "PosePrediction", "Predictor", "__version__", "load_config"]

if TYPE_CHECKING:
    from fasterpose.config import Config, load_config
    from fasterpose.deploy.predictor import Predictor
    from fasterpose.evaluation.predictions import PosePrediction
    from fasterpose.models.pose_model import PoseModel


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'fasterpose' has no attribute {name!r}")
