"""The largest inputs orbitfl accepts, sized for the machine class it targets (2 cores,
24 GiB of memory). Beyond them a run cannot fit in memory or cannot finish, so exceeding one
is an input error that names the limit, never a crash or a hang. Imports nothing of ours:
every layer may read these."""

import os

MAX_SCENARIO_BYTES = 1 << 20        # a scenario is a page of YAML; 1 MiB is already absurd
MAX_ELEMENT_FILE_BYTES = 64 << 20   # 100,000 satellites of 3LE text take about 17 MB
MAX_YAML_VALUES = 100_000           # values in a scenario once its aliases are expanded
MAX_YAML_DEPTH = 100                # nesting levels of a scenario document
MAX_JSON_DEPTH = 100                # nesting levels of any JSON file orbitfl reads
ECHO_CHARS = 60                     # the most of a user's value an error line repeats

MAX_DURATION_S = 366 * 86400.0      # any duration in a scenario: a year of simulated time
MAX_SATELLITES = 100_000            # a Walker shell's planes x per_plane
MAX_TRACK_IMAGES = 10_000           # images per satellite: acquisition window / interval_s
MAX_IMAGE_BYTES = 4 << 30           # generated float32 images (rendering takes ~3x more)
MAX_ROUNDS = 100_000
SUNLIGHT_GRID_S = 30.0              # the orbit grid of eclipse spans (constellation.power)
MAX_SATELLITE_STEPS = 250_000_000   # satellites x steps of that grid held at once: about
                                    # 6 GB of float64 positions
MAX_CONTACT_PAIR_DAYS = 300_000     # satellites x stations x days of contact search: 1.5x
                                    # the 10,000 x 20 x 1 d benchmark; 250,000 took 435 s
                                    # and 9.15 GB (50,000 x 12,000 x 1 d would need 2,000x)
WORKERS_PER_CORE = 8                # pool workers or local Ray actors per core, at most
WORKER_BYTES = 256 << 20            # a worker's own memory (measured: 54 MB for an idle
                                    # one, up to 460 MB at constellation scale)


def image_bytes(images: int, size: int, masks: bool = False) -> int:
    """Memory of ``images`` as float32 (3, size, size) tensors, with int64 masks."""
    return images * size * size * (3 * 4 + (8 if masks else 0))

MAX_REPLICATES = 1_000              # runs of one sweep point (replicates: or seeds:)
MAX_SWEEP_POINTS = 10_000           # runs in one sweep (groups x replicates): each is a
                                    # whole simulation, so 10,000 is weeks on 2 cores

def contact_pair_days(satellites: int, stations: int, duration_s: float) -> float:
    """The size of a contact search: every satellite-station pair over the duration."""
    return satellites * stations * duration_s / 86400.0


def max_workers() -> int:
    """The most worker processes (or local Ray actors) this machine can hold: a few per
    core, and no more than its available memory holds at ``WORKER_BYTES`` each."""
    by_cores = (os.cpu_count() or 1) * WORKERS_PER_CORE
    memory = available_memory()
    return max(1, by_cores if memory is None else min(by_cores, memory // WORKER_BYTES))


def available_memory() -> int | None:
    """Bytes of memory available to new processes now (Linux ``MemAvailable``, else the
    free physical pages), or None where neither can be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def workers_problem(workers: int) -> str | None:
    """Why ``workers`` processes are too many for this machine, or None."""
    limit = max_workers()
    if workers <= limit:
        return None
    memory = available_memory()
    held = "" if memory is None else \
        f", {memory / 2**30:.1f} GiB available at {WORKER_BYTES >> 20} MiB a worker"
    return (f"{workers} workers exceed the {limit} this machine can hold ({os.cpu_count()} "
            f"cores x {WORKERS_PER_CORE}{held}: limits.max_workers); give at most {limit}")
