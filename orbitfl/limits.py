"""The largest inputs orbitfl accepts, sized for the machine class it targets (2 cores,
24 GiB of memory). Beyond them a run cannot fit in memory or cannot finish, so exceeding one
is an input error that names the limit, never a crash or a hang. Imports nothing of ours:
every layer may read these."""

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


def image_bytes(images: int, size: int, masks: bool = False) -> int:
    """Memory of ``images`` as float32 (3, size, size) tensors, with int64 masks."""
    return images * size * size * (3 * 4 + (8 if masks else 0))

MAX_REPLICATES = 1_000              # runs of one sweep point (replicates: or seeds:)
MAX_SWEEP_POINTS = 10_000           # runs in one sweep (groups x replicates): each is a
                                    # whole simulation, so 10,000 is weeks on 2 cores
