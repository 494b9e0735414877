"""NVIDIA GPUs through NVML: the only module that imports ``pynvml`` (package ``nvidia-ml-py``).

What it gives the rest of the harness:

* :class:`GpuDevice`: one physical GPU. Each read (energy counter, power, memory, utilization,
  clocks, temperature, power limit, persistence mode) returns a value in SI-ish units named in
  the method (``_mj``, ``_w``, ``_bytes``, ``_pct``, ``_mhz``, ``_c``) or raises one of our
  exceptions: :class:`NvmlNotSupported` for a field this GPU or driver does not offer (the caller
  records it as null with that reason), :class:`NvmlError` for anything else.
* :class:`GpuSet`: the GPUs the engine uses, in the engine's (CUDA's) order. :func:`open_gpus`
  never raises: when NVML cannot start, or no GPU is visible, it returns an empty set that
  carries the reason, so callers never branch on hardware.

Which GPUs: ``CUDA_VISIBLE_DEVICES`` of the engine's environment decides, with CUDA's rules
(:func:`parse_cuda_visible_devices`): unset means every GPU; a list of integers indexes the
physical GPUs; ``GPU-...`` entries are UUIDs or unique UUID prefixes; ``MIG-...`` entries name
MIG instances. NVML has no per-instance energy, so a GPU in MIG mode (whichever way it was named,
plain indices included) gets no energy figure at all: its energy and power are the whole GPU's,
shared with the other instances (Zeus refuses MIG for the same reason); :attr:`GpuSet.notes` and
``GpuDevice.mig`` say so. The first invalid entry ends the list, as it does for CUDA. Integers
index the GPUs in PCI bus order: NVML's own enumeration order is not guaranteed, so handles are
sorted by PCI bus id here, and the engine is started with ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` so that
CUDA counts the same way (CUDA's default is "fastest first"). Each run then checks the mapping by
UUID (:meth:`GpuSet.compute_pids` feeds :mod:`harness.telemetry.identity`: the GPUs where the
engine's processes hold a context must be the metered ones), and the GPU check compares torch's
device UUIDs with NVML's.

Every ``pynvml`` call goes through :func:`_call`, which turns ``pynvml.NVMLError`` codes into our
exception types; nothing outside this module knows that NVML exists. ``pynvml`` is imported
inside functions so that ``import harness`` stays light, and this module imports neither pydantic
nor torch, so the GPU check (``harness.telemetry.check``) runs with only torch and nvidia-ml-py.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TypeVar

T = TypeVar("T")

# ---------------------------------------------------------------------------------------------
# Our errors, and the one place NVML's are translated.


class NvmlError(RuntimeError):
    """An NVML call failed. ``code`` is NVML's return code, where there is one."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class NvmlNotSupported(NvmlError):
    """This GPU, driver or library version does not offer the field (report it as null, with why)."""


class NvmlUnavailable(NvmlError):
    """NVML cannot be used at all here: no library, no driver, or a driver/library mismatch."""


class NvmlNoPermission(NvmlError):
    """The driver refused the call to this user."""


class NvmlGpuLost(NvmlError):
    """The GPU fell off the bus or needs a reset; its figures from now on are void."""


# NVML return codes (stable C API values, see nvml.h) mapped to our types.
_CODE_TO_ERROR: dict[int, type[NvmlError]] = {
    1: NvmlUnavailable,  # NVML_ERROR_UNINITIALIZED
    3: NvmlNotSupported,  # NVML_ERROR_NOT_SUPPORTED
    4: NvmlNoPermission,  # NVML_ERROR_NO_PERMISSION
    9: NvmlUnavailable,  # NVML_ERROR_DRIVER_NOT_LOADED
    12: NvmlUnavailable,  # NVML_ERROR_LIBRARY_NOT_FOUND
    13: NvmlNotSupported,  # NVML_ERROR_FUNCTION_NOT_FOUND: the driver is older than the call
    15: NvmlGpuLost,  # NVML_ERROR_GPU_IS_LOST
    16: NvmlGpuLost,  # NVML_ERROR_RESET_REQUIRED
    18: NvmlUnavailable,  # NVML_ERROR_LIB_RM_VERSION_MISMATCH
}


