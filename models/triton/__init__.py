"""Triton Inference Server: the model repository written from the store, a local tritonserver
for tests and developers, and the python-backend model."""
