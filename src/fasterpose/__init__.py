"""FasterPose: top-down pose estimation with a Low-to-High Regressor and regressive cross-entropy."""

__version__ = "0.1.0"
