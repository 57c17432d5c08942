"""Every benchmark records the CPU it ran on (docs/benchmarks.md keeps one row per CPU kind):
in pytest-benchmark's machine_info and in each benchmark's extra_info, so that a saved run
(``--benchmark-json``) says where its figures come from."""

import pytest

# AMD's families and models (Zen generation), as /proc/cpuinfo gives them
ZEN = {(23, None): "Zen 2", (25, range(0x00, 0x10)): "Zen 3", (25, range(0x20, 0x30)): "Zen 3",
       (25, range(0x10, 0x20)): "Zen 4", (25, range(0x60, 0x80)): "Zen 4",
       (25, range(0xA0, 0xB0)): "Zen 4", (26, None): "Zen 5"}  # fmt: skip
FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def cpu_kind() -> dict:
    """The CPU of this machine: name, vendor family/model, Zen generation (AMD), the vector
    features that decide the kernels' speed, and the cores this process may use."""
    import os

    from repap.runtime import cpu_fields, numba_target

    fields = cpu_fields()
    if not fields:
        return {"cpu": "unknown", "label": "unknown CPU"}
    family, model = int(fields.get("cpu family", "0")), int(fields.get("model", "0"))
    gen = ""
    if fields.get("vendor_id") == "AuthenticAMD":
        gen = next((name for (f, models), name in ZEN.items()
                    if f == family and (models is None or model in models)), "")  # fmt: skip
    flags = set(fields.get("flags", "").split())
    kind = {
        "cpu": fields.get("model name", "unknown"),
        "family": family,
        "model": model,
        "generation": gen,
        "features": [f for f in FLAGS if f in flags],
        "cores": len(os.sched_getaffinity(0)),
    }
    kind["numba_target"] = numba_target()[0]  # "generic": Numba's kernels without AVX2
    kind["label"] = (f"{kind['cpu']} {gen} (family {family} model {model}), "
                     f"{'AVX-512' if 'avx512f' in flags else 'AVX2'}"
                     f"{' + bf16' if 'avx512_bf16' in flags else ''}, "
                     f"{kind['cores']} cores")  # fmt: skip
    return kind


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["cpu_kind"] = cpu_kind()


@pytest.fixture(autouse=True)
def _record_cpu(request):
    yield
    bench = request.node.funcargs.get("benchmark")
    if bench is not None:
        bench.extra_info.setdefault("cpu", cpu_kind()["label"])
