"""Inference backends: the interface every model runs through, ONNX Runtime in-process, the
Triton client, and the factory that picks one."""
