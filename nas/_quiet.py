"""Import TensorFlow without its C++ start-up banner (oneDNN, CUDA probing), which it writes straight to file
descriptor 2 before any logging setting applies."""

from __future__ import annotations

import os
import sys


def import_keras() -> None:
    """Import Keras and TensorFlow quietly, then apply this process's device placement
    (:func:`nas.devices.configure_process`) before any TensorFlow operation can initialise the devices."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    from nas.devices import configure_process

    configure_process()
