"""Deployment: the model-file backend (:func:`~fasterpose.deploy.models.open_model`: any model file as a
runner of :mod:`fasterpose.runtimes` plus its config), the measured CPU runtime choice, export to ONNX /
OpenVINO, INT8 quantisation, parity, the ``Predictor``, video / image sources, temporal smoothing, person
boxes (files, a detector ONNX file, or a torchvision detector).

Torch-free at import: :mod:`~fasterpose.deploy.models`, :mod:`~fasterpose.deploy.predictor`,
:mod:`~fasterpose.deploy.runtimes`,
:mod:`~fasterpose.deploy.metadata`, :mod:`~fasterpose.deploy.sources`,
:mod:`~fasterpose.deploy.smoothing`, :mod:`~fasterpose.deploy.boxes` and
:mod:`~fasterpose.deploy.onnx_detector` (a detector ONNX file) run on the ``runtime`` install (numpy,
OpenCV, ONNX Runtime / OpenVINO). Export, quantisation, parity and the torchvision detector need the
``train`` and ``deploy`` extras.
"""