def _lib() -> ModuleType:
    """The pynvml module, imported on first use (a missing package means NVML is unavailable)."""
    try:
        import pynvml
    except ImportError as exc:  # pragma: no cover - nvidia-ml-py is a dependency of harness
        raise NvmlUnavailable(f"nvidia-ml-py is not installed ({exc})") from exc
    return pynvml


def translate_error(exc: BaseException, what: str) -> NvmlError:
    """Our exception for a ``pynvml.NVMLError`` raised while reading ``what``."""
    code = getattr(exc, "value", None)
    cls = _CODE_TO_ERROR.get(code, NvmlError) if isinstance(code, int) else NvmlError
    try:
        text = str(exc)
    except Exception:  # NVMLError.__str__ itself calls into the library
        text = f"NVML error code {code}"
    return cls(f"{what}: {text}", code if isinstance(code, int) else None)


def _call(what: str, fn: Callable[..., T], *args: Any) -> T:
    """Call one pynvml function, translating its errors (and only its errors) into ours."""
    lib = _lib()
    try:
        return fn(*args)
    except lib.NVMLError as exc:
        raise translate_error(exc, what) from exc


def _text(value: str | bytes) -> str:
    # nvidia-ml-py returns str since 11.5; older versions returned bytes.
    return value.decode() if isinstance(value, bytes) else str(value)


# ---------------------------------------------------------------------------------------------
# One GPU.


