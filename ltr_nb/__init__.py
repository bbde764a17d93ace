__version__ = "0.0.1"
# Make torchvision importable on a CPU-only torch before anything else imports it (see nbs/00_core.ipynb).
from .core import ensure_torchvision as _ensure_torchvision
_ensure_torchvision()
