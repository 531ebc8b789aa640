"""Onboard computers: how long training takes and what it costs in energy.

``time = training FLOPs / (peak FLOP/s x utilisation)``, ``energy = power x time``. Peak
figures are the vendors'; utilisation (the fraction of peak a small-batch training loop
sustains on an embedded part) is our estimate and the dominant uncertainty: override it in
the scenario when you have a measurement.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChipProfile:
    name: str
    peak_flops: float    # FLOP/s at the precision training uses (FP16 on these parts)
    utilisation: float   # sustained fraction of peak for small-CNN training (estimate)
    power_w: float       # board power while training
    source: str

    @property
    def effective_flops(self) -> float:
        return self.peak_flops * self.utilisation

    def training_time_s(self, flops: float) -> float:
        return flops / self.effective_flops

    def training_energy_j(self, flops: float) -> float:
        return self.power_w * self.training_time_s(flops)


CHIPS = {
    "jetson-nano": ChipProfile(
        "jetson-nano", 472e9, 0.25, 10.0,
        "NVIDIA Jetson Nano: 472 GFLOPS (FP16), 5-10 W modes"),
    "jetson-orin-nx": ChipProfile(
        "jetson-orin-nx", 3.76e12, 0.25, 20.0,
        "NVIDIA Jetson Orin NX 16 GB: 1024-core Ampere GPU at 918 MHz, 1.88 TFLOPS FP32 / "
        "3.76 TFLOPS FP16 dense (the 100 TOPS figure is sparse INT8), 10-25 W"),
    "myriad-x": ChipProfile(
        "myriad-x", 1.0e12, 0.05, 1.5,
        "Intel Movidius Myriad X: 4 TOPS (1 TFLOPS FP16 in its SHAVE cores) at 1.5 W; an "
        "inference-class part, so sustained training throughput is a small fraction"),
}
