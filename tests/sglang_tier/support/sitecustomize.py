"""Test support (see README.md): SGLang 0.5.23 imports a few torchvision names at load (its
InternVL and DeepSeek-OCR configs); every torchvision wheel on PyPI is built against CUDA
torch and fails to import beside the CPU torch. This registers stand-in modules with those
names, and keeps transformers' package check from seeing them (it would then import much
more of torchvision). Calling a stand-in is an error; no test model uses images."""

import enum
import importlib.util
import sys
import types


class InterpolationMode(enum.Enum):
    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"


def _unavailable(*args: object, **kwargs: object) -> None:
    raise RuntimeError("torchvision is a test stand-in here")


torchvision = types.ModuleType("torchvision")
transforms = types.ModuleType("torchvision.transforms")
functional = types.ModuleType("torchvision.transforms.functional")
functional.InterpolationMode = InterpolationMode
functional.pil_to_tensor = _unavailable
transforms.InterpolationMode = InterpolationMode
transforms.functional = functional
for name in ("Compose", "Normalize", "Resize", "ToTensor", "CenterCrop", "Lambda"):
    setattr(transforms, name, _unavailable)
torchvision.transforms = transforms
for module in (torchvision, transforms, functional):
    sys.modules[module.__name__] = module

_find_spec = importlib.util.find_spec


def _find_spec_without_torchvision(name: str, package: str | None = None):  # type: ignore[no-untyped-def]
    if name == "torchvision" or name.startswith("torchvision."):
        return None
    return _find_spec(name, package)


importlib.util.find_spec = _find_spec_without_torchvision
