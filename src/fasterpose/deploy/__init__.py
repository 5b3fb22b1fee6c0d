"""Deployment: runtimes, export to ONNX / OpenVINO, INT8 quantisation, parity, the ``Predictor``,
video / image sources, temporal smoothing, person boxes (files or a torchvision detector).

Torch-free at import: :mod:`~fasterpose.deploy.predictor`, :mod:`~fasterpose.deploy.runtimes`,
:mod:`~fasterpose.deploy.metadata`, :mod:`~fasterpose.deploy.sources`,
:mod:`~fasterpose.deploy.smoothing` and :mod:`~fasterpose.deploy.boxes` run on the ``runtime``
install (numpy, OpenCV, ONNX Runtime / OpenVINO). Export, quantisation, parity and the detector
need the ``train`` and ``deploy`` extras.
"""