class GpuDevice:
    """One physical NVIDIA GPU, as the engine sees it.

    Attributes:
        index: position in the engine's view (CUDA device ordinal 0..n-1); ``gpu_index`` in the
            time series and ``GpuInfo.index`` in the record.
        nvml_index: NVML's own enumeration index of the physical GPU (not necessarily PCI order).
        pci_bus_id: the PCI bus id NVML reports; GPUs are ordered by it, as CUDA_DEVICE_ORDER=PCI_BUS_ID.
        uuid, name: as NVML reports them.
    """

    def __init__(
        self, index: int, nvml_index: int, handle: Any, uuid: str, name: str, pci_bus_id: str | None = None
    ) -> None:
        self.index = index
        self.nvml_index = nvml_index
        self.handle = handle
        self.uuid = uuid
        self.name = name
        self.pci_bus_id = pci_bus_id
        self.mig = False  # in MIG mode: whole-GPU energy, never to be reported as an instance's
        self._power_mode: str | None = None  # "instant" | "average", settled on the first read
        self.power_scope: str | None = None  # scope the instant field answered for: gpu | module | memory
        self.average_fallbacks = 0  # instant reads that failed and were answered by the 1 s average

    def __repr__(self) -> str:
        return f"GpuDevice(index={self.index}, nvml_index={self.nvml_index}, name={self.name!r}, uuid={self.uuid!r})"

    def energy_mj(self) -> int:
        """Energy counter: millijoules since the driver was loaded (Volta and newer), ~100 ms updates."""
        lib = _lib()
        return int(_call("energy counter", lib.nvmlDeviceGetTotalEnergyConsumption, self.handle))

    def power_w(self) -> float:
        """Board power draw in watts.

        Prefers NVML's instantaneous power field; ``nvmlDeviceGetPowerUsage`` is a one-second
        moving average on recent data-centre GPUs, which would smear the edges of short windows.
        Falls back to it where the field is missing.
        """
        if self._power_mode != "average":
            try:
                value = self._instant_power_w()
            except NvmlNotSupported:
                if self._power_mode is None:
                    self._power_mode = "average"  # never offered here: the average from now on
                else:
                    self.average_fallbacks += 1
            except NvmlGpuLost:
                raise
            except NvmlError:
                # Any other per-field error: this read falls back to the average, not to a gap.
                self.average_fallbacks += 1
            else:
                self._power_mode = "instant"
                return value
        return self.average_power_w()

    def average_power_w(self) -> float:
        """NVML's power usage: a one-second trailing average on recent data-centre GPUs (W)."""
        lib = _lib()
        return _call("power", lib.nvmlDeviceGetPowerUsage, self.handle) / 1000.0

    @property
    def power_reading(self) -> str | None:
        """Which power reading :meth:`power_w` uses: 'instant', 'average', or None before the first read."""
        return self._power_mode

    def instant_power_w(self) -> float:
        """NVML's instantaneous power field for the GPU's own scope (W); raises where it fails."""
        return self._instant_power_w()

    def _instant_power_w(self) -> float:
        lib = _lib()
        field_id = getattr(lib, "NVML_FI_DEV_POWER_INSTANT", None)
        if field_id is None:
            raise NvmlNotSupported("instant power: field unknown to this nvidia-ml-py")
        # Ask for the GPU's own scope; a GH200 can answer for the whole module (CPU included).
        gpu_scope = getattr(lib, "NVML_POWER_SCOPE_GPU", None)
        request = [(field_id, gpu_scope)] if gpu_scope is not None else [field_id]
        values = _call("instant power", lib.nvmlDeviceGetFieldValues, self.handle, request)
        value = values[0]
        if value.nvmlReturn != 0:
            raise translate_error(lib.NVMLError(value.nvmlReturn), "instant power")
        self.power_scope = _SCOPES.get(int(getattr(value, "scopeId", 0) or 0), "gpu")
        return _field_number(value) / 1000.0  # milliwatts

    def mig_enabled(self) -> bool:
        """Whether MIG mode is on (current mode); False where the GPU has no MIG."""
        lib = _lib()
        try:
            current = _call("MIG mode", lib.nvmlDeviceGetMigMode, self.handle)[0]
        except NvmlNotSupported:
            return False
        return int(current) == int(getattr(lib, "NVML_DEVICE_MIG_ENABLE", 1))

    def memory_used_bytes(self) -> int:
        """Device memory in use, all processes together (vLLM pre-allocates most of it for KV cache)."""
        lib = _lib()
        return int(_call("memory", lib.nvmlDeviceGetMemoryInfo, self.handle).used)

    def memory_total_bytes(self) -> int:
        lib = _lib()
        return int(_call("memory", lib.nvmlDeviceGetMemoryInfo, self.handle).total)

    def utilization_pct(self) -> tuple[float, float]:
        """(GPU, memory) utilization in percent over NVML's last sample period."""
        lib = _lib()
        rates = _call("utilization", lib.nvmlDeviceGetUtilizationRates, self.handle)
        return float(rates.gpu), float(rates.memory)

    def sm_clock_mhz(self) -> int:
        lib = _lib()
        return int(_call("SM clock", lib.nvmlDeviceGetClockInfo, self.handle, lib.NVML_CLOCK_SM))

    def memory_clock_mhz(self) -> int:
        lib = _lib()
        return int(_call("memory clock", lib.nvmlDeviceGetClockInfo, self.handle, lib.NVML_CLOCK_MEM))

    def graphics_clock_mhz(self) -> int:
        lib = _lib()
        return int(_call("graphics clock", lib.nvmlDeviceGetClockInfo, self.handle, lib.NVML_CLOCK_GRAPHICS))

    def temperature_c(self) -> int:
        lib = _lib()
        return int(_call("temperature", lib.nvmlDeviceGetTemperature, self.handle, lib.NVML_TEMPERATURE_GPU))

    def power_limit_w(self) -> float:
        """The power limit the driver enforces, in watts."""
        lib = _lib()
        return _call("power limit", lib.nvmlDeviceGetEnforcedPowerLimit, self.handle) / 1000.0

    def persistence_mode(self) -> bool:
        lib = _lib()
        return (
            _call("persistence mode", lib.nvmlDeviceGetPersistenceMode, self.handle)
            == lib.NVML_FEATURE_ENABLED
        )


_SCOPES = {0: "gpu", 1: "module", 2: "memory"}  # NVML_POWER_SCOPE_GPU, _MODULE, _MEMORY


def _field_number(value: Any) -> float:
    """The number in an ``nvmlFieldValue_t``, by its value type."""
    by_type = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal", 6: "usVal"}
    return float(getattr(value.value, by_type.get(int(value.valueType), "uiVal")))


