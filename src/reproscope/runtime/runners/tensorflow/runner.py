"""TensorFlow runner: a .keras file loaded in Keras safe mode."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from reproscope.runtime.jobs import InferenceJob
from reproscope.runtime.peak import gemm_operand
from reproscope.runtime.runners.base import DeviceUnavailable, stage_ms


class TensorflowRunner:
    framework = "tensorflow"

    def __init__(self) -> None:
        self.device_name = "/CPU:0"
        self.threads = 0

    def load(self, artifact: Path, job: InferenceJob) -> None:
        self.threads = job.threads
        threading = tf.config.threading
        # Settable until TensorFlow starts; a group that reloads the model keeps them.
        if threading.get_intra_op_parallelism_threads() != self.threads:
            threading.set_intra_op_parallelism_threads(self.threads)
        if threading.get_inter_op_parallelism_threads() != 1:
            threading.set_inter_op_parallelism_threads(1)
        if job.device == "cuda":
            if not tf.config.list_physical_devices("GPU"):
                raise DeviceUnavailable("TensorFlow sees no GPU")
            self.device_name = "/GPU:0"
        with tf.device(self.device_name):
            self.model = tf.keras.models.load_model(artifact, safe_mode=True, compile=False)
        self.forward = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)
        if job.device == "cuda":
            placed = {str(getattr(w, "value", w).device) for w in self.model.weights}
            if not all("GPU" in d for d in placed):
                raise DeviceUnavailable(f"model variables are on {sorted(placed)}, not a GPU")

    def run(self, batch: np.ndarray) -> np.ndarray:
        with tf.device(self.device_name):
            # .numpy() copies to the host and so waits for the device.
            return self.forward(tf.constant(batch)).numpy()

    def run_stages(self, batch: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        device = "cuda" if self.device_name.startswith("/GPU") else "cpu"
        sync = getattr(tf.test.experimental, "sync_devices", lambda: None)
        with tf.device(self.device_name):
            t0 = time.perf_counter_ns()
            x = tf.identity(tf.constant(batch))
            if device == "cuda":
                sync()
            t1 = time.perf_counter_ns()
            y = self.forward(x)
            if device == "cuda":
                sync()
            t2 = time.perf_counter_ns()
            out = y.numpy()
            t3 = time.perf_counter_ns()
        return out, stage_ms(t0, t1, t2, t3, device)

    def gemm(self) -> tuple[Callable[[], Any], str]:
        with tf.device(self.device_name):
            a = tf.constant(gemm_operand())

        def product() -> Any:
            with tf.device(self.device_name):
                return tf.linalg.matmul(a, a).numpy()  # .numpy() waits for the device

        return product, f"tf.linalg.matmul {tf.__version__} {self.device_name}"

    def info(self) -> dict[str, Any]:
        build = tf.sysconfig.get_build_info()
        return {
            "framework_version": tf.__version__,
            "keras_version": tf.keras.__version__ if hasattr(tf.keras, "__version__") else None,
            "api": "python tf.function(keras model)",
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
            "safe_mode": True,
            "cuda_version": build.get("cuda_version"),
            "cudnn_version": build.get("cudnn_version"),
            "onednn": True,
        }


def make() -> TensorflowRunner:
    return TensorflowRunner()
