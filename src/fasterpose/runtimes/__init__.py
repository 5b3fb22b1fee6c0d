"""The runners behind the :class:`~fasterpose.runtimes.base.Runner` interface, side by side, and what
a model file is.

    base.py                the Runner protocol, runtime / precision names, fixed-batch chunking,
                           the one-line error for an unreadable exported file
    torch_runner.py        TorchRunner: an ``nn.Module`` (eager or compiled, fp32 or bf16 autocast)
    onnxruntime_runner.py  OnnxRuntimeRunner: an ONNX model on ONNX Runtime's CPU provider
    openvino_runner.py     OpenVinoRunner: an IR or ONNX model on OpenVINO's CPU plugin
    device.py              the device resolver and the bf16 capability check
    suffixes.py            the exported-model suffix table (.onnx, .xml; any case)
    formats.py             the classifier of a model path: ModelFile(kind, what was read)

Opening a model file as a runner plus its config is :func:`fasterpose.deploy.models.open_model`.
Nothing here imports torch at module level except ``torch_runner.py``.
"""
