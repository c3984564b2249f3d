"""What CPU this is: its model and the instruction sets that decide inference speed (AVX2, AVX-512, VNNI, AMX).

Machines of one kind differ by 2-3x in INT8 inference (VNNI or not), so every measurement and every backend
choice names the CPU it was made on. ``ONEDNN_MAX_CPU_ISA`` (honoured by OpenVINO's CPU plugin) caps the
instruction sets inference may use: recorded too, since it makes a fast CPU behave like a slower one.
"""

from __future__ import annotations

import hashlib
import os
import platform
from functools import lru_cache
from typing import Any

#: The flags that matter for inference, in the order they are reported.
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")


@lru_cache(maxsize=1)
def cpu_info() -> dict[str, Any]:
    """``{"model", "isa", "cores", "usable_cores", "isa_cap"}``: the CPU's model name, which of ``ISA_FLAGS``
    it has, logical cores, those this process may use, and the ``ONEDNN_MAX_CPU_ISA`` cap in force."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model in ("", platform.machine(), platform.processor()):
                    model = value.strip()
                elif key in ("flags", "Features"):
                    flags = set(value.split())
                if model and flags:
                    break
    except OSError:  # not Linux: the model from platform, no flags
        pass
    return {"model": model, "isa": [f for f in ISA_FLAGS if f in flags], "cores": os.cpu_count(),
            "usable_cores": usable_cores(), "isa_cap": os.environ.get("ONEDNN_MAX_CPU_ISA") or None}


def cpu_label(info: dict[str, Any] | None = None) -> str:
    """One line naming the CPU for tables: 'AMD EPYC (2 cores; AVX2, AVX-512, VNNI)'."""
    info = info or cpu_info()
    isa = info["isa"]
    names = ["AVX2"] * ("avx2" in isa) + ["AVX-512"] * ("avx512f" in isa) + \
        ["VNNI"] * ("avx512_vnni" in isa or "avx_vnni" in isa) + ["AMX"] * ("amx_int8" in isa)
    cap = f", inference capped at {info['isa_cap']}" if info.get("isa_cap") else ""
    usable = info.get("usable_cores", info["cores"])
    cores = f"{info['cores']} cores" + (f", {usable} usable" if usable != info["cores"] else "")
    return f"{info['model']} ({cores}; {', '.join(names) or 'no AVX2'}{cap})"


def cpu_tag(info: dict[str, Any] | None = None) -> str:
    """A short stable key of the CPU (model, ISA, cap): choices measured on one CPU are not reused on another."""
    info = info or cpu_info()
    text = f"{info['model']}|{','.join(info['isa'])}|{info.get('isa_cap') or ''}"
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity (``taskset``), and a cgroup's ``cpu.max`` quota when
    it sets one (containers), whichever is fewer."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)