# ---------------------------------------------------------------------------------------------
# CUDA_VISIBLE_DEVICES.

_INT = re.compile(r"^[+-]?\d+$")


def parse_cuda_visible_devices(value: str | None) -> list[str] | None:
    """The entries of ``CUDA_VISIBLE_DEVICES``: None when unset (all GPUs), [] for none.

    Entries are stripped of spaces; the list is cut at the first entry that cannot name a
    device (a negative integer, or an empty entry), as CUDA cuts it.
    """
    if value is None:
        return None
    out: list[str] = []
    for raw in value.split(","):
        entry = raw.strip()
        if not entry or (_INT.match(entry) and int(entry) < 0):
            break
        out.append(entry)
    return out


def resolve_visible(entries: Sequence[str] | None, physical_uuids: Sequence[str]) -> list[int]:
    """Physical (NVML) indices of the GPUs that ``entries`` make visible, in the engine's order.

    ``physical_uuids`` lists every GPU's UUID in NVML order. Integers index that list; ``GPU-``
    entries match a UUID or a unique UUID prefix. An entry that matches nothing, matches more
    than one GPU, repeats an earlier one, or is a MIG id (resolved separately) ends the list.
    """
    if entries is None:
        return list(range(len(physical_uuids)))
    out: list[int] = []
    for entry in entries:
        idx: int | None = None
        if _INT.match(entry):
            i = int(entry)
            idx = i if 0 <= i < len(physical_uuids) else None
        elif entry.startswith("GPU-"):
            matches = [i for i, u in enumerate(physical_uuids) if u.startswith(entry)]
            idx = matches[0] if len(matches) == 1 else None
        if idx is None or idx in out:
            break
        out.append(idx)
    return out


# ---------------------------------------------------------------------------------------------
# The set of GPUs the engine uses.


@dataclass
class GpuSet(Sequence[GpuDevice]):
    """The GPUs being measured, in the engine's order; empty (with ``reason``) where none are.

    Use as a context manager or call :meth:`close` to release NVML.
    """

    devices: list[GpuDevice] = field(default_factory=list)
    reason: str | None = None
    notes: list[str] = field(default_factory=list)
    visible_devices: str | None = None
    physical: list[tuple[str, Any]] = field(default_factory=list, repr=False)  # (uuid, handle), PCI order
    _initialised: bool = field(default=False, repr=False)

    def __getitem__(self, i: Any) -> Any:
        return self.devices[i]

    def __len__(self) -> int:
        return len(self.devices)

    def __iter__(self) -> Iterator[GpuDevice]:
        return iter(self.devices)

    def __enter__(self) -> GpuSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release this set's hold on NVML (NVML counts inits; each set shuts down its own)."""
        if self._initialised:
            self._initialised = False
            with contextlib.suppress(NvmlError):
                _call("shutdown", _lib().nvmlShutdown)

    def driver_version(self) -> str | None:
        return self._system("driver version", "nvmlSystemGetDriverVersion", _text)

    def cuda_driver_version(self) -> str | None:
        """The CUDA version the driver supports, e.g. '12.4'."""
        return self._system("CUDA driver version", "nvmlSystemGetCudaDriverVersion", _cuda_version)

    def nvml_version(self) -> str | None:
        return self._system("NVML version", "nvmlSystemGetNVMLVersion", _text)

    def _system(self, what: str, fn_name: str, conv: Callable[[Any], str]) -> str | None:
        if not self._initialised:
            return None
        try:
            return conv(_call(what, getattr(_lib(), fn_name)))
        except (NvmlError, AttributeError):
            return None

    def compute_pids(self) -> dict[str, set[int] | None]:
        """Every physical GPU's UUID -> PIDs with a compute context there (None: NVML won't say)."""
        out: dict[str, set[int] | None] = {}
        for uuid, handle in self.physical:
            try:
                procs = _call("compute processes", _lib().nvmlDeviceGetComputeRunningProcesses, handle)
                out[uuid] = {int(p.pid) for p in procs}
            except NvmlError:
                out[uuid] = None
        return out


def _cuda_version(v: int) -> str:
    return f"{int(v) // 1000}.{(int(v) % 1000) // 10}"


