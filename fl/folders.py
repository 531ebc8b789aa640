"""Real remote-sensing datasets from the user's disk (nothing is ever downloaded).

Scene classification (one folder per class): PatternNet (38 classes), NWPU-RESISC45 (45),
EuroSAT RGB (10), UC Merced Land Use (21). Segmentation: LoveDA (``Train|Val /
Urban|Rural / images_png|masks_png``, mask values 0 = no-data, 1..7 = classes).
Images are decoded with Pillow and resized to the scenario's image size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

from orbitfl.core.errors import InputError

from .datasets import require_image_memory

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp"}


@dataclass(frozen=True)
class FolderLayout:
    classes: int
    subdirs: tuple[str, ...]  # where the class folders may sit under the given root


LAYOUTS = {
    "patternnet": FolderLayout(38, ("images", "PatternNet/images", ".")),
    "nwpu-resisc45": FolderLayout(45, ("NWPU-RESISC45", ".")),
    "eurosat": FolderLayout(10, ("2750", "EuroSAT_RGB", "EuroSAT", ".")),
    "ucmerced": FolderLayout(21, ("Images", "UCMerced_LandUse/Images", ".")),
    "folder": FolderLayout(0, (".",)),  # any class-per-folder set: 0 is "two or more"
}
_SMALLER = "lower data.image_size or use a subset of the folder"
LOVEDA_CLASSES = ("background", "building", "road", "water", "barren", "forest", "agriculture")


@dataclass(frozen=True)
class LoadedImages:
    images: np.ndarray        # (n, 3, size, size) float32 reflectance in [0, 1]
    labels: np.ndarray        # (n,) class index, or (n, size, size) masks for segmentation
    class_names: tuple[str, ...]


def load_class_folders(dataset: str, root: Path, size: int) -> LoadedImages:
    """Images of a class-per-folder dataset; a missing or malformed layout is one error line
    saying what was expected."""
    layout = LAYOUTS[dataset]
    base = _find_class_root(dataset, root, layout)
    class_dirs = sorted(d for d in base.iterdir() if d.is_dir())
    files = []
    for folder in class_dirs:
        mine = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not mine:
            raise InputError(f"{folder}: class folder of {dataset} holds no images "
                             f"({', '.join(sorted(IMAGE_SUFFIXES))})")
        files.append(mine)
    require_image_memory(sum(map(len, files)), size, str(root), _SMALLER)
    images = [_read_rgb(path, size) for mine in files for path in mine]
    labels = np.repeat(np.arange(len(files)), [len(mine) for mine in files])
    return LoadedImages(np.stack(images), labels.astype(np.int64),
                        tuple(d.name for d in class_dirs))


def load_loveda(root: Path, size: int) -> LoadedImages:
    """All LoveDA image/mask pairs under ``root`` (Train and Val, Urban and Rural); mask 0
    (no-data) becomes -1, classes 1..7 become 0..6."""
    pairs = []
    for split in ("Train", "Val"):
        for domain in ("Urban", "Rural"):
            folder = root / split / domain
            if not folder.is_dir():
                continue
            image_dir, mask_dir = folder / "images_png", folder / "masks_png"
            if not image_dir.is_dir() or not mask_dir.is_dir():
                raise InputError(f"{folder}: expected images_png/ and masks_png/ (LoveDA)")
            for image in sorted(image_dir.glob("*.png")):
                mask = mask_dir / image.name
                if not mask.is_file():
                    raise InputError(f"{image}: no mask {mask.name} in {mask_dir}")
                pairs.append((image, mask))
    if not pairs:
        raise InputError(f"{root}: expected LoveDA's Train|Val/Urban|Rural/images_png and "
                         "masks_png folders")
    require_image_memory(len(pairs), size, str(root), _SMALLER, masks=True)
    images, masks = [], []
    for image, mask in pairs:
        images.append(_read_rgb(image, size))
        values = _decode(mask, size, "L", nearest=True).astype(np.int64)
        if values.max() > len(LOVEDA_CLASSES):
            raise InputError(f"{mask}: mask value {values.max()} outside 0..7 (LoveDA)")
        masks.append(values - 1)
    return LoadedImages(np.stack(images), np.stack(masks), LOVEDA_CLASSES)


def _find_class_root(dataset: str, root: Path, layout: FolderLayout) -> Path:
    if not root.is_dir():
        raise InputError(f"{root}: {dataset} folder not found")
    for sub in layout.subdirs:
        candidate = (root / sub).resolve()
        if candidate.is_dir():
            folders = [d for d in candidate.iterdir() if d.is_dir()]
            if len(folders) == layout.classes or (layout.classes == 0 and len(folders) >= 2):
                return candidate
    found = len([d for d in root.iterdir() if d.is_dir()])
    expected = layout.classes or "two or more"
    raise InputError(f"{root}: expected {expected} class folders for {dataset} (directly "
                     f"or under {', '.join(s for s in layout.subdirs if s != '.')}), "
                     f"found {found}")


def _read_rgb(path: Path, size: int) -> np.ndarray:
    rgb = _decode(path, size, "RGB", nearest=False)
    return (rgb.astype(np.float32) / 255.0).transpose(2, 0, 1)


def _decode(path: Path, size: int, mode: str, nearest: bool) -> np.ndarray:
    """The image at ``path`` in ``mode``, resized to ``size``; an ``InputError`` naming the
    file when Pillow cannot read it (corrupt, not an image, a mode it cannot convert, or
    past its decompression-bomb limit, which is not an ``OSError``)."""
    from PIL import Image, UnidentifiedImageError

    resample = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert(mode).resize((size, size), resample))
    except Image.DecompressionBombError:  # raised only while a limit is set
        problem = f"larger than Pillow's limit of {2 * cast(int, Image.MAX_IMAGE_PIXELS)} pixels"
    except UnidentifiedImageError:
        problem = "not an image format Pillow decodes"
    except (OSError, ValueError) as err:
        problem = str(err)[:80]
    raise InputError(f"{path}: cannot read image ({problem})")
