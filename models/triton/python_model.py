"""The Triton python-backend wrapper that runs one of the store's ONNX files with ONNX Runtime.

:func:`ahmer.models.triton.repository.write_repository` copies this file, unchanged, to
``<model>/1/model.py`` beside ``<model>/1/model.onnx`` when asked for a python-backend
repository. Why it exists: the ``tritonserver`` bundled in the ``nvidia-pytriton`` wheel has
only the python backend, not the ONNX Runtime one, so the tests and developers serve the very
same ONNX files through this wrapper, while production repositories use
``platform: "onnxruntime_onnx"``.

It runs inside Triton's python stub, in the ``.venv-triton`` environment: it needs numpy and
onnxruntime only, never ahmer. ``triton_python_backend_utils`` exists only there, so it is
imported when Triton initialises the model, which keeps this module importable (and linted)
in the project.

Dynamic batching is real: Triton hands :meth:`TritonPythonModel.execute` every request its
batcher gathered; requests whose non-batch dimensions agree are concatenated along the batch
axis, run as one ONNX Runtime call and split back, so one call serves many callers. A model
without a batch axis (``max_batch_size: 0``) runs its requests one by one.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

__all__ = ["TritonPythonModel"]


class TritonPythonModel:
    """One model instance: an ONNX Runtime session over ``model.onnx`` in its version folder."""

    def initialize(self, args: dict[str, str]) -> None:
        import onnxruntime as ort
        import triton_python_backend_utils as pb_utils

        self._pb = pb_utils
        config = json.loads(args["model_config"])
        self.batched = int(config.get("max_batch_size", 0)) > 0
        self.input_names = [t["name"] for t in config["input"]]
        self.output_names = [t["name"] for t in config["output"]]
        folder = os.path.join(args["model_repository"], args["model_version"])
        params = {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(params.get("intra_op_threads", "1") or 1)
        options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        if args.get("model_instance_kind") == "GPU":
            available = ort.get_available_providers()
            if "CUDAExecutionProvider" in available:
                device = int(args.get("model_instance_device_id", "0"))
                providers.insert(0, ("CUDAExecutionProvider", {"device_id": device}))
        self.session = ort.InferenceSession(
            os.path.join(folder, "model.onnx"), sess_options=options, providers=providers
        )

    def execute(self, requests: list[Any]) -> list[Any]:
        """One response per request, in order; a failing group answers its requests with the
        error and leaves the others untouched."""
        pb = self._pb
        responses: list[Any] = [None] * len(requests)
        feeds: list[dict[str, np.ndarray] | None] = []
        for i, request in enumerate(requests):
            try:
                feeds.append(
                    {
                        name: pb.get_input_tensor_by_name(request, name).as_numpy()
                        for name in self.input_names
                    }
                )
            except Exception as exc:  # a missing input: answer this request alone
                feeds.append(None)
                responses[i] = pb.InferenceResponse(error=pb.TritonError(f"bad input: {exc}"))
        for group in self._groups(feeds):
            try:
                outputs = self._run_group([feeds[i] for i in group])
            except Exception as exc:
                for i in group:
                    responses[i] = pb.InferenceResponse(error=pb.TritonError(str(exc)))
                continue
            for i, out in zip(group, outputs, strict=True):
                wanted = _requested(requests[i]) or self.output_names
                tensors = [pb.Tensor(n, np.ascontiguousarray(out[n])) for n in wanted]
                responses[i] = pb.InferenceResponse(output_tensors=tensors)
        return responses

    def _groups(self, feeds: list[dict[str, np.ndarray] | None]) -> list[list[int]]:
        """Indices of requests that can share one run: same non-batch shapes (all batched)."""
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, feed in enumerate(feeds):
            if feed is None:
                continue
            if not self.batched:
                groups[("single", i)] = [i]
                continue
            key = tuple((n, feed[n].dtype.str, feed[n].shape[1:]) for n in self.input_names)
            groups.setdefault(key, []).append(i)
        return list(groups.values())

    def _run_group(self, feeds: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        if len(feeds) == 1:
            values = self.session.run(self.output_names, feeds[0])
            return [dict(zip(self.output_names, values, strict=True))]
        sizes = [len(next(iter(feed.values()))) for feed in feeds]
        joined = {n: np.concatenate([feed[n] for feed in feeds]) for n in self.input_names}
        values = self.session.run(self.output_names, joined)
        bounds = np.cumsum(sizes)[:-1]
        parts = [np.split(v, bounds) for v in values]
        return [
            {n: parts[k][j] for k, n in enumerate(self.output_names)} for j in range(len(feeds))
        ]

    def finalize(self) -> None:
        self.session = None


def _requested(request: Any) -> list[str]:
    """The outputs a request asked for (all when it named none)."""
    try:
        return list(request.requested_output_names())
    except AttributeError:
        return []