_INIT_HINTS = {
    9: " (the NVIDIA kernel driver is not loaded)",
    12: " (libnvidia-ml.so not found: no NVIDIA driver on this machine)",
    18: " (driver and NVML library versions differ: reboot or reload the driver)",
}


def open_gpus(env: Mapping[str, str] | None = None, max_devices: int | None = None) -> GpuSet:
    """The GPUs the engine will use. Never raises: an empty :class:`GpuSet` carries the reason.

    Args:
        env: the engine's environment (for ``CUDA_VISIBLE_DEVICES``); this process's by default.
        max_devices: how many of the visible GPUs the engine uses (tensor × pipeline parallel
            size); vLLM takes the first ones. None: all visible GPUs.
    """
    visible = (os.environ if env is None else env).get("CUDA_VISIBLE_DEVICES")
    try:
        lib = _lib()
        _call("nvmlInit", lib.nvmlInit)
    except NvmlError as exc:
        return GpuSet(
            reason=f"NVML unavailable: {exc}{_INIT_HINTS.get(exc.code or 0, '')}", visible_devices=visible
        )
    gpus = GpuSet(visible_devices=visible, _initialised=True)
    try:
        count = int(_call("device count", lib.nvmlDeviceGetCount))
        handles = [_call("device handle", lib.nvmlDeviceGetHandleByIndex, i) for i in range(count)]
        bus_ids = [_pci_bus_id(h) for h in handles]
        # NVML's enumeration order is not guaranteed: sort by PCI bus id, CUDA_DEVICE_ORDER=PCI_BUS_ID's.
        order = (
            sorted(range(count), key=lambda i: str(bus_ids[i]).lower())
            if all(bus_ids)
            else list(range(count))
        )
        handles = [handles[i] for i in order]
        uuids = [_text(_call("uuid", lib.nvmlDeviceGetUUID, h)) for h in handles]
        gpus.physical = list(zip(uuids, handles, strict=True))
        migs = {e for e in (parse_cuda_visible_devices(visible) or []) if e.startswith("MIG-")}
        chosen = _choose(parse_cuda_visible_devices(visible), uuids, handles, gpus.notes)
        if max_devices is not None:
            chosen = chosen[:max_devices]
        for pos, (sorted_index, handle) in enumerate(chosen):
            name = _text(_call("name", lib.nvmlDeviceGetName, handle))
            device = GpuDevice(
                pos, order[sorted_index], handle, uuids[sorted_index], name, bus_ids[order[sorted_index]]
            )
            device.mig = bool(migs) or device.mig_enabled()
            if device.mig:
                gpus.notes.append(
                    f"GPU {pos} ({device.uuid}) is in MIG mode: NVML reads energy and power for the whole "
                    "GPU, shared by every instance, so no energy figure is reported for it"
                )
            gpus.devices.append(device)
    except NvmlError as exc:
        gpus.close()
        return GpuSet(reason=f"NVML could not list GPUs: {exc}", visible_devices=visible)
    if not gpus.devices:
        gpus.close()
        why = "no NVIDIA GPU visible"
        if visible is not None:
            why += f" (CUDA_VISIBLE_DEVICES={visible!r})"
        return GpuSet(reason=why, visible_devices=visible)
    return gpus


def _pci_bus_id(handle: Any) -> str | None:
    try:
        return _text(_call("PCI info", _lib().nvmlDeviceGetPciInfo, handle).busId)
    except NvmlError:
        return None


