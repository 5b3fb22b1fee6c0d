"""The one top-down inference pipeline, shared by evaluation, ``Predictor`` and the commands.

    image + person boxes -> crops (affine warp, ImageNet normalisation)       crops.py
      -> Runner (torch / ONNX Runtime / OpenVINO) (+ mirrored crops)           runner.py
      -> sigmoid (logit models), flip-back average -> decode -> back-project   topdown.py
      -> rescore (box score x mean confident joint score) -> OKS-NMS           topdown.py
    a dataset's boxes through the same steps, scored by COCOeval / PCKh        evaluate.py
    test-dev boxes through the same steps -> the COCO server's results file testdev.py

The runners (torch, ONNX Runtime, OpenVINO) are :mod:`fasterpose.runtimes`; nothing here imports torch
at module level except ``torch_runner.py`` (``inference_context``).
"""