def _choose(
    entries: list[str] | None, uuids: list[str], handles: list[Any], notes: list[str]
) -> list[tuple[int, Any]]:
    """(NVML index, handle) of the visible GPUs; MIG entries map to their parent GPU."""
    if not entries or not any(e.startswith("MIG-") for e in entries):
        return [(i, handles[i]) for i in resolve_visible(entries, uuids)]
    lib = _lib()
    out: list[tuple[int, Any]] = []
    for entry in entries:
        if not entry.startswith("MIG-"):
            break  # CUDA does not mix MIG instances with whole GPUs
        try:
            mig = _call("MIG handle", lib.nvmlDeviceGetHandleByUUID, entry)
            parent = _call("MIG parent", lib.nvmlDeviceGetDeviceHandleFromMigDeviceHandle, mig)
            parent_uuid = _text(_call("uuid", lib.nvmlDeviceGetUUID, parent))
        except NvmlError:
            break
        idx = uuids.index(parent_uuid) if parent_uuid in uuids else None
        if idx is None:
            break
        notes.append(f"{entry} is a MIG instance of GPU {parent_uuid}")
        if all(i != idx for i, _ in out):
            out.append((idx, handles[idx]))
        break  # CUDA exposes only the first MIG instance listed
    return out


# ---------------------------------------------------------------------------------------------
# Provenance: what the record says about the GPUs (the records layer is imported lazily, so that
# the GPU check runs without pydantic).


def describe_gpus(gpus: GpuSet, counter_period_s: Mapping[int, float | None] | None = None) -> dict[str, Any]:
    """GPU provenance as keyword arguments for :class:`~harness.record.run_record.Environment`.

    Keys: ``gpus`` (list of :class:`~harness.record.run_record.GpuInfo`, clocks as of now), ``gpu_reason``,
    ``cuda_driver_version``, ``nvml_version``, ``cuda_visible_devices``, ``gpu_notes``. Fields a
    GPU does not offer are null, with the reason in ``GpuInfo.unmeasured``.

    Args:
        counter_period_s: measured energy-counter update period per GPU index, where known.
    """
    from harness.record.run_record import GpuInfo

    driver = gpus.driver_version()
    notes = list(gpus.notes)
    infos = []
    for gpu in gpus:
        unmeasured: dict[str, str] = {}

        def read(name: str, fn: Callable[[], Any], unmeasured: dict[str, str] = unmeasured) -> Any:
            try:
                return fn()
            except NvmlError as exc:
                unmeasured[name] = str(exc)
                return None

        counter = read("energy_counter", gpu.energy_mj)
        read("power_reading", gpu.power_w)  # settles which power reading this GPU offers
        if gpu.power_scope == "module":
            notes.append(
                f"GPU {gpu.index}: the instant power field answers for the whole module (GPU and CPU, "
                "as on GH200), not for the GPU alone"
            )
        period = (counter_period_s or {}).get(gpu.index)
        if counter is not None and period is None and counter_period_s is not None:
            unmeasured["counter_update_period_s"] = "the counter moved fewer than 3 times while polled"
        infos.append(
            GpuInfo(
                index=gpu.index,
                name=gpu.name,
                uuid=gpu.uuid,
                memory_total_bytes=read("memory_total_bytes", gpu.memory_total_bytes),
                driver_version=driver,
                nvml_index=gpu.nvml_index,
                power_limit_w=read("power_limit_w", gpu.power_limit_w),
                persistence_mode=read("persistence_mode", gpu.persistence_mode),
                sm_clock_mhz=read("sm_clock_mhz", gpu.sm_clock_mhz),
                graphics_clock_mhz=read("graphics_clock_mhz", gpu.graphics_clock_mhz),
                memory_clock_mhz=read("memory_clock_mhz", gpu.memory_clock_mhz),
                energy_counter=counter is not None,
                power_reading=gpu.power_reading,  # type: ignore[arg-type]
                unmeasured=unmeasured,
                pci_bus_id=gpu.pci_bus_id,
                mig_mode=gpu.mig,
                power_scope=gpu.power_scope,  # type: ignore[arg-type]
                counter_update_period_s=period,
            )
        )
    return {
        "gpus": infos,
        "gpu_reason": gpus.reason,
        "cuda_driver_version": gpus.cuda_driver_version(),
        "nvml_version": gpus.nvml_version(),
        "cuda_visible_devices": gpus.visible_devices,
        "gpu_notes": notes,
    }


def gpu_environment(env: Mapping[str, str] | None = None, max_devices: int | None = None) -> dict[str, Any]:
    """:func:`describe_gpus` for a run that has no meter yet (opens and releases NVML)."""
    with open_gpus(env, max_devices) as gpus:
        return describe_gpus(gpus)
